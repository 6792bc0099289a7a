"""Executing matched runs: ``dagger call`` in a concurrency slot, live output, the outcome.

Each matched function runs as a task of its own (started by the dispatch pipeline). It waits for
one of the ``concurrency`` slots, runs the call through a
:class:`~pocketci_tui.engine.dagger.runner.Runner`, keeps the tail of its output for the UI,
publishes the run's state as it changes and stores how it ended. The last run of an event removes
the event's checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from pocketci_tui.engine.dagger import CallRequest, DaggerEnv, Runner
from pocketci_tui.engine.dispatch.engine_base import EngineBase, _EventWork, _Live
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
    event_outcome,
    latest_attempts,
    utcnow,
)

log = logging.getLogger(__name__)


class RunExecution(EngineBase):
    """The part of the engine that executes runs (see :class:`EngineBase` for its state)."""

    def _runner(self, extra_mask: Iterable[str], *, no_secrets: bool = False) -> Runner:
        # A run the fork policy gives no secrets gets no Dagger Cloud token either.
        return Runner(
            DaggerEnv(
                cli=self._dagger_cli(),
                runner_host=self.settings.dagger.runner_host,
                cloud_token=None if no_secrets else self._cloud_token,
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
            refused = [
                f"{s}: {work.refused_secrets[s]}" for s in call.secrets if s in work.refused_secrets
            ]
            if refused:
                await self._finish(
                    live, RunState.FAILED, None, "refused secret " + "; ".join(refused)
                )
                return
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
            self._recent_ends[run.id] = live.published
            while len(self._recent_tails) > 200:
                oldest = next(iter(self._recent_tails))
                self._recent_tails.pop(oldest)
                self._recent_ends.pop(oldest, None)
            work.pending -= 1
            if work.pending == 0:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.workspace.remove(work.checkout))
                if not self._stopping:
                    self._spawn(self._settle(run.event_id), f"settle-{run.event_id}")

    async def _settle(self, event_id: int) -> None:
        """Publish how an event turned out, once none of its runs is active any more.

        The outcome is that of the latest attempt of each function, so it is only said when
        the last active run of the event (of this dispatch or of a re-run) has finished.
        """
        if any(live.run.event_id == event_id for live in self._live.values()):
            return
        try:
            runs = await self.store.list_runs(event_id)
        except Exception:
            log.exception("cannot read the runs of event %s", event_id)
            return
        if any(live.run.event_id == event_id for live in self._live.values()):
            return
        outcome = event_outcome(EventStatus.DISPATCHED, runs)
        ran = tuple(r for r in latest_attempts(runs) if r.state is not RunState.SKIPPED)
        self._publish(EventSettled(event_id, outcome, ran))

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
            live.published += len(lines)
            self._publish(RunOutput(run_id, tuple(lines), live.published))

        def on_started(run_id: str, pid: int) -> None:
            started = replace(live.run, state=RunState.RUNNING, started_at=utcnow())
            live.run = started
            self._publish(RunUpdated(started))
            # Its process group is recorded, so a start after a crash can stop it.
            self._spawn(self._save_started(started, call_process(run_id, pid)), f"save-{run_id}")

        runner = self._runner(extra_mask, no_secrets=work.no_secrets)
        outcome = await runner.run(request, on_lines, on_started)
        await self._finish(
            live,
            outcome.state,
            outcome.exit_code,
            outcome.reason,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
        )

    async def _save_started(self, run: Run, call: CallProcess | None) -> None:
        await self.store.update_run(run)
        if call is not None:
            await self.store.record_call(call)

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
