"""The dispatcher: from a stored event to matched Dagger functions running live.

The :class:`Engine` is the one object the UI and ``serve`` talk to. Intake hands it stored events
through :meth:`Engine.submit` (it only wakes a queue); dispatch workers take events from that
queue, check the repository out, read its spec, load the module's catalog, match functions and
start one task per matched function. Everything that happens is published to subscribers as
plain notices (:mod:`pocketci_tui.model`); the engine never calls the UI.

This module is the queue and the engine's public face: starting and stopping, recovering after a
restart, the dispatch workers and the user's actions. The engine's parts live beside it: its
shared state in :mod:`~pocketci_tui.engine.dispatch.engine_base`, the per-event pipeline in
:mod:`~pocketci_tui.engine.dispatch.pipeline` and run execution in
:mod:`~pocketci_tui.engine.dispatch.runs`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from pocketci_tui.config import ConfigError, load_repo_spec
from pocketci_tui.engine.dispatch.approval import HeadSecrets, head_secrets
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.engine.dispatch.engine_base import TAIL_LINES, EngineError, Subscriber
from pocketci_tui.engine.dispatch.pipeline import (
    HELD,
    SECRET_RETRY_SECONDS,
    EventPipeline,
    _checkout,
)
from pocketci_tui.engine.dispatch.queue import DispatchRequest
from pocketci_tui.engine.git import GitError, validate_sha
from pocketci_tui.engine.proc import stop_leftover
from pocketci_tui.model import (
    EventStatus,
    EventStored,
    RunState,
    RunUpdated,
    StoredEvent,
    utcnow,
)
from pocketci_tui.paths import make_private_dir
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import SecretStoreError

__all__ = [
    "DISPATCH_WORKERS",
    "HELD",
    "SECRET_RETRY_SECONDS",
    "SHUTDOWN_SECONDS",
    "TAIL_LINES",
    "Engine",
    "EngineError",
    "Subscriber",
]

log = logging.getLogger(__name__)

DISPATCH_WORKERS = 4
"""Events checked out and matched at once (runs are limited by ``concurrency``)."""
LEFTOVER_GRACE = 5.0
"""Seconds a call left running by a killed predecessor gets between SIGTERM and SIGKILL."""
SHUTDOWN_SECONDS = 15.0
"""How long shutdown waits for dispatches and runs to stop (their process trees are killed)."""


class Engine(EventPipeline):
    """Dispatches stored events to Dagger functions and reports everything that happens.

    Args:
        settings: The user's configuration.
        paths: Where data, logs and work folders live.
        store: The durable store of events and runs.
        secrets: The secret store (clone tokens, ``from-keyring`` secrets, Dagger Cloud token).
    """

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from the last stop and start the dispatch workers.

        The ``dagger call`` process groups a crash left running are stopped first, then runs
        left running are marked interrupted; events that were received but not dispatched, and
        runs still queued, are dispatched again.
        """
        if self._started:
            return
        self._started = True
        for directory in (self.paths.logs_dir, self.paths.work_dir, self.paths.cache_dir):
            await asyncio.to_thread(make_private_dir, directory)
        self._check_dagger()
        self._check_git()
        await self._load_cloud_token()
        stopped = await self._stop_leftover_calls()
        for run in await self.store.mark_interrupted(stopped):
            self._publish(RunUpdated(run))
        self._workers = [
            asyncio.create_task(self._worker(), name=f"dispatch-{i}")
            for i in range(DISPATCH_WORKERS)
        ]
        resumed: set[int] = set()
        for stored in await self.store.events_with_status(
            EventStatus.RECEIVED, EventStatus.DISPATCHING, EventStatus.WAITING
        ):
            assert stored.event.id is not None
            if stored.status is EventStatus.WAITING and not stored.detail.startswith(HELD):
                continue  # a fork pull request waits for a person, not for a restart
            resumed.add(stored.event.id)
            self._queue.put(DispatchRequest(stored.event.id))
        queued = await self.store.runs_with_state(RunState.QUEUED)
        by_event: dict[int, set[str]] = {}
        for run in queued:
            by_event.setdefault(run.event_id, set()).add(run.function)
        for event_id, functions in by_event.items():
            if event_id in resumed:
                continue
            # The runs already exist; mark them interrupted and queue fresh ones, so the
            # history stays honest about what happened.
            for run in queued:
                if run.event_id == event_id:
                    done = replace(
                        run,
                        state=RunState.INTERRUPTED,
                        reason="pocketci-tui stopped before it started; queued again",
                        finished_at=utcnow(),
                    )
                    await self.store.update_run(done)
                    self._publish(RunUpdated(done))
            self._queue.put(DispatchRequest(event_id, frozenset(functions)))

    async def _stop_leftover_calls(self) -> dict[str, str]:
        """Stop the ``dagger call`` process groups a killed predecessor left running.

        Runs before recovery, once this process owns the data folder. Each group was recorded
        as its call started; only a group whose leader's start time matches is signalled, so a
        reused pid is left alone.

        Returns:
            The reason to record for each run whose call was stopped, by run id.
        """
        calls = await self.store.recorded_calls()
        if not calls:
            return {}
        found = await asyncio.gather(
            *(stop_leftover(call, grace=LEFTOVER_GRACE) for call in calls),
            return_exceptions=True,
        )
        reasons: dict[str, str] = {}
        for call, pids in zip(calls, found, strict=True):
            if isinstance(pids, BaseException):
                log.warning("cannot stop the call of run %s left running: %s", call.run_id, pids)
                continue
            if not pids:
                continue
            log.warning(
                "stopped the dagger call of run %s that the last pocketci-tui left running "
                "(process group %d, %d process(es))",
                call.run_id,
                call.pgid,
                len(pids),
            )
            reasons[call.run_id] = (
                "pocketci-tui stopped while this ran; its dagger call kept running (process "
                f"group {call.pgid}) and was stopped at the next start"
            )
        return reasons

    async def shutdown(self) -> None:
        """Stop dispatching, stop every running ``dagger call`` and wait for them."""
        self._stopping = True
        for worker in self._workers:
            worker.cancel()
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for task in tasks:
            task.cancel("shutdown")
        for task in list(self._background):
            task.cancel()
        pending = {*self._workers, *tasks, *self._background}
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=SHUTDOWN_SECONDS)
            for task in stuck:
                log.error("still running after shutdown: %s", task.get_name())
        self._workers.clear()

    # -- public actions -------------------------------------------------------------------------

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Take a freshly stored event from intake (never blocks: it only queues)."""
        self._publish(EventStored(stored, duplicate=duplicate))
        if duplicate or stored.status is not EventStatus.RECEIVED or self._stopping:
            return
        assert stored.event.id is not None
        self._queue.put(DispatchRequest(stored.event.id))

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again: every function it matches runs as a new run."""
        stored = await self._stored(event_id)
        if stored.event.deleted:
            raise EngineError("a branch deletion has nothing to run")
        self._queue.put(DispatchRequest(event_id))

    async def rerun(self, run_id: str) -> None:
        """Run one function of an event again, as a new run linked to ``run_id``."""
        run = await self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"no run {run_id}")
        if not run.function:
            raise EngineError("this entry is not a function run")
        self._queue.put(DispatchRequest(run.event_id, frozenset({run.function}), run.id))

    async def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; return False when it was not active."""
        live = self._live.get(run_id)
        if live is None or live.task is None or live.task.done():
            return False
        live.task.cancel("cancelled by the user")
        return True

    async def cancel_event(self, event_id: int) -> int:
        """Cancel every active run of an event; return how many were cancelled."""
        count = 0
        for run_id, live in list(self._live.items()):
            if live.run.event_id == event_id and await self.cancel(run_id):
                count += 1
        return count

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Approve a waiting fork pull request at its head commit, and dispatch it.

        Args:
            event_id: The waiting event.
            sha: The head commit the person saw and approved; when given, the approval is
                refused unless it is still the event's head.
        """
        stored = await self._stored(event_id)
        if not stored.event.is_fork:
            raise EngineError("only pull requests from forks need approval")
        if sha is not None and sha != stored.event.sha:
            raise EngineError(
                f"the head commit is {stored.event.sha[:12]}, not the {sha[:12]} shown; "
                "look at the pull request again"
            )
        await self.store.set_approved_sha(event_id, stored.event.sha)
        self._queue.put(DispatchRequest(event_id))

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """Tell which secrets a fork's pull request would receive, before it is approved.

        The head commit is fetched and checked out like for a run (nothing from it runs), its
        ``pocketci.yaml`` read and matched against the repository's grants; no secret value
        is read. A failure is reported in ``error``, never raised.
        """
        stored = await self._stored(event_id)
        event = stored.event
        repo = self.settings.repo_for(event.vendor, event.repository)
        if repo is None:
            return HeadSecrets(error=f"{event.repository} is not in the config")
        try:
            validate_sha(event.sha)
            token = await self.secrets.get(repo.token) if repo.token else None
            checkout = await _checkout(self.workspace, self.settings, repo, token, event)
        except (GitError, ValueError, SecretStoreError) as exc:
            return HeadSecrets(error=f"cannot fetch the head commit: {exc}")
        try:
            spec = await asyncio.to_thread(load_repo_spec, checkout.path)
        except ConfigError as exc:
            return HeadSecrets(error=str(exc))
        finally:
            await self.workspace.remove(checkout)
        no_secrets = self.settings.fork_pull_requests == "no-secrets"
        return head_secrets(spec, repo, self.settings, no_secrets=no_secrets)

    def tail(self, run_id: str) -> list[str]:
        """Return the last lines of output of a running or recently finished run."""
        live = self._live.get(run_id)
        if live is not None:
            return list(live.tail)
        return list(self._recent_tails.get(run_id, ()))

    def tail_end(self, run_id: str) -> int | None:
        """How many output lines the run published so far: the position right after the last
        line :meth:`tail` returns (call both in one go, with no await between). None for a run
        this engine does not know."""
        live = self._live.get(run_id)
        if live is not None:
            return live.published
        return self._recent_ends.get(run_id)

    def counts(self) -> tuple[int, int]:
        """Return how many runs are (queued, running)."""
        queued = sum(1 for live in self._live.values() if live.run.state is RunState.QUEUED)
        running = sum(1 for live in self._live.values() if live.run.state is RunState.RUNNING)
        return queued, running

    def problems(self) -> list[Problem]:
        """Return what the user should know is wrong (dagger missing, secret store down...)."""
        return self.problems_found.list()

    # -- the dispatch workers -------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            request = await self._queue.get()
            try:
                await self._dispatch(request.event_id, request.only, request.parent_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("dispatch of event %s failed", request.event_id)
                await self._set_status(
                    request.event_id, EventStatus.ERROR, f"internal error: {exc}"
                )


if TYPE_CHECKING:

    def _engine_is_a_client(engine: Engine) -> EngineClient:
        """mypy checks here that the engine offers everything the UI may ask of it."""
        return engine
