"""The Events pane: stored events, newest first."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from pocketci_tui.model import Run, StoredEvent

from ..text import format_time, literal, short_sha
from .status import overall_state, state_label

VENDOR_LABELS = {"github": "gh"}
MAX_ROWS = 200
"""Rows kept when new events arrive (one page); older events page in from the store."""


class EventsTable(DataTable[Text | str]):
    """Stored events, newest first: time, vendor, repository, event/filter, sha, status."""

    DEFAULT_CSS = """
    EventsTable { height: 1fr; }
    """

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

    def on_mount(self) -> None:
        """Create the columns."""
        self.add_column("time", key="time")
        self.add_column("", key="vendor")
        self.add_column("repository", key="repo")
        self.add_column("event/filter", key="event")
        self.add_column("sha", key="sha")
        self.add_column("status", key="status")

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
        if event.pr_number is not None:
            label = f"{label} #{event.pr_number}"
        if stored.redeliveries:
            label = f"{label} x{stored.redeliveries + 1}"
        return (
            format_time(event.received_at, self._clock()),
            VENDOR_LABELS.get(event.vendor, event.vendor[:6]),
            literal(event.repository, limit=24),
            literal(label, limit=26),
            short_sha(event.sha),
            state_label(state),
        )

    def set_events(
        self, events: Iterable[StoredEvent], runs: dict[int, list[Run]] | None = None
    ) -> None:
        """Replace every row, keeping the cursor on the same event when it is still shown."""
        keep = self.selected_id
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

    def upsert(self, stored: StoredEvent, runs: dict[int, list[Run]]) -> None:
        """Show a new event at the top, or refresh one already shown."""
        self.upsert_many([stored], runs)

    def upsert_many(self, items: Iterable[StoredEvent], runs: dict[int, list[Run]]) -> None:
        """Show new events at the top (one redraw for the whole batch), refresh known ones.

        With the cursor on the newest event, the cursor moves to the newest (following the
        head, as the user watching live expects); anywhere else it stays on its event. Only the
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
            at_head = bool(self._events) and self.cursor_row == 0
            newest = sorted(fresh.values(), key=lambda s: s.event.id or 0, reverse=True)
            self._events[:0] = newest
            # Keep the row under the cursor unless the cursor follows the head anyway.
            keep_to = MAX_ROWS if at_head else max(MAX_ROWS, self.cursor_row + len(newest) + 1)
            del self._events[keep_to:]
            # Like ``tail -f``: on the newest row, follow the newest; elsewhere, stay put.
            self._rebuild(runs, None if at_head else keep)
        for event_id in known:
            self.refresh_event(event_id, runs)

    def refresh_event(self, event_id: int, runs: dict[int, list[Run]]) -> None:
        """Redraw one event's row (status changes)."""
        index = self._index.get(event_id)
        if index is None:
            return
        stored = self._events[index]
        state = self._state(stored, runs)
        cells = self._cells(stored, state)
        for key, value in zip(
            ("time", "vendor", "repo", "event", "sha", "status"), cells, strict=True
        ):
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

    def _rebuild(self, runs: dict[int, list[Run]], keep: int | None) -> None:
        self.clear()
        self._index = {}
        for position, stored in enumerate(self._events):
            assert stored.event.id is not None
            self._index[stored.event.id] = position
            self.add_row(*self._cells(stored, self._state(stored, runs)), key=str(stored.event.id))
        if keep is not None and keep in self._index:
            self.move_cursor(row=self._index[keep], animate=False)
        elif self._events:
            self.move_cursor(row=0, animate=False)
        self.post_message(self.EventSelected(self.selected_id))

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        """Tell the screen which event is highlighted."""
        message.stop()
        self.post_message(self.EventSelected(self.selected_id))
        if self._events and message.cursor_row >= len(self._events) - 1:
            self.post_message(self.NearEnd())
