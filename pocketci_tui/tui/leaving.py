"""Leaving the UI: quitting stops this process's builds, so it asks first while some run or
wait; detaching from another process's builds stops nothing, so it never asks.

``q`` is bound twice, to ``quit`` and to ``detach``, and :func:`allowed` makes exactly one of
them active (the footer and the help show that one, with its own word); ``ctrl+q`` leaves
either way, from anywhere.
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from pocketci_tui.contract import CoreClient

from .dialogs.confirm import ConfirmDialog

LEAVING = frozenset({"quit", "detach"})
"""The actions of which only one is active: ``quit`` embedded, ``detach`` attached."""


def allowed(action: str, attached: bool) -> bool:
    """Whether ``action`` (one of :data:`LEAVING`) is the way out now."""
    return (action == "detach") == attached


def hidden_binding(attached: bool) -> str:
    """The binding id of the way out that does not apply now (left out of the help)."""
    return "quit" if attached else "detach"


async def quit_asking(app: App[Any], services: CoreClient) -> None:
    """Quit; while builds run or wait, ask first (y or Enter confirms): quitting stops them."""
    # Asked now, not taken from the status bar: a run started a moment ago counts too.
    try:
        counts = await services.counts()
        queued, running = counts.queued, counts.running
    except Exception:  # not started
        queued = running = 0
    if not (queued or running):
        app.exit(0)
        return

    def answered(yes: bool | None) -> None:
        if yes:
            app.exit(0)

    app.push_screen(
        ConfirmDialog(
            f"{running} running and {queued} queued builds.",
            "Quit and stop them? Running builds are cancelled cleanly.",
        ),
        answered,
    )
