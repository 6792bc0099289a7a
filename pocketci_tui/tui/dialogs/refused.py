"""The requests the listener refused lately: when, what it answered and why (never the body).

A wrong secret or content type in the forge's webhook settings are the two most common set-up
mistakes; the forge shows only its side ("we couldn't deliver this payload"), this is ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from pocketci_tui.contract import Rejection

from ..text import format_time, literal
from .list_keys import ListDialog, list_bindings

HINTS = {
    401: "the secret in the forge's webhook settings differs from pocketci-tui's (w shows it)",
    415: "set the webhook's content type to application/json",
    409: "a body already stored was sent again under a new delivery id (a replay)",
    503: "too many unverified bodies at once, or the webhook secret could not be read",
}
"""What to do about the usual refusals, by status."""


class RefusedDialog(ListDialog[None]):
    """Lists the most recent refused requests, newest first.

    Args:
        rejections: The refusals to show (``RejectionLog.recent()``).
        total: How many were refused since start.
        clock: The current time (times are shown in its zone).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "close", "Close", id="dialog-close"),
        *list_bindings(),
    ]
    LIST = "#refused-table"

    def __init__(
        self, rejections: Sequence[Rejection], total: int, clock: Callable[[], datetime]
    ) -> None:
        super().__init__()
        self._rejections = list(rejections)
        self._total = total
        self._clock = clock

    def compose(self) -> ComposeResult:
        """Lay out the table and what to do about the usual causes."""
        with Vertical(classes="dialog", id="refused") as box:
            box.border_title = "Refused requests"
            if not self._rejections:
                yield Label("No request was refused since pocketci-tui started.", markup=False)
            else:
                shown = len(self._rejections)
                yield Label(
                    f"{self._total} refused since start; the {shown} most recent, newest first. "
                    "Bodies are never kept.",
                    markup=False,
                )
                now = self._clock()
                table: DataTable[Text | str] = DataTable(cursor_type="row", id="refused-table")
                table.add_columns("time", "status", "why", "from", "event", "delivery")
                for r in self._rejections:
                    table.add_row(
                        format_time(r.at, now),
                        Text(str(r.status), style="bold red"),
                        literal(r.text, limit=70),
                        literal(r.remote, limit=40),
                        literal(r.event_name, limit=20),
                        literal(r.delivery_id, limit=40),
                    )
                yield table
                statuses = {r.status for r in self._rejections}
                hints = [f"{s}: {HINTS[s]}" for s in sorted(statuses) if s in HINTS]
                if hints:
                    yield Label("\n".join(hints), id="refused-hints", markup=False)
            yield Label("Esc: close", classes="dialog-keys", markup=False)

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
