"""The Events pane: stored events, newest first."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Self

from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable

from pocketci_tui.model import Event, Run, StoredEvent

from ..messages import EngineActivity
from ..text import clean, format_time, literal, short_sha
from .status import overall_state, state_label

VENDOR_LABELS = {"github": "gh", "gitea": "gitea", "forgejo": "fj", "gitlab": "glab"}
"""How the forge column names each forge in its five cells: the forge's command-line tool
(``gh``, ``fj``, ``glab``), or its name when that fits."""
MAX_ROWS = 200
"""Rows kept when new events arrive (one page); older events page in from the store."""
FOLLOW_INTERVAL = 0.25
"""Seconds at least between two moves of the cursor to the newest event while it follows the
head: each move loads the event's runs and rewrites the Output pane, which under a storm of
deliveries (one batch every 50 ms) kept the event loop, the listener's too, busy repainting."""


HEADERS = {
    "time": "time",
    "vendor": "forge",
    "repo": "repository",
    "event": "event/filter",
    "title": "title",
    "sha": "sha",
    "status": "status",
}
SHA_WIDTH = 7
FORGE_WIDTH = 5
TITLE_FROM = 60
"""With this many columns left for repository and event, a title column shares them."""


def column_layout(
    width: int, time_width: int = 8, repo_width: int = 30
) -> tuple[tuple[str, int], ...]:
    """Size the columns for a table ``width`` cells wide (all of it, nothing cut needlessly).

    Time, forge, sha and status have the widths their content needs; repository and
    event/filter share the rest, and on a wide screen a title column (pull request title or
    commit message) takes what they leave.

    Args:
        width: The table's width in cells (its vertical scrollbar included).
        time_width: The width of the longest time shown (8 today, 11 with a date).
        repo_width: The longest repository name shown: the column is no wider than that.

    Returns:
        (column key, content width) in display order; each column also takes 2 cells of
        padding.
    """
    status = 13 if width >= 100 else 11  # "· dispatching" fits; at 80 "■ interrupt…" does not
    fixed = [("time", time_width), ("vendor", FORGE_WIDTH)]
    tail = [("sha", SHA_WIDTH), ("status", status)]
    used = sum(w + 2 for _, w in fixed + tail) + 1  # + the vertical scrollbar
    flex = max(width - used - 4, 16)  # repository and event, each with its padding
    natural = max(repo_width, len(HEADERS["repo"]))
    if flex >= TITLE_FROM:
        repo = min(max(round(flex * 0.22), 12), 30, natural)
        event = min(max(round(flex * 0.4), 20), 44)
        title = flex - repo - event - 2
        middle = [("repo", repo), ("event", event), ("title", title)]
    else:
        repo = min(max(round(flex * 0.38), 8), natural)
        middle = [("repo", repo), ("event", flex - repo)]
    return tuple(fixed + middle + tail)


def fit(label: str, suffix: str, width: int) -> Text:
    """``label`` then ``suffix`` in ``width`` cells: the label is cut, never the suffix (a pull
    request's number, a redelivery count)."""
    text = literal(label + suffix)
    if len(text.plain) <= width:
        return text
    suffix = clean(suffix)
    cut = literal(label, limit=max(width - len(suffix), 2))
    cut.append(suffix)
    return cut


def title_cell(event: Event, width: int) -> Text:
    """The title column: the title (pull request title or commit message), then who sent it
    and, for a push, how many commits; the title is cut first, the author last."""
    title = event.title.strip().splitlines()[0] if event.title.strip() else ""
    extra = []
    if event.author:
        extra.append(event.author)
    if event.commits is not None and event.commits != 1:
        extra.append(f"{event.commits} commits")
    if len(extra) > 1 and width - len(" · ".join(extra)) - 3 < min(len(title), 16):
        extra.pop()  # the title first: the commit count only where it still fits
    tail = " · ".join(extra)
    if not tail:
        return literal(title, style="dim", limit=width)
    text = fit(title, " · " + tail if title else tail, width) if width else Text("")
    text.stylize("dim")
    return text


