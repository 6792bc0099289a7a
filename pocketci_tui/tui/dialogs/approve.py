"""Approve a pull or merge request from a fork, after seeing whose code it is and what it gets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from pocketci_tui.contract import ForkApproval, HeadSecrets
from pocketci_tui.model import change_request_noun, change_request_ref

from ..text import clean

TITLE_LIMIT = 300
"""Characters of the pull request's title shown (it is untrusted and can be long)."""


def headline(facts: ForkApproval) -> tuple[str, str]:
    """The dialog's title and question, in the forge's words (GitLab's merge request ``!7``)."""
    noun = change_request_noun(facts.vendor)
    number = change_request_ref(facts.vendor, facts.number)
    return (
        f"Approve a {noun} from a fork",
        f"Run {noun}{' ' if number else ''}{number} from a fork?",
    )


def fact_rows(facts: ForkApproval) -> list[tuple[str, str]]:
    """Whose code it is, as (label, value) rows; values are untrusted text, cleaned."""
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
    return [(label, clean(value)) for label, value in rows]


def secret_rows(facts: ForkApproval, head: HeadSecrets | None) -> list[tuple[str, str]]:
    """The secrets the run will receive, as rows.

    Until the head commit's ``pocketci.yaml`` is read (``head`` None), or when it cannot be,
    the repository's grants: the most the run can receive. Then what that file gets, and what
    it asks for and is refused.
    """
    if head is not None and not head.error:
        rows = [("secrets", "this commit receives:" if head.given else "this commit receives none")]
        rows += [("", f"• {line}") for line in head.given]
        if head.refused:
            rows.append(("", "it asks for, and is refused (the functions asking fail):"))
            rows += [("", f"• {line}") for line in head.refused]
        return [(label, clean(value)) for label, value in rows]
    if facts.secrets:
        rows = [("secrets", "granted to this repository, the most the run can receive:")]
        rows += [("", f"• {line}") for line in facts.secrets]
    else:
        rows = [("secrets", "none: nothing is granted to this repository")]
    if head is None:
        rows.append(("", "reading this commit's pocketci.yaml..."))
    else:
        rows.append(("", f"cannot read this commit's pocketci.yaml: {head.error}"))
    return [(label, clean(value)) for label, value in rows]


def _row(label: str, value: str) -> Horizontal:
    return Horizontal(
        Label(label, classes="approve-label", markup=False),
        Label(value, classes="approve-value", markup=False),
        classes="approve-row",
    )


class ApproveDialog(ModalScreen[bool]):
    """Show a fork's pull or merge request and ask before its code runs with secrets.

    ``y`` or Enter approves the head commit shown, Escape (or ``n``) cancels.

    Args:
        facts: The pull request's head repository, author, title, head commit and secrets.
        head: Reads which secrets the head commit's ``pocketci.yaml`` would receive (shown
            when it answers; the dialog can be answered before).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Approve", id="approve-yes"),
        Binding("n,escape", "answer(False)", "Cancel", id="approve-no"),
    ]

    def __init__(
        self, facts: ForkApproval, head: Callable[[], Awaitable[HeadSecrets]] | None = None
    ) -> None:
        super().__init__()
        self.facts = facts
        self._head = head

    def compose(self) -> ComposeResult:
        """Lay out the facts, the consequence and the keys."""
        facts = self.facts
        title, question = headline(facts)
        with Vertical(classes="dialog", id="approve") as box:
            box.border_title = title
            yield Label(question, classes="dialog-title", markup=False)
            with Vertical(id="approve-facts"):
                for label, value in fact_rows(facts):
                    yield _row(label, value)
                with Vertical(id="approve-secrets"):
                    unread = None if self._head is not None else HeadSecrets(error="not asked")
                    for label, value in secret_rows(facts, unread):
                        yield _row(label, value)
            yield Label(
                "Its code runs on this machine with these secrets. The approval is for this "
                "head commit only: a new push to the fork waits again.",
                markup=False,
            )
            yield Label("y / Enter: approve    Esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        """Read the head commit's pocketci.yaml meanwhile."""
        if self._head is not None:
            self._read_head(self._head)

    @work(group="approve", exit_on_error=False)
    async def _read_head(self, head: Callable[[], Awaitable[HeadSecrets]]) -> None:
        try:
            result = await head()
        except Exception as exc:
            result = HeadSecrets(error=str(exc) or type(exc).__name__)
        box = self.query_one("#approve-secrets", Vertical)
        await box.remove_children()
        await box.mount_all(_row(label, value) for label, value in secret_rows(self.facts, result))

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)
