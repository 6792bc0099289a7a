"""Rows of the store's tables and the models they hold: column lists and conversions.

Everything here is pure (no connection of its own): the reader and the writer both turn rows into
:class:`~pocketci_tui.model.StoredEvent` and :class:`~pocketci_tui.model.Run` with it, and the
writer builds its INSERT parameters with it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from pocketci_tui.model import Event, EventStatus, Run, RunState, StoredEvent, bounded, utcnow

_EVENT_COLUMNS = (
    "id, vendor, delivery_id, event_name, event_type, filter, repository, ref, sha, base_ref, "
    "base_sha, pr_number, is_fork, deleted, title, hook_id, received_at, status, detail, "
    "redeliveries, approved_sha, author, commits, url"
)
_RUN_COLUMNS = (
    "id, event_id, function, state, attempt, args, reason, exit_code, created_at, started_at, "
    "finished_at, log_path, parent_id, engine, spec"
)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _event_from_row(row: sqlite3.Row, body: bytes = b"") -> StoredEvent:
    received = _dt(row["received_at"])
    assert received is not None
    event = Event(
        vendor=row["vendor"],
        event_type=row["event_type"],
        filter=row["filter"],
        repository=row["repository"],
        ref=row["ref"],
        sha=row["sha"],
        base_ref=row["base_ref"],
        base_sha=row["base_sha"],
        pr_number=row["pr_number"],
        is_fork=bool(row["is_fork"]),
        delivery_id=row["delivery_id"],
        received_at=received,
        body=body,
        deleted=bool(row["deleted"]),
        title=row["title"],
        hook_id=row["hook_id"],
        event_name=row["event_name"],
        id=row["id"],
        author=row["author"],
        commits=row["commits"],
        url=row["url"],
    )
    return StoredEvent(
        event=event,
        status=EventStatus(row["status"]),
        detail=row["detail"],
        redeliveries=row["redeliveries"],
        approved_sha=row["approved_sha"],
    )


def _run_from_row(row: sqlite3.Row) -> Run:
    args = tuple((str(k), str(v)) for k, v in json.loads(row["args"] or "[]"))
    return Run(
        id=row["id"],
        event_id=row["event_id"],
        function=row["function"],
        state=RunState(row["state"]),
        attempt=row["attempt"],
        args=args,
        reason=row["reason"],
        exit_code=row["exit_code"],
        created_at=_dt(row["created_at"]),
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        log_path=row["log_path"],
        parent_id=row["parent_id"],
        engine=row["engine"],
        spec=row["spec"],
    )


def _run_params(run: Run) -> tuple[Any, ...]:
    return (
        run.event_id,
        run.function,
        run.state.value,
        run.attempt,
        json.dumps([list(pair) for pair in run.args]),
        bounded(run.reason),
        run.exit_code,
        _ts(run.created_at or utcnow()),
        _ts(run.started_at),
        _ts(run.finished_at),
        run.log_path,
        run.parent_id,
        run.engine,
        run.spec,
        run.id,
    )


_INSERT_EVENT_COLUMNS = (
    "vendor, delivery_id, event_name, event_type, filter, repository, ref, sha, base_ref, "
    "base_sha, pr_number, is_fork, deleted, title, hook_id, hook_ids, received_at, status, detail, "
    "author, commits, url"
)
_INSERT_EVENT_MARKS = "(" + ", ".join("?" * 22) + ")"
_MULTI_INSERT_ROWS = 500
"""Rows per multi-row INSERT (22 parameters each, under SQLite's 32766 limit)."""


def _event_params(event: Event, status: EventStatus, detail: str) -> tuple[Any, ...]:
    return (
        event.vendor,
        event.delivery_id,
        event.event_name,
        event.event_type,
        event.filter,
        event.repository,
        event.ref,
        event.sha,
        event.base_ref,
        event.base_sha,
        event.pr_number,
        int(event.is_fork),
        int(event.deleted),
        event.title,
        event.hook_id,
        event.hook_id,
        _ts(event.received_at),
        status.value,
        bounded(detail),
        event.author,
        event.commits,
        event.url,
    )


_EVENT_SLOTS: tuple[str, ...] = Event.__slots__


def _with_id(event: Event, event_id: int) -> Event:
    """Return a copy of ``event`` with its store id.

    Equal to ``dataclasses.replace(event, id=event_id)`` at half the cost; it runs once per
    stored delivery on the writer thread.
    """
    new = object.__new__(Event)
    for name in _EVENT_SLOTS:
        object.__setattr__(new, name, getattr(event, name))
    object.__setattr__(new, "id", event_id)
    return new
