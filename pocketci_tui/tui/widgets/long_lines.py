"""Long lines in a log: scrolled sideways (``h``/``l``) or wrapped to the view's width.

At 80x24 the Output pane is about 40 columns wide, and a build's lines are often longer (a
compiler's message, a stack frame, a URL). Either the line stays whole and the view scrolls
sideways, or it is wrapped: cut into rows of the view's width, each row a piece of the same
line, so that search marks and the current match still cover the whole line.

Wrapping keeps the log's lines as they are (search, the failure line and the log file count
lines, not rows): it only changes how many rows each line takes on screen. The rows of each
line are counted as lines arrive, and again when the width changes.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import accumulate

from rich.cells import cell_len
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widgets import Log

LINES_KEPT_DRAWN = 256
"""Drawn lines kept (a few screens of the tallest terminal)."""

SIDE_STEP = 4
"""Fewest columns ``h``/``l`` scroll (a quarter of the view's width when that is more)."""


def held(line: str) -> int:
    """The memory one kept line takes, in bytes (the string object, header included)."""
    return sys.getsizeof(line)


def fit_around(lines: Sequence[str], index: int, max_bytes: int) -> tuple[int, int]:
    """The widest slice ``[first, last)`` of ``lines`` around ``lines[index]`` (kept) whose
    lines take at most ``max_bytes``, growing it a line on each side in turn."""
    index = min(max(index, 0), len(lines) - 1) if lines else 0
    first, last = index, min(index + 1, len(lines))
    size = sum(held(line) for line in lines[first:last])
    grew = True
    while grew:
        grew = False
        if last < len(lines) and size + held(lines[last]) <= max_bytes:
            size += held(lines[last])
            last += 1
            grew = True
        if first > 0 and size + held(lines[first - 1]) <= max_bytes:
            first -= 1
            size += held(lines[first])
            grew = True
    return first, last


class LongLinesLog(Log):
    """A :class:`~textual.widgets.Log` whose long lines scroll sideways or wrap, keeping at
    most ``max_lines`` lines and ``max_bytes`` bytes of them (the newest).

    Drawing it is kept cheap, because a build's output redraws it many times a second: its
    style is worked out once a frame rather than once a line (and the lines kept drawn are
    dropped when it changed), and the width of a batch of plain lines is measured at once
    rather than in a thread of its own.
    """

    _frame_style: Style | None = None
    """The widget's style while a frame is drawn (None between frames)."""

    wrap: reactive[bool] = reactive(False, init=False)
    """Long lines are wrapped to the view's width (else they scroll sideways)."""

    def __init__(
        self,
        *,
        highlight: bool = False,
        max_lines: int | None = None,
        max_bytes: int | None = None,
        auto_scroll: bool = True,
        id: str | None = None,
    ) -> None:
        super().__init__(highlight=highlight, max_lines=max_lines, auto_scroll=auto_scroll, id=id)
        self.max_bytes = max_bytes
        """The most memory the lines kept take (see :func:`held`); None: no bound."""
        self._line_bytes: deque[int] = deque()
        """The memory each line kept takes (kept in step with the lines while bounded)."""
        self._kept_bytes = 0
        """Their sum."""
        self._rows: list[int] = []
        """Rows each line takes while wrapped (kept in step with the lines only then)."""
        self._starts: list[int] | None = None
        """The first row of each line (and the total last), rebuilt from :attr:`_rows`."""
        self._wrap_width = 0
        """The width the rows were counted for."""
        self._lines_style: Style | None = None
        """The style the kept lines were drawn with."""
        # A few screens of drawn lines (see SelectingLog): the log moves their keys each time
        # it drops old lines, once a batch under a flood, so it is kept small.
        self._render_line_cache = LRUCache(LINES_KEPT_DRAWN)

    # -- drawing -------------------------------------------------------------------------------

    @property
    def rich_style(self) -> Style:
        """The widget's Rich style (the same for every line of a frame: worked out once)."""
        style = self._frame_style
        return style if style is not None else super().rich_style

    def render_lines(self, crop: Region) -> list[Strip]:
        """Draw the lines of a frame, working out the widget's style once for all of them.

        Every line asks for the style, and working it out walks the styles of every
        ancestor: for the lines of a frame that was about half the time the pane took to
        draw while output poured in. The lines kept drawn are dropped when the style changed
        (a container's look may change without the log being told).
        """
        style = super().rich_style
        if style != self._lines_style:
            self._render_line_cache.clear()
            self._lines_style = style
        self._frame_style = style
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style = None

    # The log's own is a thread worker, whose handle nobody reads: this one may not start one.
    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        """Measure the widest of new lines: at once when they are plain (printable ASCII, one
        cell a character: most build output), else in a thread as the log does.

        A thread for every batch cost more on the event loop than the measuring itself (a
        worker started and its state told three times, 20 times a second under a flood).
        """
        if not lines:
            return
        joined = "".join(lines)
        if joined.isascii() and joined.isprintable():
            self._update_maximum_width(updates, max(map(len, lines)))
        else:
            super()._update_size(updates, lines)

    # -- sideways ------------------------------------------------------------------------------

    def action_scroll_sideways(self, direction: int) -> None:
        """h/l: scroll a quarter of the view left (-1) or right (1); nothing while wrapped."""
        if self.wrap:
            return
        step = max(self.scrollable_content_region.width // 4, SIDE_STEP)
        self.scroll_to(x=self.scroll_x + direction * step, animate=False, immediate=True)

    # -- wrapping ------------------------------------------------------------------------------

    def action_toggle_wrap(self) -> None:
        """Wrap long lines, or show them whole again, keeping the same line at the top (or
        the end in view, when it was)."""
        at_end = self.keeps_end()
        top = self.line_at(round(self.scroll_y))[0]
        self.wrap = not self.wrap
        self._recount()
        if self.wrap:
            self.scroll_to(x=0, animate=False, immediate=True)
        self.keep_in_view(top, at_end)
        # Once more after the layout: the horizontal scrollbar came or went with the wrap.
        self.call_after_refresh(self.keep_in_view, top, at_end)
        self.refresh()

    def keeps_end(self) -> bool:
        """Whether the wrap toggle keeps the end in view (here: when it is in view)."""
        return self.scroll_y >= self.max_scroll_y

    def keep_in_view(self, top: int, at_end: bool) -> None:
        """After the wrap toggle: the end in view, or the line that was at the top.

        Args:
            top: The line (index in the lines kept) that was at the top.
            at_end: Keep the end in view instead.
        """
        if at_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        else:
            self.scroll_to(y=self.row_of(top), animate=False, immediate=True)

    def rewrap(self) -> None:
        """Count the rows again when the view's width changed (call on resize), keeping the
        line at the top there (or the end in view)."""
        if self.wrap and self._width_now() != self._wrap_width:
            at_end = self.keeps_end()
            top = self.line_at(round(self.scroll_y))[0]
            self._recount()
            self.keep_in_view(top, at_end)

    def _width_now(self) -> int:
        return max(self.scrollable_content_region.width, 1)

    def _recount(self) -> None:
        """Count every line's rows for the current width (or drop the counts when not
        wrapping), and size the view accordingly."""
        if self.wrap:
            self._wrap_width = width = self._width_now()
            self._rows = [self._rows_of(line, width) for line in self._lines]
        else:
            self._rows = []
        self._starts = None
        self.virtual_size = Size(self._width, self.line_count)  # validated below

    def _rows_of(self, line: str, width: int) -> int:
        # Most build output is ASCII without tabs: one cell a character (a control character
        # is shown as one replacement character), without building the shown line.
        if line.isascii() and "\t" not in line:
            cells = len(line)
        else:
            cells = cell_len(self._process_line(line))
        return max(1, -(-cells // width))

    def _row_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = list(accumulate(self._rows, initial=0))
        return self._starts

    def row_of(self, index: int) -> int:
        """The first row on screen of the line ``index`` (of the lines kept)."""
        if not self.wrap:
            return index
        starts = self._row_starts()
        return starts[min(max(index, 0), len(starts) - 1)]

    def line_at(self, row: int) -> tuple[int, int]:
        """The line (index in the lines kept) shown at ``row``, and which of its rows it is."""
        if not self.wrap:
            return row, 0
        starts = self._row_starts()
        index = max(bisect_right(starts, row) - 1, 0)
        return index, row - starts[index]

    def validate_virtual_size(self, size: Size) -> Size:
        """While wrapping, the view is as wide as the screen and as tall as the rows (the
        log sets its size from its lines and widest line; this is where that is changed)."""
        if not self.wrap:
            return size
        return Size(self._wrap_width, self._row_starts()[-1])

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> LongLinesLog:
        """Write lines (see :meth:`Log.write_lines`), dropping the oldest beyond
        :attr:`max_bytes` as the log drops them beyond ``max_lines``."""
        if self.max_bytes is None:
            return self._write_lines(lines, scroll_end)
        batch = list(lines)
        new = [part for line in batch for part in line.splitlines()]
        sizes = self._line_bytes
        added = [held(line) for line in new]
        sizes.extend(added)
        self._kept_bytes += sum(added)
        limit = self.max_lines
        if self._kept_bytes <= self.max_bytes and (limit is None or len(sizes) <= limit):
            return self._write_lines(batch, scroll_end)
        while len(sizes) > 1 and (
            self._kept_bytes > self.max_bytes or (limit is not None and len(sizes) > limit)
        ):
            self._kept_bytes -= sizes.popleft()
        # Every part of the log drops as many of its first lines as the lines beyond
        # ``max_lines``: for this write, that is the lines beyond the bytes too.
        self.max_lines = len(sizes)
        try:
            return self._write_lines(batch, scroll_end)
        finally:
            self.max_lines = limit

    def _write_lines(self, lines: Iterable[str], scroll_end: bool | None) -> LongLinesLog:
        """Write lines, counting their rows first while wrapping, so that the view's size is
        right as soon as the log sets it."""
        if not self.wrap:
            super().write_lines(lines, scroll_end)
            return self
        batch = list(lines)
        new = [part for line in batch for part in line.splitlines()]
        width = self._wrap_width
        self._rows.extend(self._rows_of(line, width) for line in new)
        kept = len(self._lines) + len(new)
        if self.max_lines is not None and kept > self.max_lines:
            del self._rows[: kept - self.max_lines]  # the log drops as many of its first lines
        self._starts = None
        super().write_lines(batch, scroll_end)
        return self

    def clear(self) -> LongLinesLog:
        """Clear the log and its row counts."""
        self._rows = []
        self._starts = None
        self._line_bytes.clear()
        self._kept_bytes = 0
        super().clear()
        return self

    def render_line(self, y: int) -> Strip:
        """A row of the view: while wrapping, the piece of its line that falls on it."""
        if not self.wrap:
            return super().render_line(y)
        width = self.size.width
        style = self.rich_style
        row = self.scroll_offset.y + y
        if row >= self._row_starts()[-1] or not self._lines:
            return Strip.blank(width, style)
        index, part = self.line_at(row)
        start = part * self._wrap_width
        whole = self._render_line_strip(index, style)
        piece = whole.crop_extend(start, start + self._wrap_width, style)
        return piece.crop_extend(0, width, style).apply_offsets(start, index)
