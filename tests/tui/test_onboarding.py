"""What a new user meets first: the secrets screen's rules, the passphrase that creates the
encrypted file, the webhook dialog and the help (issue 10, "Onboarding that works from the README
alone")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Label, Static

from pocketci_tui.config import Settings
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import MIN_SECRET_LENGTH, PLAINTEXT_FILE, MemorySecretStore
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.help import HelpDialog, key_display
from pocketci_tui.tui.dialogs.secrets import SecretsDialog, SecretValueDialog
from pocketci_tui.tui.dialogs.webhook import HIDDEN, WebhookDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.run_log import RunLog

from .harness import wait_for
from .test_ui_actions import build, ready, seeded

CLI = [sys.executable, "-m", "pocketci_tui", "secrets"]
"""The secrets command as users run it."""


class DialogHost(App[None]):
    """An empty app that opens one dialog and keeps what it returns."""

    def __init__(self, dialog: SecretValueDialog) -> None:
        super().__init__()
        self.dialog = dialog
        self.results: list[tuple[str, str] | None] = []

    def compose(self) -> ComposeResult:
        yield Label("host")

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.results.append)


def cli_accepts(home: Path, name: str, value: str) -> bool:
    """Whether ``pocketci-tui secrets set NAME --stdin`` stores the value (real process)."""
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env["POCKETCI_TUI_HOME"] = str(home)
    result = subprocess.run(
        [*CLI, "--backend", "plaintext", "set", "--stdin", "--", name],
        input=value,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 2), result.stderr
    return result.returncode == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pin", "abc"),  # the 3-character value the UI used to store
        ("pin", "x" * (MIN_SECRET_LENGTH - 1)),
        ("pin", "x" * MIN_SECRET_LENGTH),
        ("has space", "long-enough-value"),
        ("-rf", "long-enough-value"),
        ("x" * 129, "long-enough-value"),
        ("github-token", "ghp_0123456789"),
    ],
)
async def test_ui_and_cli_apply_the_same_rules(name: str, value: str, hermetic_home: Path) -> None:
    """The secrets screen accepts exactly what `pocketci-tui secrets set` accepts."""
    dialog = SecretValueDialog()
    host = DialogHost(dialog)
    async with host.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: isinstance(host.screen, SecretValueDialog), pilot)
        dialog.query_one("#secret-name", Input).value = name
        dialog.query_one("#secret-input", Input).value = value
        await pilot.pause()
        dialog.query_one("#secret-input", Input).focus()
        await pilot.press("enter")
        await pilot.pause(0.1)
        ui_accepts = bool(host.results) and host.results[0] == (name, value)
        if not ui_accepts:
            warning = str(dialog.query_one("#secret-warning", Label).render())
            assert warning.startswith("Refused: ")
    assert ui_accepts == cli_accepts(hermetic_home, name, value)


async def test_secrets_screen_refuses_a_three_character_value(app_paths: AppPaths) -> None:
    """Typing `abc` as a value stores nothing and says why (it could not be masked)."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        await pilot.press("n")
        await wait_for(
            lambda: isinstance(app.screen, SecretValueDialog) and isinstance(app.focused, Input),
            pilot,
        )
        await pilot.press(*"pin", "enter", *"abc", "enter")
        dialog = app.screen
        assert isinstance(dialog, SecretValueDialog)
        warning = dialog.query_one("#secret-warning", Label)
        await wait_for(lambda: "Refused" in str(warning.render()), pilot)
        assert "not masked" in str(warning.render())
        assert "pin" not in await services.secrets.names()
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
    assert not (app_paths.config_dir / PLAINTEXT_FILE).exists()


async def test_webhook_dialog_tells_the_truth_about_a_missing_secret(app_paths: AppPaths) -> None:
    """No `webhook-secret` stored: no masked dots, the dialog says so, and `g` makes one."""
    services, _ = await seeded(app_paths)
    services.secrets = MemorySecretStore({"github-token": "ghp_example_token_value"})
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, WebhookDialog)
        await wait_for(lambda: dialog.exists is False, pilot)
        text = str(dialog.query_one("#webhook-text", Static).render())
        assert HIDDEN not in text
        assert "(none yet)" in text
        error = str(dialog.query_one("#webhook-error", Label).render())
        assert "No secret named 'webhook-secret' is stored yet" in error
        assert "pocketci-tui secrets set webhook-secret" in error
        await pilot.press("r")  # nothing to reveal
        await pilot.pause(0.1)
        assert not dialog.revealed
        await pilot.press("g")
        await wait_for(lambda: dialog.exists is True, pilot)
        stored = await services.secrets.get("webhook-secret")
        assert stored is not None
        assert len(stored) == 64
        assert stored in str(dialog.query_one("#webhook-text", Static).render())
        await pilot.press("g")  # never replaces an existing secret
        await pilot.pause(0.1)
        assert await services.secrets.get("webhook-secret") == stored
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)


async def test_help_lists_every_binding_from_the_bindings_themselves(app_paths: AppPaths) -> None:
    """`?` omitted `ctrl+q` (a hand-kept list): now every binding of the app, the main screen
    and the Output pane is listed with its keys, remapped ones included."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths, Settings(keymap={"log-top": "t"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)
        table = app.screen.query_one("#help-table", DataTable)
        shown = {
            str(table.get_row_at(row)[2]): str(table.get_row_at(row)[0])
            for row in range(table.row_count)
        }
    declared: dict[str, set[str]] = {}
    for source in (PocketCIApp, MainScreen, RunLog):
        for binding in Binding.make_bindings(source.__dict__["BINDINGS"]):
            assert binding.id, f"{source.__name__}: {binding.key} has no id"
            declared.setdefault(binding.id, set()).add(binding.key)
    assert "quit-now" in declared
    assert "detach" in declared
    assert "detach" not in shown
    for binding_id, keys in declared.items():
        if binding_id == "detach":
            continue
        assert binding_id in shown, binding_id
        if binding_id != "log-top":
            for key in keys:
                assert key_display(key) in shown[binding_id].split(), (binding_id, key)
    assert shown["quit-now"] == "ctrl+q"
    assert shown["log-top"] == "t"
    assert shown["log-follow"] == "End G"
