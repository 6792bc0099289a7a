"""Why the UI's services did not start: the failure classified for the status bar and dialogs.

The services fail as one exception chain (a port in use, a secret store that needs a
passphrase, no OS keyring over SSH...). These functions read that chain so the app can show a
short problem, the full sentence, and offer the right way out (the passphrase prompt, or the
encrypted file where no keyring answers).
"""

from __future__ import annotations

from pathlib import Path

from pocketci_tui.config import Settings
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import (
    PassphraseRequired,
    SecretStoreError,
    SecretStoreUnavailable,
    WrongPassphrase,
)


def causes(exc: BaseException) -> list[BaseException]:
    """The exception and every cause or context behind it, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def needs_passphrase(exc: BaseException) -> bool:
    """True when the encrypted file asked for its passphrase, or was given a wrong one."""
    return any(isinstance(e, PassphraseRequired | WrongPassphrase) for e in causes(exc))


NO_KEYRING_HELP = (
    "No OS keyring answers here (no D-Bus session, as usual over SSH). pocketci can keep its "
    "secrets in an encrypted file instead: choose a passphrase. You will type it at each start "
    "(or give it as the systemd credential pocketci-passphrase for `serve`)."
)


def passphrase_reason(exc: BaseException, encrypted_file: Path) -> str:
    """Why the UI asks for the encrypted file's passphrase, in the UI's words."""
    if any(isinstance(e, WrongPassphrase) for e in causes(exc)):
        return f"That passphrase does not open {encrypted_file}. Try again."
    if encrypted_file.exists():
        return f"The secrets are in the encrypted file {encrypted_file}: type its passphrase."
    return (
        f"The config keeps secrets in an encrypted file (secrets.backend: file), and "
        f"{encrypted_file} does not exist yet: choose its passphrase. You will type it at each "
        "start (or give it to `serve` as the systemd credential pocketci-passphrase)."
    )


def no_keyring(exc: BaseException) -> bool:
    """True when no OS keyring answered (no D-Bus session, as usual over SSH)."""
    return any(isinstance(e, SecretStoreUnavailable) for e in causes(exc))


def start_error(exc: BaseException, settings: Settings) -> Problem:
    """The problem that kept the services from starting, for the status bar and Output pane."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    if getattr(exc, "errno", None) in (98, 48) or "in use" in text.lower():
        return Problem(
            key="listener",
            short=f"port {settings.port} in use",
            detail=first,
            fix="stop the program that listens there, or choose another port "
            "(listen.port in the config, or --port)",
        )
    if any(isinstance(e, SecretStoreError) for e in causes(exc)):
        # The same key as the secret store probe's: a store that answers later clears it.
        return Problem(
            key="secret-store",
            short="keyring unavailable",
            detail=first,
            fix="unlock the keyring, or see `pocketci-tui check` for the other secret stores",
        )
    return Problem(
        key="start",
        short="start failed",
        detail=first,
        fix="see the app log (`pocketci-tui locate logs`) and `pocketci-tui check`",
    )
