"""Starting without a usable OS keyring: the encrypted file, its passphrase typed into the UI
(never on the terminal Textual owns), a wrong passphrase asked again."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import yaml
from textual.widgets import Input, Label

from pocketci_tui.config import Settings
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import SecretStoreUnavailable, open_secret_store
from pocketci_tui.services import Services, ServicesError
from pocketci_tui.tui.app import make_app
from pocketci_tui.tui.dialogs.secrets import PassphraseDialog, SecretsDialog
from pocketci_tui.tui.dialogs.setup import SetupDialog
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .harness import wait_for

PASSPHRASE = "correct horse battery staple"


class NoKeyringServices(Services):
    """Services whose secret store cannot open, as on a server without D-Bus."""

    async def start(self, *, host: str | None = None, port: int | None = None) -> str:
        try:
            raise SecretStoreUnavailable("no OS keyring (no D-Bus session)")
        except SecretStoreUnavailable as exc:
            raise ServicesError(str(exc)) from exc


async def test_no_keyring_offers_the_encrypted_file_then_setup(
    app_paths: AppPaths, caplog: pytest.LogCaptureFixture
) -> None:
    """Also (issue 10): a normal first start logs no ERROR traceback, and a port given for
    this start only (``--port``, here 0) is not written into the new config.yaml."""
    caplog.set_level(logging.INFO)
    settings = Settings(port=0)
    made: list[tuple[str, bool]] = []

    def with_passphrase(passphrase: str, use_file: bool) -> Services:
        made.append((passphrase, use_file))
        chosen = dataclasses.replace(settings, secrets_backend="file") if use_file else settings
        return Services(chosen, app_paths, passphrase=passphrase)

    app = make_app(
        settings,
        paths=app_paths,
        services=NoKeyringServices(settings, app_paths),
        services_with_passphrase=with_passphrase,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(
            lambda: isinstance(app.screen, PassphraseDialog) and isinstance(app.focused, Input),
            pilot,
        )
        dialog = app.screen
        assert isinstance(dialog, PassphraseDialog)
        assert "No OS keyring" in str(dialog.query_one("#passphrase-why").render())
        # The passphrase creates the file: the dialog says so, asks twice, and wants a real one
        # (issue 10: it accepted `abc`, once, under "Enter: unlock").
        assert dialog.create
        assert "Enter: create the encrypted file" in str(dialog.query_one(".dialog-keys").render())
        error = dialog.query_one("#passphrase-error", Label)
        await pilot.press(*"abc", "enter")
        await wait_for(lambda: "at least 12 characters" in str(error.render()), pilot)
        assert app.focused is dialog.query_one("#passphrase-input")
        dialog.query_one("#passphrase-input", Input).value = ""
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(lambda: app.focused is dialog.query_one("#passphrase-repeat"), pilot)
        await pilot.press(*"correct horse battery stapler", "enter")
        await wait_for(lambda: "differ" in str(error.render()), pilot)
        assert made == []
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(lambda: isinstance(app.screen, SetupDialog), pilot)
        assert made == [(PASSPHRASE, True)]
        dialog = app.screen
        assert isinstance(dialog, SetupDialog)
        await pilot.press("enter")
        await wait_for(lambda: dialog.step == 2, pilot)
        await pilot.press("enter")
        status = app.screen.query_one(StatusBar)
        await wait_for(
            lambda: (
                bool(status.url)
                and not {p.key for p in status.problems} & {"secret-store", "webhook-secret"}
            ),
            pilot,
        )
    config = yaml.safe_load(app_paths.config_file.read_text())
    assert config["secrets"]["backend"] == "file"
    assert config["listen"]["port"] == 8080
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    assert any("secret store not open yet: no OS keyring" in r.message for r in caplog.records)
    store = await open_secret_store(app_paths.config_dir, backend="file", passphrase=PASSPHRASE)
    secret = await store.get("webhook-secret")
    assert secret is not None
    assert len(secret) == 64


async def test_wrong_passphrase_is_asked_again(app_paths: AppPaths) -> None:
    app_paths.config_dir.mkdir(parents=True, exist_ok=True)
    store = await open_secret_store(app_paths.config_dir, backend="file", passphrase=PASSPHRASE)
    await store.set("webhook-secret", "w" * 40)
    settings = Settings(port=0, secrets_backend="file")

    def with_passphrase(passphrase: str, use_file: bool) -> Services:
        return Services(settings, app_paths, passphrase=passphrase)

    app = make_app(
        settings,
        paths=app_paths,
        services=Services(settings, app_paths),
        first_start=False,
        services_with_passphrase=with_passphrase,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(
            lambda: isinstance(app.screen, PassphraseDialog) and isinstance(app.focused, Input),
            pilot,
        )
        dialog = app.screen
        assert isinstance(dialog, PassphraseDialog)
        assert not dialog.create  # the file exists: one field, "unlock"
        assert "type its passphrase" in str(dialog.query_one("#passphrase-why").render())
        assert "Enter: unlock" in str(dialog.query_one(".dialog-keys").render())
        await pilot.press(*"not it at all", "enter")
        await wait_for(
            lambda: (
                isinstance(app.screen, PassphraseDialog)
                and "wrong passphrase" in str(app.screen.query_one("#passphrase-why").render())
            ),
            pilot,
        )
        await pilot.press(*PASSPHRASE, "enter")
        status = app.screen.query_one(StatusBar)
        await wait_for(lambda: bool(status.url), pilot, limit=60)
        assert not {p.key for p in app.problems} & {"secret-store", "webhook-secret"}


async def test_a_cancelled_unlock_can_be_retried(app_paths: AppPaths) -> None:
    """Esc on the unlock prompt used to leave a dead app (``keyring unavailable · listener
    down``, ``s``: "not open", nothing but a restart). The state is now called what it is
    (locked), and ``u``, the status bar and the palette offer the prompt again."""
    app_paths.config_dir.mkdir(parents=True, exist_ok=True)
    store = await open_secret_store(app_paths.config_dir, backend="file", passphrase=PASSPHRASE)
    await store.set("webhook-secret", "w" * 40)
    settings = Settings(port=0, secrets_backend="file")

    def with_passphrase(passphrase: str, use_file: bool) -> Services:
        return Services(settings, app_paths, passphrase=passphrase)

    app = make_app(
        settings,
        paths=app_paths,
        services=Services(settings, app_paths),
        first_start=False,
        services_with_passphrase=with_passphrase,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: isinstance(app.screen, PassphraseDialog), pilot)
        await pilot.press("escape")
        status = app.screen.query_one(StatusBar)
        await wait_for(lambda: not status.starting, pilot)
        line = str(status.render())
        assert "secret store locked · u unlocks" in line
        assert "keyring" not in line
        assert "listener down" in line
        assert app.secrets_locked
        assert app.active_bindings["u"].enabled

        await pilot.press("s")
        await wait_for(lambda: any("press u" in str(n.message) for n in app._notifications), pilot)
        assert not isinstance(app.screen, SecretsDialog)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert titles[0] == "Unlock secrets"

        await pilot.press("u")
        await wait_for(
            lambda: isinstance(app.screen, PassphraseDialog) and isinstance(app.focused, Input),
            pilot,
        )
        await pilot.press(*PASSPHRASE, "enter")
        await wait_for(lambda: bool(status.url), pilot, limit=60)
        assert not app.secrets_locked
        assert not {p.key for p in app.problems} & {"secret-store", "webhook-secret"}
        assert "Unlock secrets" not in [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
