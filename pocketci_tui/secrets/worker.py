"""The one thread a secret store's blocking calls run on, each bounded by a time limit.

The keyring backends block (D-Bus, the Keychain, Argon2, file I/O) and some may never return
(a hung or locked keyring). Each store hands its calls to one worker of its own, so the event
loop waits at most the limit and gets a timeout to report, and a call that never returns holds
neither the process's exit nor the loop's default thread pool. Kept apart from the stores, this
is the only threading in the secret stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["_Worker"]

T = TypeVar("T")


class _Worker:
    """One daemon thread that runs blocking backend calls, one at a time.

    A daemon thread (not a ThreadPoolExecutor) so a call that never returns cannot keep the
    process from exiting, and cannot eat the loop's default pool.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[
            tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.busy_since: float | None = None

    IDLE_EXIT = 10.0
    """An idle thread ends after this many seconds; the next call starts a new one."""

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                fn, fut, loop = self._queue.get(timeout=self.IDLE_EXIT)
            except queue.Empty:
                with self._start_lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            if fut.cancelled():
                continue
            self.busy_since = time.monotonic()
            try:
                result, error = fn(), None
            except BaseException as exc:
                result, error = None, exc
            finally:
                self.busy_since = None
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(_settle, fut, result, error)

    async def run(self, fn: Callable[[], T], limit: float) -> T:
        """Run ``fn`` on the worker thread and wait at most ``limit`` seconds.

        Raises:
            TimeoutError: ``fn`` did not return in time (it keeps running in the background).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, fut, loop))
        self._ensure_thread()  # after the put: an idle thread never exits with work queued
        return await asyncio.wait_for(fut, limit)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
