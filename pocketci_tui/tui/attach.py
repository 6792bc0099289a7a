"""The UI attached to another process's builds: what it says and does differently.

When another process owns the data folder (``pocketci-tui serve``, or a UI in another terminal),
the app shows its builds through a client across the control socket
(:attr:`~pocketci_tui.contract.CoreClient.owner` names that process). Then the status bar says
whose builds these are; the link to the owner can go down (the owner restarted or stopped) and
come back, which the status bar shows as it happens, and actions tried meanwhile say so instead
of failing with a connection error; once the link is back, what the screen shows is read again
when the client says notices were missed, keeping the selected event and run. Quitting detaches
and stops nothing, and a config reload is the owner's (see :meth:`Attachment.reload`).

The embedded UI (the core in process) never has an owner, so none of this applies to it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.css.query import NoMatches

from pocketci_tui.config import Settings
from pocketci_tui.contract import CoreClient, LinkChanged

from .screens.main import MainScreen
from .widgets.events_table import EventsTable
from .widgets.runs_table import RunsTable
from .widgets.status_bar import StatusBar

log = logging.getLogger(__name__)

RESTORE_GROUP = "attach-restore"
"""The worker group that reads the screen again after the link came back."""


class Attachment:
    """Follows the link to the owner of the builds, for the app.

    Args:
        app: Shows the notifications and runs the restore as its worker.
        services: The client in use now.
        screen: The main screen once mounted (None before).
    """

    def __init__(
        self,
        app: App[Any],
        services: Callable[[], CoreClient],
        screen: Callable[[], MainScreen | None],
    ) -> None:
        self._app = app
        self._services = services
        self._screen = screen
        self.owner = ""
        """Who owns the builds shown; empty when this process does."""
        self.down = ""
        """Why the link to the owner is down (or when the next try is); empty while it works."""

    @property
    def attached(self) -> bool:
        """True when another process owns the builds shown."""
        return self._services().owner is not None

    def started(self) -> None:
        """The client is up: say whose builds these are (once, and in the status bar)."""
        owner = self._services().owner
        if owner is None:
            return
        self.owner = owner
        self.down = ""
        self._show()
        log.info("attached to %s", owner)
        self._app.notify(
            f"Attached to {owner}: its builds are shown here. q detaches; nothing stops.",
            title="attached",
            timeout=6,
        )

    def link_changed(self, link: LinkChanged) -> None:
        """The link went down or came back: show it; read the screen again when told to."""
        if link.owner:
            self.owner = link.owner
        was_down = bool(self.down)
        if not link.up:
            self.down = link.detail or f"{self.owner} went away"
            self._show()
            if not was_down:
                log.warning("lost the link to %s: %s", self.owner, self.down)
                self._app.notify(
                    f"Lost the link: {self.down}. The builds shown are as they were; this "
                    "screen attaches again as soon as it answers.",
                    title="owner gone",
                    severity="warning",
                    timeout=10,
                    markup=False,
                )
            return
        self.down = ""
        self._show()
        screen = self._screen()
        if screen is not None:
            screen.listener_url = self._services().url
        if link.resync or was_down:
            log.info("attached again to %s%s", self.owner, " (read again)" if link.resync else "")
            self._app.notify(f"Attached again to {self.owner}", title="attached", timeout=5)
        if link.resync and screen is not None:
            self._app.run_worker(
                restore(screen), group=RESTORE_GROUP, exclusive=True, exit_on_error=False
            )

    async def reload(self, use: Callable[[Settings], None]) -> None:
        """Ask the owner to read its config.yaml again (it runs with it, and watches it too),
        say what it answered, and show its settings from then on."""
        services = self._services()
        reload = getattr(services, "reload_config", None)
        if reload is None:
            services.apply_settings(services.settings)
            self._app.notify(f"Asked {self.owner} to reload config.yaml", title="config.yaml")
            return
        try:
            ok, message = await reload()
        except Exception as exc:
            self._app.notify(
                f"{self.owner} did not reload config.yaml: {exc}",
                title="config.yaml not reloaded",
                severity="error",
                markup=False,
            )
            return
        use(services.settings)
        self._app.notify(
            message,
            title="config.yaml reloaded" if ok else "config.yaml not reloaded",
            severity="information" if ok else "error",
            timeout=8 if ok else 30,
            markup=False,
        )

    def unavailable(self) -> str:
        """Why an action cannot be carried out now (the link is down), or ``""``."""
        if not self.down:
            return ""
        return f"{self.owner} is gone: try again once this screen is attached again"

    def refused(self) -> bool:
        """Say so and return True when the link is down (for the app's actions)."""
        why = self.unavailable()
        if why:
            self._app.notify(why, severity="warning", markup=False)
        return bool(why)

    def _show(self) -> None:
        screen = self._screen()
        if screen is None:
            return
        with contextlib.suppress(NoMatches):
            status = screen.query_one(StatusBar)
            status.owner = self.owner
            status.link_down = "reconnecting…" if self.down else ""


async def restore(screen: MainScreen) -> None:
    """Read again what the screen shows, after notices were missed (the owner restarted, or
    this client fell behind): the events, the selected event's runs and the selected run's
    output, keeping the selection. Notices that arrive meanwhile join what is read by position
    (output) or replace it (states), so nothing shows twice or goes missing."""
    services = screen.services
    selected = screen.event_id
    # The runs of other events are read again as their rows are shown.
    for event_id in [e for e in screen.runs if e != selected]:
        del screen.runs[event_id]
    screen.load_page()
    screen.refresh_queue()
    if selected is None:
        return
    runs = await services.runs(selected)
    deliveries = await services.status_deliveries([run.id for run in runs])
    if screen.event_id != selected:
        return  # the user moved on meanwhile: that selection loads itself
    screen.runs[selected] = {run.id: run for run in runs}
    table = screen.query_one(RunsTable)
    table.set_runs(runs, select=screen.run_id)
    table.set_deliveries(deliveries)
    screen.query_one(EventsTable).refresh_event(selected, {selected: runs})
    if screen.run_id is not None:
        screen.show_run(screen.run_id, at_failure=False)
