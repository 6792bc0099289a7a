"""The webhook URL and secret, the secret revealed only on request."""

from __future__ import annotations

import asyncio
import secrets as token_source
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from pocketci_tui.config import Settings
from pocketci_tui.model import VENDORS, webhook_path
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


@dataclass(frozen=True, slots=True)
class ForgeHook:
    """Where one forge posts its deliveries, and the secret-store entry that verifies them.

    Attributes:
        vendor: The forge (``github``, ``gitea``, ``forgejo``, ``gitlab``).
        url: Its webhook URL (``…/webhooks/gitea``).
        secret_name: The secret-store entry of its webhook secret.
    """

    vendor: str
    url: str
    secret_name: str


_FORGE_FORMS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "github": (
        "GitHub",
        "repository → Settings → Webhooks → Add webhook",
        (
            "Payload URL   {url}",
            "Content type  application/json",
            "Secret        {secret}",
            "Events        push, pull requests (or: send me everything)",
        ),
        "",
    ),
    "gitea": (
        "Gitea",
        "repository → Settings → Webhooks → Add webhook → Gitea",
        (
            "Target URL    {url}",
            "Content type  application/json",
            "Secret        {secret}",
            "Trigger on    all events (or: push, create, pull request, release)",
        ),
        "Gitea delivers to a local address only once its app.ini allows it:\n"
        "[webhook] ALLOWED_HOST_LIST = loopback,private (or this host's name)",
    ),
    "forgejo": (
        "Forgejo",
        "repository → Settings → Webhooks → Add webhook → Forgejo",
        (
            "Target URL    {url}",
            "Content type  application/json",
            "Secret        {secret}",
            "Trigger on    all events (or: push, create, pull request, release)",
        ),
        "Forgejo delivers to a local address only once its app.ini allows it:\n"
        "[webhook] ALLOWED_HOST_LIST = loopback,private (or this host's name)",
    ),
    "gitlab": (
        "GitLab",
        "project → Settings → Webhooks → Add new webhook",
        (
            "URL           {url}",
            "Secret token  {secret}",
            "Trigger       push, tag push, merge request and releases events",
        ),
        "A local address needs an admin's consent: Admin → Settings → Network →\n"
        "Outbound requests → Allow requests to the local network (from webhooks)",
    ),
}
"""Each forge's webhook form: its name, where the form is, the fields, and what keeps it
from delivering to this host (a self-hosted forge refuses local addresses by default)."""


def configured_forges(settings: Settings) -> tuple[str, ...]:
    """The forges the config names (under ``forges:`` or as a repository's ``vendor``), in
    the usual order; GitHub when it names none."""
    named = set(settings.forges) | {repo.vendor for repo in settings.repos}
    return tuple(vendor for vendor in VENDORS if vendor in named) or ("github",)


def forge_name(vendor: str) -> str:
    """How a forge is named to people (``GitLab``)."""
    form = _FORGE_FORMS.get(vendor)
    return form[0] if form else vendor


def forge_hooks(settings: Settings, base_url: str) -> tuple[ForgeHook, ...]:
    """The forges to explain (:func:`configured_forges`), each with its URL and secret entry.

    Args:
        settings: The running configuration.
        base_url: The listener's URL as the forges reach it (``http://127.0.0.1:8080``).
    """
    vendors = configured_forges(settings)
    base = base_url.rstrip("/")
    return tuple(
        ForgeHook(vendor, base + webhook_path(vendor), settings.webhook_secret_of(vendor))
        for vendor in vendors
    )


def forge_instructions(hooks: Sequence[ForgeHook], secret_name: str, secret: str) -> str:
    """Return what to type into each forge's webhook form, one section per forge.

    A single GitHub hook reads exactly as :func:`paste_instructions`.

    Args:
        hooks: The forges to explain, in order.
        secret_name: The secret-store entry whose value (or mask) is ``secret``.
        secret: What to show for that entry's value (masked until revealed).

    Returns:
        The text, sections separated by blank lines.
    """
    if len(hooks) == 1 and hooks[0].vendor == "github" and hooks[0].secret_name == secret_name:
        return paste_instructions(hooks[0].url, secret)
    sections = [f"Secret ({secret_name!r})\n  {secret}"]
    for hook in hooks:
        name, where, fields, note = _FORGE_FORMS.get(
            hook.vendor, (hook.vendor, "its webhook settings", _FORGE_FORMS["github"][2], "")
        )
        shown = (
            "the secret above"
            if hook.secret_name == secret_name
            else f"the {hook.secret_name!r} entry (pocketci-tui secrets set {hook.secret_name})"
        )
        lines = [f"{name}: {where}"]
        lines += ["  " + f.format(url=hook.url, secret=shown) for f in fields]
        lines += ["  " + line for line in note.splitlines()]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


class WebhookDialog(ModalScreen[None]):
    """Shows what to paste into the forge's webhook settings, and the truth about the secret.

    The secret is looked up when the dialog opens: while it exists it shows masked (``r``
    reveals it); when the entry does not exist the dialog says so and ``g`` generates and
    stores one.

    Args:
        url: The webhook URL.
        secret_name: The secret-store entry holding the webhook secret.
        secrets: The secret store.
        forges: Each configured forge's URL and secret entry, when they are more than
            GitHub at ``url``: a section each, with where its form is and what keeps a
            self-hosted forge from delivering to this host.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reveal", "Reveal secret", id="webhook-reveal"),
        Binding("g", "generate", "Generate secret", id="webhook-generate"),
        Binding("escape,enter,q", "close", "Close", id="dialog-close"),
    ]

    def __init__(
        self,
        url: str,
        secret_name: str,
        secrets: SecretStore,
        *,
        forges: Sequence[ForgeHook] = (),
    ) -> None:
        super().__init__()
        self._url = url
        self._secret_name = secret_name
        self._hooks = tuple(forges) or (ForgeHook("github", url, secret_name),)
        self._secrets = secrets
        self.revealed = False
        """True once the secret is on screen."""
        self.exists: bool | None = None
        """Whether the secret entry exists (None until looked up, or when the store failed)."""

    def compose(self) -> ComposeResult:
        """Lay out URL, the secret (looked up next) and the keys."""
        with Vertical(classes="dialog", id="webhook") as box:
            box.border_title = "Webhook"
            # Several forges' steps may not fit a small terminal: they scroll, the keys stay.
            with VerticalScroll(id="webhook-body"):
                yield Static(self._instructions("…"), id="webhook-text", markup=False)
            yield Label("", id="webhook-error", markup=False)
            yield Label("", id="webhook-keys", classes="dialog-keys", markup=False)

    def on_mount(self) -> None:
        """Look the secret up (off the loop, with a timeout)."""
        self._look_up()

    def _instructions(self, secret: str) -> str:
        return forge_instructions(self._hooks, self._secret_name, secret)

    def _show(self, secret: str, keys: str, error: str = "") -> None:
        self.query_one("#webhook-text", Static).update(self._instructions(secret))
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
                "verified. Press g to generate one here (then paste it into the forge), or run "
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
            f"stored as {self._secret_name!r}: paste it into the forge    Esc: close",
        )
        self.refresh_bindings()

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
