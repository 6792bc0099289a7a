"""The key bindings, with their ids for remapping."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label


class HelpDialog(ModalScreen[None]):
    """Lists every action: keys, what it does, and the binding id used by ``keymap``.

    Args:
        rows: (keys, description, binding id) per action.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,enter", "close", "Close", id="dialog-close")
    ]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self._rows = rows

    def compose(self) -> ComposeResult:
        """Lay out the table."""
        with Vertical(classes="dialog", id="help") as box:
            box.border_title = "Keys"
            table: DataTable[Text | str] = DataTable(cursor_type="none", id="help-table")
            table.add_columns("keys", "action", "id")
            for keys, description, binding_id in self._rows:
                table.add_row(Text(keys, style="bold"), description, Text(binding_id, style="dim"))
            yield table
            yield Label(
                "Remap in config.yaml:  keymap: {run-rerun: ctrl+r}    Esc closes",
                classes="dialog-keys",
                markup=False,
            )

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
