"""Every repository at a glance: how its newest event stands and how its last build ended."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from pocketci_tui.model import RepoSummary

from ..text import format_time, literal
from ..widgets.status import state_label
from .list_keys import ListDialog, list_bindings


class RepositoriesDialog(ListDialog[None]):
    """One row per repository: its newest event's state and time, its last build's outcome
    and when it ended.

    Args:
        summaries: The repositories, most recently active first.
        clock: The current time.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v,q", "close", "Close", id="repos-close", tooltip="close"),
        Binding("j", "list_move(1)", "Down", show=False, id="repos-down"),
        Binding("k", "list_move(-1)", "Up", show=False, id="repos-up"),
        *list_bindings(rows=False),
    ]
    LIST = "#repos-table"

    def __init__(self, summaries: list[RepoSummary], clock: Callable[[], datetime]) -> None:
        super().__init__()
        self.summaries = summaries
        """The rows shown."""
        self._clock = clock

    def compose(self) -> ComposeResult:
        """The table and the keys."""
        now = self._clock()
        with Vertical(classes="dialog", id="repos") as box:
            box.border_title = "Repositories"
            table: DataTable[Text | str] = DataTable(cursor_type="row", id="repos-table")
            table.add_columns("repository", "now", "since", "last build", "ended")
            for summary in self.summaries:
                table.add_row(
                    literal(summary.repository, limit=28),
                    state_label(summary.latest_state),
                    Text(format_time(summary.latest.event.received_at, now), style="dim"),
                    state_label(summary.outcome) if summary.outcome else Text("none", "dim"),
                    Text(format_time(summary.outcome_at, now), style="dim"),
                    key=summary.repository,
                )
            if not self.summaries:
                yield Label("No events yet.", markup=False)
            yield table
            yield Label(
                "last build: the newest event whose functions all ended    Esc closes",
                classes="dialog-keys",
                markup=False,
            )

    def action_close(self) -> None:
        """Close the view."""
        self.dismiss(None)
