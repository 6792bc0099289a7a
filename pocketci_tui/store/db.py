"""The SQLite store of events and runs.

One dedicated writer thread owns the only writing connection. Every write is a job queued to it;
the thread drains every job that is waiting, runs them in one transaction and commits once (when
a job fails, the batch is rolled back and its jobs run again one by one, so only that job fails).
With ``synchronous=FULL`` the commit is the fsync, so many concurrent deliveries share one fsync
(group commit). A job's caller is only answered after that commit returned, so nothing is reported
stored before it is on disk.

Reads run on a second thread with its own read-only-by-use connection (WAL lets it read while the
writer writes). Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pocketci_tui.model import Event, EventStatus, Run, RunState, StoredEvent, utcnow
from pocketci_tui.store.schema import migrate

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds a write waits for another process's lock before giving up (then intake answers 503)."""

MAX_BATCH = 512
"""The most jobs one transaction takes, so a flood cannot grow a transaction without end."""

_EVENT_COLUMNS = (
    "id, vendor, delivery_id, event_name, event_type, filter, repository, ref, sha, base_ref, "
    "base_sha, pr_number, is_fork, deleted, title, hook_id, received_at, status, detail, "
    "redeliveries, approved_sha"
)
_RUN_COLUMNS = (
    "id, event_id, function, state, attempt, args, reason, exit_code, created_at, started_at, "
    "finished_at, log_path, parent_id"
)


class StoreError(Exception):
    """Something could not be stored durably (disk full, locked, read-only, closed)."""


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
    )


def _run_params(run: Run) -> tuple[Any, ...]:
    return (
        run.event_id,
        run.function,
        run.state.value,
        run.attempt,
        json.dumps([list(pair) for pair in run.args]),
        run.reason,
        run.exit_code,
        _ts(run.created_at or utcnow()),
        _ts(run.started_at),
        _ts(run.finished_at),
        run.log_path,
        run.parent_id,
        run.id,
    )


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=busy_timeout, check_same_thread=True
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


_INSERT_EVENT_COLUMNS = (
    "vendor, delivery_id, event_name, event_type, filter, repository, ref, sha, base_ref, "
    "base_sha, pr_number, is_fork, deleted, title, hook_id, hook_ids, received_at, status, detail"
)
_INSERT_EVENT_MARKS = "(" + ", ".join("?" * 19) + ")"
_MULTI_INSERT_ROWS = 500
"""Rows per multi-row INSERT (19 parameters each, under SQLite's 32766 limit)."""


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
        detail,
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


def _record_redelivery(conn: sqlite3.Connection, event: Event) -> tuple[StoredEvent, bool]:
    """Count a redelivery of an event already stored; return the original."""
    row = conn.execute(
        f"SELECT {_EVENT_COLUMNS}, hook_ids FROM events WHERE vendor = ? AND delivery_id = ?",
        (event.vendor, event.delivery_id),
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
    """``record_event`` as a job: runs alone, or merged with others into multi-row INSERTs."""

    __slots__ = ("detail", "event", "status")

    def __init__(self, event: Event, status: EventStatus, detail: str) -> None:
        self.event = event
        self.status = status
        self.detail = detail

    def __call__(self, conn: sqlite3.Connection) -> tuple[StoredEvent, bool]:
        e = self.event
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
    results: list[tuple[StoredEvent, bool]] = []
    for job in jobs:
        event_id = new_ids.get(id(job))
        if event_id is None:
            results.append(_record_redelivery(conn, job.event))
        else:
            results.append(
                (StoredEvent(_with_id(job.event, event_id), job.status, job.detail), False)
            )
    return results


class _Job:
    """One write waiting for the writer thread."""

    __slots__ = ("fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _resolve_many(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in items:
        _resolve(future, result, error)


_STORAGE_ERRORS = ("locked", "full", "readonly", "read-only", "disk i/o", "busy")


def _is_storage_error(exc: BaseException) -> bool:
    """True when the database itself refused (retrying job by job cannot help)."""
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc).lower() for word in _STORAGE_ERRORS
    )


