"""The webhook URL and secret, the secret revealed only on request."""

from __future__ import annotations

import asyncio
import secrets as token_source
from collections.abc import Mapping, Sequence
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

from ..messages import CopyText
from .confirm import ConfirmDialog

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


def forge_instructions(
    hooks: Sequence[ForgeHook],
    secret_name: str,
    secret: str,
    others: Mapping[str, str] | None = None,
) -> str:
    """Return what to type into each forge's webhook form, one section per forge.

    A single GitHub hook reads exactly as :func:`paste_instructions`.

    Args:
        hooks: The forges to explain, in order.
        secret_name: The secret-store entry whose value (or mask) is ``secret``.
        secret: What to show for that entry's value (masked until revealed).
        others: What to show for the other entries some forges use (``forges.<vendor>.
            webhook-secret``), by name; an entry not in it is only named.

    Returns:
        The text, sections separated by blank lines.
    """
    if len(hooks) == 1 and hooks[0].vendor == "github" and hooks[0].secret_name == secret_name:
        return paste_instructions(hooks[0].url, secret)
    others = others or {}
    sections = [f"Secret ({secret_name!r})\n  {secret}"]
    for other, value in others.items():
        whose = ", ".join(forge_name(h.vendor) for h in hooks if h.secret_name == other)
        sections.append(f"Secret ({other!r}{', ' + whose if whose else ''})\n  {value}")
    for hook in hooks:
        name, where, fields, note = _FORGE_FORMS.get(
            hook.vendor, (hook.vendor, "its webhook settings", _FORGE_FORMS["github"][2], "")
        )
        if hook.secret_name == secret_name:
            shown = "the secret above" if not others else f"the {secret_name!r} secret above"
        elif hook.secret_name in others:
            shown = f"the {hook.secret_name!r} secret above"
        else:
            shown = f"the {hook.secret_name!r} entry (pocketci-tui secrets set {hook.secret_name})"
        lines = [f"{name}: {where}"]
        lines += ["  " + f.format(url=hook.url, secret=shown) for f in fields]
        lines += ["  " + line for line in note.splitlines()]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


