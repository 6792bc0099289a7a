"""A log whose lines keep the moment they arrived, shown before each line on request.

Each line of a run's output arrives with its moment (live notices carry them, and the log
file stamps every line, see :mod:`pocketci_tui.stamps`). The log keeps them beside its lines
and shows them, as the user chose (:data:`STAMP_MODES`), in a dim column before each line:
the wall clock (``15:09:01``, in the time zone of the rest of the UI) or the time since the run
started (``+0:01:23``). The lines themselves never hold the stamp: search, the failure line and
the marks find and show the output alone, and switching costs no rewrite of the lines.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip

from .long_lines import LongLinesLog

STAMP_MODES: tuple[str, ...] = ("none", "clock", "elapsed")
"""What the stamp column shows, in the order the key cycles through: nothing, the wall clock,
the time since the run started."""

STAMP_TITLES: dict[str, str] = {"none": "", "clock": "time", "elapsed": "+time"}
"""What the pane's title says of each mode (nothing when no stamp is shown)."""

STAMP_STYLE = Style(dim=True)
"""How the stamp column looks beside the output."""

_COLUMN = 9
"""Cells of the column: eight for the stamp, one blank."""

_UNKNOWN = " " * _COLUMN
"""The column of a line without a moment (a log written before stamps, a marker)."""


def format_clock(moment: float, zone: tzinfo | None) -> str:
    """The wall clock of a moment (seconds since the epoch): ``15:09:01``."""
    return datetime.fromtimestamp(moment, zone).strftime("%H:%M:%S")


def format_elapsed(moment: float, start: float) -> str:
    """The time from ``start`` to ``moment``: ``+0:01:23`` (``+99:59:59`` at most, ``-`` before
    the start: the lines pocketci-tui writes while the run waits for an engine)."""
    delta = moment - start
    sign = "-" if delta < 0 else "+"
    seconds = min(math.floor(abs(delta)), 99 * 3600 + 3599)
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"


class StampedLog(LongLinesLog):
    """A log (whose long lines scroll sideways or wrap) that keeps each line's moment and shows
    it on request.

    The moments are a list beside the log's own lines, kept in step with them (written,
    pruned and cleared together).
    """

    class StampsChanged(Message):
        """The stamp column changed what it shows (the pane's title says so)."""

    stamp_mode: reactive[str] = reactive("none", init=False)
    """What the stamp column shows (one of :data:`STAMP_MODES`); it stays as chosen whatever
    run is shown next."""

    STAMP_MODES: ClassVar[tuple[str, ...]] = STAMP_MODES

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._stamps: list[float | None] = []
        self.stamp_zone: tzinfo | None = None
        """The time zone of the wall clock (None: the machine's)."""
        self.run_started: float | None = None
        """When the shown run started (seconds since the epoch); None: its first stamp."""
        self._first_stamp: float | None = None

    @property
    def stamp_title(self) -> str:
        """What the pane's title says of the stamps (`` · time``), empty when none shown."""
        title = STAMP_TITLES.get(self.stamp_mode, "")
        return f" · {title}" if title else ""

    def stamp_of(self, index: int) -> float | None:
        """The moment the line at ``index`` (among those kept) arrived, None when unknown."""
        return self._stamps[index] if 0 <= index < len(self._stamps) else None

    def write_stamped(
        self,
        lines: Sequence[str],
        times: Sequence[float | None] = (),
        *,
        scroll_end: bool | None = None,
    ) -> StampedLog:
        """Write lines with the moments they arrived (one per line; none: unknown)."""
        stamps: list[float | None] = list(times) if len(times) == len(lines) else []
        if not stamps:
            stamps = [None] * len(lines)
        kept: list[float | None] = []
        for line, stamp in zip(lines, stamps, strict=True):
            # The log splits a line at every line boundary str.splitlines() knows: one stamp
            # for each piece, so the moments stay in step with the lines.
            kept.extend([stamp] * len(line.splitlines()))
            if self._first_stamp is None and stamp is not None:
                self._first_stamp = stamp
        self._stamps.extend(kept)
        self.write_lines(lines, scroll_end=scroll_end)
        return self

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> StampedLog:
        """Write lines whose moments are unknown (or already noted by :meth:`write_stamped`)."""
        lines = list(lines)
        missing = len(self._lines) + sum(len(line.splitlines()) for line in lines)
        if missing > len(self._stamps):
            self._stamps.extend([None] * (missing - len(self._stamps)))
        super().write_lines(lines, scroll_end=scroll_end)
        return self

    def clear(self) -> StampedLog:
        """Forget the lines and their moments."""
        self._stamps.clear()
        self._first_stamp = None
        super().clear()
        return self

    def _prune_max_lines(self) -> None:
        if self.max_lines is not None:
            excess = len(self._lines) - self.max_lines
            if excess > 0:
                del self._stamps[:excess]
        super()._prune_max_lines()

    def _update_maximum_width(self, updates: int, size: int) -> None:
        super()._update_maximum_width(updates, size + self._column_width())

    def _column_width(self) -> int:
        return 0 if self.stamp_mode == "none" else _COLUMN

    def _rows_of(self, line: str, width: int) -> int:
        """Rows a wrapped line takes, the time column before it included."""
        return max(1, -(-(cell_len(self._process_line(line)) + self._column_width()) // width))

    def watch_stamp_mode(self, old: str, new: str) -> None:
        """Show the new column: the view's width follows, the title says it."""
        was = 0 if old == "none" else _COLUMN
        self._width = max(0, self._width - was + self._column_width())
        self.virtual_size = Size(self._width, self.virtual_size.height)
        if self.wrap:
            self._recount()
        self._render_line_cache.clear()
        self.refresh()
        self.post_message(self.StampsChanged())

    def cycle_stamps(self) -> None:
        """Show the next kind of stamp (none, wall clock, since the run started, none...)."""
        index = STAMP_MODES.index(self.stamp_mode) if self.stamp_mode in STAMP_MODES else 0
        self.stamp_mode = STAMP_MODES[(index + 1) % len(STAMP_MODES)]

    def stamp_text(self, index: int) -> str:
        """The column before the line at ``index``, as the mode shows it."""
        moment = self.stamp_of(index)
        if moment is None:
            return _UNKNOWN
        if self.stamp_mode == "clock":
            return format_clock(moment, self.stamp_zone) + " "
        start = self.run_started if self.run_started is not None else self._first_stamp
        return f"{format_elapsed(moment, start if start is not None else moment):<8} "

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        strip = super()._render_line_strip(y, rich_style)
        if self.stamp_mode == "none" or y >= len(self._lines):
            return strip
        column = self.stamp_text(y)
        segments = [Segment(column, rich_style + STAMP_STYLE), *strip]
        return Strip(segments, strip.cell_length + len(column))
