"""The run records a dispatch stores: one per function, matched or not, and refused re-runs.

Pure functions of what matching decided, so the dispatch pipeline only has to store and start
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from pocketci_tui.engine.match import MAX_RUNS_PER_EVENT, RUN_CAP_REASON
from pocketci_tui.model import (
    Decision,
    EventStatus,
    FunctionCall,
    MatchResult,
    Run,
    RunState,
    StoredEvent,
    utcnow,
)

NO_SUCH_FUNCTION = "the module no longer has this function"
"""Why a re-run of a function the module lost is refused."""


def cap_runs(results: Sequence[MatchResult]) -> list[MatchResult]:
    """Hold the runs of all the specs of one event to :data:`MAX_RUNS_PER_EVENT` together.

    Each spec's match is capped on its own; a file listing several specs would otherwise run
    that many per spec. Past the cap, matched functions are skipped with the reason, the first
    ones in the order of the specs having run.
    """
    matched = 0
    out: list[MatchResult] = []
    for result in results:
        decisions: list[Decision] = []
        for d in result.decisions:
            if d.matched and d.call is not None:
                matched += 1
                if matched > MAX_RUNS_PER_EVENT:
                    d = replace(
                        d,
                        matched=False,
                        call=None,
                        reason=f"{RUN_CAP_REASON} {MAX_RUNS_PER_EVENT} pocketci-tui runs per "
                        "event (the first ones in the order of the pocketci.yaml specs ran)",
                    )
            decisions.append(d)
        out.append(replace(result, decisions=tuple(decisions)))
    return out


def new_runs(
    event_id: int,
    decisions: Sequence[Decision],
    attempt: int,
    parent_id: str | None,
    spec: str = "",
) -> tuple[list[Run], list[tuple[Run, FunctionCall]]]:
    """One run per decision: queued when it matched, skipped with its reason when not.

    ``spec`` labels the runs with the ``pocketci.yaml`` spec the functions belong to.

    Returns:
        Every run, and the matched ones with the call each makes.
    """
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
            spec=spec,
        )
        runs.append(run)
        if decision.matched and decision.call is not None:
            calls.append((run, decision.call))
    return runs, calls


def refused_reruns(
    event_id: int,
    only: frozenset[str],
    decisions: Sequence[Decision],
    attempt: int,
    parent_id: str | None,
) -> list[Run]:
    """Skipped runs for a re-run of functions that no longer match, each with the reason."""
    reasons = {d.function: d.reason for d in decisions}
    now = utcnow()
    return [
        Run(
            id=uuid.uuid4().hex,
            event_id=event_id,
            function=function,
            state=RunState.SKIPPED,
            attempt=attempt,
            reason="re-run refused: " + reasons.get(function, NO_SUCH_FUNCTION),
            created_at=now,
            finished_at=now,
            parent_id=parent_id,
        )
        for function in sorted(only)
    ]


def dispatched_detail(stored: StoredEvent, only: frozenset[str] | None, matched: str) -> str:
    """The detail of a dispatched event: what its dispatch matched.

    A re-run of some functions keeps the detail of the dispatch it re-runs ("3 of 5 functions
    matched"), so the match result is never replaced by the re-run's own, smaller one.

    Args:
        stored: The event as it was when this dispatch began.
        only: The functions re-run, or None for a full dispatch.
        matched: What this dispatch matched ("1 of 1 functions matched").
    """
    if only is None:
        return matched
    if stored.status is EventStatus.DISPATCHED and stored.detail:
        return stored.detail
    return "re-run of " + ", ".join(sorted(only))


def matched_detail(matched: int, total: int, result: MatchResult) -> str:
    """How many functions matched, and how many more the per-event cap left out."""
    detail = f"{matched} of {total} functions matched"
    capped = sum(1 for d in result.decisions if d.reason.startswith(RUN_CAP_REASON))
    if capped:
        detail += (
            f"; {capped} more matched but were not run: at most {MAX_RUNS_PER_EVENT} runs per event"
        )
    return detail
