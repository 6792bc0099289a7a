"""The binding ids the configuration validates ``keymap`` against are the UI's own (issue 10).

``pocketci_tui.keys`` lists them without importing Textual, so that ``config.yaml`` can be
checked by every command; this test keeps that list and the UI's bindings in step.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

from pocketci_tui import keys
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.approve import ApproveDialog
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
from pocketci_tui.tui.dialogs.details import EventDetails
from pocketci_tui.tui.dialogs.fire import FireDialog
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.dialogs.refused import RefusedDialog
from pocketci_tui.tui.dialogs.repositories import RepositoriesDialog
from pocketci_tui.tui.dialogs.secrets import PassphraseDialog, SecretsDialog, SecretValueDialog
from pocketci_tui.tui.dialogs.setup import SetupDialog
from pocketci_tui.tui.dialogs.webhook import WebhookDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.run_log import RunLog

SCOPES: dict[str, list[list[BindingType]]] = {
    "main": [PocketCIApp.BINDINGS, MainScreen.BINDINGS],
    "output": [RunLog.BINDINGS],
    "secrets": [SecretsDialog.BINDINGS],
    "secret-value": [SecretValueDialog.BINDINGS],
    "passphrase": [PassphraseDialog.BINDINGS],
    "webhook": [WebhookDialog.BINDINGS],
    "confirm": [ConfirmDialog.BINDINGS],
    "approve": [ApproveDialog.BINDINGS],
    "fire": [FireDialog.BINDINGS],
    "setup": [SetupDialog.BINDINGS],
    "help": [HelpDialog.BINDINGS],
    "details": [EventDetails.BINDINGS],
    "repos": [RepositoriesDialog.BINDINGS],
    "refused": [RefusedDialog.BINDINGS],
}


def test_every_ui_binding_id_and_default_key_is_known_to_the_config() -> None:
    for scope, lists in SCOPES.items():
        found = {
            b.id: b.key
            for bindings in lists
            for b in bindings
            if isinstance(b, Binding) and b.id is not None
        }
        assert found == keys.BINDINGS[scope], (
            f"the {scope} bindings of the UI differ from pocketci_tui/keys.py: update BINDINGS "
            "there when a binding id or default key changes"
        )
    assert set(keys.BINDINGS) == set(SCOPES)


def test_the_default_keys_have_no_conflicts() -> None:
    assert keys.keymap_problem({}) == ("", "")


def test_quit_and_detach_share_q_but_nothing_else_may_take_it() -> None:
    """Quit and detach are never active together (embedded or attached), so both keep ``q``;
    any other binding of the main screen on ``q`` would hide one of them."""
    assert keys.keymap_problem({"quit": "x"}) == ("", "")
    assert keys.keymap_problem({"detach": "d"}) == ("", "")
    culprit, why = keys.keymap_problem({"secrets-show": "q"})
    assert culprit == "secrets-show"
    assert "'q' is also the key of quit" in why


def test_a_remapped_quit_takes_detach_along() -> None:
    assert keys.effective_keymap({"quit": "x"}) == {"quit": "x", "detach": "x"}
    assert keys.effective_keymap({"quit": "x", "detach": "d"}) == {"quit": "x", "detach": "d"}
    # The entry the user wrote is the one blamed, not detach following it.
    culprit, _ = keys.keymap_problem({"quit": "s"})
    assert culprit == "quit"
