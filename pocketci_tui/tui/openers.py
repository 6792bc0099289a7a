"""The app's own dialogs (webhook, secrets, refused requests, passphrase, help) opened for
it, each only when what it shows can be had: the secret store open, the link to the owner up.

The app keeps the key bindings and hands these actions over here, so that wiring the services
to the screens and opening dialogs stay apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from textual.app import App
from textual.screen import Screen

from pocketci_tui.config import Settings
from pocketci_tui.contract import CoreClient
from pocketci_tui.keys import effective_keymap
from pocketci_tui.startup import Startup

from .dialogs.help import binding_rows, key_display
from .dialogs.list_keys import list_bindings
from .dialogs.refused import RefusedDialog
from .dialogs.secrets import PassphraseDialog, SecretsDialog, Unlock
from .dialogs.webhook import WebhookDialog, forge_hooks
from .screens.main import MainScreen
from .widgets.run_log import RunLog

REFUSED_GROUP = "refused"
"""The worker group that reads the refused requests before showing them."""


class DialogOpeners:
    """Opens the webhook, secrets and refused-requests dialogs for the app.

    Args:
        app: Shows the dialogs and notifications, and runs the reads as its workers.
        startup: The start's state: the services in use now, whether the store is locked.
        settings: The configuration in use now (it can be reloaded).
        blocked: Says why and returns True when the dialog cannot be opened now (attached, and
            the link to the owner is down).
        listener_url: The listener's base URL, once started.
        clock: The current time, for the refused requests' ages.
        unlock: Opens the encrypted-file secret store with a passphrase.
        changed: Called when a dialog may have changed a secret (problems looked at again).
    """

    def __init__(
        self,
        app: App[Any],
        startup: Startup,
        settings: Callable[[], Settings],
        blocked: Callable[[], bool],
        listener_url: Callable[[], str],
        clock: Callable[[], datetime],
        unlock: Unlock | None,
        changed: Callable[[], object],
    ) -> None:
        self._app = app
        self._startup = startup
        self._settings = settings
        self._blocked = blocked
        self._listener_url = listener_url
        self._clock = clock
        self._unlock = unlock
        self._changed = changed

    @property
    def _services(self) -> CoreClient:
        return self._startup.services

    def webhook(self, url: str) -> None:
        """Show the webhook ``url`` and (on request) the secret."""
        if self._blocked():
            return
        if self._services.secrets is None or self._startup.locked:
            self._not_open()
            return
        settings = self._settings()
        base = self._listener_url() or settings.listen_url
        self._app.push_screen(
            WebhookDialog(
                url,
                settings.webhook_secret,
                self._services.secrets,
                forges=forge_hooks(settings, base),
            ),
            self._done,  # a secret generated there clears "webhook secret not set"
        )

    def secrets(self) -> None:
        """Manage secrets."""
        if self._blocked():
            return
        if self._services.secrets is None or self._startup.locked:
            self._not_open()
            return
        self._app.push_screen(
            SecretsDialog(
                self._services.secrets,
                self._unlock,
                encrypted_file=self._startup.encrypted_file,
            ),
            self._done,
        )

    def refused(self) -> None:
        """List the requests the listener refused lately (never their bodies)."""
        self._app.run_worker(self._show_refused(), group=REFUSED_GROUP, exclusive=True)

    async def _show_refused(self) -> None:
        recent, total = await self._services.refusals()
        self._app.push_screen(RefusedDialog(recent, total, self._clock))

    def _not_open(self) -> None:
        if self._startup.locked:
            self._app.notify(
                "The secret store is locked: press u to type its passphrase", severity="warning"
            )
        else:
            self._app.notify("The secret store is not open", severity="error")

    def _done(self, result: None) -> None:
        self._changed()


async def ask_passphrase(app: App[Any], why: str, *, create: bool) -> str | None:
    """Ask for the encrypted file's passphrase in a dialog (twice, to create the file)."""
    answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    app.push_screen(PassphraseDialog(why, create=create), answer.set_result)
    return await answer


def key_rows(
    app_class: type[App[Any]], keymap: Mapping[str, str], *, hidden: str
) -> list[tuple[str, str, str]]:
    """(keys, description, id) for the help dialog, from the bindings of the main screen, the
    Output pane, the dialogs' lists and ``app_class``, after remapping, but for the binding id
    ``hidden`` (of quit and detach, the one that does not apply now)."""
    rows = binding_rows(
        [MainScreen, RunLog, list_bindings(), app_class, Screen], effective_keymap(keymap)
    )
    rows = [row for row in rows if row[2] != hidden]
    rows.append(("↑ ↓", "move within a pane", ""))
    rows.append((key_display(app_class.COMMAND_PALETTE_BINDING), "command palette", ""))
    return rows
