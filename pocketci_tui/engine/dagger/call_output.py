"""The output of a ``dagger call``: masked, written to the run's log file, batched to a callback.

* Output is masked line by line after the lines are reassembled from the pipe's chunks, so a
  secret split across two writes is still caught. A line longer than
  :data:`~pocketci_tui.engine.proc.MAX_LINE` is split, preferably at a blank; a secret inside a
  run of more than 1 KiB without blanks that straddles such a split is not masked (a known
  limit, like the ones the masker documents).
* The log file holds the output only (no header or trailer): the argv and the outcome are
  recorded with the run. Each line is stamped with the time its chunk arrived
  (:mod:`pocketci_tui.stamps`); the callback gets the same moments beside the lines.
* The log file is written from the event loop: a batch is one buffered write, and the buffer is
  flushed every ~100 ms and at the end, never fsynced per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pocketci_tui.engine.masking import Masker
from pocketci_tui.stamps import now_ms, stamp_lines

log = logging.getLogger(__name__)

TAIL_LINES = 20
"""Non-empty output lines kept for the failure reason."""

REASON_LINES = 5
"""How many of them the reason shows."""

BATCH_LINES = 500
"""Deliver a batch as soon as this many lines are pending ..."""

BATCH_INTERVAL = 0.05
"""... and otherwise every this many seconds (the log is flushed every other tick)."""


class CallOutput:
    """Masks output lines and sends them to the log file and, in batches, to the callback."""

    def __init__(
        self,
        run_id: str,
        on_lines: Callable[[str, list[str], list[float]], None],
        log_file: IO[str],
        masker: Masker,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.run_id = run_id
        self.on_lines = on_lines
        self.log_file = log_file
        self.masker = masker
        self.clock = clock
        self.pending: list[str] = []
        self.pending_times: list[float] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines = 0
        self._callback_failed = False

    def add(self, lines: list[str]) -> None:
        """Mask ``lines``, write them to the log and queue them (a full batch goes at once)."""
        if self.masker:
            mask = self.masker.mask
            lines = [mask(line) for line in lines]
        self.lines += len(lines)
        ms = self.clock()
        self.log_file.write(stamp_lines(lines, ms))
        self.tail.extend([line for line in lines[-TAIL_LINES:] if line.strip()])
        self.pending.extend(lines)
        self.pending_times.extend([ms / 1000] * len(lines))
        if len(self.pending) >= BATCH_LINES:
            self.deliver()

    def deliver(self) -> None:
        """Hand the pending lines to the callback (a failing callback is logged once)."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        times, self.pending_times = self.pending_times, []
        try:
            self.on_lines(self.run_id, batch, times)
        except Exception:
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("output callback of run %s failed", self.run_id)

    async def tick(self) -> None:
        """Deliver every :data:`BATCH_INTERVAL`, flush the log every other tick; until cancelled."""
        flush = False
        while True:
            await asyncio.sleep(BATCH_INTERVAL)
            self.deliver()
            if flush:
                self.log_file.flush()
            flush = not flush

    def close(self) -> None:
        """Deliver what is pending, then flush and close the log file."""
        self.deliver()
        with contextlib.suppress(OSError, ValueError):
            self.log_file.flush()
        with contextlib.suppress(OSError, ValueError):
            self.log_file.close()

    def reason_tail(self) -> str:
        """The last non-empty lines, shortened, for a failure reason."""
        lines = [line.strip()[:300] for line in list(self.tail)[-REASON_LINES:]]
        return "\n".join(lines)


def open_log(path: Path) -> IO[str]:
    """Open the run's log file for appending (created with mode 0600, buffered)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", errors="replace", buffering=1 << 16)
