"""Selecting lines of a log by keyboard, to copy them (the terminal has no mouse over SSH).

``V`` starts a selection on the line in focus (the marked match or failure line when one is in
view, else the newest line in view). The arrows, ``j``/``k`` and ``ctrl+d``/``ctrl+u`` (which
scroll otherwise, see :func:`~.navigation.move`) move its moving end; the other end stays.
``y`` copies the lines (without a selection, the line in focus); Escape drops the selection.
The selection holds positions in the run's output, so lines that leave the kept window while
it is open do not shift it.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.reactive import reactive
from textual.strip import Strip

from ..messages import CopyText
from .stamped_log import StampedLog

MAX_COPY_CHARS = 1_000_000
"""The most text a copy takes: terminals (and tmux) refuse or cut longer OSC 52 sequences."""

SELECTED = Style(reverse=True)
"""How selected lines look."""

CACHED_CELLS = 2_000
"""The widest line kept drawn in the cache of drawn lines (up to 1,024 of them): a longer one
(up to 64 KiB) is drawn again each frame it is in view, rather than letting the cache hold
tens of megabytes of them."""


class SelectingLog(StampedLog):
    """A stamped log whose lines can be selected and copied by keyboard."""

    selection: reactive[tuple[int, int] | None] = reactive(None, init=False)
    """The selection's fixed end and moving end (line positions since the log was filled),
    or None when nothing is selected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pruned = 0

    # -- positions ---------------------------------------------------------------------------

    def _index(self, position: int) -> int:
        """The index among the kept lines of a line position."""
        return position - self._pruned

    def focus_line(self) -> int:
        """The index of the line a selection starts on: the marked line when in view, else the
        newest line in view."""
        row = round(self.scroll_offset.y)
        height = max(1, self.scrollable_content_region.height)
        top = self.line_at(row)[0]
        bottom = min(self.line_count - 1, self.line_at(row + height - 1)[0])
        marked = self.marked_index()
        if marked is not None and top <= marked <= bottom:
            return marked
        return max(0, bottom)

    def marked_index(self) -> int | None:
        """The index of the marked line (a match, the failure), None when none is marked."""
        return None

    def selected_range(self) -> tuple[int, int] | None:
        """The first and last index of the selected lines still kept, or None."""
        if self.selection is None:
            return None
        first, last = sorted(self.selection)
        first, last = max(0, self._index(first)), self._index(last)
        if last < 0 or first >= self.line_count:
            return None
        return first, min(last, self.line_count - 1)

    # -- the keys ----------------------------------------------------------------------------

    def toggle_selection(self) -> None:
        """Start a selection on the line in focus, or drop the one open."""
        if self.selection is not None:
            self.selection = None
            return
        if self.line_count == 0:
            return
        position = self.focus_line() + self._pruned
        self.selection = (position, position)

    def move_selection(self, delta: int) -> None:
        """Move the selection's moving end by ``delta`` lines, keeping it in view."""
        if self.selection is None or self.line_count == 0:
            return
        anchor, moving = self.selection
        index = min(max(0, self._index(moving) + delta), self.line_count - 1)
        self.selection = (anchor, index + self._pruned)
        top = round(self.scroll_offset.y)
        height = max(1, self.scrollable_content_region.height)
        first = self.row_of(index)
        last = self.row_of(index + 1) - 1 if index + 1 < self.line_count else first
        if first < top:
            self.scroll_to(y=first, animate=False, immediate=True)
        elif last >= top + height:
            self.scroll_to(y=last - height + 1, animate=False, immediate=True)

    def copy_selection(self) -> None:
        """Ask to copy the selected lines (the line in focus without a selection)."""
        if self.line_count == 0:
            self.notify("No output to copy", severity="warning")
            return
        shown = self.selected_range()
        first, last = shown if shown is not None else (self.focus_line(),) * 2
        rows = [self.copy_text(index) for index in range(first, last + 1)]
        text = "\n".join(rows)
        if len(text) > MAX_COPY_CHARS:
            self.notify(
                f"{len(rows):,} lines are too many to copy through the terminal: select fewer "
                "(or p opens the full log)",
                severity="warning",
            )
            return
        self.selection = None
        what = "a line of output" if len(rows) == 1 else f"{len(rows):,} lines of output"
        self.post_message(CopyText(text, what))

    def copy_text(self, index: int) -> str:
        """A line as it is copied: as shown, the time column included when it is shown."""
        line = self._lines[index] if 0 <= index < len(self._lines) else ""
        if self.stamp_mode != "none":
            line = self.stamp_text(index) + line
        return line.rstrip()

    # -- the Log's own behaviour -----------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        """Escape drops the selection (and does nothing else then)."""
        if event.key == "escape" and self.selection is not None:
            event.stop()
            event.prevent_default()
            self.selection = None

    def watch_selection(self) -> None:
        """Draw the selection anew."""
        self._render_line_cache.clear()
        self.refresh()

    def clear(self) -> Any:
        """A new content: nothing is selected any more."""
        self._pruned = 0
        self.selection = None
        return super().clear()

    def _prune_max_lines(self) -> None:
        if self.max_lines is not None:
            self._pruned += max(0, len(self._lines) - self.max_lines)
        super()._prune_max_lines()

    def action_scroll_down(self) -> None:
        """↓: moves the selection while one is open."""
        if self.selection is not None:
            self.move_selection(1)
        else:
            super().action_scroll_down()

    def action_scroll_up(self) -> None:
        """↑: moves the selection while one is open."""
        if self.selection is not None:
            self.move_selection(-1)
        else:
            super().action_scroll_up()

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        """A whole line, as drawn: its stamp, its text highlighted, the selection's mark.

        Kept (unless wider than :data:`CACHED_CELLS`) in the log's cache of drawn lines, which
        the log empties whenever what a line looks like may change (new content, a style, the
        needle, the stamps, the selection) and shifts when lines are dropped from the top. The
        log itself fills that cache only while text is selected with the mouse, so every frame
        drew every line in view again: a frame for a new count in the border, a scrolled line
        or a moved focus cost a line's highlighting and layout per row, 20 to 40 ms at 120x40
        on a busy machine.
        """
        cached = self._render_line_cache.get(y)
        if cached is not None:
            return cached
        strip = super()._render_line_strip(y, rich_style)
        shown = self.selected_range()
        if shown is not None and shown[0] <= y <= shown[1]:
            segments = Segment.apply_style(list(strip), post_style=SELECTED)
            strip = Strip(segments, strip.cell_length)
        if y < len(self._lines) and strip.cell_length <= CACHED_CELLS:
            self._render_line_cache[y] = strip
        return strip
