"""What the user asks of the engine (fire, re-run, cancel, approve), carried out for the app.

The main screen sends its commands up as messages; the app hands each to :class:`CoreActions`,
which asks the engine in the background and says in a notification how it went. Nothing here
decides what a key means: that is the screen's. Nothing here shows the result in a pane either:
the engine's notices do that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from textual.app import App

from pocketci_tui.config import Settings
from pocketci_tui.contract import CoreClient, fork_approval
from pocketci_tui.model import StoredEvent

from .dialogs.approve import ApproveDialog
from .dialogs.fire import FireDialog

ENGINE_GROUP = "engine"
"""The worker group of the calls to the engine."""


class CoreActions:
    """Carries out the main screen's commands on the engine.

    Args:
        app: Shows the dialogs and notifications, and runs the calls as its workers.
        services: The services in use now (new ones once a passphrase was typed).
        settings: The configuration in use now (it can be reloaded).
        clock: The current time, for the fire picker.
        unavailable: Why the engine cannot be asked now (the UI is attached to another process
            and the link to it is down), or ``""``.
    """

    def __init__(
        self,
        app: App[Any],
        services: Callable[[], CoreClient],
        settings: Callable[[], Settings],
        clock: Callable[[], datetime],
        *,
        unavailable: Callable[[], str] = str,
    ) -> None:
        self._app = app
        self._services = services
        self._settings = settings
        self._clock = clock
        self._unavailable = unavailable

    def open_fire_picker(self, event_id: int | None, chosen: Callable[[int], None]) -> None:
        """Open the fire picker on ``event_id``; ``chosen`` gets the event Enter picks."""
        services = self._client()
        if services is None:
            return

        def picked(event: int | None) -> None:
            if event is not None:
                chosen(event)

        self._app.push_screen(FireDialog(services, event_id, self._clock), picked)

    def fire(self, event_id: int) -> None:
        """Dispatch a stored event again."""
        if (client := self._client()) is not None:
            self._call(client.fire(event_id), f"Fired event #{event_id}")

    def rerun(self, run_id: str) -> None:
        """Re-run one run."""
        if (client := self._client()) is not None:
            self._call(client.rerun(run_id), "Re-run queued")

    def cancel_run(self, run_id: str) -> None:
        """Cancel one run."""
        if (client := self._client()) is not None:
            self._call(client.cancel(run_id), "Cancelling", "Already finished")

    def cancel_event(self, event_id: int) -> None:
        """Cancel every unfinished run of an event."""
        if (client := self._client()) is not None:
            self._call(client.cancel_event(event_id), "Cancelling", "Nothing to cancel")

    def approve(self, stored: StoredEvent) -> None:
        """Show a waiting fork pull request and approve its head commit if the user confirms.

        The dialog names the fork, author, title and head commit and the secrets the run can
        receive; the approval is pinned to the head commit shown.
        """
        if (client := self._client()) is None:
            return
        facts = fork_approval(stored, self._settings())

        def answered(yes: bool | None) -> None:
            if yes:
                self._call(
                    client.approve(facts.event_id, facts.head_sha),
                    f"Approved event #{facts.event_id} at {facts.head_sha[:12]}",
                )

        self._app.push_screen(
            ApproveDialog(facts, lambda: client.head_secrets(facts.event_id)), answered
        )

    def _client(self) -> CoreClient | None:
        """The running instance, or None (said) when it is not running or out of reach."""
        services = self._services()
        if why := self._unavailable():
            self._app.notify(why, severity="warning", markup=False)
            return None
        if not services.started:
            self._app.notify("The engine is not running", severity="error")
            return None
        return services

    def _call(self, call: Awaitable[object], done: str, nothing: str | None = None) -> None:
        """Ask the engine in the background; say how it went."""
        self._app.run_worker(
            self._report(call, done, nothing), group=ENGINE_GROUP, exit_on_error=False
        )

    async def _report(self, call: Awaitable[object], done: str, nothing: str | None) -> None:
        try:
            result = await call
        except Exception as exc:
            self._app.notify(f"{done.split()[0]} failed: {exc}", severity="error", markup=False)
            return
        if nothing is not None and (result is False or result == 0):
            self._app.notify(nothing, severity="warning")
        else:
            self._app.notify(done)