class WebhookDialog(ModalScreen[None]):
    """Shows what to paste into the forge's webhook settings, and the truth about the secret.

    Every secret entry the forges use (the top-level one, and each forge's own) is looked up
    when the dialog opens: while they exist they show masked (``r`` reveals them, read once
    more, never logged); an entry that does not exist is said so and ``g`` generates and
    stores one for each missing entry.

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
        Binding("c", "copy_url", "Copy URL", id="webhook-copy-url"),
        Binding("C", "copy_secret", "Copy secret", id="webhook-copy-secret"),
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
        self._names = tuple(dict.fromkeys((secret_name, *(h.secret_name for h in self._hooks))))
        self._secrets = secrets
        self._present: dict[str, bool] = {}
        self._shown: dict[str, str] = dict.fromkeys(self._names, "…")
        self.revealed = False
        """True once the secrets are on screen."""
        self.exists: bool | None = None
        """Whether the top-level secret entry exists (None until looked up, or when the store
        failed)."""
        self._copies = 0

    @property
    def missing(self) -> tuple[str, ...]:
        """The entries looked up and not found."""
        return tuple(name for name in self._names if self._present.get(name) is False)

    def compose(self) -> ComposeResult:
        """Lay out URL, the secret (looked up next) and the keys."""
        with Vertical(classes="dialog", id="webhook") as box:
            box.border_title = "Webhook"
            # Several forges' steps may not fit a small terminal: they scroll, the keys stay.
            with VerticalScroll(id="webhook-body"):
                yield Static(self._instructions(), id="webhook-text", markup=False)
            yield Label("", id="webhook-error", markup=False)
            yield Label("", id="webhook-keys", classes="dialog-keys", markup=False)

    def on_mount(self) -> None:
        """Look the secrets up (off the loop, with a timeout)."""
        self._look_up()

    def _instructions(self) -> str:
        others = {name: self._shown[name] for name in self._names[1:]}
        return forge_instructions(
            self._hooks, self._secret_name, self._shown[self._secret_name], others
        )

    def _show(self, keys: str, error: str = "") -> None:
        self.query_one("#webhook", Vertical).set_class(bool(error), "-error")
        self.query_one("#webhook-text", Static).update(self._instructions())
        self.query_one("#webhook-error", Label).update(error)
        self.query_one("#webhook-keys", Label).update(keys)

    def _fail(self, message: str) -> None:
        self.exists = None
        self._present = {}
        self._shown = dict.fromkeys(self._names, "(cannot be read)")
        self._show("Esc: close", message)
        self.refresh_bindings()

    async def _read(self, name: str) -> tuple[bool, str | None]:
        """Read one secret off the loop, with a timeout.

        Returns:
            (whether the store answered, the value or None); a failure is already shown.
        """
        try:
            value = await asyncio.wait_for(self._secrets.get(name), SECRET_TIMEOUT)
        except TimeoutError:
            self._fail("The secret store did not answer (locked keyring?).")
            return False, None
        except SecretStoreError as exc:
            self._fail(f"Secret store: {exc}")
            return False, None
        return True, value

    def _entries(self) -> str:
        # Several entries are each named above their value: the keys line stays one line.
        if len(self._names) == 1 and self._present.get(self._secret_name):
            return f"secret: the {self._secret_name!r} entry"
        return ""

    @work(group="secrets", exclusive=True)
    async def _look_up(self) -> None:
        for name in self._names:
            answered, value = await self._read(name)
            if not answered:
                return
            self._present[name] = value is not None
            self._shown[name] = HIDDEN if value is not None else "(none yet)"
        self.exists = self._present[self._secret_name]
        self._show(*self._keys_and_error())
        self.refresh_bindings()

    def _keys_and_error(self) -> tuple[str, str]:
        """The keys line and what is missing, from what was looked up."""
        hidden = any(self._shown[n] == HIDDEN for n in self._names if self._present.get(n))
        copy = "c/C: copy" if self._present.get(self._secret_name) else "c: copy URL"
        keys = [self._entries(), copy, "r: reveal" if hidden else ""]
        error = ""
        missing = self.missing
        if missing:
            keys.append("g: generate and store one" if len(missing) == 1 else "g: generate them")
            error = (
                f"No secret named {_quoted(missing)} is stored yet, so no delivery "
                f"{'' if len(self._names) == 1 else 'of the forges using it '}can be "
                "verified. Press g to generate one here (then paste it into the forge), or run "
                + " or ".join(f"`pocketci-tui secrets set {name}`" for name in missing)
                + " to store your own."
            )
        return "    ".join(k for k in (*keys, "Esc: close") if k), error

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Reveal only existing secrets; generate only missing ones."""
        if action == "reveal":
            return any(self._present.values()) and not self.revealed
        if action == "generate":
            return bool(self.missing)
        if action == "copy_secret":
            return bool(self._present.get(self._secret_name))
        return True

    def action_copy_url(self) -> None:
        """Copy the webhook URL (each forge's in turn, when there are several)."""
        hook = self._hooks[self._copies % len(self._hooks)]
        self._copies += 1
        what = "the webhook URL"
        if len(self._hooks) > 1:
            what = f"{forge_name(hook.vendor)}'s webhook URL"
        self.post_message(CopyText(hook.url, what))

    def action_copy_secret(self) -> None:
        """Copy the webhook secret, once the user confirmed it should leave the screen."""

        def answered(yes: bool | None) -> None:
            if yes:
                self._copy_secret()

        self.app.push_screen(
            ConfirmDialog(
                f"Copy the webhook secret {self._secret_name!r} to the clipboard?",
                "It goes through the terminal (OSC 52): tmux and your terminal keep it in "
                "their clipboard until something else is copied.",
            ),
            answered,
        )

    @work(group="secrets", exclusive=True)
    async def _copy_secret(self) -> None:
        answered, value = await self._read(self._secret_name)
        if not answered:
            return
        if value is None:  # removed meanwhile
            self._look_up()
            return
        what = f"the webhook secret {self._secret_name!r}"
        self.post_message(CopyText(value, what, secret=True))

    def action_reveal(self) -> None:
        """Read the secrets and show them."""
        self._reveal()

    @work(group="secrets", exclusive=True)
    async def _reveal(self) -> None:
        for name in [n for n in self._names if self._present.get(n)]:
            answered, value = await self._read(name)
            if not answered:
                return
            if value is None:  # removed meanwhile
                self._look_up()
                return
            self._shown[name] = value
        self.revealed = True
        self._show(*self._keys_and_error())
        self.refresh_bindings()

    def action_generate(self) -> None:
        """Generate a random secret for each missing entry and store it."""
        self._generate()

    @work(group="secrets", exclusive=True)
    async def _generate(self) -> None:
        stored: list[str] = []
        for name in self.missing:
            value = token_source.token_hex(32)
            try:
                await asyncio.wait_for(self._secrets.set(name, value), SECRET_TIMEOUT)
            except TimeoutError:
                self._fail("The secret store did not answer (locked keyring?).")
                return
            except SecretStoreError as exc:
                self._fail(f"Secret store: {exc}")
                return
            self._present[name] = True
            self._shown[name] = value
            stored.append(name)
        self.exists = self._present.get(self._secret_name)
        self.revealed = all(self._shown[n] != HIDDEN for n in self._names)
        where = "the forge" if len(stored) == 1 else "the forges"
        self._show(f"stored as {_quoted(stored)}: paste it into {where}    Esc: close")
        self.refresh_bindings()

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
