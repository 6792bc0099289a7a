"""Recording deliveries: ``record_event`` as a writer job, alone or merged into a batch.

A delivery is one INSERT when it runs alone. When the writer thread finds several waiting in one
batch, :func:`_record_many` stores them all with a handful of multi-row statements instead, which
is what keeps a burst of deliveries cheap. A delivery whose id is already stored is counted as a
redelivery of the original.

A delivery may carry its body's digest (the signature): a body already stored under another
delivery id is a replay and raises :class:`Replayed`, unless the delivery is a deliberate
re-fire. A batch holding a replay is redone job by job (the writer does that for any failing
job), so only the replay is refused.

A push or tag event also records the change it reports (:mod:`pocketci_tui.store.changes`):
a new delivery of a change already stored, from the forge's webhook or from polling, is
counted as a redelivery of the event that reported it first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from pocketci_tui.model import Event, EventStatus, StoredEvent, utcnow
from pocketci_tui.store.changes import event_change, remember_changes, reported_changes
from pocketci_tui.store.rows import (
    _EVENT_COLUMNS,
    _INSERT_EVENT_COLUMNS,
    _INSERT_EVENT_MARKS,
    _MULTI_INSERT_ROWS,
    _event_from_row,
    _event_params,
    _ts,
    _with_id,
)


class Replayed(Exception):
    """A body already stored under another delivery id came again under a new one.

    Attributes:
        original: The delivery id the body was first stored under.
    """

    def __init__(self, original: str) -> None:
        super().__init__(f"the body was already delivered as {original}")
        self.original = original


def _known_digest(conn: sqlite3.Connection, vendor: str, digest: str) -> str | None:
    """Return the delivery id a body digest was stored under, or None."""
    row = conn.execute(
        "SELECT delivery_id FROM body_digests WHERE vendor = ? AND digest = ?", (vendor, digest)
    ).fetchone()
    return str(row[0]) if row else None


def _remember_digests(conn: sqlite3.Connection, jobs: list[_RecordJob]) -> None:
    rows = [
        (job.event.vendor, job.digest, job.event.delivery_id, _ts(job.event.received_at))
        for job in jobs
        if job.digest
    ]
    if rows:
        conn.executemany(
            "INSERT OR IGNORE INTO body_digests (vendor, digest, delivery_id, received_at) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )


def _record_redelivery(
    conn: sqlite3.Connection, event: Event, reported: str | None = None
) -> tuple[StoredEvent, bool]:
    """Count a redelivery of an event already stored; return the original.

    Args:
        conn: The writer's connection.
        event: The delivery that came again.
        reported: The delivery id of the stored event it repeats, when not its own (the same
            change reported under another id).
    """
    row = conn.execute(
        f"SELECT {_EVENT_COLUMNS}, hook_ids FROM events WHERE vendor = ? AND delivery_id = ?",
        (event.vendor, reported or event.delivery_id),
    ).fetchone()
    hook_ids = [h for h in row["hook_ids"].split(",") if h]
    if event.hook_id and event.hook_id not in hook_ids:
        hook_ids.append(event.hook_id)
    conn.execute(
        "UPDATE events SET redeliveries = redeliveries + 1, hook_ids = ?, "
        "last_redelivery_at = ? WHERE id = ?",
        (",".join(hook_ids), _ts(utcnow()), row["id"]),
    )
    body = conn.execute("SELECT body FROM event_bodies WHERE event_id = ?", (row["id"],)).fetchone()
    original = _event_from_row(row, bytes(body[0]) if body else b"")
    return replace(original, redeliveries=original.redeliveries + 1), True


class _RecordJob:
    """``record_event`` as a job: runs alone, or merged with others into multi-row INSERTs.

    ``polled`` marks a delivery that polling made up (never merged into a batch).
    """

    __slots__ = ("detail", "digest", "event", "polled", "refire", "status")

    def __init__(
        self,
        event: Event,
        status: EventStatus,
        detail: str,
        digest: str = "",
        refire: bool = False,
        *,
        polled: bool = False,
    ) -> None:
        self.event = event
        self.status = status
        self.detail = detail
        self.digest = digest
        self.refire = refire
        self.polled = polled

    def change(self) -> str:
        """The change this delivery reports, unless it must not be folded (a re-fire)."""
        return "" if self.refire else event_change(self.event)

    def replay_of(self, conn: sqlite3.Connection) -> str | None:
        """The delivery id this job's body was stored under, if this is a replay of it."""
        if not self.digest or self.refire:
            return None
        known = _known_digest(conn, self.event.vendor, self.digest)
        return known if known is not None and known != self.event.delivery_id else None

    def __call__(self, conn: sqlite3.Connection) -> tuple[StoredEvent, bool]:
        e = self.event
        original = self.replay_of(conn)
        if original is not None:
            exists = conn.execute(
                "SELECT 1 FROM events WHERE vendor = ? AND delivery_id = ?",
                (e.vendor, e.delivery_id),
            ).fetchone()
            if exists is None:  # a redelivery of a stored id stays a redelivery
                raise Replayed(original)
        change = self.change()
        reported = reported_changes(conn, e.vendor, [change], polled_only=not self.polled).get(
            change
        )
        if reported is not None and reported != e.delivery_id:
            own = conn.execute(
                "SELECT 1 FROM events WHERE vendor = ? AND delivery_id = ?",
                (e.vendor, e.delivery_id),
            ).fetchone()
            if own is None:  # the same change under another delivery id
                return _record_redelivery(conn, e, reported)
        cur = conn.execute(
            f"INSERT INTO events ({_INSERT_EVENT_COLUMNS}) VALUES {_INSERT_EVENT_MARKS} "
            "ON CONFLICT (vendor, delivery_id) DO NOTHING",
            _event_params(e, self.status, self.detail),
        )
        if cur.rowcount != 1:
            return _record_redelivery(conn, e)
        event_id = cur.lastrowid
        assert event_id is not None
        conn.execute("INSERT INTO event_bodies (event_id, body) VALUES (?, ?)", (event_id, e.body))
        _remember_digests(conn, [self])
        remember_changes(conn, [(e.vendor, change, event_id)], polled=self.polled)
        return StoredEvent(_with_id(e, event_id), self.status, self.detail), False


