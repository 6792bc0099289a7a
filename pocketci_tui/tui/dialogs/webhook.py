"""The webhook URL and secret, the secret revealed only on request."""

from __future__ import annotations

import asyncio
import secrets as token_source
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
    """Shows what to paste into the forge's webhook settings, and the truth about the secret.

    The secret is looked up when the dialog opens: while it exists it shows masked (``r``
    reveals it); when the entry does not exist the dialog says so and ``g`` generates and
    stores one.

    Args:
        url: The webhook URL.
        secret_name: The secret-store entry holding the webhook secret.
        secrets: The secret store.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reveal", "Reveal secret", id="webhook-reveal"),
        Binding("g", "generate", "Generate secret", id="webhook-generate"),
        Binding("escape,enter,q", "close", "Close", id="dialog-close"),
    ]

    def __init__(self, url: str, secret_name: str, secrets: SecretStore) -> None:
        super().__init__()
        self._url = url
        self._secret_name = secret_name
        self._secrets = secrets
        self.revealed = False
        """True once the secret is on screen."""
        self.exists: bool | None = None
        """Whether the secret entry exists (None until looked up, or when the store failed)."""

    def compose(self) -> ComposeResult:
        """Lay out URL, the secret (looked up next) and the keys."""
        with Vertical(classes="dialog", id="webhook") as box:
            box.border_title = "Webhook"
            yield Static(paste_instructions(self._url, "…"), id="webhook-text", markup=False)
            yield Label("", id="webhook-error", markup=False)
            yield Label("", id="webhook-keys", classes="dialog-keys", markup=False)

    def on_mount(self) -> None:
        """Look the secret up (off the loop, with a timeout)."""
        self._look_up()

    def _show(self, secret: str, keys: str, error: str = "") -> None:
        self.query_one("#webhook-text", Static).update(paste_instructions(self._url, secret))
        self.query_one("#webhook-error", Label).update(error)
        self.query_one("#webhook-keys", Label).update(keys)

    def _fail(self, message: str) -> None:
        self.exists = None
        self._show("(cannot be read)", "Esc: close", message)

    async def _read(self) -> tuple[bool, str | None]:
        """Read the secret off the loop, with a timeout.

        Returns:
            (whether the store answered, the value or None); a failure is already shown.
        """
        try:
            value = await asyncio.wait_for(self._secrets.get(self._secret_name), SECRET_TIMEOUT)
        except TimeoutError:
            self._fail("The secret store did not answer (locked keyring?).")
            return False, None
        except SecretStoreError as exc:
            self._fail(f"Secret store: {exc}")
            return False, None
        return True, value

    @work(group="secrets", exclusive=True)
    async def _look_up(self) -> None:
        answered, value = await self._read()
        if not answered:
            return
        self.exists = value is not None
        if value is not None:
            self._show(
                HIDDEN,
                f"secret: the {self._secret_name!r} entry    r: reveal    Esc: close",
            )
        else:
            self._show(
                "(none yet)",
                "g: generate and store one    Esc: close",
                f"No secret named {self._secret_name!r} is stored yet, so no delivery can be "
                "verified. Press g to generate one here (then paste it into GitHub), or run "
                f"`pocketci-tui secrets set {self._secret_name}` to store your own.",
            )
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Reveal only an existing secret; generate only a missing one."""
        if action == "reveal":
            return self.exists is True
        if action == "generate":
            return self.exists is False
        return True

    def action_reveal(self) -> None:
        """Read the secret and show it."""
        self._reveal()

    @work(group="secrets", exclusive=True)
    async def _reveal(self) -> None:
        answered, value = await self._read()
        if not answered:
            return
        if value is None:
            self.exists = False
            self._look_up()
            return
        self.revealed = True
        self._show(value, f"secret: the {self._secret_name!r} entry    Esc: close")

    def action_generate(self) -> None:
        """Generate a random secret and store it (only when none exists)."""
        self._generate()

    @work(group="secrets", exclusive=True)
    async def _generate(self) -> None:
        value = token_source.token_hex(32)
        try:
            await asyncio.wait_for(self._secrets.set(self._secret_name, value), SECRET_TIMEOUT)
        except TimeoutError:
            self._fail("The secret store did not answer (locked keyring?).")
            return
        except SecretStoreError as exc:
            self._fail(f"Secret store: {exc}")
            return
        self.exists = True
        self.revealed = True
        self._show(
            value,
            f"stored as {self._secret_name!r}: paste it into GitHub    Esc: close",
        )
        self.refresh_bindings()

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
