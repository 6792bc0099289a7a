"""The webhook URL and secret, the secret revealed only on request."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from pocketci_tui.secrets import SecretStore, SecretStoreError

SECRET_TIMEOUT = 5.0
HIDDEN = "•" * 16


def paste_instructions(url: str, secret: str) -> str:
    """Return what to type into GitHub's webhook form."""
    return (
        f"Payload URL   {url}\n"
        "Content type  application/json\n"
        "Secret\n"
        f"  {secret}\n"
        "Events        push, pull requests (or: send me everything)"
    )


class WebhookDialog(ModalScreen[None]):
    """Shows what to paste into the forge's webhook settings.

    Args:
        url: The webhook URL.
        secret_name: The secret-store entry holding the webhook secret.
        secrets: The secret store.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reveal", "Reveal secret", id="webhook-reveal"),
        Binding("escape,enter,q", "close", "Close", id="dialog-close"),
    ]

    def __init__(self, url: str, secret_name: str, secrets: SecretStore) -> None:
        super().__init__()
        self._url = url
        self._secret_name = secret_name
        self._secrets = secrets
        self.revealed = False
        """True once the secret is on screen."""

    def compose(self) -> ComposeResult:
        """Lay out URL, hidden secret and the keys."""
        with Vertical(classes="dialog", id="webhook") as box:
            box.border_title = "Webhook"
            yield Static(paste_instructions(self._url, HIDDEN), id="webhook-text", markup=False)
            yield Label("", id="webhook-error", markup=False)
            yield Label(
                f"secret: the {self._secret_name!r} entry    r: reveal    Esc: close",
                classes="dialog-keys",
                markup=False,
            )

    def action_reveal(self) -> None:
        """Read the secret and show it."""
        self._reveal()

    @work(group="secrets", exclusive=True)
    async def _reveal(self) -> None:
        error = self.query_one("#webhook-error", Label)
        try:
            value = await asyncio.wait_for(self._secrets.get(self._secret_name), SECRET_TIMEOUT)
        except TimeoutError:
            error.update("The secret store did not answer (locked keyring?).")
            return
        except SecretStoreError as exc:
            error.update(f"Secret store: {exc}")
            return
        if value is None:
            error.update(
                f"No secret named {self._secret_name!r}: "
                f"pocketci-tui secrets set {self._secret_name}"
            )
            return
        self.revealed = True
        self.query_one("#webhook-text", Static).update(paste_instructions(self._url, value))

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
