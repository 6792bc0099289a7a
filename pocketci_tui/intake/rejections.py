"""Refused deliveries: counted, the recent ones kept (never their bodies), logged at a bounded rate.

Anyone who can reach the port can send requests that are refused (bad signature, wrong content
type...), and writing a log line for each would let them fill the disk (about 400 KB/s before
this). :class:`RejectionLog` writes the first few lines of each interval, then one line per
interval with how many more were refused and why. It also keeps the count, the last refusal
and the most recent ones in memory for the UI, and tells its subscribers (at most a few times
a second, however fast refusals come) with a :class:`RejectionSummary`.

A wrong secret or content type in the forge's webhook settings are the two most common set-up
mistakes, and the forge only shows its side: this is what lets the UI show ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pocketci_tui.model import utcnow

log = logging.getLogger("pocketci_tui.intake")

RECENT = 50
"""How many refusals are kept for the UI."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused request. Holds no part of the body.

    Attributes:
        at: When it was refused.
        status: The HTTP status answered (401, 415...).
        reason: Why, in a few words (``bad signature``); refusals are summed up by it.
        remote: The peer address as the listener saw it.
        event_name: The ``X-GitHub-Event`` header, if it looked like one.
        delivery_id: The ``X-GitHub-Delivery`` header, if it looked like one.
    """

    at: datetime
    status: int
    reason: str
    remote: str = ""
    event_name: str = ""
    delivery_id: str = ""
    detail: str = ""
    """More about this one (the content type sent, the delivery a replay repeats...)."""

    @property
    def text(self) -> str:
        """The reason and, when there is one, the detail."""
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass(frozen=True, slots=True)
class RejectionSummary:
    """What subscribers are told: how many refusals so far and the last one.

    Attributes:
        count: Refusals since the listener started.
        last: The most recent one.
    """

    count: int
    last: Rejection


class RejectionLog:
    """Counts, keeps and logs refused requests; see the module docstring.

    Args:
        interval: Seconds of one logging interval (and of one summary line).
        lines_per_interval: Lines written one by one in an interval before summing up.
        notify_every: The least seconds between two notices to subscribers.
    """

    def __init__(
        self, *, interval: float = 60.0, lines_per_interval: int = 5, notify_every: float = 0.5
    ) -> None:
        self.interval = interval
        self.lines_per_interval = lines_per_interval
        self.notify_every = notify_every
        self.count = 0
        """Refusals since start."""
        self.last: Rejection | None = None
        self._recent: deque[Rejection] = deque(maxlen=RECENT)
        self._window_start = 0.0
        self._lines = 0
        self._suppressed: Counter[str] = Counter()
        self._summary: asyncio.TimerHandle | None = None
        self._subscribers: list[Callable[[RejectionSummary], None]] = []
        self._notify: asyncio.TimerHandle | None = None
        self._notified_at = 0.0

    def subscribe(self, callback: Callable[[RejectionSummary], None]) -> Callable[[], None]:
        """Call ``callback`` (on the event loop) after refusals; return a function to stop."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def recent(self) -> list[Rejection]:
        """The most recent refusals, newest first."""
        return list(reversed(self._recent))

    def note(
        self,
        status: int,
        reason: str,
        *,
        remote: str = "",
        event_name: str = "",
        delivery_id: str = "",
        detail: str = "",
        level: int = logging.WARNING,
    ) -> None:
        """Record one refused request (call it on the event loop).

        Args:
            status: The HTTP status answered.
            reason: Why, in a few words; safe to log (no payload text).
            remote: The peer address.
            event_name: The event header, already checked to look like one (or empty).
            delivery_id: The delivery header, already checked to look like one (or empty).
            detail: More about this one, safe to log; not part of the summary's grouping.
            level: The log level of its line.
        """
        rejection = Rejection(utcnow(), status, reason, remote, event_name, delivery_id, detail)
        self.count += 1
        self.last = rejection
        self._recent.append(rejection)
        self._log(rejection, level)
        self._schedule_notice()

    # -- the log, at a bounded rate ----------------------------------------------------------

    def _log(self, rejection: Rejection, level: int) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.interval:
            self._flush_summary()
            self._window_start = now
            self._lines = 0
        if self._lines < self.lines_per_interval:
            self._lines += 1
            where = f" from {rejection.remote}" if rejection.remote else ""
            delivery = f" (delivery {rejection.delivery_id})" if rejection.delivery_id else ""
            log.log(
                level,
                "refused a request%s%s: %s (%d)",
                where,
                delivery,
                rejection.text,
                rejection.status,
            )
            if self._lines == self.lines_per_interval:
                log.log(
                    level,
                    "more refusals in the next %.0f s are counted, not logged one by one",
                    self.interval - (now - self._window_start),
                )
            return
        self._suppressed[f"{rejection.reason} ({rejection.status})"] += 1
        if self._summary is None:
            with contextlib.suppress(RuntimeError):  # no running loop: the next note flushes
                loop = asyncio.get_running_loop()
                delay = max(0.0, self._window_start + self.interval - now)
                self._summary = loop.call_later(delay, self._flush_summary)

    def _flush_summary(self) -> None:
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        if not self._suppressed:
            return
        total = sum(self._suppressed.values())
        parts = ", ".join(f"{n} x {why}" for why, n in self._suppressed.most_common(5))
        log.warning(
            "refused %d more request(s) in the last %.0f s: %s", total, self.interval, parts
        )
        self._suppressed.clear()

    # -- subscribers, at a bounded rate ------------------------------------------------------

    def _schedule_notice(self) -> None:
        if not self._subscribers or self._notify is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send_notice()
            return
        delay = max(0.0, self._notified_at + self.notify_every - time.monotonic())
        self._notify = loop.call_later(delay, self._send_notice)

    def _send_notice(self) -> None:
        self._notify = None
        self._notified_at = time.monotonic()
        last = self.last
        if last is None:
            return
        summary = RejectionSummary(self.count, last)
        for callback in list(self._subscribers):
            try:
                callback(summary)
            except Exception:
                log.exception("a subscriber to refused deliveries failed")

    def close(self) -> None:
        """Write the pending summary line and stop the timers."""
        self._flush_summary()
        if self._notify is not None:
            self._notify.cancel()
            self._notify = None
