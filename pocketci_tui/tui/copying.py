"""Copying to the user's clipboard through the terminal (OSC 52), which reaches it over SSH and
through tmux, and what the user is told of it."""

from __future__ import annotations

from .messages import CopyText

SHOWN_CHARS = 200
"""The longest copied text the notification repeats (a secret is never repeated)."""


def copied_note(copy: CopyText) -> str:
    """What the notification says of a copy: what, how many bytes, and the text itself when it
    is one short line and no secret (a link or a path, to check at a glance)."""
    size = len(copy.text.encode("utf-8"))
    note = f"Copied {copy.what} ({size:,} bytes) to the clipboard (OSC 52)"
    if not copy.secret and "\n" not in copy.text and len(copy.text) <= SHOWN_CHARS:
        note += f": {copy.text}"
    return note
