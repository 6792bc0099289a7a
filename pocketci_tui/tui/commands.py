"""Command palette entries: the system commands and one "fire" hit per recent event."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from functools import partial
from typing import Protocol

from textual.app import SystemCommand
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

from .messages import Fire
from .screens.main import MainScreen
from .text import clean

RECENT_EVENTS = 50


class PaletteHost(Protocol):
    """What the palette's commands ask of the app: its state and its actions."""

    @property
    def secrets_locked(self) -> bool:
        """The secret store waits for its passphrase."""
        ...

    @property
    def main_screen(self) -> MainScreen | None:
        """The main screen once mounted."""
        ...

    def action_unlock(self) -> None:
        """Ask for the passphrase again and start the services."""

    def action_reload_config(self) -> Awaitable[None]:
        """Read config.yaml again."""
        ...

    def open_fire_picker(self, event_id: int | None) -> None:
        """Open the fire picker on an event."""

    def action_webhook(self) -> None:
        """Show the webhook URL and secret."""

    def action_refused(self) -> None:
        """List the refused requests."""

    def action_secrets(self) -> None:
        """Manage secrets."""

    def action_help(self) -> None:
        """Show the keys."""

    def action_quit(self) -> Awaitable[None]:
        """Quit, asking while builds run (attached: detach)."""
        ...

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Whether an action applies now (``detach``: attached to another process)."""
        ...


def pocketci_commands(app: PaletteHost, screen: Screen[object]) -> Iterable[SystemCommand]:
    """The app's actions as palette commands (each also has a key binding)."""
    main = app.main_screen
    if app.secrets_locked:
        yield SystemCommand(
            "Unlock secrets",
            "Type the secret store's passphrase again and start listening (u)",
            app.action_unlock,
        )
    yield SystemCommand(
        "Reload config",
        "Read config.yaml again: repositories, grants, fork handling, timeout, keymap (ctrl+l)",
        app.action_reload_config,
    )
    yield SystemCommand(
        "Fire a stored event",
        "Pick a stored event and dispatch it again (f)",
        partial(app.open_fire_picker, main.event_id if main else None),
    )
    if isinstance(screen, MainScreen):
        yield SystemCommand(
            "Re-run", "Re-run the selected run, or the whole event (r)", screen.action_rerun
        )
        yield SystemCommand(
            "Cancel", "Cancel the selected run, or the event's runs (c)", screen.action_cancel
        )
        yield SystemCommand(
            "Approve pull/merge request",
            "Approve a fork's pull or merge request waiting (a)",
            screen.action_approve,
        )
        yield SystemCommand("Filter events", "Filter the Events pane (/)", screen.action_filter)
        yield SystemCommand(
            "Open log in pager", "The selected run's full log in $PAGER (p)", screen.action_pager
        )
    yield SystemCommand(
        "Webhook URL and secret", "What to paste into GitHub (w)", app.action_webhook
    )
    yield SystemCommand(
        "Refused deliveries",
        "Requests the listener refused lately: bad signature, wrong content type...",
        app.action_refused,
    )
    yield SystemCommand("Secrets", "List, set and delete secrets (s)", app.action_secrets)
    yield SystemCommand("Keys", "Every key binding and its id (?)", app.action_help)
    if app.check_action("detach", ()):
        yield SystemCommand("Detach", "Leave the owner's builds; they go on (q)", app.action_quit)
    else:
        yield SystemCommand(
            "Quit", "Quit, stopping running builds after asking (q)", app.action_quit
        )


class EventCommands(Provider):
    """One "Fire event #N" hit per recent stored event."""

    def _main(self) -> MainScreen | None:
        """The main screen (the palette may be open over a dialog)."""
        for screen in self.app.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    async def _events(self) -> list[tuple[int, str]]:
        main = self._main()
        if main is None:
            return []
        try:
            events = await main.services.events_page(limit=RECENT_EVENTS)
        except Exception:
            return []
        items: list[tuple[int, str]] = []
        for stored in events:
            event = stored.event
            if event.id is None:
                continue
            label = (
                f"Fire event #{event.id} {clean(event.repository)} "
                f"{clean(event.event_type)}/{clean(event.filter)} {clean(event.sha[:7])}"
            )
            items.append((event.id, label))
        return items

    def _fire(self, event_id: int) -> None:
        main = self._main()
        if main is not None:
            # Through the main screen, which follows the event's new runs, up to the app.
            main.post_message(Fire(event_id))

    async def discover(self) -> Hits:
        """Offer the newest few events."""
        for event_id, label in (await self._events())[:5]:
            yield DiscoveryHit(label, partial(self._fire, event_id), help="Dispatch it again")

    async def search(self, query: str) -> Hits:
        """Match recent events by their label."""
        matcher = self.matcher(query)
        for event_id, label in await self._events():
            score = matcher.match(label)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(label),
                    partial(self._fire, event_id),
                    help="Dispatch it again",
                )
