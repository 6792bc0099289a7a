"""Retention: which events go, with their runs, statuses and log files.

The deletion runs on the store's writer thread (:class:`~pocketci_tui.store.db.Store`), the log
files are removed afterwards off the event loop, and only inside the logs folder.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def delete_expired(
    conn: sqlite3.Connection, cutoff: str | None, max_events: int
) -> tuple[int, list[str]]:
    """Delete the events beyond ``max_events`` or received before ``cutoff``.

    An event with a queued or running run is kept. Returns how many went and their runs' log
    paths, for :func:`remove_logs`.
    """
    busy = "SELECT event_id FROM runs WHERE state IN ('queued', 'running')"
    ids = [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM events WHERE id NOT IN ({busy}) AND (received_at < ? OR id <= "
            f"(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?))",
            (cutoff, max(0, max_events)),
        )
    ]
    logs: list[str] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        logs.extend(
            r[0]
            for r in conn.execute(
                f"SELECT log_path FROM runs WHERE event_id IN ({marks}) AND log_path != ''",
                chunk,
            )
        )
        conn.execute(f"DELETE FROM events WHERE id IN ({marks})", chunk)
        # Their statuses go too, except those the forge has not got yet.
        conn.execute(
            f"DELETE FROM status_outbox WHERE event_id IN ({marks}) "
            "AND status NOT IN ('queued', 'sending')",
            chunk,
        )
    # Body digests outlive their events (count-based retention), within the days.
    conn.execute("DELETE FROM body_digests WHERE received_at < ?", (cutoff,))
    return len(ids), logs


def remove_logs(logs_dir: Path, logs: list[str]) -> None:
    """Remove the deleted runs' log files, never a path that leads out of ``logs_dir``."""
    root = logs_dir.resolve()
    for rel in logs:
        target = (root / rel).resolve()
        if root in target.parents:
            with contextlib.suppress(OSError):
                target.unlink()
