"""The Output pane around the run's log: searching the whole log file and finding the failure.

The log widget shows at most the last lines of a run; the file holds them all. Searches and the
failure line are read from the file in a process of their own, waited on by a worker thread (a
million lines take a fraction of a second, and the UI keeps answering meanwhile); the first
match is shown as soon as it is read, the count grows as the rest comes in. A match older than
the lines kept is shown by reading a window of the file around it, until End follows the tail
again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on, work
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input

from pocketci_tui.stamps import MTIME_SLACK_MS, split_lines

from ..logscan import FAILURE_RE, Hit, prestart, read_window, scan, smart_case
from ..text import clean_lines
from .run_log import RunLog

WINDOW = 400
"""Lines read around a match older than the lines kept: a few screens up and down. Reading,
cleaning and laying out the window is most of the time to a first match older than the tail
(2,000 lines took several times longer); n/N to a match outside it reads another."""

SEARCH_DELAY = 0.08
"""Seconds of typing quiet before a search starts reading."""

COUNT_EVERY = 0.1
"""Seconds between two updates of the count while a search reads: each batch of matches (one
per read of the file) would otherwise be a frame of its own, competing with the keys pressed
meanwhile; the first match and the final count are shown at once."""

HOLD = 0.06
"""Seconds the screen waits, after Enter starts a search, for its first match: the field
closing, the focus moving and the first match are painted in one frame rather than two. A
frame of the whole screen takes 20 to 50 ms on a busy machine, and the second waited for the
first, so the match came a frame late; most first matches are read within this time."""


Window = tuple[int, list[str], list[float | None]]
"""Lines read around a match: the first one's number, the lines (cleaned), when each came."""


