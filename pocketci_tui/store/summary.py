"""Reads that sum the store up: the run queue's order and how each repository stands.

Each function here runs on a reader connection (``Store._read``) and returns plain models.
"""

from __future__ import annotations

import sqlite3

from pocketci_tui.model import (
    FINAL_OUTCOMES,
    EventStatus,
    RepoSummary,
    Run,
    event_outcome,
)
from pocketci_tui.store.rows import _EVENT_COLUMNS, _RUN_COLUMNS, _event_from_row, _run_from_row

MAX_REPOSITORIES = 100
"""Repositories summed up at most (the most recently active first)."""
SCAN_EVENTS = 50
"""Newest dispatched events of a repository looked at for the last build that ended."""


def queued_run_ids(conn: sqlite3.Connection) -> list[str]:
    """The queued runs, first to start first.

    Runs wait for a slot in the order they were queued (the engine's slots are first come,
    first served), which is the order they were created.
    """
    rows = conn.execute("SELECT id FROM runs WHERE state = 'queued' ORDER BY created_at, rowid")
    return [str(row[0]) for row in rows]


def _runs(conn: sqlite3.Connection, event_id: int) -> list[Run]:
    rows = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE event_id = ? ORDER BY rowid", (event_id,)
    )
    return [_run_from_row(row) for row in rows]


def _summary(conn: sqlite3.Connection, latest_id: int) -> RepoSummary | None:
    row = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (latest_id,)).fetchone()
    if row is None:
        return None
    latest = _event_from_row(row)
    state = event_outcome(latest.status, _runs(conn, latest_id))
    summary = RepoSummary(latest.event.repository, latest.event.vendor, latest, state)
    candidates = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE repository = ? AND status = ? "
        "ORDER BY id DESC LIMIT ?",
        (latest.event.repository, EventStatus.DISPATCHED.value, SCAN_EVENTS),
    )
    for candidate in candidates.fetchall():
        stored = _event_from_row(candidate)
        assert stored.event.id is not None
        runs = _runs(conn, stored.event.id)
        outcome = event_outcome(stored.status, runs)
        if outcome in FINAL_OUTCOMES:
            ends = [run.finished_at for run in runs if run.finished_at is not None]
            return RepoSummary(
                summary.repository,
                summary.vendor,
                latest,
                state,
                outcome,
                max(ends) if ends else stored.event.received_at,
                stored.event.id,
            )
    return summary


def repository_summaries(conn: sqlite3.Connection) -> list[RepoSummary]:
    """How each repository stands, the most recently active first."""
    rows = conn.execute(
        "SELECT max(id) FROM events WHERE repository != '' GROUP BY repository "
        "ORDER BY max(id) DESC LIMIT ?",
        (MAX_REPOSITORIES,),
    ).fetchall()
    summaries = [_summary(conn, int(row[0])) for row in rows]
    return [summary for summary in summaries if summary is not None]
