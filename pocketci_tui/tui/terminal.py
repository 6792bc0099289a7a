"""Terminal output that never blocks the event loop.

Textual hands each frame to a writer thread through a queue of 30 writes. When the terminal
stops taking output (an SSH client that stalls or is suspended, a tmux server that is stopped,
a slow link), the thread blocks in ``write`` on the tty, the queue fills, and the next frame
blocks the event loop, and with it the listener, the engine and everything else, until the
terminal reads again.

:class:`TerminalWriter` keeps the writes in a buffer bounded in characters instead. While the
terminal takes output, every write goes out in order (several at once when they pile up). When
more than :data:`MAX_PENDING_CHARS` wait, the waiting frames are dropped, and so is every write
until the thread has written what it holds; then the screen is repainted whole, so the
terminal ends up showing the current state, never a mix of old and new frames.
:class:`PocketCIDriver` is Textual's Linux driver with that writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

log = logging.getLogger(__name__)

MAX_PENDING_CHARS = 1 << 18
"""Characters of output kept while the terminal does not take them (a dozen full frames of a
large screen); past this, frames are dropped until it drains. More would only be stale frames
for a slow link to carry before the repaint that shows the current state."""

STOP_SECONDS = 2.0
"""How long stopping waits for the pending output to be written (a stalled terminal is not
waited for longer)."""


class TerminalWriter(threading.Thread):
    """Writes to the terminal from a thread; :meth:`write` never blocks for the terminal.

    Args:
        file: The terminal.
        on_drained: Called (from this thread) when the terminal took everything after output
            had to be dropped: the screen should be repainted whole.
        max_pending: Characters kept while the terminal does not take them.
    """

    def __init__(
        self,
        file: IO[str],
        on_drained: Callable[[], None],
        max_pending: int = MAX_PENDING_CHARS,
    ) -> None:
        super().__init__(daemon=True, name="pocketci-terminal")
        self._file = file
        self._on_drained = on_drained
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[str] = []
        self._size = 0
        self._dropping = False
        self._stopping = False
        self.dropped = 0
        """Writes dropped because the terminal did not take output (for tests and the log)."""
        self.stalls = 0
        """How many times output had to be dropped."""

    def write(self, text: str) -> None:
        """Queue ``text`` for the terminal, or drop it while the terminal does not drain."""
        with self._lock:
            if self._stopping:
                return
            if self._dropping:
                self.dropped += 1
                return
            if self._pending and self._size + len(text) > self._max_pending:
                # The terminal has not taken the last frames: drop them, and everything until
                # it has taken what the thread is writing now; then repaint.
                self.dropped += len(self._pending) + 1
                self.stalls += 1
                self._pending.clear()
                self._size = 0
                self._dropping = True
                self._wake.notify()
                return
            self._pending.append(text)
            self._size += len(text)
            self._wake.notify()

    def run(self) -> None:
        """Write what is pending, in order, until stopped."""
        while True:
            with self._lock:
                while not (self._pending or self._dropping or self._stopping):
                    self._wake.wait()
                drained = self._dropping and not self._pending
                if drained:
                    # What was taken before the drop is written: the terminal reads again.
                    self._dropping = False
                elif not self._pending:
                    return
                chunk = "".join(self._pending)
                self._pending.clear()
                self._size = 0
            if drained:
                try:
                    self._on_drained()
                except Exception:
                    log.exception("repainting after a stalled terminal failed")
                continue
            try:
                self._file.write(chunk)
                self._file.flush()
            except (OSError, ValueError):
                pass  # the terminal is gone: nothing to show output on

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Write what is pending, then end the thread; wait at most ``timeout`` seconds.

        Returns:
            True when everything was written, False when the terminal did not take it in time.
        """
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self.join(timeout)
        return not self.is_alive()


class PocketCIDriver(LinuxDriver):
    """Textual's Linux driver, writing through a :class:`TerminalWriter`.

    Writes outside application mode (while the app is suspended for the pager, or after it
    stopped) are dropped: the terminal belongs to someone else then.
    """

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._terminal: TerminalWriter | None = None

    def start_application_mode(self) -> None:
        """Start the writer, then application mode."""
        assert self._file is not None
        self._terminal = TerminalWriter(self._file, self._drained)
        self._terminal.start()
        super().start_application_mode()  # type: ignore[no-untyped-call]

    def write(self, data: str) -> None:
        """Hand ``data`` to the writer (never blocks)."""
        terminal = self._terminal
        if terminal is not None:
            terminal.write(data)

    def close(self) -> None:
        """Stop Textual's own writer (unused) and ours, waiting a bounded time for it."""
        super().close()
        terminal, self._terminal = self._terminal, None
        if terminal is not None and not terminal.stop():
            log.warning("the terminal did not take the last output in time")

    def _drained(self) -> None:
        """From the writer thread: the terminal drained after frames were dropped."""
        terminal, loop = self._terminal, self._loop
        if terminal is not None:
            log.info(
                "the terminal did not take output for a while: %d writes dropped; repainting",
                terminal.dropped,
            )
        if not loop.is_closed():
            loop.call_soon_threadsafe(self._repaint)

    def _repaint(self) -> None:
        self._app.refresh(repaint=True, layout=True)