class EventsTable(DataTable[Text | str]):
    """Stored events, newest first: time, vendor, repository, event/filter, sha, status."""

    DEFAULT_CSS = """
    EventsTable { height: 1fr; }
    """

    _same_size = False
    """True while rows are removed that new rows replace (see :meth:`refresh`)."""

    class EventSelected(Message):
        """The highlighted event changed.

        Attributes:
            event_id: The newly highlighted event, or None when the table is empty.
        """

        def __init__(self, event_id: int | None) -> None:
            super().__init__()
            self.event_id = event_id

    class NearEnd(Message):
        """The cursor reached the last row: the screen may load an older page."""

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._clock = clock
        self._events: list[StoredEvent] = []
        self._index: dict[int, int] = {}
        self.states: dict[int, str] = {}
        """The overall state shown per event id."""
        self.column_widths: tuple[tuple[str, int], ...] = ()
        """The columns shown, as (key, width), sized from the table's width."""
        self.follow_interval = FOLLOW_INTERVAL
        """Seconds at least between two moves of the cursor to the newest event."""
        self._followed_at = float("-inf")
        self._follow_timer: Timer | None = None
        self._held: int | None = None

    @property
    def follow_pending(self) -> bool:
        """Whether the cursor follows the head but waits on an older event for its next move
        (new events came sooner than :attr:`follow_interval` after the last move)."""
        return self._follow_timer is not None

    def on_mount(self) -> None:
        """Create the columns for the width there is (again on every resize)."""
        self._apply_layout()

    def on_resize(self) -> None:
        """Size the columns to the new width."""
        self._apply_layout()

    def _apply_layout(self) -> bool:
        """Rebuild the columns when the width they should have changed (rows are kept).

        Returns:
            Whether the columns (and so every row) were built again.
        """
        width = self.size.width or 80
        repo = max((len(clean(e.event.repository)) for e in self._events), default=10)
        layout = column_layout(width, self._time_width(), repo)
        if layout == self.column_widths:
            return False
        self.column_widths = layout
        keep = self.selected_id
        self.clear(columns=True)
        for key, column_width in layout:
            self.add_column(HEADERS[key], key=key, width=column_width)
        self._index = {}
        for position, stored in enumerate(self._events):
            assert stored.event.id is not None
            self._index[stored.event.id] = position
            state = self.states.get(stored.event.id, str(stored.status))
            self.add_row(*self._cells(stored, state), key=str(stored.event.id))
        if keep is not None and keep in self._index:
            self.move_cursor(row=self._index[keep], animate=False)
        return True

    def _time_width(self) -> int:
        now = self._clock()
        return max((len(format_time(e.event.received_at, now)) for e in self._events), default=8)

    @property
    def events(self) -> list[StoredEvent]:
        """The events shown, newest first."""
        return list(self._events)

    def event(self, event_id: int) -> StoredEvent | None:
        """Return a shown event by id."""
        index = self._index.get(event_id)
        return None if index is None else self._events[index]

    @property
    def selected_id(self) -> int | None:
        """The highlighted event's id."""
        if not self._events or self.cursor_row < 0 or self.cursor_row >= len(self._events):
            return None
        return self._events[self.cursor_row].event.id

    def _cells(self, stored: StoredEvent, state: str) -> tuple[Text | str, ...]:
        event = stored.event
        kind = event.event_type or event.event_name
        label = f"{kind}/{event.filter}" if event.filter else kind
        suffix = ""
        if event.pr_number is not None:
            suffix = f" #{event.pr_number}"
        if stored.redeliveries:
            suffix = f"{suffix} x{stored.redeliveries + 1}"
        widths = dict(self.column_widths)
        cells: dict[str, Text | str] = {
            "time": format_time(event.received_at, self._clock()),
            "vendor": VENDOR_LABELS.get(event.vendor, event.vendor[:6]),
            "repo": literal(event.repository, limit=widths.get("repo", 24)),
            "event": fit(label, suffix, widths.get("event", 26)),
            "title": title_cell(event, widths.get("title", 0)),
            "sha": short_sha(event.sha),
            "status": state_label(state),
        }
        return tuple(cells[key] for key, _ in self.column_widths)

    def set_events(
        self, events: Iterable[StoredEvent], runs: dict[int, list[Run]] | None = None
    ) -> None:
        """Replace every row, keeping the cursor on the same event when it is still shown (or
        on the newest, when it waits to follow the head)."""
        keep = None if self.follow_pending else self.selected_id
        self._stop_following()
        self._events = [e for e in events if e.event.id is not None]
        self._rebuild(runs or {}, keep)

    def append_events(self, events: Iterable[StoredEvent], runs: dict[int, list[Run]]) -> None:
        """Add an older page below the shown rows."""
        for stored in events:
            if stored.event.id is None or stored.event.id in self._index:
                continue
            self._index[stored.event.id] = len(self._events)
            self._events.append(stored)
            state = self._state(stored, runs)
            self.add_row(*self._cells(stored, state), key=str(stored.event.id))
        self._apply_layout()

    def upsert(self, stored: StoredEvent, runs: dict[int, list[Run]]) -> None:
        """Show a new event at the top, or refresh one already shown."""
        self.upsert_many([stored], runs)

    def upsert_many(self, items: Iterable[StoredEvent], runs: dict[int, list[Run]]) -> None:
        """Show new events at the top (one redraw for the whole batch), refresh known ones.

        With the cursor on the newest event, the cursor moves to the newest (following the
        head, as the user watching live expects), at most once per :attr:`follow_interval`
        (in between it waits on its event); anywhere else it stays on its event. Only the
        newest :data:`MAX_ROWS` rows are kept (older ones page in again from the store), so a
        burst of deliveries costs one bounded redraw per batch, not one per delivery.
        """
        fresh: dict[int, StoredEvent] = {}
        known: list[int] = []
        for stored in items:
            event_id = stored.event.id
            if event_id is None:
                continue
            if event_id in self._index:
                self._events[self._index[event_id]] = stored
                known.append(event_id)
            else:
                fresh[event_id] = stored
        if fresh:
            keep = self.selected_id
            at_head = bool(self._events) and (self.cursor_row == 0 or self.follow_pending)
            if at_head:
                # It may wait on its event only while that stays in the page.
                at_head = self._follow_now(may_wait=self.cursor_row + len(fresh) < MAX_ROWS)
            newest = sorted(fresh.values(), key=lambda s: s.event.id or 0, reverse=True)
            self._events[:0] = newest
            # Keep the row under the cursor unless the cursor follows the head anyway.
            keep_to = MAX_ROWS if at_head else max(MAX_ROWS, self.cursor_row + len(newest) + 1)
            gone = self._events[keep_to:]
            del self._events[keep_to:]
            # Like ``tail -f``: on the newest row, follow the newest; elsewhere, stay put.
            self._insert(newest, gone, runs, None if at_head else keep)
        for event_id in known:
            self.refresh_event(event_id, runs)

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        """Refresh the table; while rows are replaced one for one, without a layout."""
        layout = layout and not self._same_size
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _follow_now(self, *, may_wait: bool) -> bool:
        """Whether the cursor, following the head, moves to the newest event now; if not, a
        move is set for when :attr:`follow_interval` has passed since the last one, and the
        cursor waits on its event meanwhile (only when ``may_wait``)."""
        now = time.monotonic()
        due = self._follow_timer is None and now - self._followed_at >= self.follow_interval
        if due or not may_wait:
            self._stop_following()
            self._followed_at = now
            return True
        if self._follow_timer is None:
            wait = self._followed_at + self.follow_interval - now
            self._follow_timer = self.set_timer(wait, self._follow_head)
        self._held = self.selected_id
        return False

    def _follow_head(self) -> None:
        """The wait is over: the cursor moves to the newest event."""
        self._follow_timer = None
        self._held = None
        self._followed_at = time.monotonic()
        if self._events:
            self._place_cursor(None)

    def _stop_following(self) -> None:
        """The user moved the cursor while it waited: it stays where they put it."""
        if self._follow_timer is not None:
            self._follow_timer.stop()
            self._follow_timer = None
        self._held = None

    def refresh_event(self, event_id: int, runs: dict[int, list[Run]]) -> None:
        """Redraw one event's row (status changes)."""
        index = self._index.get(event_id)
        if index is None:
            return
        stored = self._events[index]
        state = self._state(stored, runs)
        cells = self._cells(stored, state)
        for (key, _), value in zip(self.column_widths, cells, strict=True):
            self.update_cell(str(event_id), key, value)

    def replace_event(self, stored: StoredEvent, runs: dict[int, list[Run]]) -> None:
        """Swap in a newer copy of a shown event (its status changed)."""
        if stored.event.id in self._index:
            self._events[self._index[stored.event.id]] = stored
            self.refresh_event(stored.event.id, runs)

    def _state(self, stored: StoredEvent, runs: dict[int, list[Run]]) -> str:
        assert stored.event.id is not None
        state = overall_state(stored, runs.get(stored.event.id))
        self.states[stored.event.id] = state
        return state

    def _insert(
        self,
        newest: list[StoredEvent],
        gone: list[StoredEvent],
        runs: dict[int, list[Run]],
        keep: int | None,
    ) -> None:
        """Add the rows of ``newest`` (already first in the events) and drop those of ``gone``.

        Only the new rows are built and measured: the table would otherwise lay out and
        measure every shown row again for each batch, which under a storm of deliveries kept
        the event loop (the listener's too) busy. A batch larger than half a page, or one that
        changes the columns, is cheaper as one full rebuild.
        """
        for stored in newest:
            self._state(stored, runs)
        if len(newest) + len(gone) > MAX_ROWS // 2:
            self._rebuild(runs, keep)
            return
        if self._apply_layout():  # every row was built again, the new ones too
            self._place_cursor(keep)
            return
        # As many rows come as go once the page is full: the table keeps its height, so the
        # rows gone need a repaint of the table, not the layout of the whole screen that
        # removing a row asks for (the new rows' height is measured when idle).
        self._same_size = len(gone) >= len(newest)
        try:
            for stored in gone:
                self.remove_row(str(stored.event.id))
        finally:
            self._same_size = False
        for stored in newest:
            assert stored.event.id is not None
            state = self.states[stored.event.id]
            self.add_row(*self._cells(stored, state), key=str(stored.event.id))
        # New rows are added last; order the rows as the events are (newest first). The
        # repository cell is a distinct object per row, so it names its row for the sort.
        self._index = {}
        rank: dict[int, int] = {}
        for position, stored in enumerate(self._events):
            assert stored.event.id is not None
            self._index[stored.event.id] = position
            rank[id(self.get_cell(str(stored.event.id), "repo"))] = position
        self.sort("repo", key=lambda cell: rank[id(cell)])
        self._place_cursor(keep)

    def _place_cursor(self, keep: int | None) -> None:
        """Put the cursor back on ``keep`` (or on the newest) and say which event it is on."""
        if keep is not None and keep in self._index:
            self.move_cursor(row=self._index[keep], animate=False)
        elif self._events:
            self.move_cursor(row=0, animate=False)
        self.post_message(self.EventSelected(self.selected_id))

    def _rebuild(self, runs: dict[int, list[Run]], keep: int | None) -> None:
        self._apply_layout()  # the time column widens once a row holds a date
        self.clear()
        self._index = {}
        for position, stored in enumerate(self._events):
            assert stored.event.id is not None
            self._index[stored.event.id] = position
            self.add_row(*self._cells(stored, self._state(stored, runs)), key=str(stored.event.id))
        self._place_cursor(keep)

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        """Tell the screen which event is highlighted."""
        message.stop()
        if self.follow_pending and self.selected_id != self._held:
            self._stop_following()
        self.post_message(self.EventSelected(self.selected_id))
        if self._events and message.cursor_row >= len(self._events) - 1:
            self.post_message(self.NearEnd())

    def apply_activity(
        self,
        activity: EngineActivity,
        runs: dict[int, list[Run]],
        keep: Callable[[StoredEvent], bool],
    ) -> list[StoredEvent]:
        """Show what the engine did to the events: new deliveries, changed statuses, and the
        overall state of events whose runs changed.

        Args:
            activity: The engine's batch of notices.
            runs: The known runs per event id (after the batch).
            keep: Whether a new event passes the filter, so it is shown.

        Returns:
            The new events shown.
        """
        new = [notice.stored for notice in activity.stored if keep(notice.stored)]
        if new:
            self.upsert_many(new, runs)
        for event_id, update in activity.updated.items():
            stored = self.event(event_id)
            if stored is not None:
                changed = dataclasses.replace(stored, status=update.status, detail=update.detail)
                self.replace_event(changed, runs)
        for event_id in {run.event_id for run in activity.runs.values()}:
            self.refresh_event(event_id, runs)
        return new