class Store:
    """Events and runs in one SQLite file. Create it with :meth:`open`.

    ``list_events`` returns events without their payload (``body == b""``) so listing stays fast
    on large histories; ``get_event`` and ``events_with_status`` return the full body.
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_running = False  # set by the writer thread itself (cheaper than is_alive)
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketci-db-read")
        self._read_local = threading.local()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
        """Open (creating folders and schema as needed) the database at ``path``.

        Args:
            path: The SQLite file.
            busy_timeout: Seconds a write waits for another writer's lock.

        Returns:
            The open store.

        Raises:
            StoreError: The database cannot be opened for writing (read-only, unreadable,
                corrupt, newer schema). Startup should fail loudly on it.
        """
        store = cls(path, busy_timeout)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        store._writer = threading.Thread(
            target=store._writer_main, args=(loop, ready), name="pocketci-db-write", daemon=True
        )
        store._writer.start()
        try:
            await ready
        except BaseException:
            store._closed = True
            store._reader.shutdown(wait=False)
            store._writer.join(timeout=5)
            raise
        return store

    async def close(self) -> None:
        """Finish the queued writes and close both connections."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        writer = self._writer
        if writer is not None:
            await asyncio.to_thread(writer.join)
        await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
        self._reader.shutdown(wait=True)

    # -- the writer thread -------------------------------------------------------------------

    def _writer_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path, self.busy_timeout)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn)
            # Prove now that we can write, so a read-only database fails at startup (D5).
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE events SET id = id WHERE 0")
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            error = StoreError(f"cannot open the database {self.path} for writing: {exc}")
            loop.call_soon_threadsafe(_resolve, ready, None, error)
            return
        self._writer_running = True
        loop.call_soon_threadsafe(_resolve, ready, None, None)
        try:
            self._writer_loop(conn)
        finally:
            self._writer_running = False
            conn.close()

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            first = self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(conn, batch)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        """Run a batch in one transaction; on any job failure, redo the jobs one by one.

        The common case (every job succeeds) costs one BEGIN and one COMMIT (one fsync) for the
        whole batch. A failing job (a constraint, a bug) makes the batch roll back and each job
        run again in its own transaction, so only that job fails.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(batch, exc)
            return
        results: list[Any] = []
        try:
            records = [job.fn for job in batch if isinstance(job.fn, _RecordJob)]
            if len(records) > 1:
                merged = iter(_record_many(conn, records))
                results = [
                    next(merged) if isinstance(job.fn, _RecordJob) else job.fn(conn)
                    for job in batch
                ]
            else:
                results = [job.fn(conn) for job in batch]
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if len(batch) > 1 and not _is_storage_error(exc):
                for job in batch:
                    self._run_batch(conn, [job])
                return
            if isinstance(exc, sqlite3.Error):
                self._fail_all(batch, exc)
            else:
                self._settle(batch, [(None, exc)] * len(batch))
            return
        self._settle(batch, [(r, None) for r in results])

    @staticmethod
    def _settle(batch: list[_Job], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        """Hand the outcomes to their loops: one wake-up per loop, not one per job."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
        for job, (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, result, error))
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve_many, items)

    @classmethod
    def _fail_all(cls, batch: list[_Job], exc: sqlite3.Error) -> None:
        error = StoreError(f"could not store durably: {exc}")
        cls._settle(batch, [(None, error)] * len(batch))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        if not self._writer_running:
            raise StoreError("the database writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, loop, future))
        return await future

    # -- the reader thread -------------------------------------------------------------------

    def _read_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._read_local, "conn", None)
        if conn is None:
            conn = _connect(self.path, self.busy_timeout)
            self._read_local.conn = conn
        return conn

    def _close_reader(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._read_local, "conn", None)
        if conn is not None:
            conn.close()
            self._read_local.conn = None

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")

        def call() -> T:
            try:
                return fn(self._read_conn())
            except sqlite3.Error as exc:
                raise StoreError(f"could not read the database: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._reader, call)

    # -- events ------------------------------------------------------------------------------

    async def record_event(
        self, event: Event, status: EventStatus, detail: str = ""
    ) -> tuple[StoredEvent, bool]:
        """Store a delivery, or record a redelivery of one already stored.

        Args:
            event: The normalized event (its ``id`` is ignored).
            status: The status to store a new event with.
            detail: Why (for ignored events), shown in the UI.

        Returns:
            The stored event (with its id) and True when it was already stored: then the
            original event is returned, its redelivery count increased and the hook id recorded.

        Raises:
            StoreError: It could not be stored durably.
        """

        return await self._write(_RecordJob(event, status, detail))

    async def hook_ids(self, event_id: int) -> list[str]:
        """Return every hook id that delivered this event (repository and organization hooks)."""

        def job(conn: sqlite3.Connection) -> list[str]:
            row = conn.execute("SELECT hook_ids FROM events WHERE id = ?", (event_id,)).fetchone()
            return [h for h in row[0].split(",") if h] if row else []

        return await self._read(job)

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """Return the stored event with its full body, or None."""

        def job(conn: sqlite3.Connection) -> StoredEvent | None:
            row = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                return None
            body = conn.execute(
                "SELECT body FROM event_bodies WHERE event_id = ?", (event_id,)
            ).fetchone()
            return _event_from_row(row, bytes(body[0]) if body else b"")

        return await self._read(job)

    async def list_events(
        self, *, limit: int = 100, before_id: int | None = None, text: str = ""
    ) -> list[StoredEvent]:
        """Return stored events, newest first, without their bodies (``body == b""``).

        Args:
            limit: At most this many.
            before_id: Only events with a smaller id (the next page).
            text: Case-insensitive substring of the repository, filter, event type, sha or title.

        Returns:
            The events; fetch a body with :meth:`get_event`.
        """

        def job(conn: sqlite3.Connection) -> list[StoredEvent]:
            where: list[str] = []
            params: list[Any] = []
            if before_id is not None:
                where.append("id < ?")
                params.append(before_id)
            if text:
                pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                pattern += "%"
                cols = ("repository", "filter", "event_type", "sha", "title")
                where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in cols) + ")")
                params.extend([pattern] * len(cols))
            sql = f"SELECT {_EVENT_COLUMNS} FROM events"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY id DESC LIMIT ?"
            params.append(max(0, limit))
            return [_event_from_row(r) for r in conn.execute(sql, params)]

        return await self._read(job)

    async def count_events(self) -> int:
        """Return how many events are stored."""
        return await self._read(
            lambda c: int(c.execute("SELECT count(*) FROM events").fetchone()[0])
        )

    async def set_event_status(self, event_id: int, status: EventStatus, detail: str = "") -> None:
        """Change an event's status and detail."""

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET status = ?, detail = ? WHERE id = ?",
                (status.value, detail, event_id),
            )

        await self._write(job)

    async def set_approved_sha(self, event_id: int, sha: str) -> None:
        """Record the head commit a user approved for a fork's pull request."""

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE events SET approved_sha = ? WHERE id = ?", (sha, event_id))

        await self._write(job)

    async def events_with_status(self, *statuses: EventStatus) -> list[StoredEvent]:
        """Return the events in any of these statuses, oldest first, with their bodies."""

        def job(conn: sqlite3.Connection) -> list[StoredEvent]:
            if not statuses:
                return []
            marks = ", ".join("?" for _ in statuses)
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS}, b.body AS body FROM events "
                f"LEFT JOIN event_bodies b ON b.event_id = events.id "
                f"WHERE status IN ({marks}) ORDER BY id",
                [s.value for s in statuses],
            ).fetchall()
            return [_event_from_row(r, bytes(r["body"] or b"")) for r in rows]

        return await self._read(job)

    # -- runs --------------------------------------------------------------------------------

    async def add_runs(self, runs: Sequence[Run]) -> None:
        """Insert new runs (in one transaction)."""
        items = list(runs)

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO runs (event_id, function, state, attempt, args, reason, exit_code, "
                "created_at, started_at, finished_at, log_path, parent_id, id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_run_params(r) for r in items],
            )

        await self._write(job)

    async def update_run(self, run: Run) -> None:
        """Replace the stored run that has ``run.id``."""

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE runs SET event_id = ?, function = ?, state = ?, attempt = ?, args = ?, "
                "reason = ?, exit_code = ?, created_at = ?, started_at = ?, finished_at = ?, "
                "log_path = ?, parent_id = ? WHERE id = ?",
                _run_params(run),
            )

        await self._write(job)

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run with this id, or None."""

        def job(conn: sqlite3.Connection) -> Run | None:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            return _run_from_row(row) if row else None

        return await self._read(job)

    async def list_runs(self, event_id: int) -> list[Run]:
        """Return an event's runs in creation order."""

        def job(conn: sqlite3.Connection) -> list[Run]:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE event_id = ? ORDER BY rowid", (event_id,)
            )
            return [_run_from_row(r) for r in rows]

        return await self._read(job)

    async def runs_with_state(self, *states: RunState) -> list[Run]:
        """Return the runs in any of these states, in creation order."""

        def job(conn: sqlite3.Connection) -> list[Run]:
            if not states:
                return []
            marks = ", ".join("?" for _ in states)
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE state IN ({marks}) ORDER BY rowid",
                [s.value for s in states],
            )
            return [_run_from_row(r) for r in rows]

        return await self._read(job)

    async def mark_interrupted(self) -> list[Run]:
        """Mark every run left RUNNING (by a stopped process) INTERRUPTED; return them."""

        def job(conn: sqlite3.Connection) -> list[Run]:
            now = _ts(utcnow())
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE state = ? ORDER BY rowid",
                (RunState.RUNNING.value,),
            ).fetchall()
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
            fresh = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks}) ORDER BY rowid", ids
            )
            return [_run_from_row(r) for r in fresh]

        return await self._write(job)

    async def max_attempt(self, event_id: int, function: str | None = None) -> int:
        """Return the highest attempt number of an event's runs (of one function), 0 if none."""

        def job(conn: sqlite3.Connection) -> int:
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

        return await self._read(job)

    # -- retention ---------------------------------------------------------------------------

    async def apply_retention(self, *, max_events: int, max_days: float, logs_dir: Path) -> int:
        """Delete the oldest events beyond ``max_events`` or older than ``max_days``.

        Their runs and run log files go with them. Events with a queued or running run are kept.

        Args:
            max_events: How many events to keep.
            max_days: How many days to keep events.
            logs_dir: The folder run log paths are relative to.

        Returns:
            How many events were deleted.
        """
        cutoff = _ts(utcnow() - timedelta(days=max_days))

        def job(conn: sqlite3.Connection) -> tuple[int, list[str]]:
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
            return len(ids), logs

        count, logs = await self._write(job)

        def unlink_logs() -> None:
            root = logs_dir.resolve()
            for rel in logs:
                target = (root / rel).resolve()
                if root in target.parents:
                    with contextlib.suppress(OSError):
                        target.unlink()

        if logs:
            await asyncio.to_thread(unlink_logs)
        return count
