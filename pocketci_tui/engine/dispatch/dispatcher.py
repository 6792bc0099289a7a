"""The dispatcher: from a stored event to matched Dagger functions running live.

The :class:`Engine` is the one object the UI and ``serve`` talk to. Intake hands it stored events
through :meth:`Engine.submit` (it only queues a request); dispatch workers take requests from
that queue and hand each to the event pipeline, which checks the repository out, reads its spec,
loads the module's catalog, matches functions and hands each matched one to the run executor.
Everything that happens is published to subscribers as plain notices (:mod:`pocketci_tui.model`);
the engine never calls the UI.

The engine owns its parts and wires them, each given what it needs in its constructor:

- :class:`~pocketci_tui.engine.dispatch.queue.DispatchQueue`: the typed requests to dispatch;
- :class:`~pocketci_tui.engine.dispatch.pipeline.EventPipeline`: one event to its runs;
- :class:`~pocketci_tui.engine.dispatch.executor.RunExecutor`: the runs, in concurrency slots;
- :class:`~pocketci_tui.engine.dispatch.live.LiveState`: live runs, tails, and problems.

This module is the engine's public face: starting and stopping, the dispatch workers and the
user's actions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pocketci_tui.config import ConfigError, RepoSpec, Settings, load_repo_specs
from pocketci_tui.engine.dagger import Catalog, resolve_dagger_cli
from pocketci_tui.engine.dispatch.approval import HeadSecrets, head_secrets
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.engine.dispatch.executor import RunExecutor
from pocketci_tui.engine.dispatch.live import TAIL_LINES, LiveState
from pocketci_tui.engine.dispatch.notices import (
    Background,
    EngineError,
    EventStatuses,
    Publisher,
    Subscriber,
)
from pocketci_tui.engine.dispatch.pipeline import SECRET_RETRY_SECONDS, EventPipeline
from pocketci_tui.engine.dispatch.preview import preview
from pocketci_tui.engine.dispatch.queue import DispatchQueue, DispatchRequest
from pocketci_tui.engine.dispatch.recovery import HELD, resume, stop_leftover_calls
from pocketci_tui.engine.dispatch.repos import check_out
from pocketci_tui.engine.git import GitError, Workspace, validate_sha
from pocketci_tui.model import (
    EventStatus,
    EventStored,
    MatchResult,
    RunUpdated,
    StoredEvent,
    change_request_noun,
)
from pocketci_tui.paths import AppPaths, make_private_dir
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Store

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
SHUTDOWN_SECONDS = 15.0
"""How long shutdown waits for dispatches and runs to stop (their process trees are killed)."""


class Engine:
    """Dispatches stored events to Dagger functions and reports everything that happens.

    Args:
        settings: The user's configuration; replacing :attr:`settings` later (a reload)
            changes what each new event is dispatched with.
        paths: Where data, logs and work folders live.
        store: The durable store of events and runs.
        secrets: The secret store (clone tokens, ``from-keyring`` secrets, Dagger Cloud token).
        secret_retry_seconds: How long an event held for an unreachable secret store waits
            before it is tried again.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        paths: AppPaths,
        store: Store,
        secrets: SecretStore,
        secret_retry_seconds: float = SECRET_RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.store = store
        self.secrets = secrets
        self.workspace = Workspace(paths.work_dir / "git", timeout=600.0)
        self.catalog = Catalog(
            paths.cache_dir / "catalog",
            dagger_cli=settings.dagger.cli,
            # Introspection may run on any engine: the first of the pool that is up does it.
            runner_host=settings.engine_pool()[0].runner_host,
            pick_host=self._introspection_host,
            log_path=paths.app_log,
        )
        self._publisher = Publisher()
        self._background = Background()
        self.queue = DispatchQueue()
        """The requests waiting for a dispatch worker."""
        self.live = LiveState()
        """The runs being executed, their output tails, and the problems found."""
        self.statuses = EventStatuses(store, self._publisher.publish)
        self.executor = RunExecutor(
            settings=self._current_settings,
            paths=paths,
            store=store,
            secrets=secrets,
            workspace=self.workspace,
            catalog=self.catalog,
            live=self.live,
            publish=self._publisher.publish,
            spawn=self._background.spawn,
        )
        """Runs what matched."""
        self.pipeline = EventPipeline(
            settings=self._current_settings,
            store=store,
            secrets=secrets,
            workspace=self.workspace,
            catalog=self.catalog,
            live=self.live,
            executor=self.executor,
            statuses=self.statuses,
            publish=self._publisher.publish,
            spawn=self._background.spawn,
            requeue=self.queue.put,
            retry_seconds=secret_retry_seconds,
        )
        """Takes one event from the queue to its runs."""
        self._workers: list[asyncio.Task[None]] = []
        self._started = False
        self._stopping = False

    def _introspection_host(self) -> str:
        """The engine for a catalog session: the first of the pool not marked down."""
        loads = self.executor.pool.loads()
        return next((e for e in loads if not e.down), loads[0]).settings.runner_host

    def _current_settings(self) -> Settings:
        return self.settings

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
        missing = dagger_missing(self.settings)
        if missing is not None:
            self.live.raise_problem(missing)
        self.live.check_git()
        await self.executor.load_cloud_token()
        stopped = await stop_leftover_calls(self.store)
        for run in await self.store.mark_interrupted(stopped):
            self._publisher.publish(RunUpdated(run))
        self._workers = [
            asyncio.create_task(self._worker(), name=f"dispatch-{i}")
            for i in range(DISPATCH_WORKERS)
        ]
        await resume(self.store, self.queue.put, self._publisher.publish)

    async def shutdown(self) -> None:
        """Stop dispatching, stop every running ``dagger call`` and wait for them."""
        self._stopping = True
        for worker in self._workers:
            worker.cancel()
        runs = self.executor.stop()
        background = self._background.cancel()
        pending = {*self._workers, *runs, *background}
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=SHUTDOWN_SECONDS)
            for task in stuck:
                log.error("still running after shutdown: %s", task.get_name())
        self._workers.clear()

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every notice from now on; return a function that stops it."""
        return self._publisher.subscribe(callback)

    # -- public actions -------------------------------------------------------------------------

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Take a freshly stored event from intake (never blocks: it only queues)."""
        self._publisher.publish(EventStored(stored, duplicate=duplicate))
        if duplicate or stored.status is not EventStatus.RECEIVED or self._stopping:
            return
        assert stored.event.id is not None
        self.queue.put(DispatchRequest(stored.event.id))

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again: every function it matches runs as a new run."""
        stored = await self._stored(event_id)
        if stored.event.deleted:
            raise EngineError("a branch deletion has nothing to run")
        self.queue.put(DispatchRequest(event_id))

    async def rerun(self, run_id: str) -> None:
        """Run one function of an event again, as a new run linked to ``run_id``."""
        run = await self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"no run {run_id}")
        if not run.function:
            raise EngineError("this entry is not a function run")
        self.queue.put(
            DispatchRequest(run.event_id, frozenset({run.function}), run.id, spec=run.spec or None)
        )

    async def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; return False when it was not active."""
        return self.executor.cancel(run_id)

    async def cancel_event(self, event_id: int) -> int:
        """Cancel every active run of an event; return how many were cancelled."""
        return sum(1 for live in self.live.of_event(event_id) if self.executor.cancel(live.run.id))

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Approve a waiting fork pull request at its head commit, and dispatch it.

        Args:
            event_id: The waiting event.
            sha: The head commit the person saw and approved; when given, the approval is
                refused unless it is still the event's head.
        """
        stored = await self._stored(event_id)
        if not stored.event.is_fork:
            raise EngineError("only pull and merge requests from forks need approval")
        if sha is not None and sha != stored.event.sha:
            raise EngineError(
                f"the head commit is {stored.event.sha[:12]}, not the {sha[:12]} shown; "
                f"look at the {change_request_noun(stored.event.vendor)} again"
            )
        await self.store.set_approved_sha(event_id, stored.event.sha)
        self.queue.put(DispatchRequest(event_id))

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
            checkout = await check_out(self.workspace, self.settings, repo, token, event)
        except (GitError, ValueError, SecretStoreError) as exc:
            return HeadSecrets(error=f"cannot fetch the head commit: {exc}")
        try:
            specs = await asyncio.to_thread(load_repo_specs, checkout.path)
        except ConfigError as exc:
            return HeadSecrets(error=str(exc))
        finally:
            await self.workspace.remove(checkout)
        no_secrets = self.settings.fork_pull_requests == "no-secrets"
        # What the head asks for, over all its specs (each function gets only its spec's),
        # named by spec when there are several: api/deployToken.
        asked = RepoSpec(
            secrets=tuple(
                replace(ref, name=f"{spec.name}/{ref.name}") if spec.name else ref
                for spec in specs
                for ref in spec.secrets
            )
        )
        return head_secrets(asked, repo, self.settings, no_secrets=no_secrets)

    async def preview(self, event_id: int) -> MatchResult | None:
        """What firing a stored event again would match, without running anything.

        The stored event is matched against the catalog its last dispatch loaded (from the
        catalog cache, never introspected), with the changed files and secret names of that
        dispatch: no checkout, no ``dagger``. None when that cannot be told without running
        something (see :func:`~pocketci_tui.engine.dispatch.preview.preview`).
        """
        return await preview(
            event_id, settings=self.settings, store=self.store, catalog=self.catalog
        )

    def tail(self, run_id: str) -> list[str]:
        """Return the last lines of output of a running or recently finished run."""
        return self.live.tail(run_id)

    def tail_times(self, run_id: str) -> list[float]:
        """When each line :meth:`tail` returns arrived, in seconds since the epoch (call both
        in one go)."""
        return self.live.tail_times(run_id)

    def tail_end(self, run_id: str) -> int | None:
        """How many output lines the run published so far: the position right after the last
        line :meth:`tail` returns (call both in one go, with no await between). None for a run
        this engine does not know."""
        return self.live.tail_end(run_id)

    def counts(self) -> tuple[int, int]:
        """Return how many runs are (queued, running)."""
        return self.live.counts()

    def engine_loads(self) -> tuple[tuple[str, int, int, bool], ...]:
        """Each configured engine's (name, busy slots, capacity, up); empty without
        ``dagger.engines``."""
        return self.executor.engine_loads()

    def problems(self) -> list[Problem]:
        """Return what the user should know is wrong (dagger missing, secret store down...)."""
        return self.live.problems()

    def watch_state(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` whenever :meth:`counts` or :meth:`problems` may have changed
        without a notice saying so; return a function that stops the calls."""
        return self.live.watch(callback)

    # -- the dispatch workers -------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            request = await self.queue.get()
            try:
                await self.pipeline.dispatch(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("dispatch of event %s failed", request.event_id)
                await self.statuses.set(
                    request.event_id, EventStatus.ERROR, f"internal error: {exc}"
                )

    async def _stored(self, event_id: int) -> StoredEvent:
        stored = await self.store.get_event(event_id)
        if stored is None:
            raise EngineError(f"no stored event {event_id}")
        return stored


def dagger_missing(settings: Settings) -> Problem | None:
    """The problem of a ``dagger`` CLI that cannot be found, or None when it can."""
    if resolve_dagger_cli(settings.dagger.cli) is not None:
        return None
    where = settings.dagger.cli or "dagger on PATH"
    return Problem(
        key="dagger",
        short="dagger not found",
        detail=f"dagger CLI not found ({where}): no Dagger module can be loaded",
        fix="install dagger or set dagger.cli in the config",
    )


if TYPE_CHECKING:

    def _engine_is_a_client(engine: Engine) -> EngineClient:
        """mypy checks here that the engine offers everything the UI may ask of it."""
        return engine
