"""The dispatcher: from a stored event to matched Dagger functions running live.

The :class:`Engine` is the one object the UI and ``serve`` talk to. Intake hands it stored events
through :meth:`Engine.submit` (it only wakes a queue); dispatch workers take events from that
queue, check the repository out, read its spec, load the module's catalog, match functions and
start one task per matched function. Everything that happens is published to subscribers as
plain notices (:mod:`pocketci_tui.model`); the engine never calls the UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pocketci_tui.config import (
    ConfigError,
    RepoConfig,
    RepoSpec,
    Settings,
    load_repo_spec,
    resolve_module_dir,
)
from pocketci_tui.engine.catalog import Catalog, CatalogError, module_content_key
from pocketci_tui.engine.catalog import resolve_dagger_cli as _resolve_cli
from pocketci_tui.engine.matching import match, paths_allow
from pocketci_tui.engine.runner import CallRequest, DaggerEnv, Runner
from pocketci_tui.engine.workspace import (
    Checkout,
    GitError,
    Workspace,
    default_clone_url,
    validate_ref,
    validate_sha,
)
from pocketci_tui.model import (
    Decision,
    EventMatched,
    EventStatus,
    EventStored,
    EventUpdated,
    FunctionCall,
    MatchResult,
    Notice,
    Run,
    RunOutput,
    RunState,
    RunUpdated,
    StoredEvent,
    utcnow,
)
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Store

log = logging.getLogger(__name__)

TAIL_LINES = 2000
"""Lines of output kept in memory per run for the UI; the full log is on disk."""
DISPATCH_WORKERS = 4
"""Events checked out and matched at once (runs are limited by ``concurrency``)."""
SHUTDOWN_SECONDS = 15.0
"""How long shutdown waits for dispatches and runs to stop (their process trees are killed)."""
SECRET_RETRY_SECONDS = 30.0
"""How long an event that needs an unreachable secret store waits before trying again."""


HELD = "held:"
"""How the detail of an event held for an unreachable secret store starts."""


class EngineError(Exception):
    """An engine action cannot be done; the message says why."""


Subscriber = Callable[[Notice], None]


@dataclass(slots=True)
class _EventWork:
    """What the runs of one dispatched event share: its checkout and inputs."""

    stored: StoredEvent
    checkout: Checkout
    module_dir: Path
    changes: list[str] | None
    secrets: dict[str, str]
    missing_secrets: dict[str, str]
    pending: int = 0


@dataclass(slots=True)
class _Live:
    """A run the engine is executing (or about to)."""

    run: Run
    task: asyncio.Task[None] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


class Engine:
    """Dispatches stored events to Dagger functions and reports everything that happens.

    Args:
        settings: The user's configuration.
        paths: Where data, logs and work folders live.
        store: The durable store of events and runs.
        secrets: The secret store (clone tokens, ``from-keyring`` secrets, Dagger Cloud token).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        paths: AppPaths,
        store: Store,
        secrets: SecretStore,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.store = store
        self.secrets = secrets
        self._subscribers: list[Subscriber] = []
        self._queue: asyncio.Queue[tuple[int, frozenset[str] | None, str | None]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._run_slots = asyncio.Semaphore(settings.concurrency)
        self._live: dict[str, _Live] = {}
        self._recent_tails: dict[str, deque[str]] = {}
        self._problems: dict[str, str] = {}
        self._cloud_token: str | None = None
        self._started = False
        self._stopping = False
        self.workspace = Workspace(paths.work_dir / "git", timeout=600.0)
        self.catalog = Catalog(
            paths.cache_dir / "catalog",
            dagger_cli=settings.dagger.cli,
            runner_host=settings.dagger.runner_host,
            log_path=paths.app_log,
        )

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every notice from now on; return a function that stops it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, notice: Notice) -> None:
        for callback in list(self._subscribers):
            try:
                callback(notice)
            except Exception:
                log.exception("a subscriber failed on %s", type(notice).__name__)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from the last stop and start the dispatch workers.

        Runs left running by a crash are marked interrupted; events that were received but not
        dispatched, and runs still queued, are dispatched again.
        """
        if self._started:
            return
        self._started = True
        for directory in (self.paths.logs_dir, self.paths.work_dir, self.paths.cache_dir):
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        self._check_dagger()
        await self._load_cloud_token()
        for run in await self.store.mark_interrupted():
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
            self._queue.put_nowait((stored.event.id, None, None))
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
            self._queue.put_nowait((event_id, frozenset(functions), None))

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
        self._queue.put_nowait((stored.event.id, None, None))

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again: every function it matches runs as a new run."""
        stored = await self._stored(event_id)
        if stored.event.deleted:
            raise EngineError("a branch deletion has nothing to run")
        self._queue.put_nowait((event_id, None, None))

    async def rerun(self, run_id: str) -> None:
        """Run one function of an event again, as a new run linked to ``run_id``."""
        run = await self.store.get_run(run_id)
        if run is None:
            raise EngineError(f"no run {run_id}")
        if not run.function:
            raise EngineError("this entry is not a function run")
        self._queue.put_nowait((run.event_id, frozenset({run.function}), run.id))

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

    async def approve(self, event_id: int) -> None:
        """Approve a waiting fork pull request at its current head commit, and dispatch it."""
        stored = await self._stored(event_id)
        if not stored.event.is_fork:
            raise EngineError("only pull requests from forks need approval")
        await self.store.set_approved_sha(event_id, stored.event.sha)
        self._queue.put_nowait((event_id, None, None))

    def tail(self, run_id: str) -> list[str]:
        """Return the last lines of output of a running or recently finished run."""
        live = self._live.get(run_id)
        if live is not None:
            return list(live.tail)
        return list(self._recent_tails.get(run_id, ()))

    def counts(self) -> tuple[int, int]:
        """Return how many runs are (queued, running)."""
        queued = sum(1 for live in self._live.values() if live.run.state is RunState.QUEUED)
        running = sum(1 for live in self._live.values() if live.run.state is RunState.RUNNING)
        return queued, running

    def problems(self) -> list[str]:
        """Return what the user should know is wrong (dagger missing, secret store down...)."""
        return list(self._problems.values())

    # -- dispatch -------------------------------------------------------------------------------

    async def _stored(self, event_id: int) -> StoredEvent:
        stored = await self.store.get_event(event_id)
        if stored is None:
            raise EngineError(f"no stored event {event_id}")
        return stored

    async def _worker(self) -> None:
        while True:
            event_id, only, parent = await self._queue.get()
            try:
                await self._dispatch(event_id, only, parent)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("dispatch of event %s failed", event_id)
                await self._set_status(event_id, EventStatus.ERROR, f"internal error: {exc}")

    def _progress(self, event_id: int, detail: str) -> None:
        """Publish a step of a dispatch without writing it.

        Steps are transient: a restart dispatches a RECEIVED event again from the start, so
        only outcomes are committed, and the first ``dagger call`` is not held up by a commit
        per step.
        """
        self._publish(EventUpdated(event_id, EventStatus.DISPATCHING, detail))

    async def _set_status(self, event_id: int, status: EventStatus, detail: str = "") -> None:
        await self.store.set_event_status(event_id, status, detail)
        self._publish(EventUpdated(event_id, status, detail))

    async def _dispatch(
        self, event_id: int, only: frozenset[str] | None, parent_id: str | None
    ) -> None:
        stored = await self.store.get_event(event_id)
        if stored is None:
            return
        event = stored.event
        repo = self.settings.repo_for(event.vendor, event.repository)
        if repo is None:
            await self._set_status(
                event_id, EventStatus.IGNORED, f"{event.repository} is not in the config"
            )
            return
        if event.deleted:
            await self._set_status(event_id, EventStatus.IGNORED, "deleted: nothing to build")
            return
        fork_mode = self.settings.fork_pull_requests
        if event.is_fork:
            if fork_mode == "skip":
                await self._set_status(
                    event_id,
                    EventStatus.SKIPPED,
                    "fork pull request: not built (fork-pull-requests: skip)",
                )
                return
            if fork_mode == "approve" and stored.approved_sha != event.sha:
                why = "fork pull request: waiting for approval of " + event.sha[:12]
                if stored.approved_sha:
                    why += f" (approved {stored.approved_sha[:12]}, a newer commit came)"
                await self._set_status(event_id, EventStatus.WAITING, why)
                return
        try:
            if event.ref:
                validate_ref(event.ref)
            validate_sha(event.sha)
        except ValueError as exc:
            await self._set_status(event_id, EventStatus.ERROR, f"refused: {exc}")
            return

        self._progress(event_id, "checking out")
        token = None
        if repo.token:
            try:
                token = await self.secrets.get(repo.token)
            except SecretStoreError as exc:
                await self._hold(event_id, only, parent_id, exc)
                return
            if token is None:
                await self._set_status(
                    event_id,
                    EventStatus.ERROR,
                    f"the clone token {repo.token!r} is not in the secret store; "
                    f"run `pocketci-tui secrets set {repo.token}`",
                )
                return
        try:
            checkout = await self.workspace.checkout(
                _repo_key(repo, event.repository), _clone_url(repo, event.repository), token, event
            )
        except (GitError, ValueError) as exc:
            await self._set_status(event_id, EventStatus.ERROR, f"checkout failed: {exc}")
            return
        keep = False
        try:
            keep = await self._match_and_start(stored, repo, checkout, only, parent_id, token)
        finally:
            if not keep:
                await self.workspace.remove(checkout)

    async def _hold(
        self, event_id: int, only: frozenset[str] | None, parent_id: str | None, exc: Exception
    ) -> None:
        """Hold an event whose secrets cannot be read, and try it again later."""
        self._problems["secrets"] = f"secret store: {exc}"
        await self._set_status(
            event_id,
            EventStatus.WAITING,
            f"{HELD} the secret store did not answer ({exc}); trying again in "
            f"{SECRET_RETRY_SECONDS:.0f}s",
        )

        async def retry() -> None:
            await asyncio.sleep(SECRET_RETRY_SECONDS)
            self._queue.put_nowait((event_id, only, parent_id))

        self._spawn(retry(), f"retry-{event_id}")

    async def _match_and_start(
        self,
        stored: StoredEvent,
        repo: RepoConfig,
        checkout: Checkout,
        only: frozenset[str] | None,
        parent_id: str | None,
        token: str | None,
    ) -> bool:
        """Match the checkout's module against the event and start the runs.

        Returns:
            True when runs were started (they remove the checkout when the last one ends).
        """
        event = stored.event
        event_id = stored.event.id
        assert event_id is not None
        try:
            spec = await asyncio.to_thread(load_repo_spec, checkout.path)
            module_dir = await asyncio.to_thread(
                resolve_module_dir, checkout.path, spec.module_path
            )
        except ConfigError as exc:
            await self._set_status(event_id, EventStatus.ERROR, str(exc))
            return False
        changes = await self.workspace.changed_files(checkout, event)
        try:
            allowed = not spec.paths or paths_allow(spec.paths, changes)
        except ValueError as exc:
            await self._set_status(event_id, EventStatus.ERROR, f"pocketci.yaml: paths: {exc}")
            return False
        if not allowed:
            await self._set_status(
                event_id,
                EventStatus.SKIPPED,
                "no changed file matches the paths of pocketci.yaml",
            )
            return False
        self._progress(event_id, "loading the Dagger module")
        try:
            key = await module_content_key(checkout.path, module_dir)
            catalog = await self.catalog.load(module_dir, key)
        except CatalogError as exc:
            self._problems["dagger"] = f"dagger: {exc}"
            await self._set_status(event_id, EventStatus.ERROR, f"module: {exc}")
            return False
        self._problems.pop("dagger", None)
        no_secrets = event.is_fork and self.settings.fork_pull_requests == "no-secrets"
        secret_names = () if no_secrets else spec.secret_names
        if changes is not None and len(changes) > 500:
            # Thousands of changed files against many patterns take a while: off the loop.
            result = await asyncio.to_thread(match, catalog, event, changes, secret_names)
        else:
            result = match(catalog, event, changes, secret_names)
        if only is not None:
            result = MatchResult(
                result.tier, tuple(d for d in result.decisions if d.function in only)
            )
            if not result.calls:
                why = "; ".join(f"{d.function}: {d.reason}" for d in result.decisions)
                await self._set_status(
                    event_id,
                    EventStatus.ERROR,
                    "re-run refused: the function no longer matches" + (f" ({why})" if why else ""),
                )
                return False
        self._publish(EventMatched(event_id, result))

        attempt = await self.store.max_attempt(event_id) + 1
        runs, calls = self._new_runs(event_id, result.decisions, attempt, parent_id)
        await self.store.add_runs(runs)
        for run in runs:
            self._publish(RunUpdated(run))
        if not calls:
            if result.decisions:
                detail = "no function matched (see the reasons of each)"
            else:
                detail = f"no function of the module {catalog.module_name!r} is a trigger"
            await self._set_status(event_id, EventStatus.SKIPPED, detail)
            return False

        values, missing = await self._secret_values(spec, no_secrets)
        work = _EventWork(
            stored=stored,
            checkout=checkout,
            module_dir=module_dir,
            changes=changes,
            secrets=values,
            missing_secrets=missing,
            pending=len(calls),
        )
        extra_mask = [token] if token else []
        await self._set_status(
            event_id, EventStatus.DISPATCHED, f"{len(calls)} of {len(runs)} functions matched"
        )
        for run, call in calls:
            live = _Live(run)
            self._live[run.id] = live
            live.task = asyncio.create_task(
                self._execute(live, call, work, extra_mask), name=f"run-{run.id}"
            )
        return True

    def _new_runs(
        self,
        event_id: int,
        decisions: Sequence[Decision],
        attempt: int,
        parent_id: str | None,
    ) -> tuple[list[Run], list[tuple[Run, FunctionCall]]]:
        now = utcnow()
        runs: list[Run] = []
        calls: list[tuple[Run, FunctionCall]] = []
        for decision in decisions:
            run_id = uuid.uuid4().hex
            args: tuple[tuple[str, str], ...] = ()
            if decision.call is not None:
                args = decision.call.args + tuple(("secret", s) for s in decision.call.secrets)
            run = Run(
                id=run_id,
                event_id=event_id,
                function=decision.function,
                state=RunState.QUEUED if decision.matched else RunState.SKIPPED,
                attempt=attempt,
                args=args,
                reason="" if decision.matched else decision.reason,
                created_at=now,
                log_path=f"{event_id}/{run_id}.log" if decision.matched else "",
                parent_id=parent_id,
            )
            runs.append(run)
            if decision.matched and decision.call is not None:
                calls.append((run, decision.call))
        return runs, calls

    async def _secret_values(
        self, spec: RepoSpec, no_secrets: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Read the spec's secrets: values by argument name, and why the missing ones are."""
        values: dict[str, str] = {}
        missing: dict[str, str] = {}
        if no_secrets:
            return values, missing
        for ref in spec.secrets:
            if ref.from_env:
                value = os.environ.get(ref.from_env)
                if value:
                    values[ref.name] = value
                else:
                    missing[ref.name] = f"environment variable {ref.from_env} is not set"
                continue
            try:
                secret = await self.secrets.get(ref.from_keyring)
            except SecretStoreError as exc:
                missing[ref.name] = f"secret store: {exc}"
                continue
            if secret:
                values[ref.name] = secret
            else:
                missing[ref.name] = (
                    f"{ref.from_keyring!r} is not in the secret store; "
                    f"run `pocketci-tui secrets set {ref.from_keyring}`"
                )
        return values, missing

    # -- running --------------------------------------------------------------------------------

    def _runner(self, extra_mask: Iterable[str]) -> Runner:
        return Runner(
            DaggerEnv(
                cli=self._dagger_cli(),
                runner_host=self.settings.dagger.runner_host,
                cloud_token=self._cloud_token,
            ),
            work_dir=self.paths.work_dir / "runs",
            timeout=self.settings.timeout,
            extra_mask=extra_mask,
        )

    async def _execute(
        self, live: _Live, call: FunctionCall, work: _EventWork, extra_mask: list[str]
    ) -> None:
        run = live.run
        try:
            missing = [
                f"{s}: {work.missing_secrets[s]}" for s in call.secrets if s not in work.secrets
            ]
            if missing:
                await self._finish(
                    live, RunState.FAILED, None, "missing secret " + "; ".join(missing)
                )
                return
            async with self._run_slots:
                await self._run(live, call, work, extra_mask)
        except asyncio.CancelledError:
            state = RunState.INTERRUPTED if self._stopping else RunState.CANCELLED
            reason = "pocketci-tui stopped" if self._stopping else "cancelled by the user"
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finish(live, state, None, reason))
        except Exception as exc:
            log.exception("run %s failed", run.id)
            await self._finish(live, RunState.FAILED, None, f"internal error: {exc}")
        finally:
            self._live.pop(run.id, None)
            self._recent_tails[run.id] = live.tail
            while len(self._recent_tails) > 200:
                self._recent_tails.pop(next(iter(self._recent_tails)))
            work.pending -= 1
            if work.pending == 0:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.workspace.remove(work.checkout))

    async def _run(
        self, live: _Live, call: FunctionCall, work: _EventWork, extra_mask: list[str]
    ) -> None:
        run = live.run
        request = CallRequest(
            run_id=run.id,
            call=call,
            event=work.stored.event,
            module_dir=work.module_dir,
            checkout_dir=work.checkout.path,
            changes=work.changes,
            secrets={name: work.secrets[name] for name in call.secrets},
            log_path=self.paths.logs_dir / run.log_path,
        )

        def on_lines(run_id: str, lines: list[str]) -> None:
            live.tail.extend(lines)
            self._publish(RunOutput(run_id, tuple(lines)))

        def on_started(run_id: str, pid: int) -> None:
            started = replace(live.run, state=RunState.RUNNING, started_at=utcnow())
            live.run = started
            self._publish(RunUpdated(started))
            self._spawn(self.store.update_run(started), f"save-{run_id}")

        outcome = await self._runner(extra_mask).run(request, on_lines, on_started)
        await self._finish(
            live,
            outcome.state,
            outcome.exit_code,
            outcome.reason,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
        )

    async def _finish(
        self,
        live: _Live,
        state: RunState,
        exit_code: int | None,
        reason: str,
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        done = replace(
            live.run,
            state=state,
            exit_code=exit_code,
            reason=reason,
            started_at=started_at or live.run.started_at,
            finished_at=finished_at or utcnow(),
        )
        live.run = done
        await self.store.update_run(done)
        self._publish(RunUpdated(done))

    # -- helpers --------------------------------------------------------------------------------

    def _dagger_cli(self) -> str:
        """The CLI for ``dagger call``: the one introspection used (it may have downloaded it)."""
        return (
            self.catalog.cli_used
            or _resolve_cli(self.settings.dagger.cli)
            or self.settings.dagger.cli
            or "dagger"
        )

    def _check_dagger(self) -> None:
        if _resolve_cli(self.settings.dagger.cli) is None:
            where = self.settings.dagger.cli or "dagger on PATH"
            self._problems["dagger"] = (
                f"dagger CLI not found ({where}); install it or set dagger.cli in the config"
            )

    async def _load_cloud_token(self) -> None:
        name = self.settings.dagger.cloud_token
        if not name:
            return
        try:
            self._cloud_token = await self.secrets.get(name)
        except SecretStoreError as exc:
            self._problems["cloud-token"] = f"Dagger Cloud token unavailable: {exc}"
            return
        if self._cloud_token is None:
            self._problems["cloud-token"] = (
                f"Dagger Cloud token {name!r} is not in the secret store"
            )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _repo_key(repo: RepoConfig, repository: str) -> str:
    """The workspace key of a repository: its own name (config globs can cover several)."""
    return f"{repo.vendor}/{repository.lower()}"


def _clone_url(repo: RepoConfig, repository: str) -> str:
    if repo.clone_url:
        return repo.clone_url
    return default_clone_url(repo.vendor, repository)
