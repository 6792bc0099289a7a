"""Executing matched runs: ``dagger call`` in an engine's slot, live output, the outcome.

The dispatch pipeline hands each matched function to :meth:`RunExecutor.start`, which runs it as
a task of its own. The task waits for a slot of an engine of the pool
(:mod:`~pocketci_tui.engine.dispatch.engines`), runs the call on it through a
:class:`~pocketci_tui.engine.dagger.runner.Runner`, keeps the tail of its output in the live
state, publishes the run's state as it changes and stores how it ended. The last run of an event
removes the event's checkout and says how the event turned out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from pocketci_tui.config import EngineSettings, Settings
from pocketci_tui.engine.dagger import CallRequest, Catalog, DaggerEnv, Runner, resolve_dagger_cli
from pocketci_tui.engine.dagger.call_output import open_log
from pocketci_tui.engine.dagger.runner import CallOutcome
from pocketci_tui.engine.dispatch.engines import EnginePool
from pocketci_tui.engine.dispatch.health import EngineHealth
from pocketci_tui.engine.dispatch.live import LiveRun, LiveState
from pocketci_tui.engine.dispatch.notices import Publish, Spawn
from pocketci_tui.engine.git import Checkout, Workspace
from pocketci_tui.engine.proc import call_process
from pocketci_tui.model import (
    CallProcess,
    EventSettled,
    EventStatus,
    FunctionCall,
    Run,
    RunOutput,
    RunState,
    RunUpdated,
    StoredEvent,
    event_outcome,
    latest_attempts,
    utcnow,
)
from pocketci_tui.paths import AppPaths
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.stamps import now_ms, stamp_lines
from pocketci_tui.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingRuns:
    """How many runs of a dispatch have not ended yet; the last one removes the checkout.

    Shared by the works of every spec of one event, since they share the checkout.
    """

    count: int


@dataclass(slots=True)
class EventWork:
    """What the runs of one spec of a dispatched event share: its checkout and inputs.

    ``refused_secrets`` are the ones ``pocketci.yaml`` asked for without a grant (a run that
    declares one gets nothing and fails with the reason); ``no_secrets`` marks an event the
    fork policy gives no secret of any kind, the Dagger Cloud token included. ``pending``
    counts the runs not ended yet: the last one removes the checkout.
    """

    stored: StoredEvent
    checkout: Checkout
    module_dir: Path
    changes: list[str] | None
    secrets: dict[str, str]
    missing_secrets: dict[str, str]
    refused_secrets: dict[str, str] = field(default_factory=dict)
    no_secrets: bool = False
    extra_mask: tuple[str, ...] = ()
    pending: PendingRuns = field(default_factory=lambda: PendingRuns(0))


class RunExecutor:
    """Runs matched functions over the engine pool, each engine at most at its capacity.

    Without ``dagger.engines`` the pool is the single ``runner-host`` at the global
    ``concurrency``, with the same health rules; each run records the engine it got.

    Args:
        settings: Gives the configuration in force (it may be replaced on a reload).
        paths: Where logs and run folders live.
        store: Where runs are recorded.
        secrets: The secret store (the Dagger Cloud token).
        workspace: Removes an event's checkout once its last run ended.
        catalog: Knows which ``dagger`` CLI introspection used.
        live: Holds the live runs and the problems.
        publish: Reaches the subscribers.
        spawn: Runs background work.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        paths: AppPaths,
        store: Store,
        secrets: SecretStore,
        workspace: Workspace,
        catalog: Catalog,
        live: LiveState,
        publish: Publish,
        spawn: Spawn,
    ) -> None:
        self._settings = settings
        self._paths = paths
        self._store = store
        self._secrets = secrets
        self._workspace = workspace
        self._catalog = catalog
        self._live = live
        self._publish = publish
        self._spawn = spawn
        self.pool = EnginePool(settings().engine_pool(), on_change=live.changed)
        self.health = EngineHealth(self.pool, live, spawn, cli=self._dagger_cli)
        self._cloud_token: str | None = None
        self._stopping = False

    # -- what the engine asks -------------------------------------------------------------------

    def engine_loads(self) -> tuple[tuple[str, int, int, bool], ...]:
        """Each configured engine's (name, busy slots, capacity, up), in configuration order;
        empty without ``dagger.engines`` (a single engine's load is the run counts)."""
        if not self._settings().dagger.engines:
            return ()
        return tuple(
            (e.settings.name, e.busy, e.settings.concurrency, not e.down) for e in self.pool.loads()
        )

    def start(self, run: Run, call: FunctionCall, work: EventWork) -> LiveRun:
        """Make ``run`` live and start executing it as a task of its own."""
        live = self._live.add(run)
        live.task = asyncio.create_task(self._execute(live, call, work), name=f"run-{run.id}")
        return live

    def cancel(self, run_id: str) -> bool:
        """Cancel a live run; False when it is not active any more."""
        live = self._live.get(run_id)
        if live is None or live.task is None or live.task.done():
            return False
        live.task.cancel("cancelled by the user")
        return True

    def stop(self) -> list[asyncio.Task[None]]:
        """Cancel every live run as interrupted by the stop; return their tasks, to wait for."""
        self._stopping = True
        tasks = [live.task for live in self._live.runs() if live.task is not None]
        for task in tasks:
            task.cancel("shutdown")
        return tasks

    async def load_cloud_token(self) -> None:
        """Read the Dagger Cloud token (at start and before each dispatch, so a token set or
        fixed meanwhile is used at once), raising or clearing its problem."""
        name = self._settings().dagger.cloud_token
        if not name:
            return
        try:
            token = await self._secrets.get(name)
        except SecretStoreError as exc:
            self._live.raise_problem(
                Problem(
                    key="cloud-token",
                    short="cloud token unreadable",
                    detail=f"the Dagger Cloud token {name!r} cannot be read: {exc}",
                    fix="check the secret store (pocketci-tui check); builds run without traces",
                )
            )
            return
        self._cloud_token = token
        if token is None:
            self._live.raise_problem(
                Problem(
                    key="cloud-token",
                    short="cloud token missing",
                    detail=f"the Dagger Cloud token {name!r} is not in the secret store: "
                    "builds run without Dagger Cloud traces",
                    fix=f"run `pocketci-tui secrets set {name}`, or press s",
                )
            )
        else:
            self._live.clear_problems("cloud-token")

    # -- one run --------------------------------------------------------------------------------

    def _dagger_cli(self) -> str:
        """The CLI for ``dagger call``: the one introspection used (it may have downloaded it)."""
        configured = self._settings().dagger.cli
        return self._catalog.cli_used or resolve_dagger_cli(configured) or configured or "dagger"

    def _runner(
        self, engine: EngineSettings, extra_mask: Iterable[str], *, no_secrets: bool = False
    ) -> Runner:
        settings = self._settings()
        # A run the fork policy gives no secrets gets no Dagger Cloud token either; the token
        # and the secrets go only to the engine that runs the call.
        return Runner(
            DaggerEnv(
                cli=self._dagger_cli(),
                runner_host=engine.runner_host,
                cloud_token=None if no_secrets else self._cloud_token,
            ),
            work_dir=self._paths.work_dir / "runs",
            timeout=settings.timeout,
            extra_mask=extra_mask,
        )

    async def _execute(self, live: LiveRun, call: FunctionCall, work: EventWork) -> None:
        run = live.run
        try:
            unmet = _unmet_secrets(call, work)
            if unmet:
                await self._finish(live, RunState.FAILED, None, unmet)
                return
            again = False
            while True:
                async with self.pool.slot(work.stored.event.repository, first=again) as engine:
                    # A run that waited for its engine says so no more once it has one.
                    reason = "" if again else live.run.reason
                    live.run = replace(live.run, engine=engine.name, reason=reason)
                    if self._settings().dagger.engines:
                        host = engine.runner_host or "this machine"
                        self._note(live, f"pocketci-tui: engine {engine.name} ({host})")
                    if await self._run(live, call, work, engine):
                        break
                await self._requeue(live, engine.name)
                again = True
        except asyncio.CancelledError:
            state = RunState.INTERRUPTED if self._stopping else RunState.CANCELLED
            reason = "pocketci-tui stopped" if self._stopping else "cancelled by the user"
            with contextlib.suppress(Exception):
                await asyncio.shield(self._finish(live, state, None, reason))
        except Exception as exc:
            log.exception("run %s failed", run.id)
            await self._finish(live, RunState.FAILED, None, f"internal error: {exc}")
        finally:
            self._live.ended(live)
            work.pending.count -= 1
            if work.pending.count == 0:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._workspace.remove(work.checkout))
                if not self._stopping:
                    self._spawn(self._settle(run.event_id), f"settle-{run.event_id}")

    async def _settle(self, event_id: int) -> None:
        """Publish how an event turned out, once none of its runs is active any more.

        The outcome is that of the latest attempt of each function, so it is only said when
        the last active run of the event (of this dispatch or of a re-run) has finished.
        """
        if self._live.of_event(event_id):
            return
        try:
            runs = await self._store.list_runs(event_id)
        except Exception:
            log.exception("cannot read the runs of event %s", event_id)
            return
        if self._live.of_event(event_id):
            return
        outcome = event_outcome(EventStatus.DISPATCHED, runs)
        ran = tuple(r for r in latest_attempts(runs) if r.state is not RunState.SKIPPED)
        self._publish(EventSettled(event_id, outcome, ran))

    def _note(self, live: LiveRun, line: str) -> None:
        """Add a line of pocketci-tui's own to a run's log and live output (so the log's first
        line says which engine ran it, and a retry says why)."""
        ms = now_ms()
        with (
            contextlib.suppress(OSError),
            open_log(self._paths.logs_dir / live.run.log_path) as log_file,
        ):
            log_file.write(stamp_lines([line], ms))
        times = (ms / 1000,)
        self._publish(RunOutput(live.run.id, (line,), live.add_output([line], times), times))

    async def _requeue(self, live: LiveRun, engine: str) -> None:
        """Put a run whose engine could not be reached back in line: it never ran.

        In a pool of one it waits for that engine, and says so on the run (its reason), so a
        queued run does not look stuck for no reason.
        """
        log.info("run %s: engine %s unreachable, queued again", live.run.id, engine)
        loads = self.pool.loads()
        if len(loads) > 1:
            note, reason = f"engine {engine} cannot be reached; queued again", live.run.reason
        else:
            why = loads[0].down or "unreachable"
            note = f"engine {engine} cannot be reached; waiting for it to answer"
            reason = f"waiting for engine {engine}, which cannot be reached: {why}"
        queued = replace(live.run, state=RunState.QUEUED, started_at=None, engine="", reason=reason)
        live.run = queued
        self._note(live, f"pocketci-tui: {note}")
        await self._store.update_run(queued)
        self._publish(RunUpdated(queued))

    async def _run(
        self, live: LiveRun, call: FunctionCall, work: EventWork, engine: EngineSettings
    ) -> bool:
        """Run the call on ``engine`` and record how it ended; False when the engine could not
        be reached, so the call never ran and nothing was recorded."""
        run = live.run
        request = CallRequest(
            run_id=run.id,
            call=call,
            event=work.stored.event,
            module_dir=work.module_dir,
            checkout_dir=work.checkout.path,
            changes=work.changes,
            secrets={name: work.secrets[name] for name in call.secrets},
            log_path=self._paths.logs_dir / run.log_path,
            spec=run.spec,
        )

        calling: asyncio.Future[CallOutcome] | None = None

        def stop() -> None:
            if calling is not None:
                calling.cancel()

        guard = self.health.guard(engine, stop)

        def on_lines(run_id: str, lines: list[str], times: list[float]) -> None:
            end = live.add_output(lines, times)
            self._publish(RunOutput(run_id, tuple(lines), end, tuple(times)))
            guard.feed(lines)

        def on_started(run_id: str, pid: int) -> None:
            started = replace(live.run, state=RunState.RUNNING, started_at=utcnow())
            live.run = started
            self._publish(RunUpdated(started))
            # Its process group is recorded, so a start after a crash can stop it.
            self._spawn(self._save_started(started, call_process(run_id, pid)), f"save-{run_id}")

        runner = self._runner(engine, work.extra_mask, no_secrets=work.no_secrets)
        calling = asyncio.ensure_future(runner.run(request, on_lines, on_started))
        try:
            outcome = await calling
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if not guard.stopped or (this is not None and this.cancelling()):
                raise
            # Its CLI never reached the engine: the call was stopped before anything ran.
            return False
        finally:
            guard.close()
        if outcome.state is RunState.FAILED and await self.health.check_failure(
            engine, guard.watch
        ):
            return False
        await self._finish(
            live,
            outcome.state,
            outcome.exit_code,
            outcome.reason,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
        )
        return True

    async def _save_started(self, run: Run, call: CallProcess | None) -> None:
        await self._store.update_run(run)
        if call is not None:
            await self._store.record_call(call)

    async def _finish(
        self,
        live: LiveRun,
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
        await self._store.update_run(done)
        self._publish(RunUpdated(done))


def _unmet_secrets(call: FunctionCall, work: EventWork) -> str:
    """Why a run cannot get a secret it declares (refused, or missing), or empty."""
    refused = [f"{s}: {work.refused_secrets[s]}" for s in call.secrets if s in work.refused_secrets]
    if refused:
        return "refused secret " + "; ".join(refused)
    missing = [f"{s}: {work.missing_secrets[s]}" for s in call.secrets if s not in work.secrets]
    if missing:
        return "missing secret " + "; ".join(missing)
    return ""
