"""Picking up after the last stop: calls a crash left running, and work left undone.

At start, before anything is dispatched, the engine stops the ``dagger call`` process groups a
killed predecessor left running (:func:`stop_leftover_calls`), marks the runs left running as
interrupted, and queues again what was received but not dispatched, or queued but never run
(:func:`resume`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from pocketci_tui.engine.dispatch.notices import Publish
from pocketci_tui.engine.dispatch.queue import DispatchRequest
from pocketci_tui.engine.proc import stop_leftover
from pocketci_tui.model import EventStatus, Run, RunState, RunUpdated, utcnow
from pocketci_tui.store import Store

log = logging.getLogger(__name__)

HELD = "held:"
"""How the detail of an event held for an unreachable secret store starts: such an event is
dispatched again after a restart, unlike a fork pull request that waits for a person."""

LEFTOVER_GRACE = 5.0
"""Seconds a call left running by a killed predecessor gets between SIGTERM and SIGKILL."""


async def stop_leftover_calls(store: Store) -> dict[str, str]:
    """Stop the ``dagger call`` process groups a killed predecessor left running.

    Runs before recovery, once this process owns the data folder. Each group was recorded as
    its call started; only a group whose leader's start time matches is signalled, so a reused
    pid is left alone.

    Returns:
        The reason to record for each run whose call was stopped, by run id.
    """
    calls = await store.recorded_calls()
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


async def resume(store: Store, queue: Callable[[DispatchRequest], None], publish: Publish) -> None:
    """Queue again the events and runs the last stop left undone.

    Events received but not dispatched, and events held for the secret store (their detail
    starts with :data:`HELD`), are dispatched from the start; a fork pull request waiting for a
    person stays waiting. The runs still queued of the other events are marked interrupted and
    their functions queued as fresh runs, so the history stays honest about what happened.
    """
    resumed: set[int] = set()
    for stored in await store.events_with_status(
        EventStatus.RECEIVED, EventStatus.DISPATCHING, EventStatus.WAITING
    ):
        assert stored.event.id is not None
        if stored.status is EventStatus.WAITING and not stored.detail.startswith(HELD):
            continue  # a fork pull request waits for a person, not for a restart
        resumed.add(stored.event.id)
        queue(DispatchRequest(stored.event.id))
    queued = await store.runs_with_state(RunState.QUEUED)
    by_event: dict[int, list[Run]] = {}
    for run in queued:
        by_event.setdefault(run.event_id, []).append(run)
    for event_id, runs in by_event.items():
        if event_id in resumed:
            continue
        for run in runs:
            done = replace(
                run,
                state=RunState.INTERRUPTED,
                reason="pocketci-tui stopped before it started; queued again",
                finished_at=utcnow(),
            )
            await store.update_run(done)
            publish(RunUpdated(done))
        # Each spec's functions again, and only them (two specs may share a function name).
        by_spec: dict[str, set[str]] = {}
        for run in runs:
            by_spec.setdefault(run.spec, set()).add(run.function)
        for spec, functions in by_spec.items():
            queue(DispatchRequest(event_id, frozenset(functions), spec=spec or None))
