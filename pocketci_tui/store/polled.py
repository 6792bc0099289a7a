"""What polling knows, kept in the store: each polled repository's refs as last seen.

A poll's changes are stored as events and the repository's refs replaced in one transaction,
so a crash leaves either both or neither: a restart neither runs an old change again nor loses
one made while the process was down (the refs on disk are still the old ones, so the next poll
sees the change). The first poll of a repository only records its refs.

A polled change is one event however it is reported (:mod:`pocketci_tui.store.changes`); a
polled change is also no new event when the last event of its ref already brought the ref to
the same commit: webhooks that reported ``a..b`` and ``b..c`` between two polls already cover
the ``a..c`` the next poll sees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pocketci_tui.model import Event, EventStatus, StoredEvent, utcnow
from pocketci_tui.store.recording import _record_redelivery, _RecordJob
from pocketci_tui.store.rows import _ts

T = TypeVar("T")
Run = Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class PolledChange:
    """One change a poll found, as the event a webhook would have given.

    Attributes:
        event: The event (its delivery id derived from the change).
        status: The status to store it with (``received``, or ``ignored`` for a deletion).
        detail: Why it is ignored, if it is.
    """

    event: Event
    status: EventStatus
    detail: str = ""


def _last_of_ref(conn: sqlite3.Connection, event: Event) -> str | None:
    """The delivery id of the last event of the event's ref when it brought the ref to the
    event's commit already, else None."""
    row = conn.execute(
        "SELECT delivery_id, sha FROM events WHERE vendor = ? AND ref = ? "
        "AND repository = ? COLLATE NOCASE AND event_type IN ('push', 'tag') "
        "ORDER BY id DESC LIMIT 1",
        (event.vendor, event.ref, event.repository),
    ).fetchone()
    if row is None or row[1] != event.sha or row[0] == event.delivery_id:
        return None
    return str(row[0])


class _PollJob:
    """Store one poll's changes and the repository's refs, in one transaction."""

    __slots__ = ("changes", "refs", "repository", "vendor")

    def __init__(
        self,
        vendor: str,
        repository: str,
        refs: Mapping[str, str],
        changes: Sequence[PolledChange],
    ) -> None:
        self.vendor = vendor
        self.repository = repository.lower()
        self.refs = dict(refs)
        self.changes = list(changes)

    def __call__(self, conn: sqlite3.Connection) -> list[tuple[StoredEvent, bool]]:
        results: list[tuple[StoredEvent, bool]] = []
        for change in self.changes:
            covered = _last_of_ref(conn, change.event)
            if covered is not None:
                results.append(_record_redelivery(conn, change.event, covered))
            else:
                job = _RecordJob(change.event, change.status, change.detail, polled=True)
                results.append(job(conn))
        key = (self.vendor, self.repository)
        conn.execute("DELETE FROM polled_refs WHERE vendor = ? AND repository = ?", key)
        conn.executemany(
            "INSERT INTO polled_refs (vendor, repository, ref, sha) VALUES (?, ?, ?, ?)",
            [(*key, ref, sha) for ref, sha in self.refs.items()],
        )
        now = _ts(utcnow())
        conn.execute(
            "INSERT INTO polled_repos (vendor, repository, first_polled_at, last_polled_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (vendor, repository) "
            "DO UPDATE SET last_polled_at = excluded.last_polled_at",
            (*key, now, now),
        )
        return results


class PollLedger:
    """The polled repositories' refs, read and replaced through the store's threads.

    Args:
        write: Runs a job on the store's writer thread (in a transaction).
        read: Runs a job on the store's reader thread.
    """

    def __init__(self, write: Run[Any], read: Run[Any]) -> None:
        self._write = write
        self._read = read

    async def known_refs(self, vendor: str, repository: str) -> dict[str, str] | None:
        """The refs of a repository as its last poll saw them, or None if never polled."""
        key = (vendor, repository.lower())

        def job(conn: sqlite3.Connection) -> dict[str, str] | None:
            seen = conn.execute(
                "SELECT 1 FROM polled_repos WHERE vendor = ? AND repository = ?", key
            ).fetchone()
            if seen is None:
                return None
            return {
                str(row[0]): str(row[1])
                for row in conn.execute(
                    "SELECT ref, sha FROM polled_refs WHERE vendor = ? AND repository = ?", key
                )
            }

        result: dict[str, str] | None = await self._read(job)
        return result

    async def record(
        self,
        vendor: str,
        repository: str,
        refs: Mapping[str, str],
        changes: Sequence[PolledChange] = (),
    ) -> list[tuple[StoredEvent, bool]]:
        """Store a poll's changes as events and its refs as the repository's known refs.

        Args:
            vendor: The forge.
            repository: The repository's full name.
            refs: Every branch and tag the poll saw, by full ref, with its value.
            changes: The changes it found (none on a first poll).

        Returns:
            Each change's stored event, and True when it was reported before (a webhook, an
            earlier poll): then it is the earlier event, counted as redelivered.

        Raises:
            StoreError: Nothing could be stored durably (the refs stay as they were).
        """
        results: list[tuple[StoredEvent, bool]] = await self._write(
            _PollJob(vendor, repository, refs, changes)
        )
        return results
