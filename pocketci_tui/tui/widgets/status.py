"""How to show event and run states: labels, styles and the overall state of an event."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from pocketci_tui.model import Run, StoredEvent, event_outcome

STATE_STYLES: dict[str, str] = {
    "queued": "dim",
    "running": "bold yellow",
    "passed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "interrupted": "magenta",
    "skipped": "dim",
    "received": "cyan",
    "dispatching": "cyan",
    "waiting": "bold magenta",
    "ignored": "dim",
    "error": "bold red",
    "nothing ran": "dim",
}

STATE_ICONS: dict[str, str] = {
    "queued": "·",
    "running": "▶",
    "passed": "✓",
    "failed": "✗",
    "cancelled": "■",
    "interrupted": "■",
    "skipped": "-",
    "received": "·",
    "dispatching": "…",
    "waiting": "?",
    "ignored": "-",
    "error": "!",
    "nothing ran": "-",
}


def state_label(state: str, *, icon_only: bool = False) -> Text:
    """Return a short coloured label for a run or event state (trusted text only)."""
    icon = STATE_ICONS.get(state, " ")
    return Text(icon if icon_only else f"{icon} {state}", style=STATE_STYLES.get(state, ""))


def overall_state(stored: StoredEvent, runs: Iterable[Run] | None) -> str:
    """Summarize an event: its own status, or the outcome of its functions' latest attempts.

    Args:
        stored: The stored event.
        runs: Its runs if known (None when not loaded yet).

    Returns:
        One of the keys of :data:`STATE_STYLES` (see :func:`~pocketci_tui.model.event_outcome`).
    """
    return event_outcome(stored.status, runs)
