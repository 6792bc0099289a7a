"""First start: write the config, generate and store the webhook secret, show what to paste."""

from __future__ import annotations

import asyncio
import secrets as token_source
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from pocketci_tui.config import default_config_text
from pocketci_tui.paths import make_private_dir
from pocketci_tui.secrets import SecretStore, SecretStoreError

from .secrets import SECRET_TIMEOUT, describe_error
from .webhook import paste_instructions


def write_config(path: Path, port: int, secrets_backend: str = "auto") -> None:
    """Write a starter config (never over an existing file)."""
    text = default_config_text(port)
    if secrets_backend != "auto":
        text = text.replace("backend: auto ", f"backend: {secrets_backend} ")
    make_private_dir(path.parent)
    with path.open("x", encoding="utf-8") as handle:
        handle.write(text)


def new_webhook_secret() -> str:
    """A fresh webhook secret: 32 random bytes, in hex."""
    return token_source.token_hex(32)


def shown_path(path: Path) -> str:
    """``path`` as the user would type it: under the home folder, starting with ``~``."""
    try:
        return f"~/{path.relative_to(Path.home())}"
    except (ValueError, RuntimeError):  # not under home, or no home folder known
        return str(path)


class SetupDialog(ModalScreen[bool]):
    """A two-step first start: explain and confirm, then show the URL and secret to paste.

    Args:
        config_file: Where to write ``config.yaml``.
        port: The listener's port.
        url: The webhook URL.
        secret_name: The secret-store entry for the webhook secret.
        secrets: The secret store.
        secrets_backend: The backend to write into the config (``file`` after choosing the
            encrypted file).
        new_secret: Where the webhook secret comes from (a fixed one for a stable picture).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next", "Continue", id="setup-next"),
        Binding("escape", "skip", "Skip", id="setup-skip"),
    ]

    def __init__(
        self,
        config_file: Path,
        port: int,
        url: str,
        secret_name: str,
        secrets: SecretStore,
        *,
        secrets_backend: str = "auto",
        new_secret: Callable[[], str] = new_webhook_secret,
    ) -> None:
        super().__init__()
        self.new_secret = new_secret
        """Called once, on Enter, for the webhook secret to store and show."""
        self._backend = secrets_backend
        self._config_file = config_file
        self._port = port
        self._url = url
        self._secret_name = secret_name
        self._secrets = secrets
        self.step = 1
        """1 before writing, 2 once done."""

    def compose(self) -> ComposeResult:
        """Lay out the first step."""
        with Vertical(classes="dialog", id="setup") as box:
            box.border_title = "Welcome to pocketci"
            yield Static(
                "No configuration yet. Setup will:\n"
                f"  • write {shown_path(self._config_file)}\n"
                f"  • generate a webhook secret and store it as {self._secret_name!r}\n"
                "  • show what to paste into GitHub → Settings → Webhooks\n",
                id="setup-text",
                markup=False,
            )
            yield Label("", id="setup-error", markup=False)
            yield Label(
                "Enter: set up    Esc: skip for now", id="setup-keys", classes="dialog-keys"
            )

    def action_next(self) -> None:
        """Run setup, or close once done."""
        if self.step == 1:
            self.step = 0
            self._run()
        elif self.step == 2:
            self.dismiss(True)

    def action_skip(self) -> None:
        """Close without setting up (setup is offered again next start)."""
        self.dismiss(self.step == 2)

    @work(group="setup", exclusive=True)
    async def _run(self) -> None:
        error = self.query_one("#setup-error", Label)
        try:
            await asyncio.to_thread(write_config, self._config_file, self._port, self._backend)
        except FileExistsError:
            pass
        except OSError as exc:
            error.update(f"Could not write {self._config_file}: {exc.strerror}")
            self.step = 1
            return
        value = self.new_secret()
        shown = value
        try:
            await asyncio.wait_for(self._secrets.set(self._secret_name, value), SECRET_TIMEOUT)
        except (SecretStoreError, TimeoutError) as exc:
            shown = "(not stored)"
            error.update(
                f"{describe_error(exc)} Store it later: pocketci-tui secrets set "
                f"{self._secret_name}"
            )
        self.query_one("#setup-text", Static).update(
            f"Config written to {shown_path(self._config_file)}\n\n"
            "In GitHub: repository → Settings → Webhooks → Add webhook\n\n"
            + paste_instructions(self._url, shown)
            + "\n\nThe listener is on loopback: expose it through a tunnel or reverse proxy.\n"
            "Add repositories under `repos:` in the config. Press w to see this again.\n"
            "Gitea, Forgejo, GitLab: give a repository its `vendor:` (and a self-hosted\n"
            "forge its URL under `forges:`); w then shows that forge's URL and steps."
        )
        self.query_one("#setup-keys", Label).update("Enter: done")
        self.step = 2
