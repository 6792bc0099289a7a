"""The change a push or tag event stands for, so one change is one event whoever reports it.

A forge's webhook and pocketci-tui's own polling can both report that a ref moved: the webhook
under the forge's delivery id, polling under an id derived from the change. Their delivery ids
differ and so do their bodies, so neither the delivery id nor the body digest can tell they are
the same. The change can: the forge, the repository (case-insensitive, as forges treat names),
the ref and its old and new value (``before`` and ``after``; all zeros for a new ref or a
deletion). Every push or tag event stored records its change and its source. A later
delivery of the same change from the other source is recorded as a redelivery of the first and
never run again: a webhook after a poll, a poll after a webhook (or a poll after a poll, after
a restart). Two webhook deliveries of one change under two delivery ids (two hooks) stay two
events, as before polling existed; a deliberate re-fire is never folded.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence

from pocketci_tui.gitrefs import is_commit_id
from pocketci_tui.model import Event

CHANGE_TYPES = frozenset({"push", "tag"})
"""The event types that report a ref moving from ``before`` to ``after``."""


def change_key(vendor: str, repository: str, ref: str, before: str, after: str) -> str:
    """The identity of one ref update: a hex SHA-256 of its parts.

    Args:
        vendor: The forge.
        repository: The repository's full name (compared case-insensitively).
        ref: The full ref (``refs/heads/main``).
        before: The ref's old value (all zeros for a new ref).
        after: Its new value (all zeros for a deletion).

    Returns:
        64 hex digits.
    """
    text = "\n".join((vendor, repository.lower(), ref, before.lower(), after.lower()))
    return hashlib.sha256(text.encode()).hexdigest()


def event_change(event: Event) -> str:
    """The change key of a push or tag event, or ``""`` for any other event.

    Only an event that names a branch or tag and both ids has one: anything else is not a
    ref update that two sources could both report.
    """
    if event.event_type not in CHANGE_TYPES:
        return ""
    if not event.ref.startswith(("refs/heads/", "refs/tags/")):
        return ""
    if not (is_commit_id(event.sha) and is_commit_id(event.base_sha)):
        return ""
    return change_key(event.vendor, event.repository, event.ref, event.base_sha, event.sha)


_REPORTED = (
    "SELECT c.change, e.delivery_id FROM event_changes c JOIN events e ON e.id = c.event_id "
    "WHERE c.vendor = ? AND c.change IN ({marks})"
)


def reported_changes(
    conn: sqlite3.Connection, vendor: str, changes: Sequence[str], *, polled_only: bool
) -> dict[str, str]:
    """The delivery ids of the stored events that reported these changes, by change.

    Args:
        conn: A connection.
        vendor: The forge.
        changes: Change keys (at most a few hundred; empty ones are skipped).
        polled_only: Count only events that polling reported (for a webhook's delivery).
    """
    wanted = [c for c in changes if c]
    if not wanted:
        return {}
    sql = _REPORTED.format(marks=", ".join("?" * len(wanted)))
    if polled_only:
        sql += " AND c.polled = 1"
    return {str(row[0]): str(row[1]) for row in conn.execute(sql, [vendor, *wanted])}


def remember_changes(
    conn: sqlite3.Connection, rows: Iterable[tuple[str, str, int]], *, polled: bool = False
) -> None:
    """Record the change of newly stored events: ``(vendor, change, event id)`` rows."""
    params = [(*row, int(polled)) for row in rows if row[1]]
    if params:
        conn.executemany(
            "INSERT OR IGNORE INTO event_changes (vendor, change, event_id, polled) "
            "VALUES (?, ?, ?, ?)",
            params,
        )
