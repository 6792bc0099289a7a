"""Approve a pull request from a fork, after seeing whose code it is and what it will get."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from pocketci_tui.engine.approval import ForkApproval

from ..text import clean

TITLE_LIMIT = 300
"""Characters of the pull request's title shown (it is untrusted and can be long)."""


def fact_rows(facts: ForkApproval) -> list[tuple[str, str]]:
    """The facts as (label, value) rows; values are untrusted text, cleaned of controls."""
    branch = f"  branch {facts.head_ref}" if facts.head_ref else ""
    rows = [
        ("repository", facts.repository),
        ("from fork", facts.head_repository + branch),
        ("author", facts.author or "(unknown)"),
    ]
    if facts.sender:
        rows.append(("pushed by", facts.sender))
    rows += [
        ("title", facts.title[:TITLE_LIMIT] or "(none)"),
        ("head commit", facts.head_sha or "(none)"),
    ]
    if facts.secrets:
        rows.append(("secrets", "this run can receive:"))
        rows += [("", f"• {line}") for line in facts.secrets]
    else:
        rows.append(("secrets", "none (nothing is granted to this repository)"))
    return [(label, clean(value)) for label, value in rows]


class ApproveDialog(ModalScreen[bool]):
    """Show a fork's pull request and ask before its code runs with secrets.

    ``y`` or Enter approves the head commit shown, Escape (or ``n``) cancels.

    Args:
        facts: The pull request's head repository, author, title, head commit and secrets.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Approve", id="approve-yes"),
        Binding("n,escape", "answer(False)", "Cancel", id="approve-no"),
    ]

    def __init__(self, facts: ForkApproval) -> None:
        super().__init__()
        self.facts = facts

    def compose(self) -> ComposeResult:
        """Lay out the facts, the consequence and the keys."""
        facts = self.facts
        number = f" #{facts.number}" if facts.number is not None else ""
        with Vertical(classes="dialog", id="approve") as box:
            box.border_title = "Approve a pull request from a fork"
            yield Label(
                f"Run pull request{number} from a fork?", classes="dialog-title", markup=False
            )
            with Vertical(id="approve-facts"):
                for label, value in fact_rows(facts):
                    with Horizontal(classes="approve-row"):
                        yield Label(label, classes="approve-label", markup=False)
                        yield Label(value, classes="approve-value", markup=False)
            yield Label(
                "Its code runs on this machine with these secrets. The approval is for this "
                "head commit only: a new push to the fork waits again.",
                markup=False,
            )
            yield Label("y / Enter: approve    Esc: cancel", classes="dialog-keys")

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)
