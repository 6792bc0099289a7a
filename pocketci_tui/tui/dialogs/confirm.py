"""A yes/no question."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class ConfirmDialog(ModalScreen[bool]):
    """Ask a question; ``y`` or Enter answers yes, ``n`` or Escape no.

    Args:
        title: The question.
        detail: One or two lines explaining the consequence.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]

    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__()
        self._title = title
        self._detail = detail

    def compose(self) -> ComposeResult:
        """Lay out the question."""
        with Vertical(classes="dialog", id="confirm") as box:
            box.border_title = "Confirm"
            yield Label(self._title, classes="dialog-title", markup=False)
            if self._detail:
                yield Label(self._detail, markup=False)
            yield Label("y / Enter: yes    n / Esc: no", classes="dialog-keys")

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)
