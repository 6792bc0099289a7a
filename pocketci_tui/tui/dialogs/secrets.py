"""Managing secrets: list names, set a value through a masked input, delete."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from pocketci_tui.secrets import (
    MIN_PASSPHRASE_LENGTH,
    MIN_SECRET_LENGTH,
    SecretStore,
    SecretStoreError,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    SecretTooShort,
    SecretValueError,
    check_new_passphrase,
    check_secret,
)

from .confirm import ConfirmDialog
from .list_keys import ListDialog, list_bindings

SECRET_TIMEOUT = 5.0

Unlock = Callable[[str], Awaitable[SecretStore]]
"""Opens the encrypted-file store with a passphrase and returns it."""


def describe_error(exc: BaseException) -> str:
    """Turn a secret-store failure into one clear sentence."""
    if isinstance(exc, SecretStoreTimeout | TimeoutError):
        return "The secret store did not answer in time (a locked or hung keyring)."
    if isinstance(exc, SecretStoreUnavailable):
        return f"No usable secret store: {exc}"
    return f"Secret store error: {exc}"


class SecretValueDialog(ModalScreen[tuple[str, str] | None]):
    """Ask for a secret's name (unless given) and its value, typed into a masked input.

    Args:
        name: The secret to set, or empty to ask for a name.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog-close")
    ]

    def __init__(self, name: str = "") -> None:
        super().__init__()
        self._name = name

    def compose(self) -> ComposeResult:
        """Lay out name and value inputs."""
        with Vertical(classes="dialog", id="secret-value") as box:
            box.border_title = f"Set {self._name}" if self._name else "New secret"
            if not self._name:
                yield Input(placeholder="name, e.g. github-token", id="secret-name")
            yield Input(placeholder="value (hidden)", password=True, id="secret-input")
            yield Label("", id="secret-warning", markup=False)
            yield Label("Enter: save    Esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        """Focus the first input; no blinking cursor in tests."""
        for widget in self.query(Input):
            widget.cursor_blink = not self.app.is_headless
        self.query(Input).first().focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        warning = self.query_one("#secret-warning", Label)
        name = self._name
        if not name:
            name = self.query_one("#secret-name", Input).value.strip()
            if event.input.id == "secret-name":
                self.query_one("#secret-input", Input).focus()
                return
        value = self.query_one("#secret-input", Input).value
        try:
            # The same rule as `pocketci-tui secrets set`: names, empty and short values.
            check_secret(name, value)
        except SecretTooShort as exc:
            warning.update(
                f"Refused: {exc}. Choose a longer value (the command `pocketci-tui secrets "
                f"set {name} --allow-short` stores a short one anyway)."
            )
            return
        except SecretValueError as exc:
            warning.update(f"Refused: {exc}.")
            return
        self.dismiss((name, value))

    @on(Input.Changed, "#secret-input")
    def _changed(self, event: Input.Changed) -> None:
        warning = self.query_one("#secret-warning", Label)
        if event.value and len(event.value) < MIN_SECRET_LENGTH:
            warning.update(
                f"At least {MIN_SECRET_LENGTH} characters: shorter values cannot be masked in "
                "build output."
            )
        else:
            warning.update("")

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)


class PassphraseDialog(ModalScreen[str | None]):
    """Ask for the passphrase of the encrypted secrets file: once to unlock it, twice to create it.

    A new file's passphrase must meet :func:`~pocketci_tui.secrets.check_new_passphrase`, the
    rule the command line applies too.

    Args:
        why: What needs it (shown above the input).
        title: The dialog's title (by default, what the dialog does).
        create: The file does not exist yet: the passphrase creates it (asked twice).
    """

    def __init__(self, why: str = "", title: str = "", *, create: bool = False) -> None:
        super().__init__()
        self._why = why
        self.create = create
        """True when the passphrase creates the file (asked twice, minimum length)."""
        self._title = title or (
            "Choose a passphrase for the encrypted secrets file"
            if create
            else "Unlock the encrypted secrets file"
        )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog-close")
    ]

    def compose(self) -> ComposeResult:
        """Lay out one masked input (unlock) or two (create)."""
        with Vertical(classes="dialog", id="passphrase") as box:
            box.border_title = self._title
            if self._why:
                yield Label(self._why, markup=False, id="passphrase-why")
            if self.create:
                yield Input(
                    placeholder=f"new passphrase, at least {MIN_PASSPHRASE_LENGTH} characters",
                    password=True,
                    id="passphrase-input",
                )
                yield Input(
                    placeholder="the same passphrase again", password=True, id="passphrase-repeat"
                )
            else:
                yield Input(placeholder="passphrase (hidden)", password=True, id="passphrase-input")
            yield Label("", id="passphrase-error", markup=False)
            action = "create the encrypted file" if self.create else "unlock"
            yield Label(f"Enter: {action}    Esc: cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        """Focus the first input."""
        for field in self.query(Input):
            field.cursor_blink = not self.app.is_headless
        self.query_one("#passphrase-input", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        error = self.query_one("#passphrase-error", Label)
        first = self.query_one("#passphrase-input", Input).value
        if not first:
            return
        if not self.create:
            self.dismiss(first)
            return
        try:
            check_new_passphrase(first)
        except SecretValueError as exc:
            error.update(f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
            self.query_one("#passphrase-input", Input).focus()
            return
        repeat = self.query_one("#passphrase-repeat", Input)
        if event.input.id == "passphrase-input":
            error.update("")
            repeat.focus()
            return
        if repeat.value != first:
            error.update("The two passphrases differ: type the same one twice.")
            repeat.value = ""
            return
        self.dismiss(first)

    def action_cancel(self) -> None:
        """Close without a passphrase."""
        self.dismiss(None)


class SecretsDialog(ListDialog[None]):
    """Lists secret names (never values) and sets or deletes them.

    Args:
        store: The secret store.
        unlock: Opens the encrypted-file store with a passphrase, when that backend is used.
        encrypted_file: The encrypted file (when missing, the passphrase creates it).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New", id="secret-new"),
        Binding("e,enter", "edit", "Set value", id="secret-set"),
        Binding("d,delete", "delete", "Delete", id="secret-delete"),
        Binding("u", "unlock", "Unlock", id="secret-unlock", show=False),
        Binding("escape,q", "close", "Close", id="dialog-close"),
        *list_bindings(),
    ]
    LIST = "#secret-names"

    def __init__(
        self,
        store: SecretStore,
        unlock: Unlock | None = None,
        *,
        encrypted_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        """The store shown (replaced after unlocking)."""
        self._unlock = unlock
        self._encrypted_file = encrypted_file
        self.names: list[str] = []
        """The names listed."""

    def compose(self) -> ComposeResult:
        """Lay out the list and the keys."""
        with Vertical(classes="dialog", id="secrets") as box:
            box.border_title = f"Secrets ({self.store.backend_name})"
            yield OptionList(id="secret-names")
            yield Label("", id="secrets-error", markup=False)
            keys = "n: new   e/Enter: set value   d: delete   Esc: close"
            if self._unlock is not None:
                keys += "   u: unlock"
            yield Label(keys, classes="dialog-keys")

    def on_mount(self) -> None:
        """Load the names."""
        self.reload()

    def _show_error(self, message: str) -> None:
        self.query_one("#secrets-error", Label).update(message)

    @work(group="secrets", exclusive=True)
    async def reload(self, select: str | None = None) -> None:
        """Read the names from the store (off the loop, with a timeout)."""
        try:
            names = await asyncio.wait_for(self.store.names(), SECRET_TIMEOUT)
        except (SecretStoreError, TimeoutError) as exc:
            message = describe_error(exc)
            if self._unlock is not None and isinstance(exc, SecretStoreUnavailable):
                message += " Press u to unlock the encrypted file with its passphrase."
            self._show_error(message)
            return
        self.names = names
        options = self.query_one("#secret-names", OptionList)
        options.clear_options()
        options.add_options([Option(name, id=name) for name in names])
        if not names:
            self._show_error("No secrets yet. Press n to add one.")
        else:
            self._show_error("")
            if select in names:
                options.highlighted = names.index(select)
            elif options.highlighted is None:
                options.highlighted = 0
        options.focus()

    @property
    def selected(self) -> str | None:
        """The highlighted name."""
        options = self.query_one("#secret-names", OptionList)
        if options.highlighted is None or not self.names:
            return None
        return self.names[options.highlighted]

    @on(OptionList.OptionSelected)
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_edit()

    def action_new(self) -> None:
        """Ask for a name and value."""
        self.app.push_screen(SecretValueDialog(), self._save)

    def action_edit(self) -> None:
        """Ask for a new value of the highlighted secret."""
        if self.selected is None:
            self.action_new()
            return
        self.app.push_screen(SecretValueDialog(self.selected), self._save)

    def _save(self, result: tuple[str, str] | None) -> None:
        if result is not None:
            self._write(*result)

    @work(group="secrets")
    async def _write(self, name: str, value: str) -> None:
        try:
            await asyncio.wait_for(self.store.set(name, value), SECRET_TIMEOUT)
        except (SecretStoreError, TimeoutError) as exc:
            self._show_error(describe_error(exc))
            return
        self.notify(f"Stored {name}", title="Secrets")
        self.reload(select=name)

    def action_delete(self) -> None:
        """Delete the highlighted secret, after asking."""
        name = self.selected
        if name is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._remove(name)

        self.app.push_screen(ConfirmDialog(f"Delete the secret {name!r}?"), answered)

    @work(group="secrets")
    async def _remove(self, name: str) -> None:
        try:
            await asyncio.wait_for(self.store.delete(name), SECRET_TIMEOUT)
        except (SecretStoreError, TimeoutError) as exc:
            self._show_error(describe_error(exc))
            return
        self.notify(f"Deleted {name}", title="Secrets")
        self.reload()

    def action_unlock(self) -> None:
        """Ask for the encrypted file's passphrase."""
        if self._unlock is None:
            return
        create = self._encrypted_file is not None and not self._encrypted_file.exists()
        self.app.push_screen(PassphraseDialog(create=create), self._unlocked)

    def _unlocked(self, passphrase: str | None) -> None:
        if passphrase:
            self._open(passphrase)

    @work(group="secrets")
    async def _open(self, passphrase: str) -> None:
        assert self._unlock is not None
        try:
            self.store = await self._unlock(passphrase)
        except (SecretStoreError, TimeoutError) as exc:
            self._show_error(describe_error(exc))
            return
        self.reload()

    def action_close(self) -> None:
        """Close the dialog."""
        self.dismiss(None)
