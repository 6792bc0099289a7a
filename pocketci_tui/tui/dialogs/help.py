"""The key bindings, with their ids for remapping."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.widgets import DataTable, Label

from .list_keys import ListDialog, list_bindings

KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "end": "End",
    "escape": "Esc",
    "home": "Home",
    "tab": "Tab",
    "shift+tab": "Shift+Tab",
}


def key_display(keys: str) -> str:
    """``slash,question_mark`` -> ``/ ?``."""
    return " ".join(KEY_NAMES.get(key.strip(), key.strip()) for key in keys.split(","))


def binding_rows(
    sources: Iterable[type[DOMNode] | Sequence[BindingType]], keymap: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """The help's rows, read from the bindings the classes declare (not from a list kept apart).

    Args:
        sources: Classes whose own ``BINDINGS`` are listed, in this order, or bindings shared
            by several classes (the dialogs' list keys).
        keymap: The user's remapping by binding id (``keymap`` in config.yaml).

    Returns:
        (keys, what it does, binding id) per binding; the tooltip says what it does, else the
        footer's description. System bindings (Textual's own ``ctrl+c`` hint) are left out.
    """
    keys: dict[str, list[str]] = {}
    rows: dict[str, tuple[str, str]] = {}
    for source in sources:
        declared = source.__dict__.get("BINDINGS", []) if isinstance(source, type) else source
        # make_bindings gives one Binding per key ("end,G" is two): group them again by id.
        for binding in Binding.make_bindings(declared):
            if binding.system:
                continue
            name = binding.id or binding.action
            if name not in rows:
                # Textual's own bindings carry capitalised descriptions ("Focus Next").
                what = binding.tooltip or (binding.description or binding.action).lower()
                rows[name] = (what, binding.id or "")
                keys[name] = []
            if binding.key not in keys[name]:
                keys[name].append(binding.key)
    result: list[tuple[str, str, str]] = []
    for name, (what, binding_id) in rows.items():
        mapped = keymap.get(binding_id) if binding_id else None
        shown = mapped if mapped else ",".join(keys[name])
        result.append((key_display(shown), what, binding_id))
    return result


class KeysTable(DataTable[Text | str]):
    """The help's rows, laid out again for each width so that nothing is cut.

    The keys and the binding id (what a user types into ``keymap``) always show whole; what a
    key does takes the rest of the width and wraps onto more lines where it must (at 80
    columns the table would otherwise run past the dialog's edge and cut the ids).

    Args:
        rows: (keys, description, binding id) per action.
    """

    def __init__(self, rows: list[tuple[str, str, str]], *, id: str) -> None:
        super().__init__(cursor_type="none", id=id)
        self._rows = rows
        self._laid_out_for = -1

    def on_resize(self, event: events.Resize) -> None:
        """Lay the rows out for the new width."""
        self.lay_out(event.size.width)

    def lay_out(self, width: int) -> None:
        """Fill the table for ``width`` columns (the vertical scrollbar's included)."""
        if width == self._laid_out_for:
            return
        self._laid_out_for = width
        keys_width = max((cell_len(keys) for keys, _, _ in self._rows), default=4)
        id_width = max((cell_len(binding_id) for _, _, binding_id in self._rows), default=2)
        # Each column has a cell of padding on either side; the scrollbar takes its own.
        spare = width - self.styles.scrollbar_size_vertical - 6 * self.cell_padding
        what_width = max(spare - keys_width - id_width, 16)
        self.clear(columns=True)
        self.add_columns("keys", "action", "id")
        for keys, description, binding_id in self._rows:
            lines = textwrap.wrap(description, what_width, break_on_hyphens=False) or [""]
            self.add_row(
                Text(keys, style="bold"),
                "\n".join(lines),
                Text(binding_id, style="dim"),
                height=len(lines),
            )


class HelpDialog(ListDialog[None]):
    """Lists every action: keys, what it does, and the binding id used by ``keymap``.

    Args:
        rows: (keys, description, binding id) per action.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,enter", "close", "Close", id="dialog-close"),
        *list_bindings(),
    ]
    LIST = "#help-table"

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self._rows = rows

    def compose(self) -> ComposeResult:
        """Lay out the table."""
        with Vertical(classes="dialog", id="help") as box:
            box.border_title = "Keys"
            yield KeysTable(self._rows, id="help-table")
            yield Label(
                "Letters type in a text field: Enter/Esc leave it (Tab in the fire picker)."
                "\nRemap in config.yaml:  keymap: {run-rerun: ctrl+r}    Esc closes",
                classes="dialog-keys",
                markup=False,
            )

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
