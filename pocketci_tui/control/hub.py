"""The owner's notices, numbered, buffered and handed to each attached client at its own pace.

:class:`NoticeHub` subscribes once to the in-process core and numbers every notice (``seq``,
from 1, under an ``instance`` id new at each start), and keeps the last :data:`RING_SIZE`
(about :data:`RING_BYTES` at most) so a client that lost its connection resumes right after the
last number it saw. A notice is encoded into its text frame once, when a client is first to be
sent it, and that frame is shared by every client: an owner nobody is attached to spends
nothing on encoding (a build flooding output publishes thousands of notices a second). The
byte bounds count what a notice holds in memory as it is kept: its objects until it is
encoded (a short output line costs several times its length as a Python string, beside its
arrival time), then its frame. A
client whose number is older than the buffer, or of another instance (the owner restarted), is
told to re-read the snapshot instead (:meth:`NoticeHub.open` returns the resync frame).

Publishing never awaits and never waits for a client: the notice is appended to each client's
queue, which holds at most :data:`QUEUE_SIZE` notices (and about :data:`QUEUE_BYTES`). A
client whose queue is full (a stalled SSH link, a suspended terminal) is cut off there: its
queue is freed, and its connection closed as too slow (:class:`ClientTooSlow`); it reconnects
with its last number and resumes, or resyncs. So one client can never slow the intake, the
engine or another client, and cannot make the owner's memory grow.

The latest counts, problems and refusal summary are kept for the snapshot, which is how a new
(or resynced) client gets them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pocketci_tui.contract import (
    CountsChanged,
    ProblemsChanged,
    RejectionSummary,
    SecretChanged,
)
from pocketci_tui.control.wire import WireError, WireNotice, encode_notice
from pocketci_tui.model import RunOutput

if TYPE_CHECKING:
    from pocketci_tui.contract import CoreClient

__all__ = [
    "QUEUE_BYTES",
    "QUEUE_SIZE",
    "RING_BYTES",
    "RING_SIZE",
    "UI_RING_BYTES",
    "ClientTooSlow",
    "Entry",
    "HubClient",
    "NoticeHub",
]

log = logging.getLogger("pocketci_tui.control")

RING_SIZE = 10_000
"""How many of the latest notices are kept for clients that resume."""

RING_BYTES = 32 * 1024 * 1024
"""The most bytes of frames the ring keeps (a flood of output comes in large batches: the
oldest are dropped sooner, and a client that was away longer resyncs)."""

UI_RING_BYTES = 8 * 1024 * 1024
"""The most bytes the ring keeps in an owner that is itself a UI, whose memory is the UI's: a
client away through a flood resyncs sooner (it re-reads the screen), nothing is lost."""

QUEUE_SIZE = 1_000
"""How many notices may wait for one client before it is cut off as too slow."""

QUEUE_BYTES = 16 * 1024 * 1024
"""How many bytes of frames may wait for one client before it is cut off as too slow."""


class Entry:
    """One numbered notice, and its frame once a client needed it.

    Args:
        seq: Its number.
        notice: The notice.
        resized: Called with the entry and the change of its :attr:`size` when its frame
            replaces its notice, so that whoever counts it keeps counting what it holds.
    """

    __slots__ = ("_frame", "_resized", "notice", "seq", "size")

    def __init__(
        self,
        seq: int,
        notice: WireNotice,
        resized: Callable[[Entry, int], None] | None = None,
    ) -> None:
        self.seq = seq
        self.notice: WireNotice | None = notice
        self._frame: str | None = None
        self._resized = resized
        self.size = _size_of(notice)
        """About how many bytes it holds in memory (what the bounds count): its notice's
        objects, then its frame once encoded."""

    def frame(self) -> str:
        """The text frame: encoded the first time, then the same text for every client.

        A notice that cannot be encoded (a bug, never the peer's doing) keeps its number
        with a null notice, which a client skips: its stream has no gap.
        """
        frame = self._frame
        if frame is None:
            try:
                encoded: Any = encode_notice(self.notice) if self.notice is not None else None
            except WireError:
                log.exception("notice %d could not be encoded for attached clients", self.seq)
                encoded = None
            frame = json.dumps({"seq": self.seq, "notice": encoded}, separators=(",", ":"))
            self._frame = frame
            self.notice = None  # the frame is all that is needed from now on
            size = ENTRY_BYTES + sys.getsizeof(frame)
            change, self.size = size - self.size, size
            if self._resized is not None:
                self._resized(self, change)
        return frame


ENTRY_BYTES = 64
"""What an entry itself takes, besides its notice or its frame."""

NOTICE_BYTES = 512
"""What a notice other than output is taken to hold (a run, an event's few fields)."""

FLOAT_BYTES = sys.getsizeof(0.0)


def _size_of(notice: WireNotice) -> int:
    """About the bytes a notice holds in memory, without encoding it: for output, its
    tuples, every line as the string it is (a short line costs several times its length),
    and every distinct arrival time; anything else is taken as a small notice."""
    if isinstance(notice, RunOutput):
        lines, times = notice.lines, notice.times
        return (
            ENTRY_BYTES
            + NOTICE_BYTES
            + sys.getsizeof(lines)
            + sum(map(sys.getsizeof, lines))
            + sys.getsizeof(times)
            + FLOAT_BYTES * len(set(map(id, times)))
        )
    return ENTRY_BYTES + NOTICE_BYTES


class ClientTooSlow(Exception):
    """The client did not keep up: its queue filled, and it was cut off (it may resume)."""


class HubClient:
    """One attached client's place in the stream: what it still has to be sent.

    Created by :meth:`NoticeHub.open`, with the frames it missed (its backlog) copied from the
    ring in the same step as it starts receiving new ones, so nothing falls between the two.

    Args:
        backlog: Frames it missed, oldest first (not counted against the queue's bound).
        last: The number of the last notice it has (or will have from the backlog).
        size: The most frames that may wait (besides the backlog).
        max_bytes: The most bytes of frames that may wait (besides the backlog).
    """

    def __init__(self, backlog: list[Entry], last: int, size: int, max_bytes: int) -> None:
        self._backlog: deque[Entry] = deque(backlog)
        self._queue: deque[tuple[Entry, int]] = deque()
        """What waits besides the backlog, each with the size it was counted at (an entry
        another client had encoded since is smaller now)."""
        self._bytes = 0
        self._size = size
        self._max_bytes = max_bytes
        self._wake = asyncio.Event()
        if backlog:
            self._wake.set()
        self.last = backlog[-1].seq if backlog else last
        """The number of the last notice queued for it (it resumes after this)."""
        self.sent = last
        """The number of the last notice taken to be sent."""
        self.too_slow = False
        """True once it was cut off for not keeping up."""
        self.closed = False

    @property
    def waiting(self) -> int:
        """How many frames wait to be sent (backlog included)."""
        return len(self._backlog) + len(self._queue)

    def offer(self, entry: Entry) -> bool:
        """Queue a notice without waiting; False (and cut off) when the queue is full."""
        if self.closed or self.too_slow:
            return False
        if len(self._queue) >= self._size or self._bytes + entry.size > self._max_bytes:
            self.too_slow = True
            self._queue.clear()
            self._backlog.clear()
            self._bytes = 0
            self._wake.set()
            return False
        self._queue.append((entry, entry.size))
        self._bytes += entry.size
        self.last = entry.seq
        self._wake.set()
        return True

    async def take(self) -> list[str]:
        """Wait for frames to send, and take the oldest waiting: a quarter of the queue's
        bounds at most, so that what the sender holds while the client reads it slowly is
        small, and the rest still counts against the bounds (a client that does not keep up
        is cut off at the bound, not at twice it).

        Returns:
            The frames; an empty list once the client was closed.

        Raises:
            ClientTooSlow: It was cut off.
        """
        while True:
            if self.too_slow:
                raise ClientTooSlow(f"more than {self._size} notices waited for it")
            if self.closed:
                return []
            if self._backlog or self._queue:
                break
            self._wake.clear()
            await self._wake.wait()
        taken: list[Entry] = []
        frames, room = max(1, self._size // 4), max(1, self._max_bytes // 4)
        while (self._backlog or self._queue) and len(taken) < frames:
            if self._backlog:
                entry = self._backlog[0]
                size = entry.size
            else:
                entry, size = self._queue[0]
            if taken and size > room:
                break
            if self._backlog:
                self._backlog.popleft()
            else:
                self._queue.popleft()
                self._bytes -= size
            taken.append(entry)
            room -= size
        self.sent = taken[-1].seq
        return [entry.frame() for entry in taken]

    def close(self) -> None:
        """Stop it (idempotent): :meth:`take` returns nothing more."""
        self.closed = True
        self._queue.clear()
        self._backlog.clear()
        self._bytes = 0
        self._wake.set()


class NoticeHub:
    """Numbers the core's notices and hands them to every attached client; see the module
    docstring.

    Args:
        ring_size: How many notices are kept for resuming (:data:`RING_SIZE`).
        ring_bytes: The most bytes kept for resuming (:data:`RING_BYTES`).
        queue_size: A client's bound (:data:`QUEUE_SIZE`).
        queue_bytes: A client's bound in bytes (:data:`QUEUE_BYTES`).
    """

    def __init__(
        self,
        *,
        ring_size: int = RING_SIZE,
        ring_bytes: int = RING_BYTES,
        queue_size: int = QUEUE_SIZE,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        self.instance = uuid.uuid4().hex
        """This start's id: a number of another instance means nothing here."""
        self.seq = 0
        """The number of the last notice published (0: none yet)."""
        self._ring: deque[Entry] = deque(maxlen=ring_size)
        self._ring_bytes = 0
        self._max_ring_bytes = ring_bytes
        self._queue_size = queue_size
        self._queue_bytes = queue_bytes
        self._clients: list[HubClient] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self.counts: CountsChanged | None = None
        """The latest counts published."""
        self.problems: ProblemsChanged | None = None
        """The latest problems published."""
        self.refusals: RejectionSummary | None = None
        """The latest refusal summary published (None: nothing refused since start)."""
        self.cut_off = 0
        """How many clients were cut off for not keeping up."""

    def start(self, core: CoreClient) -> None:
        """Subscribe to ``core``'s notices, refusals and secret changes (once).

        Raises:
            NotStarted: The core is not running.
        """
        if self._unsubscribe:
            return
        self._unsubscribe.append(core.subscribe(self.publish))
        self._unsubscribe.append(core.subscribe_refusals(self.publish))
        if core.secrets is not None:
            self._unsubscribe.append(
                core.secrets.watch(lambda name: self.publish(SecretChanged(name)))
            )

    def stop(self) -> None:
        """Unsubscribe and close every client (idempotent)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, []
        for stop in unsubscribe:
            stop()
        clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    @property
    def clients(self) -> int:
        """How many clients are attached."""
        return len(self._clients)

    @property
    def oldest(self) -> int:
        """The number of the oldest notice kept (``seq + 1`` when none is)."""
        return self._ring[0].seq if self._ring else self.seq + 1

    def publish(self, notice: WireNotice) -> None:
        """Number a notice, keep it and hand it to every client; never waits, never raises,
        and encodes nothing (the first client to be sent it does)."""
        if isinstance(notice, CountsChanged):
            self.counts = notice
        elif isinstance(notice, ProblemsChanged):
            self.problems = notice
        elif isinstance(notice, RejectionSummary):
            self.refusals = notice
        self.seq += 1
        entry = Entry(self.seq, notice, self._resized)
        self._keep(entry)
        if not self._clients:
            return
        slow = [c for c in self._clients if not c.offer(entry)]
        for client in slow:
            self._drop(client)
            if client.too_slow:
                self.cut_off += 1

    def _keep(self, entry: Entry) -> None:
        if len(self._ring) == self._ring.maxlen:
            self._ring_bytes -= self._ring[0].size
        self._ring.append(entry)
        self._ring_bytes += entry.size
        self._trim()

    def _trim(self) -> None:
        while self._ring_bytes > self._max_ring_bytes and len(self._ring) > 1:
            self._ring_bytes -= self._ring.popleft().size

    def _resized(self, entry: Entry, change: int) -> None:
        """An entry's frame replaced its notice: count the frame if the ring still keeps it
        (it keeps every number from its oldest to the latest)."""
        if self._ring and entry.seq >= self._ring[0].seq:
            self._ring_bytes += change
            self._trim()

    def open(
        self, after: int | None, instance: str | None
    ) -> tuple[HubClient, dict[str, Any] | None]:
        """Attach a client that has every notice up to ``after`` of ``instance``.

        It is sent the notices after ``after`` from the ring, then each new one. When it cannot
        be (no number, another instance, a number older than the ring or not yet given), it is
        to re-read the snapshot: the resync frame to send it first is returned, and it is sent
        the notices after the current number.

        Returns:
            The client, and the resync frame (None when it resumes).
        """
        resumes = (
            after is not None and instance == self.instance and self.oldest - 1 <= after <= self.seq
        )
        if resumes:
            assert after is not None
            start = after + 1 - self.oldest
            backlog = list(itertools.islice(self._ring, start, None))
            client = HubClient(backlog, after, self._queue_size, self._queue_bytes)
            resync = None
        else:
            client = HubClient([], self.seq, self._queue_size, self._queue_bytes)
            resync = {"resync": True, "seq": self.seq, "instance": self.instance}
        self._clients.append(client)
        return client, resync

    def close(self, client: HubClient) -> None:
        """Detach a client (idempotent)."""
        client.close()
        self._drop(client)

    def _drop(self, client: HubClient) -> None:
        with contextlib.suppress(ValueError):
            self._clients.remove(client)
