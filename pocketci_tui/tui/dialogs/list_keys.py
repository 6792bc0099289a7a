"""The reading keys of the dialogs' lists: ``j``/``k``, ``ctrl+d``/``ctrl+u``, ``g``/``G``.

The same keys as in the main screen's panes, so a user who reads with them there need not
reach for the arrows in a dialog. Where a dialog has a text field, the field takes the letters
while it has the focus (Textual leaves a binding aside when the focused input would type its
key), so these keys work once the focus is on the list (Tab, or Enter/Esc where the field
says so).
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widget import Widget

from ..widgets import navigation

ResultT = TypeVar("ResultT")


def list_bindings(*, rows: bool = True) -> list[Binding]:
    """The list keys, each with its binding id (``list-*``, the same in every dialog).

    Args:
        rows: Include ``j``/``k`` (False where the dialog binds them under ids of its own).

    Returns:
        The bindings, hidden from the footer (the help lists them).
    """
    bindings = []
    if rows:
        bindings += [
            Binding(
                "j",
                "list_move(1)",
                "Down",
                show=False,
                id="list-down",
                tooltip="a dialog's list: down",
            ),
            Binding(
                "k", "list_move(-1)", "Up", show=False, id="list-up", tooltip="a dialog's list: up"
            ),
        ]
    return [
        *bindings,
        Binding(
            "ctrl+d",
            "list_half(1)",
            "Half down",
            show=False,
            id="list-half-down",
            tooltip="a dialog's list: half a page down",
        ),
        Binding(
            "ctrl+u",
            "list_half(-1)",
            "Half up",
            show=False,
            id="list-half-up",
            tooltip="a dialog's list: half a page up",
        ),
        Binding(
            "g",
            "list_edge(False)",
            "Top",
            show=False,
            id="list-top",
            tooltip="a dialog's list: first row",
        ),
        Binding(
            "G",
            "list_edge(True)",
            "Bottom",
            show=False,
            id="list-bottom",
            tooltip="a dialog's list: last row",
        ),
    ]


class ListDialog(ModalScreen[ResultT]):
    """A dialog whose list (or scrolled text) answers the list keys.

    Subclasses name the widget in :attr:`LIST` and add :func:`list_bindings` to their
    ``BINDINGS``.
    """

    LIST: ClassVar[str] = ""
    """The selector of the widget the keys act on."""

    def _list(self) -> Widget | None:
        try:
            return self.query_one(self.LIST)
        except NoMatches:  # an empty dialog shows a sentence instead of its list
            return None

    def action_list_move(self, delta: int) -> None:
        """A row down (1) or up (-1)."""
        navigation.move(self._list(), delta)

    def action_list_half(self, direction: int) -> None:
        """Half a page down (1) or up (-1)."""
        navigation.half_page(self._list(), direction)

    def action_list_edge(self, bottom: bool) -> None:
        """The first or last row."""
        navigation.to_edge(self._list(), bottom=bottom)
