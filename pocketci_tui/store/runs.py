"""The run queries of the store: runs, their recorded ``dagger call`` processes, attempts.

Each function takes the connection of the thread :class:`~pocketci_tui.store.db.Store` runs it
on (the writer's for a change, the reader's for a read), so the SQL of runs reads in one place
and the store keeps only the threading. A change of a run's state queues its commit status
(:mod:`pocketci_tui.store.outbox`) in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from pocketci_tui.model import CallProcess, Run, RunState, utcnow
from pocketci_tui.store import outbox
from pocketci_tui.store.outbox import StatusRouter
from pocketci_tui.store.rows import _RUN_COLUMNS, _run_from_row, _run_params, _ts


def insert_runs(conn: sqlite3.Connection, router: StatusRouter | None, runs: list[Run]) -> None:
    """Insert new runs, with their commit statuses."""
    conn.executemany(
        "INSERT INTO runs (event_id, function, state, attempt, args, reason, exit_code, "
        "created_at, started_at, finished_at, log_path, parent_id, engine, spec, id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_run_params(r) for r in runs],
    )
    outbox.queue_run_statuses(conn, router, runs)


def update_run(conn: sqlite3.Connection, router: StatusRouter | None, run: Run) -> None:
    """Replace the stored run that has ``run.id``; a finished run's call record goes."""
    old = conn.execute("SELECT state FROM runs WHERE id = ?", (run.id,)).fetchone()
    conn.execute(
        "UPDATE runs SET event_id = ?, function = ?, state = ?, attempt = ?, args = ?, "
        "reason = ?, exit_code = ?, created_at = ?, started_at = ?, finished_at = ?, "
        "log_path = ?, parent_id = ?, engine = ?, spec = ? WHERE id = ?",
        _run_params(run),
    )
    if run.state.finished:
        conn.execute("DELETE FROM run_calls WHERE run_id = ?", (run.id,))
    if old is not None:
        outbox.queue_run_statuses(conn, router, [run], {run.id: RunState(old[0])})


def get_run(conn: sqlite3.Connection, run_id: str) -> Run | None:
    """The run with this id, or None."""
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return _run_from_row(row) if row else None


def list_runs(conn: sqlite3.Connection, event_id: int) -> list[Run]:
    """An event's runs in creation order."""
    rows = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE event_id = ? ORDER BY rowid", (event_id,)
    )
    return [_run_from_row(r) for r in rows]


def runs_by_event(conn: sqlite3.Connection, wanted: Sequence[int]) -> dict[int, list[Run]]:
    """The runs of several events, each event's in creation order, every given id included."""
    found: dict[int, list[Run]] = {event_id: [] for event_id in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE event_id IN ({marks}) ORDER BY rowid",
            chunk,
        )
        for row in rows:
            found[row["event_id"]].append(_run_from_row(row))
    return found


def runs_with_state(conn: sqlite3.Connection, states: Sequence[RunState]) -> list[Run]:
    """The runs in any of these states, in creation order."""
    if not states:
        return []
    marks = ", ".join("?" for _ in states)
    rows = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE state IN ({marks}) ORDER BY rowid",
        [s.value for s in states],
    )
    return [_run_from_row(r) for r in rows]


def record_call(conn: sqlite3.Connection, call: CallProcess) -> None:
    """Record the process group of a run's ``dagger call`` as it starts."""
    # Not for a run stored finished meanwhile (a call that ended at once).
    conn.execute(
        "INSERT OR REPLACE INTO run_calls (run_id, pgid, start_ticks, boot_id, "
        "recorded_at) SELECT ?, ?, ?, ?, ? WHERE EXISTS "
        "(SELECT 1 FROM runs WHERE id = ? AND state IN (?, ?))",
        (
            call.run_id,
            call.pgid,
            call.start_ticks,
            call.boot_id,
            _ts(utcnow()),
            call.run_id,
            RunState.QUEUED.value,
            RunState.RUNNING.value,
        ),
    )


def recorded_calls(conn: sqlite3.Connection) -> list[CallProcess]:
    """The calls recorded as started whose runs have not finished since."""
    rows = conn.execute(
        "SELECT run_id, pgid, start_ticks, boot_id FROM run_calls ORDER BY recorded_at"
    )
    return [CallProcess(r[0], int(r[1]), int(r[2]), r[3]) for r in rows]


def mark_interrupted(
    conn: sqlite3.Connection, router: StatusRouter | None, reasons: Mapping[str, str] | None
) -> list[Run]:
    """Mark every run left RUNNING INTERRUPTED, drop every call record; return the runs."""
    now = _ts(utcnow())
    rows = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE state = ? ORDER BY rowid",
        (RunState.RUNNING.value,),
    ).fetchall()
    for run_id, reason in (reasons or {}).items():
        conn.execute(
            "UPDATE runs SET reason = ? WHERE id = ? AND state = ?",
            (reason, run_id, RunState.RUNNING.value),
        )
    conn.execute("DELETE FROM run_calls")
    conn.execute(
        "UPDATE runs SET state = ?, finished_at = ?, "
        "reason = CASE WHEN reason = '' THEN ? ELSE reason END WHERE state = ?",
        (
            RunState.INTERRUPTED.value,
            now,
            "pocketci-tui stopped while this ran",
            RunState.RUNNING.value,
        ),
    )
    ids = [r["id"] for r in rows]
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    fresh = [
        _run_from_row(r)
        for r in conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks}) ORDER BY rowid", ids
        )
    ]
    before = {run.id: RunState.RUNNING for run in fresh}
    outbox.queue_run_statuses(conn, router, fresh, before)
    return fresh


def max_attempt(conn: sqlite3.Connection, event_id: int, function: str | None) -> int:
    """The highest attempt number of an event's runs (of one function), 0 if none."""
    if function is None:
        row = conn.execute(
            "SELECT max(attempt) FROM runs WHERE event_id = ?", (event_id,)
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT max(attempt) FROM runs WHERE event_id = ? AND function = ?",
            (event_id, function),
        ).fetchone()
    return int(row[0] or 0)
