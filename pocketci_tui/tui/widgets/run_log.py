"""The Output pane: a bounded window on a run's output that follows the tail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip

from ..messages import CopyText, EngineActivity
from ..text import Part, clean, fit_parts
from .line_select import SelectingLog
from .log_text import NeedleHighlighter, wrap_note
from .long_lines import fit_around

MAX_LINES = 10_000
"""Lines kept on screen; the full log stays on disk."""

MAX_BYTES = 4 * 1024 * 1024
"""The most memory the lines kept on screen take: a run printing long lines (up to 64 KiB
each) keeps fewer than :data:`MAX_LINES` of them, the newest."""


CURRENT_LINE = Style(bgcolor="grey30", bold=True)
"""The line of the current match (or of the failure)."""


class RunLog(SelectingLog):
    """Live output of one run, written in batches, following the tail until the user scrolls up.

    While paused (scrolled away from the end), new lines are counted and shown in the border;
    End (or scrolling back to the bottom) resumes following. Each line keeps the moment it
    arrived, shown on request (see :class:`~.stamped_log.StampedLog`); lines are selected and
    copied by keyboard (see :class:`~.line_select.SelectingLog`).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "end,G",
            "follow",
            "Follow",
            id="log-follow",
            show=False,
            tooltip="follow the output again",
        ),
        Binding(
            "home,g",
            "scroll_home",
            "Top",
            id="log-top",
            show=False,
            tooltip="the first line of the output",
        ),
        Binding(
            "slash",
            "search",
            "Search",
            id="log-search",
            tooltip="search the whole log (Output focused)",
        ),
        Binding("n", "search_step(1)", "Next", id="log-next", show=False, tooltip="next match"),
        Binding(
            "N",
            "search_step(-1)",
            "Previous",
            id="log-previous",
            show=False,
            tooltip="previous match",
        ),
        Binding(
            "e",
            "failure",
            "Failure",
            id="log-failure",
            tooltip="go to the first line that looks like the failure",
        ),
        Binding(
            "w",
            "toggle_wrap",
            "Wrap",
            id="log-wrap",
            show=False,
            tooltip="wrap long lines, or not (Output focused)",
        ),
        Binding(
            "h",
            "scroll_sideways(-1)",
            "Left",
            id="log-left",
            show=False,
            tooltip="scroll long lines left (not wrapped)",
        ),
        Binding(
            "l",
            "scroll_sideways(1)",
            "Right",
            id="log-right",
            show=False,
            tooltip="scroll long lines right (not wrapped)",
        ),
        Binding(
            "t",
            "stamps",
            "Times",
            id="log-stamps",
            show=False,
            tooltip="times: none, wall clock, since the run started",
        ),
        Binding(
            "V",
            "select",
            "Select",
            id="log-select",
            show=False,
            tooltip="select lines (↑↓ j k extend, y copies, Esc drops)",
        ),
        Binding(
            "y",
            "copy",
            "Copy",
            id="log-copy",
            show=False,
            tooltip="copy the selected lines (or the line in focus)",
        ),
        Binding(
            "Y",
            "copy_path",
            "Copy path",
            id="log-copy-path",
            show=False,
            tooltip="copy the log file's path",
        ),
    ]

    class SearchOpen(Message):
        """The user asked to search the output."""

    class SearchStep(Message):
        """The user asked for the next (1) or previous (-1) match."""

        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    class FailureWanted(Message):
        """The user (or a failed run's opening, ``quiet``) asked for the failure line."""

        def __init__(self, *, quiet: bool = False) -> None:
            super().__init__()
            self.quiet = quiet

    class Replaced(Message):
        """Another run (or a note) is shown: what was found in the last one no longer holds."""

    class TailWanted(Message):
        """A window of the log file is shown and the user asked to follow the tail again."""

    follow: reactive[bool] = reactive(True, init=False)
    """Keep the newest line in view."""

    paused_lines: reactive[int] = reactive(0, init=False)
    """Lines that arrived while not following."""

    status_line: reactive[str] = reactive("", init=False)
    """A short state for the pane's border: following, or paused with N new lines."""

    search_status: reactive[str] = reactive("", init=False)
    """What the search found (``3/120``, ``3/120+`` while reading, ``no match``), for the
    border (set by the pane; the border adds the searched text)."""

    def __init__(
        self, *, id: str | None = None, max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES
    ) -> None:
        super().__init__(
            highlight=True, max_lines=max_lines, max_bytes=max_bytes, auto_scroll=True, id=id
        )
        self.highlighter = self.needles = NeedleHighlighter()
        self.log_file: Path | None = None
        """The shown run's log file, which search reads (None: only the lines shown)."""
        self.current: int | None = None
        """The log line (0-based, in the whole log) of the current match, marked."""
        self.window = False
        """True while a window of the log file is shown rather than its live tail."""
        self.generation = 0
        """Counts what was shown (runs, notes): what was read for an older one is dropped."""
        self.run_label = ""
        """What the border says is shown (function name and attempt)."""
        self.written = 0
        """Lines written since the last reset (for tests and benchmarks)."""
        self.needle_text = ""
        """The searched text as the border says it (cleaned)."""
        self.note: list[str] | None = None
        """The explanation shown instead of output (see :meth:`show_note`), else None."""
        self.shown_end: int | None = None
        """Where the shown output ends in the run's output (the number of its lines up to the
        last one shown), or None when unknown: batches are then appended as they come."""

    def show(
        self,
        label: str,
        lines: Iterable[str],
        end: int | None = None,
        *,
        path: Path | None = None,
        failed: bool = False,
        times: Sequence[float | None] = (),
        started: float | None = None,
    ) -> None:
        """Replace the content with ``lines`` of the run called ``label``; follow the tail.

        Args:
            label: What the border says is shown.
            lines: The lines (already cleaned for the screen).
            end: The position right after the last of ``lines`` in the run's output (the
                engine's :meth:`tail_end`, or the log file's line count), so that the batches
                that follow are joined without repeating or losing a line.
            path: The run's log file (searched; windows of it are read from it).
            failed: The run failed: go to its failure line once found.
            times: When each line arrived (seconds since the epoch), one per line; empty or
                None where unknown.
            started: When the run started (seconds since the epoch), for the time since then.
        """
        self.note = None
        self.log_file = path
        self._forget()
        self.clear()
        self.run_label = label
        self.written = 0
        self.follow = True
        self.paused_lines = 0
        self.shown_end = None
        self.run_started = started
        batch = list(lines)
        if batch:
            self.append(batch, times)
        self.shown_end = end
        self._update_subtitle()
        if failed:
            self.post_message(self.FailureWanted(quiet=True))

    def _forget(self) -> None:
        """Drop the search's marks (another run or a note is shown)."""
        self.generation += 1
        self.window = False
        self.current = None
        self.needles.set_needle("")
        self.needle_text = ""
        self.search_status = ""
        self.post_message(self.Replaced())

    @property
    def first_line(self) -> int:
        """The number (0-based, in the whole log) of the first line shown."""
        end = self.shown_end if self.shown_end is not None else self.line_count
        return max(0, end - self.line_count)

    def holds(self, line: int) -> bool:
        """True when the log line ``line`` is shown (within the lines kept)."""
        return self.note is None and self.first_line <= line < self.first_line + self.line_count

    def show_window(
        self,
        start: int,
        lines: list[str],
        times: Sequence[float | None] = (),
        *,
        around: int | None = None,
    ) -> None:
        """Show lines of the log file from line ``start`` (a match older than the tail kept):
        live output is counted, not added, until End follows the tail again. Lines that take
        more than the bytes kept are cut to those around the log line ``around``."""
        if around is not None and self.max_bytes is not None:
            first, last = fit_around(lines, around - start, self.max_bytes)
            times = times[first:last] if len(times) == len(lines) else ()
            start, lines = start + first, lines[first:last]
        self.clear()
        self.window = True
        self.follow = False
        self.written = 0
        self.shown_end = None
        self.write_stamped([line or " " for line in lines], times, scroll_end=False)
        self.shown_end = start + len(lines)
        self._update_subtitle()

    def go_to(self, line: int) -> None:
        """Mark the log line ``line`` (shown) and bring it to the upper third of the view."""
        self.current = line
        self.follow = False
        self.notify_style_update()
        self._scroll_to_current()
        # Once more after the layout: a scrollbar that comes with the new lines changes the
        # view's height (and how far it can scroll).
        self.call_after_refresh(self._scroll_to_current)
        self.refresh()

    def _scroll_to_current(self) -> None:
        if self.current is None or not self.holds(self.current):
            return
        y = self.row_of(self.current - self.first_line)
        self.scroll_to(
            y=max(0, y - self.scrollable_content_region.height // 3),
            animate=False,
            immediate=True,
        )
        self.follow = False  # reaching the bottom this way is not asking to follow

    def set_needle(self, needle: str) -> None:
        """Mark ``needle`` in the shown lines (nothing when empty)."""
        self.needles.set_needle(needle)
        self.needle_text = clean(needle)
        self._update_subtitle()
        if not needle:
            self.current = None
        self.notify_style_update()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """A line of the view; the current match's line stands out."""
        strip = super().render_line(y)
        if (
            self.current is not None
            and self.current - self.first_line == self.line_at(self.scroll_offset.y + y)[0]
        ):
            # After the line's own style, so that its background gives way.
            segments = Segment.apply_style(list(strip), post_style=CURRENT_LINE)
            strip = Strip(segments, strip.cell_length)
        return strip

    def apply_activity(self, activity: EngineActivity, run_id: str | None) -> None:
        """Add the shown run's new output from the engine's batch.

        Args:
            activity: The engine's batch of notices.
            run_id: The run shown, or None.
        """
        if run_id is None or run_id not in activity.output:
            return
        self.add_output(
            activity.output[run_id],
            activity.ends.get(run_id),
            activity.dropped.get(run_id, 0),
            activity.times.get(run_id, ()),
        )

    def add_output(
        self,
        lines: list[str],
        end: int | None = None,
        dropped: int = 0,
        times: Sequence[float | None] = (),
    ) -> None:
        """Join a batch of the run's live output to what is shown.

        The view may have been filled from the engine's tail while this batch was on its way,
        so the batch can start before the shown end: only the lines after it are written. Lines
        that never reached the view (dropped under a flood) are said in one marker line.

        Args:
            lines: The batch, already cleaned for the screen.
            end: The position right after the batch's last line in the run's output.
            dropped: Lines dropped before this batch to bound memory (when ``end`` is unknown).
            times: When each line of the batch arrived (empty when unknown).
        """
        if self.window:
            self.paused_lines += len(lines)
            return
        if end is not None and self.shown_end is not None:
            new = end - self.shown_end
            if new <= 0:
                return
            if new < len(lines):
                lines = lines[-new:]
                times = times[-new:] if len(times) >= new else ()
            dropped = new - len(lines)
        if end is not None:
            self.shown_end = end
        stamps: list[float | None] = list(times) if len(times) == len(lines) else []
        if dropped > 0:
            lines = [f"··· {dropped:,} lines not shown here (p: full log) ···", *lines]
            stamps = [None, *stamps] if stamps else []
        self.append(lines, stamps)

    def show_note(self, lines: Iterable[str]) -> None:
        """Show an explanation (the event's details, how to start) rather than a run's output.

        A note is wrapped to the pane's width (again when the pane is resized) and opens at
        its first line: it is read from the top, unlike output, which follows its tail.

        Args:
            lines: The note, already cleaned for the screen, one paragraph per line.
        """
        note = list(lines)
        if note == self.note:
            return  # shown already: writing it again would only cost a repaint
        self.note = note
        self.log_file = None
        self._forget()
        self._write_note()

    def _write_note(self) -> None:
        self.clear()
        self.run_label = ""
        self.written = 0
        self.shown_end = None
        self.follow = False
        width = self.scrollable_content_region.width - 1
        wrapped = wrap_note(self.note or [], width if width > 8 else 38)
        if wrapped:
            self.write_lines([line or " " for line in wrapped], scroll_end=False)
        self.paused_lines = 0
        self.scroll_home(animate=False, immediate=True)
        self._update_subtitle()

    def append(self, lines: list[str], times: Sequence[float | None] = ()) -> None:
        """Write a batch of new lines (already cleaned for the screen), with when each arrived
        (empty when unknown)."""
        if not lines:
            return
        self.written += len(lines)
        # Log drops empty strings; keep blank lines as blank lines. Log scrolls only when the
        # view was at the end already, which it is not once a wide line brought the horizontal
        # scrollbar (one row less of view): following scrolls here.
        self.write_stamped([line or " " for line in lines], times, scroll_end=False)
        if self.follow:
            self._keep_end()
        else:
            self.paused_lines += len(lines)

    def _keep_end(self) -> None:
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self) -> None:
        """Keep the newest line in view when the view changes size (a scrollbar came or went);
        wrap a note (and wrapped output) again to the new width."""
        self.rewrap()
        self._update_subtitle()
        if self.note is not None:
            self._write_note()
        elif self.follow:
            self._keep_end()

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        """The horizontal scrollbar takes a row of the view once the layout runs, after the
        batch that brought it was written and scrolled to: when that batch was the last one,
        its last line would stay hidden under the scrollbar. Scroll to the end once more; or,
        at a match or the failure, to that line again (the widest line is measured in a
        thread, so the scrollbar may come after the jump to the line)."""
        if shown and self.follow and self.note is None:
            self.call_after_refresh(self._keep_end)
        elif self.current is not None and self.note is None:
            self.call_after_refresh(self._scroll_to_current)

    def watch_scroll_y(self, old: float, new: float) -> None:
        """Stop following when the user scrolls up; resume at the bottom."""
        super().watch_scroll_y(old, new)
        if new >= self.max_scroll_y and not self.window:
            self.follow = True
        elif new < old:
            self.follow = False

    def watch_follow(self, follow: bool) -> None:
        """Reset the paused count when following again."""
        if follow:
            self.paused_lines = 0
        self._update_subtitle()

    def watch_paused_lines(self) -> None:
        """Show how many lines arrived while paused."""
        self._update_subtitle()

    def keeps_end(self) -> bool:
        """The wrap toggle keeps the end in view while following (and only then)."""
        return self.follow

    def watch_wrap(self) -> None:
        """Say in the border that long lines are wrapped."""
        self._update_subtitle()

    def watch_search_status(self) -> None:
        """Show what the search found."""
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        """Say in the border what matters first (the search's count, wrap, following or
        paused), then the searched text and the hints, shortened to the pane's width."""
        if self.note is not None:
            self.status_line = ""
            return
        parts: list[Part] = []
        if self.search_status:
            parts += [Part(self.search_status), Part(f"/{self.needle_text}", cut=True, glued=True)]
        if self.wrap:
            parts.append(Part("wrap"))
        if not self.follow:
            parts.append(Part("paused"))
            if self.paused_lines:
                new = f"{self.paused_lines:,}"
                parts.append(Part(f"{new} new lines", short=f"+{new}"))
        elif self.run_label:
            parts.append(Part("following"))
        if self.search_status:
            parts.append(Part("n/N", drop=1))
        if not self.follow:
            parts.append(Part("End follows", short="End", drop=2))
        elif self.run_label:
            parts.append(Part("p: full log", short="p: log", drop=2))
        # The border's corners and the blanks around the text take four cells.
        width = self.size.width - 2 if self.size.width else 76
        self.status_line = fit_parts(parts, max(width, 8))

    def action_follow(self) -> None:
        """Jump to the newest line and follow again (reading the tail again after a window)."""
        if self.window:
            self.post_message(self.TailWanted())
            return
        self.scroll_end(animate=False, immediate=True)
        self.follow = True

    def action_search(self) -> None:
        """Open the search (the pane runs it)."""
        if self.note is None:
            self.post_message(self.SearchOpen())

    def action_search_step(self, delta: int) -> None:
        """Go to the next or previous match."""
        self.post_message(self.SearchStep(delta))

    def action_stamps(self) -> None:
        """Show the next kind of time before each line (none, wall clock, since the start)."""
        self.cycle_stamps()

    def marked_index(self) -> int | None:
        """The index of the current match's (or the failure's) line, when marked."""
        if self.current is None or not self.holds(self.current):
            return None
        return self.current - self.first_line

    def action_select(self) -> None:
        """Start selecting lines at the line in focus, or drop the selection."""
        if self.note is None:
            self.toggle_selection()

    def action_copy(self) -> None:
        """Copy the selected lines (or the line in focus) to the clipboard."""
        if self.note is None:
            self.copy_selection()

    def action_copy_path(self) -> None:
        """Copy the shown run's log file path to the clipboard."""
        if self.log_file is None:
            self.notify("No log file to copy the path of", severity="warning")
            return
        self.post_message(CopyText(str(self.log_file), "the log's path"))

    def action_failure(self) -> None:
        """Go to the failure line."""
        if self.note is None:
            self.post_message(self.FailureWanted())
