"""The SQLite store of events and runs: the :class:`Store` API.

Writes go to the single writer thread (:mod:`pocketci_tui.store.writer`), which commits them in
groups, so a caller is only answered once its write is on disk. Reads run on a second thread
with its own read-only-by-use connection (WAL lets it read while the writer writes). A store
opened with :meth:`Store.open_read_only` has no writer at all and reads through a read-only
connection: the one-shot commands use it beside a running owner. Nothing
here blocks the event loop. Rows become models in :mod:`pocketci_tui.store.rows`, and
deliveries are recorded by :mod:`pocketci_tui.store.recording`; the SQL of runs is in
:mod:`pocketci_tui.store.runs`, of commit statuses in :mod:`pocketci_tui.store.outbox`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from pocketci_tui.eventquery import parse as parse_query
from pocketci_tui.model import (
    CallProcess,
    Event,
    EventStatus,
    MatchInputs,
    RepoSummary,
    Run,
    RunState,
    StoredEvent,
    bounded,
    utcnow,
)
from pocketci_tui.store import outbox, retention, summary
from pocketci_tui.store import runs as run_sql
from pocketci_tui.store.connection import (
    DEFAULT_BUSY_TIMEOUT,
    StoreError,
    connect,
    connect_read_only,
)
from pocketci_tui.store.outbox import OutboxRow, StatusRouter
from pocketci_tui.store.polled import PollLedger
from pocketci_tui.store.query import where as query_where
from pocketci_tui.store.recording import Replayed, _RecordJob
from pocketci_tui.store.rows import (
    _EVENT_COLUMNS,
    _event_from_row,
    _ts,
)
from pocketci_tui.store.schema import MIGRATIONS
from pocketci_tui.store.writer import Writer

__all__ = ["DEFAULT_BUSY_TIMEOUT", "Replayed", "Store", "StoreError"]

T = TypeVar("T")


class Store:
    """Events and runs in one SQLite file. Create it with :meth:`open`.

    ``list_events`` returns events without their payload (``body == b""``) so listing stays fast
    on large histories; ``get_event`` and ``events_with_status`` return the full body.
    """

    def __init__(self, path: Path, busy_timeout: float, *, read_only: bool = False) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.read_only = read_only
        self._writer = Writer(path, busy_timeout)
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketci-db-read")
        self._read_local = threading.local()
        self._closed = False
        self.status_router: StatusRouter | None = None
        """Which runs get commit statuses (:mod:`pocketci_tui.store.outbox`); None: none."""
        self.polls = PollLedger(self._write, self._read)
        """The polled repositories' refs (:mod:`pocketci_tui.store.polled`)."""

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
        ready = store._writer.start()
        try:
            await ready
        except BaseException:
            store._closed = True
            store._reader.shutdown(wait=False)
            store._writer.join(timeout=5)
            raise
        return store

    @classmethod
    async def open_read_only(
        cls, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> Store:
        """Open an existing database for reading only, beside whoever owns it.

        Nothing is created, migrated, recovered or written; every write method raises
        :class:`StoreError`.

        Args:
            path: The SQLite file.
            busy_timeout: Seconds a read waits for a lock.

        Returns:
            The open store.

        Raises:
            FileNotFoundError: There is no database there yet.
            StoreError: It cannot be read, or its schema is not this program's.
        """
        if not await asyncio.to_thread(path.is_file):
            raise FileNotFoundError(path)
        store = cls(path, busy_timeout, read_only=True)
        try:
            version = await store._read(
                lambda c: int(c.execute("PRAGMA user_version").fetchone()[0])
            )
            if version != len(MIGRATIONS):
                newer = version > len(MIGRATIONS)
                raise StoreError(
                    f"the database {path} has schema version {version}, "
                    + (
                        f"newer than this program knows ({len(MIGRATIONS)}); upgrade pocketci-tui"
                        if newer
                        else f"older than this program's ({len(MIGRATIONS)}); it is upgraded "
                        "when pocketci-tui (or serve) starts on it"
                    )
                )
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        """Finish the queued writes and close both connections."""
        if self._closed:
            return
        self._closed = True
        self._writer.stop()
        await asyncio.to_thread(self._writer.join)
        await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
        self._reader.shutdown(wait=True)

    # -- the writer thread -------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        if self.read_only:
            raise StoreError("the store is open read-only")
        return await self._writer.submit(fn)

    # -- the reader thread -------------------------------------------------------------------

    def _read_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._read_local, "conn", None)
        if conn is None:
            opener = connect_read_only if self.read_only else connect
            conn = opener(self.path, self.busy_timeout)
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
        self,
        event: Event,
        status: EventStatus,
        detail: str = "",
        *,
        digest: str = "",
        refire: bool = False,
    ) -> tuple[StoredEvent, bool]:
        """Store a delivery, or record a redelivery of one already stored.

        Args:
            event: The normalized event (its ``id`` is ignored).
            status: The status to store a new event with.
            detail: Why (for ignored events), shown in the UI.
            digest: The body's signature (hex), remembered to recognise replays; empty for
                none.
            refire: Store it even when its body is known under another delivery id (a
                deliberate re-fire).

        Returns:
            The stored event (with its id) and True when it was already stored: then the
            original event is returned, its redelivery count increased and the hook id recorded.

        Raises:
            Replayed: ``digest`` is known under another delivery id (and not ``refire``).
            StoreError: It could not be stored durably.
        """

        return await self._write(_RecordJob(event, status, detail, digest, refire))

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
            text: The events filter (:mod:`pocketci_tui.eventquery`): free text (a
                case-insensitive substring of the repository, filter, event type, sha, title or
                author) beside ``state:``, ``event:`` and ``repo:`` terms.

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
                conditions, more = query_where(parse_query(text))
                where.extend(conditions)
                params.extend(more)
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
        """Change an event's status and detail (a fork's approval status is queued with it)."""
        router = self.status_router

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE events SET status = ?, detail = ? WHERE id = ?",
                (status.value, bounded(detail), event_id),
            )
            outbox.queue_approval_status(
                conn, router, event_id, status is EventStatus.WAITING, detail
            )

        await self._write(job)

    async def set_event_commit(self, event_id: int, ref: str, sha: str) -> None:
        """Record the ref and commit an event without a commit id was resolved to.

        Re-runs of the event then build the same commit, and lists show which one it was.
        """

        def job(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE events SET ref = ?, sha = ? WHERE id = ?", (ref, sha, event_id))

        await self._write(job)

    async def save_match_inputs(self, event_id: int, inputs: MatchInputs) -> None:
        """Remember what an event's dispatch matched against (replacing the last one)."""
        changes = json.dumps(list(inputs.changes)) if inputs.changes is not None else None

        def job(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO match_inputs (event_id, module_key, secret_names, changes) "
                "VALUES (?, ?, ?, ?)",
                (event_id, inputs.module_key, json.dumps(list(inputs.secret_names)), changes),
            )

        await self._write(job)

    async def match_inputs(self, event_id: int) -> MatchInputs | None:
        """What the event's last full dispatch matched against, or None if it never got there."""

        def job(conn: sqlite3.Connection) -> MatchInputs | None:
            row = conn.execute(
                "SELECT module_key, secret_names, changes FROM match_inputs WHERE event_id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                return None
            changes = json.loads(row["changes"]) if row["changes"] is not None else None
            return MatchInputs(
                module_key=row["module_key"],
                secret_names=tuple(str(n) for n in json.loads(row["secret_names"])),
                changes=tuple(str(c) for c in changes) if changes is not None else None,
            )

        return await self._read(job)

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

    # -- runs (the SQL in :mod:`pocketci_tui.store.runs`) -----------------------------------

    async def add_runs(self, runs: Sequence[Run]) -> None:
        """Insert new runs (in one transaction, with their commit statuses)."""
        items = list(runs)
        router = self.status_router
        await self._write(lambda conn: run_sql.insert_runs(conn, router, items))

    async def update_run(self, run: Run) -> None:
        """Replace the stored run that has ``run.id`` (a finished run's call record goes).

        A change of state queues the run's commit status in the same transaction.
        """
        router = self.status_router
        await self._write(lambda conn: run_sql.update_run(conn, router, run))

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run with this id, or None."""
        return await self._read(lambda conn: run_sql.get_run(conn, run_id))

    async def list_runs(self, event_id: int) -> list[Run]:
        """Return an event's runs in creation order."""
        return await self._read(lambda conn: run_sql.list_runs(conn, event_id))

    async def queued_runs(self) -> list[str]:
        """The ids of the queued runs, first to start first."""
        return await self._read(summary.queued_run_ids)

    async def repositories(self) -> list[RepoSummary]:
        """How each repository stands: newest event, last build that ended, and when."""
        return await self._read(summary.repository_summaries)

    async def runs_by_event(self, event_ids: Sequence[int]) -> dict[int, list[Run]]:
        """Return the runs of several events at once, each event's in creation order.

        Args:
            event_ids: The events (an event without runs maps to an empty list).

        Returns:
            The runs per event id, every given id included.
        """
        wanted = list(dict.fromkeys(event_ids))
        return await self._read(lambda conn: run_sql.runs_by_event(conn, wanted))

    async def runs_with_state(self, *states: RunState) -> list[Run]:
        """Return the runs in any of these states, in creation order."""
        return await self._read(lambda conn: run_sql.runs_with_state(conn, states))

    async def record_call(self, call: CallProcess) -> None:
        """Record the process group of a run's ``dagger call`` as it starts (durably).

        The record goes when the run is stored finished (:meth:`update_run`) or interrupted.
        """
        await self._write(lambda conn: run_sql.record_call(conn, call))

    async def recorded_calls(self) -> list[CallProcess]:
        """Return the calls recorded as started whose runs have not finished since."""
        return await self._read(run_sql.recorded_calls)

    async def mark_interrupted(self, reasons: Mapping[str, str] | None = None) -> list[Run]:
        """Mark every run left RUNNING (by a stopped process) INTERRUPTED; return them.

        Called once at start, after the calls that process left running were stopped: every
        call record goes too.

        Args:
            reasons: The reason to record for some of them, by run id (a call stopped at the
                restart); the others keep theirs or get the usual one.

        Returns:
            The runs as now stored.
        """
        router = self.status_router
        return await self._write(lambda conn: run_sql.mark_interrupted(conn, router, reasons))

    async def max_attempt(self, event_id: int, function: str | None = None) -> int:
        """Return the highest attempt number of an event's runs (of one function), 0 if none."""
        return await self._read(lambda conn: run_sql.max_attempt(conn, event_id, function))

    # -- commit statuses ---------------------------------------------------------------------

    async def due_statuses(self) -> list[OutboxRow]:
        """The commit statuses still to deliver, oldest first."""
        return await self._read(outbox.due_rows)

    async def due_status_keys(self, limit: int = 64) -> list[tuple[str, str, str, str]]:
        """The contexts with commit statuses still to deliver, the longest waiting first."""
        return await self._read(lambda conn: outbox.due_keys(conn, limit))

    async def claim_status(self, key: tuple[str, str, str, str]) -> OutboxRow | None:
        """Take the newest undelivered status of a context to send (the older are superseded)."""
        return await self._write(lambda conn: outbox.claim_latest(conn, key))

    async def settle_status(
        self,
        row_id: int,
        status: str,
        detail: str,
        claim_next: tuple[str, str, str, str] | None,
    ) -> OutboxRow | None:
        """Record how a status's delivery went and, in the same write, claim the next one.

        Args:
            row_id: The status delivered (or tried).
            status: ``sent``, ``failed``, ``queued`` or ``sending`` (to retry).
            detail: How it went.
            claim_next: The context whose next status to claim, or None.

        Returns:
            The claimed status, or None.
        """

        def job(conn: sqlite3.Connection) -> OutboxRow | None:
            outbox.mark_row(conn, row_id, status, detail)
            return outbox.claim_latest(conn, claim_next) if claim_next is not None else None

        return await self._write(job)

    async def mark_status(self, row_id: int, status: str, detail: str = "") -> None:
        """Record how a status's delivery went: ``sent``, ``failed`` or ``queued`` (retry)."""
        await self._write(lambda conn: outbox.mark_row(conn, row_id, status, detail))

    async def run_statuses(self, run_ids: Sequence[str]) -> dict[str, OutboxRow]:
        """The newest commit status of each run, by run id (runs without one are absent)."""
        wanted = list(dict.fromkeys(run_ids))
        return await self._read(lambda conn: outbox.run_deliveries(conn, wanted))

    async def refused_statuses(self) -> list[OutboxRow]:
        """Each repository whose last status was refused by the forge, with that status."""
        return await self._read(outbox.refused_repositories)

    async def all_statuses(self) -> list[OutboxRow]:
        """Every commit status row, oldest first."""
        return await self._read(outbox.all_rows)

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
        count, logs = await self._write(
            lambda conn: retention.delete_expired(conn, cutoff, max_events)
        )
        if logs:
            await asyncio.to_thread(retention.remove_logs, logs_dir, logs)
        return count
