"""The only translator from the core's notices into Textual messages.

The engine may publish thousands of output lines a second. The bridge collects notices and
posts one :class:`EngineActivity` message at most every ``interval`` seconds, with output
batched per run (bounded, so a flood cannot grow memory), and run updates, counts and problems
coalesced (the latest wins).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from textual.message_pump import MessagePump

from pocketci_tui.contract import (
    ClientNotice,
    CoreClient,
    CountsChanged,
    LinkChanged,
    ProblemsChanged,
    SettingsChanged,
    StatusDelivery,
)
from pocketci_tui.model import (
    EventMatched,
    EventStored,
    EventUpdated,
    RunOutput,
    RunUpdated,
)

from .messages import EngineActivity, OwnerLinkChanged, OwnerSettingsChanged
from .text import clean_lines

DEFAULT_INTERVAL = 0.05
"""Seconds between flushes."""

MAX_PENDING_LINES = 2_000
"""Output lines kept per run between two flushes (at most 40,000 lines/s reach the screen,
20,000 under a flood: far more than anyone reads); the Output pane replaces older ones by one
marker line. The full log stays on disk and opens in the pager."""

MAX_PENDING_BYTES = 4 * 1024 * 1024
"""The most memory the output lines kept per run between two flushes take (a line may be up to
64 KiB long; the Output pane keeps no more than this either)."""

FLOOD_INTERVAL = 0.1
"""Seconds between flushes while output floods in (a flush had to drop lines): the Output pane
is redrawn 10 times a second rather than 20, and a key press waits less often behind a redraw.
It still shows 20,000 lines a second."""

BURST_EVENTS = 10
"""New events within :data:`BURST_WINDOW` from which flushes wait :data:`BURST_INTERVAL`."""
BURST_WINDOW = 1.0
"""Seconds over which new events are counted: a steady storm (one event per flush, 17 a
second) is a burst as much as many events in one flush."""
BURST_INTERVAL = 0.25
"""Seconds between flushes while deliveries pour in."""


class EngineBridge:
    """Subscribes to the core and posts batched :class:`EngineActivity` messages.

    Args:
        target: Where messages go (the app).
        interval: Seconds between flushes.
        max_pending_lines: Output lines kept per run between two flushes.
        max_pending_bytes: The most memory they take, per run.
        burst_window: Seconds over which new events are counted to tell a burst.
    """

    def __init__(
        self,
        target: MessagePump,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_pending_lines: int = MAX_PENDING_LINES,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        burst_window: float = BURST_WINDOW,
    ) -> None:
        self._target = target
        self._burst_window = burst_window
        self._interval = interval
        self._max_pending = max_pending_lines
        self._max_pending_bytes = max_pending_bytes
        self._pending_bytes: dict[str, int] = {}
        """The memory each run's pending lines take (see :data:`MAX_PENDING_BYTES`)."""
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._handle: asyncio.TimerHandle | None = None
        self._batch = EngineActivity()
        self._arrivals: deque[float] = deque(maxlen=BURST_EVENTS)
        self._flooding = False
        self._lines = 0
        self.flushes = 0
        """How many messages were posted (for tests and benchmarks)."""
        self.notices = 0
        """How many notices arrived."""

    def attach(self, client: CoreClient) -> None:
        """Subscribe to ``client`` (call on the event loop, once it started).

        The counts and problems it tells a new subscriber at once are posted at once too, so
        the status bar shows them with the first frame after the start.
        """
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._unsubscribe = client.subscribe(self.on_notice)
        if self._handle is not None:
            self._handle.cancel()
            self.flush()

    def detach(self) -> None:
        """Unsubscribe and drop anything pending."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._batch = EngineActivity()

    def _owner_changed(self, notice: LinkChanged | SettingsChanged) -> None:
        """What came before the owner's link or settings changed is shown first, then the
        change itself."""
        if self._handle is not None:
            self._handle.cancel()
        self.flush()
        if isinstance(notice, LinkChanged):
            self._target.post_message(OwnerLinkChanged(notice))
        else:
            self._target.post_message(OwnerSettingsChanged(notice.settings))

    def on_notice(self, notice: ClientNotice) -> None:
        """Collect one notice; safe to call from the loop or (rarely) another thread."""
        if threading.get_ident() != self._thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_notice, notice)
            return
        self.notices += 1
        batch = self._batch
        if isinstance(notice, RunOutput):
            self._add_output(batch, notice)
        elif isinstance(notice, RunUpdated):
            batch.runs[notice.run.id] = notice.run
        elif isinstance(notice, EventStored):
            batch.stored.append(notice)
            self._arrivals.append(time.monotonic())
        elif isinstance(notice, EventUpdated):
            batch.updated[notice.event_id] = notice
        elif isinstance(notice, EventMatched):
            batch.matched[notice.event_id] = notice
        elif isinstance(notice, CountsChanged):
            batch.counts = notice
        elif isinstance(notice, ProblemsChanged):
            batch.problems = notice
        elif isinstance(notice, StatusDelivery):
            batch.deliveries[notice.run_id] = notice
        elif isinstance(notice, (LinkChanged, SettingsChanged)):
            self._owner_changed(notice)
            return
        if self._handle is None and self._loop is not None:
            # A burst of deliveries redraws the Events pane at a calmer pace: every redraw
            # costs the same whatever it shows, and the listener shares this loop.
            delay = BURST_INTERVAL if self.bursting else self._interval
            if self._flooding:
                delay = max(delay, FLOOD_INTERVAL)
            self._handle = self._loop.call_later(delay, self.flush)

    @property
    def bursting(self) -> bool:
        """Whether deliveries pour in: :data:`BURST_EVENTS` new events came within the burst
        window (flushes then wait :data:`BURST_INTERVAL`)."""
        arrivals = self._arrivals
        full = len(arrivals) == arrivals.maxlen
        return full and time.monotonic() - arrivals[0] <= self._burst_window

    def _add_output(self, batch: EngineActivity, notice: RunOutput) -> None:
        """Collect a run's new lines and when they arrived, at most ``max_pending`` per run
        and ``max_pending_bytes`` of them (the newest)."""
        if not batch.output:
            self._pending_bytes.clear()  # a new batch
        pending = batch.output.setdefault(notice.run_id, [])
        pending.extend(notice.lines)
        times = batch.times.setdefault(notice.run_id, [])
        if len(notice.times) == len(notice.lines):
            times.extend(notice.times)
        else:
            times.extend([None] * len(notice.lines))
        if notice.end is not None:
            batch.ends[notice.run_id] = notice.end
        held = self._pending_bytes.get(notice.run_id, 0) + sum(map(sys.getsizeof, notice.lines))
        excess = max(0, len(pending) - self._max_pending)
        held -= sum(map(sys.getsizeof, pending[:excess]))
        while held > self._max_pending_bytes and excess < len(pending) - 1:
            held -= sys.getsizeof(pending[excess])
            excess += 1
        self._pending_bytes[notice.run_id] = held
        if excess > 0:
            del pending[:excess]
            del times[:excess]
            batch.dropped[notice.run_id] = batch.dropped.get(notice.run_id, 0) + excess

    def flush(self) -> None:
        """Post what was collected as one message."""
        self._handle = None
        batch, self._batch = self._batch, EngineActivity()
        self._flooding = bool(batch.dropped)
        if not (
            batch.stored
            or batch.updated
            or batch.matched
            or batch.runs
            or batch.output
            or batch.counts is not None
            or batch.problems is not None
            or batch.deliveries
        ):
            return
        for run_id, lines in batch.output.items():
            batch.output[run_id] = clean_lines(lines)
        self.flushes += 1
        self._target.post_message(batch)
