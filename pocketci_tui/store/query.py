"""The events filter (:mod:`pocketci_tui.eventquery`) as SQL over the ``events`` table.

An event's state is its status until it is dispatched, then the outcome of the latest attempt
of each function (:func:`pocketci_tui.model.event_outcome`): the first state of
:data:`~pocketci_tui.model.OUTCOME_ORDER` that a latest attempt has, skipped attempts left out.
The SQL below says the same, so a page filtered by the store shows what the UI would.
"""

from __future__ import annotations

from typing import Any

from pocketci_tui.eventquery import EventQuery, glob_pattern
from pocketci_tui.model import NOTHING_RAN, OUTCOME_ORDER, EventStatus

_LATEST = (
    "SELECT 1 FROM runs r WHERE r.event_id = events.id AND r.state = ? AND NOT EXISTS ("
    "SELECT 1 FROM runs n WHERE n.event_id = r.event_id AND n.function = r.function "
    "AND n.spec = r.spec "
    "AND (n.attempt > r.attempt OR (n.attempt = r.attempt AND n.rowid > r.rowid)))"
)
"""A latest attempt of the event's functions is in a given state (a later attempt, or a later
row of the same attempt, replaces a run, as in :func:`pocketci_tui.model.latest_attempts`)."""

_TEXT_COLUMNS = ("repository", "filter", "event_type", "sha", "title", "author")
"""The columns free text is looked for in."""


def _outcome_clause(state: str) -> tuple[str, list[Any]]:
    """An event dispatched whose outcome is ``state``."""
    order = [str(s) for s in OUTCOME_ORDER]
    dispatched = "events.status = ?"
    params: list[Any] = [EventStatus.DISPATCHED.value]
    if state == NOTHING_RAN:
        before = order
        clause = dispatched
    else:
        before = order[: order.index(state)]
        clause = f"{dispatched} AND EXISTS ({_LATEST})"
        params.append(state)
    for earlier in before:
        clause += f" AND NOT EXISTS ({_LATEST})"
        params.append(earlier)
    return f"({clause})", params


def _state_clause(states: tuple[str, ...]) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    outcomes = {str(s) for s in OUTCOME_ORDER} | {NOTHING_RAN}
    statuses = [s for s in states if s not in outcomes]
    if statuses:
        parts.append(f"events.status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    for state in states:
        if state in outcomes:
            clause, more = _outcome_clause(state)
            parts.append(clause)
            params.extend(more)
    return "(" + " OR ".join(parts) + ")", params


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where(query: EventQuery) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (joined with AND) and their parameters for a query.

    Args:
        query: The parsed filter.

    Returns:
        Conditions over ``events`` and their parameters, in order; a query with problems (an
        unknown state) keeps nothing, as the UI's :meth:`EventQuery.matches` does.
    """
    if query.problems:
        return ["0"], []
    conditions: list[str] = []
    params: list[Any] = []
    if query.text:
        cols = " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _TEXT_COLUMNS)
        conditions.append(f"({cols})")
        params.extend([_like(query.text)] * len(_TEXT_COLUMNS))
    if query.kinds:
        conditions.append(f"lower(event_type) IN ({', '.join('?' * len(query.kinds))})")
        params.extend(query.kinds)
    if query.repos:
        conditions.append("(" + " OR ".join("lower(repository) GLOB ?" for _ in query.repos) + ")")
        params.extend(glob_pattern(p) for p in query.repos)
    if query.states:
        clause, more = _state_clause(query.states)
        conditions.append(clause)
        params.extend(more)
    return conditions, params
