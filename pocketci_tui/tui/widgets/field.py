"""A one-line text field whose footer says how to leave it."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input


class Field(Input):
    """An :class:`~textual.widgets.Input` that shows ``Enter`` and ``Esc`` in the footer.

    While a field has the focus, the letters type into it and the screen's keys give way, so
    the footer would otherwise show nothing to say how to get out (or, worse, a key that only
    types into the field). These bindings only name what the keys already do: Enter submits as
    Input's own binding does, and Esc is answered by the field's owner (the events filter
    clears and hides itself, the search clears the search) before any binding is looked at.
    They carry no id: they are the text field's keys, not actions a user remaps.

    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Done", tooltip="leave the field, keeping what it says"),
        Binding("escape", "clear", "Clear", tooltip="empty the field and leave it"),
    ]

    def action_clear(self) -> None:
        """Empty the field (only reached where its owner left Esc unanswered)."""
        self.value = ""
