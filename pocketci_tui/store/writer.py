"""The store's single writer thread: a job queue, group commit, rollback-and-retry.

One dedicated thread owns the only writing connection. Every write is a job queued to it; the
thread drains every job that is waiting (up to :data:`MAX_BATCH`), runs them in one transaction
and commits once. When a job fails, the batch is rolled back and its jobs run again one by one,
so only that job fails. With ``synchronous=FULL`` the commit is the fsync, so many concurrent
deliveries share one fsync (group commit). A job's caller is only answered after that commit
returned, so nothing is reported stored before it is on disk; the answers are handed to each
caller's event loop with one wake-up per loop and batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pocketci_tui.paths import create_private_file, make_private_dir
from pocketci_tui.store.connection import StoreError, connect
from pocketci_tui.store.recording import _record_many, _RecordJob
from pocketci_tui.store.schema import migrate

T = TypeVar("T")

MAX_BATCH = 512
"""The most jobs one transaction takes, so a flood cannot grow a transaction without end."""


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


class Writer:
    """The thread that runs every write of one store, in batches, on its own connection.

    Args:
        path: The SQLite file (its folders are created).
        busy_timeout: Seconds a write waits for another process's lock.
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writer_running = False  # set by the writer thread itself (cheaper than is_alive)

    def start(self) -> asyncio.Future[None]:
        """Start the thread; it opens and migrates the database first.

        Returns:
            A future of the running loop, done once the database is ready for writing; it
            fails with :class:`StoreError` when the database cannot be opened for writing.
        """
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._writer_main, args=(loop, ready), name="pocketci-db-write", daemon=True
        )
        self._thread.start()
        return ready

    def stop(self) -> None:
        """Ask the thread to finish the jobs queued so far and close its connection."""
        self._jobs.put(None)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (blocking: call it off the event loop)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` to run on the writer's connection, in a transaction.

        Returns:
            A future of the running loop, done with ``fn``'s result once its transaction is
            committed, or with :class:`StoreError` when it could not be.

        Raises:
            StoreError: The writer thread has stopped.
        """
        if not self._writer_running:
            raise StoreError("the database writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, loop, future))
        return future

    def _writer_main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            # Raw payloads of private repositories: private folder, private file (SQLite gives
            # its -wal and -shm files the database's own mode).
            make_private_dir(self.path.parent)
            create_private_file(self.path)
            conn = connect(self.path, self.busy_timeout)
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
