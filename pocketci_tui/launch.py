"""What every front end does with its command line before anything runs.

``serve``, the one-shot commands and the terminal UI all turn the parsed options into settings
and paths the same way (``--host`` and ``--port`` over ``listen``), open the secret store the
configuration selects with the same passphrase rules, and end a failed command with one line on
stderr and its exit code. :class:`~pocketci_tui.services.Services` opens the secret store here
too, so the store a command sees is always the one the running instance uses.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace

from pocketci_tui.config import Settings
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import SecretStore, SecretStoreError

__all__ = [
    "CommandFailed",
    "open_secrets",
    "passphrase_for",
    "run_command",
    "settings_from_args",
]


class CommandFailed(Exception):
    """A command failed; ``code`` is its exit code (1 runtime, 2 usage or configuration)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, AppPaths]:
    """Resolve paths and load the configuration for parsed command-line options.

    ``--host`` and ``--port`` override ``listen``.

    Args:
        args: The parsed options (``config``, ``data_dir``, ``host``, ``port``).

    Returns:
        The settings and paths.

    Raises:
        CommandFailed: The configuration is invalid (exit code 2).
    """
    from pocketci_tui.config import ConfigError, load_settings
    from pocketci_tui.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
    try:
        settings = load_settings(paths.config_file)
    except ConfigError as exc:
        raise CommandFailed(str(exc), 2) from exc
    host = getattr(args, "host", None)
    port = getattr(args, "port", None)
    if host is not None or port is not None:
        settings = replace(
            settings,
            host=host if host is not None else settings.host,
            port=port if port is not None else settings.port,
        )
    return settings, paths


def run_command(body: Callable[[], int]) -> int:
    """Run a command body; turn :class:`CommandFailed` into one line on stderr and its code."""
    import sys

    try:
        return body()
    except CommandFailed as exc:
        print(f"pocketci-tui: error: {exc}", file=sys.stderr)
        return exc.code


async def open_secrets(
    settings: Settings, paths: AppPaths, *, passphrase: str | None = None
) -> SecretStore:
    """Open the secret store that the configuration selects.

    Args:
        settings: The user configuration (``secrets.backend``).
        paths: Where the config folder is (it holds the index and file backends).
        passphrase: The encrypted file's passphrase, when that backend is used.

    Returns:
        The store.

    Raises:
        SecretStoreError: No usable backend; the message says what to do.
    """
    from pocketci_tui import secrets as secrets_mod

    return await secrets_mod.open_secret_store(
        paths.config_dir, backend=settings.secrets_backend, passphrase=passphrase
    )


def passphrase_for(
    settings: Settings, paths: AppPaths, *, prompt: bool | None = None
) -> str | None:
    """Find the encrypted secrets file's passphrase when that backend may be used.

    Args:
        settings: The configuration (``secrets.backend``).
        paths: Where the config folder is.
        prompt: Allow a hidden prompt; None allows it when stdin is a terminal.

    Returns:
        The passphrase (systemd credential or prompt), or None.

    Raises:
        CommandFailed: The credential file is unusable (exit code 2).
    """
    import sys

    from pocketci_tui import secrets as secrets_mod

    encrypted = paths.config_dir / secrets_mod.ENCRYPTED_FILE
    backend = settings.secrets_backend
    if backend == "file" or (backend == "auto" and encrypted.exists()):
        if prompt is None:
            prompt = sys.stdin is not None and sys.stdin.isatty()
        try:
            # No file yet: the passphrase creates it, so it is asked twice and must meet the
            # rule of `secrets set` and of the UI.
            return secrets_mod.read_passphrase(prompt=prompt, confirm=not encrypted.exists())
        except SecretStoreError as exc:
            raise CommandFailed(str(exc), 2) from exc
    return None
