"""``pocketci-tui`` with no subcommand: own the data folder, log to the app log, run the UI."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from pocketci_tui.config import Settings
from pocketci_tui.datalock import DataFolderBusy, DataLock
from pocketci_tui.paths import AppPaths, create_private_file, make_private_dir

from .app import make_app


def run_app(args: argparse.Namespace) -> int:
    """Run the UI with the listener and engine; the CLI calls this with no subcommand.

    Args:
        args: Parsed options with ``config``, ``data_dir``, ``host`` and ``port``.

    Returns:
        The exit code.
    """
    from pocketci_tui.launch import CommandFailed, settings_from_args

    try:
        settings, paths = settings_from_args(args)
    except CommandFailed as exc:
        print(f"pocketci-tui: {exc}", file=sys.stderr)
        return exc.code
    # Own the data folder before the terminal is taken and anything is read or changed: a
    # second instance says who owns it and exits.
    try:
        lock = DataLock.acquire(paths.lock_file, "ui")
    except DataFolderBusy as exc:
        print(f"pocketci-tui: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"pocketci-tui: error: cannot start: cannot lock the data folder {paths.data_dir}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    with lock:
        return _run_locked(settings, paths, lock)


def log_to_app_log(paths: AppPaths) -> None:
    """Send the process's log to the app log file (private: it may name repositories), since
    the terminal belongs to the UI."""
    make_private_dir(paths.data_dir)
    create_private_file(paths.app_log)
    logging.basicConfig(
        filename=str(paths.app_log),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _run_locked(settings: Settings, paths: AppPaths, lock: DataLock) -> int:
    """Run the UI while this process owns the data folder."""
    from pocketci_tui.services import Services

    log_to_app_log(paths)

    def with_passphrase(passphrase: str, use_file: bool) -> Services:
        chosen = dataclasses.replace(settings, secrets_backend="file") if use_file else settings
        return Services(chosen, paths, passphrase=passphrase, lock=lock, mode="ui")

    app = make_app(
        settings,
        paths=paths,
        services=Services(settings, paths, lock=lock, mode="ui"),
        services_with_passphrase=with_passphrase,
        quiet_gc=True,
    )
    result = app.run()
    return int(result or 0)