def _record_many(
    conn: sqlite3.Connection, jobs: list[_RecordJob]
) -> list[tuple[StoredEvent, bool]]:
    """Store many deliveries with a handful of statements, whatever their number.

    Each statement costs the writer thread a round trip for the GIL, so a batch is stored with
    one lookup of the ids already stored, one multi-row INSERT of the new events (their row ids
    are consecutive: this thread is the only writer and gives no explicit ids) and one of their
    bodies. The order of the jobs decides which of two deliveries with one id is the original.
    """
    existing: set[tuple[str, str]] = set()
    by_vendor: dict[str, list[str]] = {}
    for job in jobs:
        by_vendor.setdefault(job.event.vendor, []).append(job.event.delivery_id)
    for vendor, delivery_ids in by_vendor.items():
        for start in range(0, len(delivery_ids), _MULTI_INSERT_ROWS):
            wanted = delivery_ids[start : start + _MULTI_INSERT_ROWS]
            marks = ", ".join("?" * len(wanted))
            existing.update(
                (vendor, row[0])
                for row in conn.execute(
                    f"SELECT delivery_id FROM events WHERE vendor = ? AND delivery_id IN ({marks})",
                    [vendor, *wanted],
                )
            )
    fresh: list[_RecordJob] = []
    for job in jobs:
        key = (job.event.vendor, job.event.delivery_id)
        if key not in existing:
            existing.add(key)  # a second delivery with this id in the batch is a redelivery
            fresh.append(job)
    _check_replays(conn, fresh)
    changes = {id(job): job.change() for job in fresh}
    aliases = _reported_changes(conn, fresh, changes)
    fresh = [job for job in fresh if id(job) not in aliases]
    new_ids: dict[int, int] = {}  # id(job) -> row id
    for start in range(0, len(fresh), _MULTI_INSERT_ROWS):
        chunk = fresh[start : start + _MULTI_INSERT_ROWS]
        params: list[Any] = []
        for job in chunk:
            params.extend(_event_params(job.event, job.status, job.detail))
        cur = conn.execute(
            f"INSERT INTO events ({_INSERT_EVENT_COLUMNS}) VALUES "
            + ", ".join([_INSERT_EVENT_MARKS] * len(chunk)),
            params,
        )
        last = cur.lastrowid
        assert last is not None
        if cur.rowcount != len(chunk):
            raise sqlite3.IntegrityError("a multi-row insert stored fewer rows than asked")
        first = last - len(chunk) + 1
        # Row ids are consecutive here; check both ends anyway (a mismatch redoes the batch
        # job by job).
        ends = conn.execute(
            "SELECT delivery_id FROM events WHERE id IN (?, ?) ORDER BY id", (first, last)
        ).fetchall()
        expected = [chunk[0].event.delivery_id, chunk[-1].event.delivery_id][: len(ends)]
        if len(ends) != min(2, len(chunk)) or [r[0] for r in ends] != expected[: len(ends)]:
            raise sqlite3.IntegrityError("row ids of a multi-row insert are not consecutive")
        for offset, job in enumerate(chunk):
            new_ids[id(job)] = first + offset
        bodies: list[Any] = []
        for job in chunk:
            bodies.extend((new_ids[id(job)], job.event.body))
        conn.execute(
            "INSERT INTO event_bodies (event_id, body) VALUES "
            + ", ".join(["(?, ?)"] * len(chunk)),
            bodies,
        )
    _remember_digests(conn, fresh)
    remember_changes(
        conn, [(job.event.vendor, changes[id(job)], new_ids[id(job)]) for job in fresh]
    )
    results: list[tuple[StoredEvent, bool]] = []
    for job in jobs:
        event_id = new_ids.get(id(job))
        if event_id is None:
            results.append(_record_redelivery(conn, job.event, aliases.get(id(job))))
        else:
            results.append(
                (StoredEvent(_with_id(job.event, event_id), job.status, job.detail), False)
            )
    return results