def _read_window(path: Path, hit: Hit) -> Window:
    """Read (in a thread) the :data:`WINDOW` lines around ``hit``, ready to show."""
    start, lines = read_window(path, hit, WINDOW // 2, WINDOW // 2)
    after_ms = path.stat().st_mtime_ns // 1_000_000 + MTIME_SLACK_MS
    texts, times = split_lines(lines, after_ms)
    return start, clean_lines(texts), times


class OutputPane(Vertical):
    """Holds the reason line, the search field and the log; runs the log's searches."""

    DEFAULT_CSS: ClassVar[str] = """
    OutputPane > #log-search {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    """

    class Deliver(Message, bubble=False):
        """What a reading thread found, handed to the pane on its own loop. Posting never
        waits (``call_from_thread`` would, and a thread waiting on a loop that is closing
        would hold the app's exit)."""

        def __init__(self, call: Callable[..., None], *args: Any) -> None:
            super().__init__()
            self.call = call
            self.args = args

    def __init__(self, *children: Any, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(*children, id=id, classes=classes)
        self.needle = ""
        """The text searched for (empty: no search)."""
        self.hits: list[Hit] = []
        """The lines found so far, in log order."""
        self.index = -1
        """The current match in :attr:`hits`."""
        self.done = True
        """False while the search is still reading."""
        self._stop = threading.Event()
        self._begun = threading.Event()
        """Set once the current search began reading (its typing pause is over)."""
        self._failure_stop = threading.Event()
        self._held: contextlib.ExitStack | None = None
        """Open while the screen waits for the first match (see :data:`HOLD`)."""
        self._count_due: Timer | None = None
        """The next update of the count while the search reads (see :data:`COUNT_EVERY`)."""

    @on(Deliver)
    def _deliver(self, message: Deliver) -> None:
        message.call(*message.args)

    def on_unmount(self) -> None:
        """Stop reading when the pane goes (the app quits)."""
        self._stop.set()
        self._failure_stop.set()
        self._release()

    def _hold(self) -> None:
        """Hold the screen's updates until the first match is shown, :data:`HOLD` at most."""
        if self._held is not None:
            return
        held = contextlib.ExitStack()
        held.enter_context(self.app.batch_update())
        self._held = held
        self.set_timer(HOLD, lambda: self._release(held))

    def _release(self, held: contextlib.ExitStack | None = None) -> None:
        """Let the screen update again: the first match is shown, or no longer awaited, or
        (``held``) its wait is over, unless that hold was released already."""
        if held is not None and held is not self._held:
            return
        current, self._held = self._held, None
        if current is not None:
            current.close()

    def _log(self) -> RunLog:
        return self.query_one(RunLog)

    def _field(self) -> Input:
        return self.query_one("#log-search", Input)

    # -- the search field ----------------------------------------------------------------------

    @on(RunLog.SearchOpen)
    def _open(self, message: RunLog.SearchOpen) -> None:
        message.stop()
        field = self._field()
        field.cursor_blink = not self.app.is_headless
        field.value = self.needle
        field.display = True
        field.focus()
        self._prestart()

    @work(thread=True, group="log-prestart", exclusive=True, exit_on_error=False)
    def _prestart(self) -> None:
        """Start the search's process while the user types what to find."""
        prestart()

    @on(Input.Changed, "#log-search")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value != self.needle:
            self.start(event.value)

    @on(Input.Submitted, "#log-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value and not self.hits and not self.done:
            self._hold()
        event.input.display = False
        self._log().focus()
        if event.value and not self.hits and not self.done:
            if event.value == self.needle and self._begun.is_set():
                return  # already reading the file for it: starting again would lose time
            self.start(event.value, delay=0)  # Enter does not wait for typing to stop

    def on_key(self, event: events.Key) -> None:
        """Escape in the search field clears the search."""
        field = self._field()
        if event.key == "escape" and self.screen.focused is field:
            event.stop()
            event.prevent_default()
            field.value = ""
            field.display = False
            self.start("")
            self._log().focus()

    # -- searching -----------------------------------------------------------------------------

    def start(self, needle: str, *, delay: float = SEARCH_DELAY) -> None:
        """Search the shown run's whole log for ``needle`` (stopping the previous search),
        once ``delay`` seconds passed without another search starting."""
        self._stop.set()
        self._stop = stop = threading.Event()
        self._begun = begun = threading.Event()
        self.needle = needle
        self.hits = []
        self.index = -1
        self.done = not needle
        log = self._log()
        log.set_needle(needle)
        self._show_count()
        if needle:
            # A running build's file may not exist yet: search the lines shown meanwhile.
            on_disk = log.log_file is not None and log.log_file.exists()
            lines = None if on_disk else list(log.lines)
            shown = range(log.first_line, log.first_line + log.line_count)
            # A thread started here and now: a worker of the app starts only once the loop
            # gets to it, behind the work the Enter key queued (20 to 40 ms of the time to
            # the first match on a busy machine).
            threading.Thread(
                target=self._read,
                args=(needle, log.log_file, lines, shown, stop, delay, begun),
                name="log-search",
                daemon=True,
            ).start()

    def _read(
        self,
        needle: str,
        path: Path | None,
        lines: list[str] | None,
        shown: range,
        stop: threading.Event,
        delay: float,
        begun: threading.Event,
    ) -> None:
        """The search's reading thread (started by :meth:`start`); a failure is said on
        screen."""
        if delay and stop.wait(delay):
            return  # typing went on
        begun.set()
        try:
            self._find(needle, path, lines, shown, stop)
        except Exception as error:  # said on screen; the search ends
            self.post_message(self.Deliver(self._failed, stop, error))
        else:
            self.post_message(self.Deliver(self._finish, stop))

    def _find(
        self,
        needle: str,
        path: Path | None,
        lines: list[str] | None,
        shown: range,
        stop: threading.Event,
    ) -> None:
        """Find ``needle`` in ``lines`` (shown, no file yet) or in the log file at ``path``;
        ``shown`` are the numbers of the lines the pane shows."""

        def call(method: Callable[..., None], *args: Any) -> None:
            self.post_message(self.Deliver(method, *args))

        if path is None or lines is not None:
            folded = needle if smart_case(needle) else needle.lower()
            found = [
                Hit(shown.start + i, -1)
                for i, line in enumerate(lines or [])
                if folded in (line if smart_case(needle) else line.lower())
            ]
            call(self._add, stop, found)
        else:
            pending = [True]

            def report(hits: list[Hit]) -> None:
                # The first match not among the lines shown (older than the tail kept, or
                # outside the window of the last search): its window is read here, and goes
                # to the loop with it, rather than after another trip through the loop to
                # start a reading thread (each trip waits behind whatever the loop is doing,
                # such as a key's screen).
                window = None
                if pending and hits[0].line not in shown:
                    window = _read_window(path, hits[0])
                pending.clear()
                call(self._add, stop, hits, window)

            with contextlib.suppress(FileNotFoundError):
                scan("find", path, needle, report, stop)

    def _failed(self, stop: threading.Event, error: Exception) -> None:
        if stop is self._stop:
            self.notify(f"The search stopped: {error}", severity="error")
            self._finish(stop)

    def _add(self, stop: threading.Event, hits: list[Hit], window: Window | None = None) -> None:
        if stop is not self._stop or not hits:
            return
        first = not self.hits
        self.hits.extend(hits)
        if first:
            self.index = 0
            hit = self.hits[0]
            log = self._log()
            if window is not None and not log.holds(hit.line) and not stop.is_set():
                self._show_window(log.generation, hit, *window)
            else:
                self._go(hit)
            self._show_count()
            self._release()
        elif self._count_due is None:
            self._count_due = self.set_timer(COUNT_EVERY, self._count_now)

    def _count_now(self) -> None:
        self._count_due = None
        self._show_count()

    def _finish(self, stop: threading.Event) -> None:
        if stop is self._stop:
            self.done = True
            self._show_count()
            self._release()

    def _show_count(self) -> None:
        if self._count_due is not None:
            self._count_due.stop()
            self._count_due = None
        log = self._log()
        if not self.needle:
            log.search_status = ""
        elif not self.hits:
            log.search_status = "no match" if self.done else "searching…"
        else:
            more = "" if self.done else "+"
            log.search_status = f"{self.index + 1}/{len(self.hits):,}{more}"

    @on(RunLog.SearchStep)
    def _step(self, message: RunLog.SearchStep) -> None:
        message.stop()
        if not self.hits:
            self.notify(
                "No match to go to: / searches the output" if not self.needle else "No match",
                severity="warning",
            )
            return
        self.index = (self.index + message.delta) % len(self.hits)
        self._go(self.hits[self.index])
        self._show_count()

    # -- the failure ---------------------------------------------------------------------------

    @on(RunLog.FailureWanted)
    def _failure(self, message: RunLog.FailureWanted) -> None:
        message.stop()
        log = self._log()
        if log.log_file is None:
            for i, line in enumerate(log.lines):
                if FAILURE_RE.search(line):
                    self._go(Hit(log.first_line + i, -1))
                    return
            self._no_failure(quiet=message.quiet)
            return
        self._failure_stop.set()
        self._failure_stop = threading.Event()
        self._find_failure(log.log_file, log.generation, message.quiet, self._failure_stop)

    @work(thread=True, group="log-failure", exit_on_error=False)
    def _find_failure(
        self, path: Path, generation: int, quiet: bool, stop: threading.Event
    ) -> None:
        found: list[Hit] = []
        with contextlib.suppress(FileNotFoundError):
            scan("failure", path, "", found.extend, stop)
        if not stop.is_set():
            hit = found[0] if found else None
            self.post_message(self.Deliver(self._failure_found, generation, hit, quiet))

    def _failure_found(self, generation: int, hit: Hit | None, quiet: bool) -> None:
        if generation != self._log().generation:
            return
        if hit is None:
            self._no_failure(quiet=quiet)
        else:
            self._go(hit)

    def _no_failure(self, *, quiet: bool) -> None:
        if not quiet:
            self.notify("No line looks like a failure (see README)", severity="warning")

    # -- going to a line -----------------------------------------------------------------------

    def _go(self, hit: Hit) -> None:
        log = self._log()
        if log.holds(hit.line) or hit.offset < 0 or log.log_file is None:
            if log.holds(hit.line):
                log.go_to(hit.line)
            return
        self._load_window(log.log_file, hit, log.generation)

    @work(thread=True, group="log-window", exclusive=True, exit_on_error=False)
    def _load_window(self, path: Path, hit: Hit, generation: int) -> None:
        window = _read_window(path, hit)
        self.post_message(self.Deliver(self._show_window, generation, hit, *window))

    def _show_window(
        self,
        generation: int,
        hit: Hit,
        start: int,
        lines: list[str],
        times: list[float | None],
    ) -> None:
        if generation != self._log().generation:
            return
        log = self._log()
        log.show_window(start, lines, times, around=hit.line)
        log.go_to(hit.line)

    @on(RunLog.Replaced)
    def _replaced(self, message: RunLog.Replaced) -> None:
        """Another run is shown: stop reading the last one's log, forget its matches."""
        message.stop()
        self._stop.set()
        self._release()
        self.needle = ""
        self.hits = []
        self.index = -1
        self.done = True
        field = self._field()
        field.value = ""
        field.display = False
