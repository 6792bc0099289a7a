"""What the in-process core feeds a client beyond the engine's own notices.

:class:`StatusWatch` turns the engine's run counts, engine loads and problems, which the
engine keeps as state, into :class:`~pocketci_tui.contract.CountsChanged` and
:class:`~pocketci_tui.contract.ProblemsChanged` notices, so a client is told of a change
instead of asking on a timer: it compares them after each notice of the engine and whenever the
engine says its state changed without a notice (a run added, a problem raised or cleared).
:func:`delivery_of` turns the commit status sender's rows into
:class:`~pocketci_tui.contract.StatusDelivery` values, so the sender's news of a run's status
reaches the client as it is recorded. :func:`read_log_tail` reads the end of a finished run's
log file and counts its lines, so the tail says where it ends; :func:`read_stamped_tail` says
when each of its lines arrived too.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pocketci_tui.contract import (
    ClientNotice,
    CountsChanged,
    EngineLoadInfo,
    ProblemsChanged,
    StatusDelivery,
)
from pocketci_tui.stamps import MTIME_SLACK_MS, split_lines

if TYPE_CHECKING:
    from pocketci_tui.engine.dispatch import EngineClient
    from pocketci_tui.model import Notice
    from pocketci_tui.problems import Problem
    from pocketci_tui.store.outbox import OutboxRow

TAIL_READ_BYTES = 4 * 1024 * 1024
"""The most memory the end of a log file read at once takes (its lines as Python strings):
a log of long lines gives fewer lines than asked, the newest."""

Watch = Callable[[Callable[[], None]], Callable[[], None]]
"""Registers a callback called whenever something may have changed; returns how to stop."""


class StatusWatch:
    """Tells one subscriber the engine's counts and problems: now, then whenever they change.

    Args:
        engine: The engine whose state is watched.
        callback: The subscriber; it gets the current values at once.
        more_problems: The problems of other running parts (the commit status sender), told
            after the engine's.
        watch_more: Tells when ``more_problems`` may have changed (without it, they are only
            looked at when the engine's state changes).
    """

    def __init__(
        self,
        engine: EngineClient,
        callback: Callable[[ClientNotice], None],
        *,
        more_problems: Callable[[], Iterable[Problem]] | None = None,
        watch_more: Watch | None = None,
    ) -> None:
        self._engine = engine
        self._more_problems = more_problems
        self._callback = callback
        self._loop = asyncio.get_running_loop()
        self._soon: asyncio.Handle | None = None
        self._counts = counts_of(engine)
        self._problems = ProblemsChanged(self._all_problems())
        self._closed = False
        callback(self._counts)
        callback(self._problems)
        self._unwatch = [engine.watch_state(self._schedule)]
        if watch_more is not None:
            self._unwatch.append(watch_more(self._schedule))

    def on_notice(self, notice: Notice) -> None:
        """Pass an engine notice on, then compare once the publishing code has run on."""
        self._callback(notice)
        self._schedule()

    def _schedule(self) -> None:
        """Compare soon: after the engine's code that changed something has run on."""
        if self._soon is None and not self._closed:
            self._soon = self._loop.call_soon(self.check)

    def check(self) -> None:
        """Tell the subscriber the counts and problems that differ from those last told."""
        self._soon = None
        if self._closed:
            return
        counts = counts_of(self._engine)
        if counts != self._counts:
            self._counts = counts
            self._callback(counts)
        problems = ProblemsChanged(self._all_problems())
        if problems != self._problems:
            self._problems = problems
            self._callback(problems)

    def _all_problems(self) -> tuple[Problem, ...]:
        more = tuple(self._more_problems()) if self._more_problems is not None else ()
        return (*self._engine.problems(), *more)

    def close(self) -> None:
        """Stop telling."""
        self._closed = True
        for stop in self._unwatch:
            stop()
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None


def counts_of(engine: EngineClient) -> CountsChanged:
    """The engine's run counts and engine loads, as a client is told them."""
    loads = tuple(EngineLoadInfo(*load) for load in engine.engine_loads())
    return CountsChanged(*engine.counts(), engines=loads)


def delivery_of(row: OutboxRow) -> StatusDelivery:
    """What a client is told of a run's commit status row."""
    return StatusDelivery(row.run_id or "", row.event_id, row.status, row.detail)


def tell_delivery(callback: Callable[[ClientNotice], None], row: OutboxRow) -> None:
    """Tell ``callback`` of a run's commit status row (the approval status is no run's)."""
    if row.run_id:
        callback(delivery_of(row))


def read_log_tail(path: Path, lines: int) -> tuple[list[str], int] | None:
    """Return the last ``lines`` lines of a log file (their texts, without the stamps) and how
    many it has, or None when it does not exist. Lines end at ``\\n`` only, as the engine
    wrote them."""
    found = read_stamped_tail(path, lines)
    return None if found is None else (found[0], found[1])


def read_stamped_tail(path: Path, lines: int) -> tuple[list[str], int, list[float | None]] | None:
    """Return the last ``lines`` lines of a log file (fewer when they take more than
    :data:`TAIL_READ_BYTES`), how many it has, and when each of them arrived, or None when it
    does not exist.

    The texts come without their stamps; a line of a log written before stamps has no time
    (None). The stamps' dates are taken from the file's last change (see
    :func:`pocketci_tui.stamps.resolve`).
    """
    try:
        after_ms = path.stat().st_mtime_ns // 1_000_000 + MTIME_SLACK_MS
    except FileNotFoundError:
        return None
    found = _read_tail(path, lines)
    if found is None:
        return None
    texts, times = split_lines(found[0], after_ms)
    return texts, found[1], times


def _read_tail(path: Path, lines: int) -> tuple[list[str], int] | None:
    kept: deque[str] = deque()
    size = 0
    counted = 0
    try:
        with path.open("r", encoding="utf-8", errors="replace", newline="\n") as handle:
            for line in handle:
                counted += 1
                kept.append(line)
                size += sys.getsizeof(line)
                while len(kept) > lines or (size > TAIL_READ_BYTES and len(kept) > 1):
                    size -= sys.getsizeof(kept.popleft())
    except FileNotFoundError:
        return None
    return [line.rstrip("\n") for line in kept], counted
