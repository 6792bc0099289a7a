"""The fire picker: search stored events, preview one, Enter fires it again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label, Static

from pocketci_tui.contract import CoreClient
from pocketci_tui.model import Run, StoredEvent, latest_attempts

from ..text import clean, format_time, literal, short_sha
from ..widgets.status import state_label
from .list_keys import ListDialog, list_bindings

log = logging.getLogger(__name__)

PICKER_LIMIT = 200


def describe_event(stored: StoredEvent) -> Text:
    """A few lines about an event, as literal text."""
    event = stored.event
    text = Text(no_wrap=False)
    rows = [
        ("repo", event.repository),
        ("event", f"{event.event_type} {event.filter}".strip()),
        ("ref", event.ref),
        ("sha", event.sha[:12]),
        ("delivery", event.delivery_id),
        ("status", f"{stored.status} {stored.detail}".strip()),
    ]
    if event.pr_number is not None:
        rows.insert(2, ("PR", f"#{event.pr_number}{' (fork)' if event.is_fork else ''}"))
    if event.title:
        rows.append(("title", event.title.splitlines()[0] if event.title else ""))
    for label, value in rows:
        text.append(f"{label:>8} ", style="dim")
        text.append(clean(value)[:200])
        text.append("\n")
    return text


class FireDialog(ListDialog[int | None]):
    """Pick a stored event to fire again; shows the functions it matched or would match.

    Args:
        services: The running instance (stored events, runs and previews).
        selected: The event to highlight first.
        clock: The app's clock, for the time column.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog-close"),
        Binding("down", "list_move(1)", "Down", show=False, id="picker-down"),
        Binding("up", "list_move(-1)", "Up", show=False, id="picker-up"),
        *list_bindings(),
    ]
    LIST = "#fire-events"

    def __init__(
        self, services: CoreClient, selected: int | None, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self._services = services
        self._selected = selected
        self._clock = clock
        self._events: list[StoredEvent] = []

    def compose(self) -> ComposeResult:
        """Lay out search, list and preview."""
        with Vertical(classes="dialog", id="fire") as box:
            box.border_title = "Fire a stored event"
            yield Input(placeholder="search repository, branch, sha…", id="fire-search")
            with Horizontal(id="fire-body"):
                table: DataTable[Text | str] = DataTable(cursor_type="row", id="fire-events")
                yield table
                yield Static("", id="fire-preview", markup=False)
            yield Label(
                "type to search  ↑/↓ choose  Tab: list (j/k g/G)  Enter: fire  Esc: cancel",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        """Load the newest events."""
        search = self.query_one("#fire-search", Input)
        search.cursor_blink = not self.app.is_headless
        table = self.query_one("#fire-events", DataTable)
        table.add_columns("#", "time", "repository", "event", "sha")
        search.focus()
        self.load("")

    @property
    def highlighted(self) -> StoredEvent | None:
        """The event Enter would fire."""
        table = self.query_one("#fire-events", DataTable)
        if not self._events or not 0 <= table.cursor_row < len(self._events):
            return None
        return self._events[table.cursor_row]

    @on(Input.Changed, "#fire-search")
    def _search(self, event: Input.Changed) -> None:
        self.load(event.value.strip())

    @work(group="picker", exclusive=True)
    async def load(self, text: str) -> None:
        """Search stored events (latest search wins)."""
        if not self._services.started:
            self.query_one("#fire-preview", Static).update(Text("The store is not open."))
            return
        events = await self._services.events_page(limit=PICKER_LIMIT, text=text)
        self._events = [e for e in events if e.event.id is not None]
        table = self.query_one("#fire-events", DataTable)
        table.clear()
        now = self._clock()
        for stored in self._events:
            event = stored.event
            label = f"{event.event_type}/{event.filter}" if event.filter else event.event_type
            table.add_row(
                str(event.id),
                format_time(event.received_at, now),
                literal(event.repository, limit=22),
                literal(label, limit=22),
                short_sha(event.sha),
                key=str(event.id),
            )
        ids = [e.event.id for e in self._events]
        if self._selected in ids and not text:
            table.move_cursor(row=ids.index(self._selected), animate=False)
        if not self._events:
            self.query_one("#fire-preview", Static).update(Text("No stored event matches."))
        else:
            self.show_preview()

    @on(DataTable.RowHighlighted, "#fire-events")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_preview()

    @work(group="preview", exclusive=True)
    async def show_preview(self) -> None:
        """Show the highlighted event and the functions it would match."""
        stored = self.highlighted
        if stored is None or stored.event.id is None:
            return
        event_id = stored.event.id
        full = await self._services.event(event_id) or stored
        text = describe_event(full)
        text.append("\n")
        try:
            result = await self._services.preview(event_id)
        except Exception as exc:  # the store or the catalog cache could not be read
            log.warning("no preview of event %s: %s", event_id, exc)
            result = None
        if result is not None:
            matched = sum(1 for d in result.decisions if d.matched)
            text.append(
                f"would match {matched} of {len(result.decisions)} functions\n", style="bold"
            )
            for decision in result.decisions:
                text.append(
                    "  ✓ " if decision.matched else "  - ",
                    style="green" if decision.matched else "dim",
                )
                text.append(clean(decision.function))
                if not decision.matched:
                    text.append(f"  {clean(decision.reason)}", style="dim")
                text.append("\n")
        else:
            runs: list[Run] = latest_attempts(await self._services.runs(event_id))
            if runs:
                text.append("matched last time\n", style="bold")
                for run in runs:
                    text.append("  ")
                    text.append_text(state_label(str(run.state), icon_only=True))
                    text.append(f" {clean(run.function)}")
                    if run.attempt > 1:
                        text.append(f" #{run.attempt}")
                    if run.reason:
                        text.append(f"  {clean(run.reason.splitlines()[-1])[:60]}", style="dim")
                    text.append("\n")
            else:
                text.append("no functions matched last time", style="dim")
        self.query_one("#fire-preview", Static).update(text)

    @on(Input.Submitted, "#fire-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._fire()

    @on(DataTable.RowSelected, "#fire-events")
    def _selected_row(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._fire()

    def _fire(self) -> None:
        stored = self.highlighted
        if stored is not None:
            self.dismiss(stored.event.id)

    def action_cancel(self) -> None:
        """Close without firing."""
        self.dismiss(None)