def _reported_changes(
    conn: sqlite3.Connection, fresh: list[_RecordJob], changes: dict[int, str]
) -> dict[int, str]:
    """The new deliveries of a batch (webhooks) whose change polling reported already:
    ``id(job)`` -> the delivery id that reported it."""
    wanted: dict[str, list[str]] = {}
    for job in fresh:
        if changes[id(job)]:
            wanted.setdefault(job.event.vendor, []).append(changes[id(job)])
    reported: dict[tuple[str, str], str] = {}
    for vendor, keys in wanted.items():
        for start in range(0, len(keys), _MULTI_INSERT_ROWS):
            chunk = keys[start : start + _MULTI_INSERT_ROWS]
            found = reported_changes(conn, vendor, chunk, polled_only=True)
            reported.update(((vendor, change), delivery) for change, delivery in found.items())
    return {
        id(job): reported[(job.event.vendor, changes[id(job)])]
        for job in fresh
        if (job.event.vendor, changes[id(job)]) in reported
    }


def _check_replays(conn: sqlite3.Connection, fresh: list[_RecordJob]) -> None:
    """Raise :class:`Replayed` when a new delivery of the batch repeats a known body.

    Also when two new deliveries of the batch carry one body: the batch is then redone job by
    job, which stores the first and refuses the second.
    """
    seen: dict[tuple[str, str], str] = {}
    wanted: list[_RecordJob] = []
    for job in fresh:
        if not job.digest or job.refire:
            continue
        key = (job.event.vendor, job.digest)
        if key in seen and seen[key] != job.event.delivery_id:
            raise Replayed(seen[key])
        seen[key] = job.event.delivery_id
        wanted.append(job)
    for start in range(0, len(wanted), _MULTI_INSERT_ROWS):
        chunk = wanted[start : start + _MULTI_INSERT_ROWS]
        for vendor in {job.event.vendor for job in chunk}:
            digests = [job.digest for job in chunk if job.event.vendor == vendor]
            known = conn.execute(
                f"SELECT digest, delivery_id FROM body_digests WHERE vendor = ? AND digest IN "
                f"({', '.join('?' * len(digests))})",
                [vendor, *digests],
            ).fetchall()
            if known:
                stored = {row[0]: row[1] for row in known}
                for job in chunk:
                    original = stored.get(job.digest)
                    if job.event.vendor == vendor and original not in (None, job.event.delivery_id):
                        raise Replayed(str(original))
