"""``pocketci-tui`` with no subcommand: own the data folder, log to the app log, run the UI;
or, when a running owner of the data folder answers on its control socket, attach to it
(``pocketci-tui attach`` does only that)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

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
        # Its owner runs the builds: show them, if it answers on its control socket.
        from pocketci_tui.control.location import SocketLocationError

        try:
            socket = _owner_socket(paths)
        except SocketLocationError as refused:
            print(f"pocketci-tui: error: {exc} Not attaching to it: {refused}", file=sys.stderr)
            return 2
        if socket is not None:
            return _run_attached(settings, paths, socket)
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

    async def reload_for_clients() -> tuple[bool, str]:
        # A UI attached to this one asks for a reload (its ctrl+l): this one's reloader does it.
        return await app.reloads.for_clients()

    def owner(chosen: Settings, passphrase: str | None = None) -> Services:
        services = Services(chosen, paths, passphrase=passphrase, lock=lock, mode="ui")
        services.reload_config = reload_for_clients
        return services

    def with_passphrase(passphrase: str, use_file: bool) -> Services:
        chosen = dataclasses.replace(settings, secrets_backend="file") if use_file else settings
        return owner(chosen, passphrase)

    app = make_app(
        settings,
        paths=paths,
        services=owner(settings),
        services_with_passphrase=with_passphrase,
        quiet_gc=True,
    )
    result = app.run()
    return int(result or 0)


OWNER_PATIENCE = 10.0
"""Seconds to wait for the control socket of an owner that is still starting (it opens the
socket last, once its engine and listener run)."""

LISTENING_GRACE = 3.0
"""Seconds to wait for the socket once the owner listens (it opens the socket just after):
an owner that listens and never answers is an older version without one."""


def _owner_socket(paths: AppPaths) -> Path | None:
    """The control socket of the data folder's running owner, when it answers (waiting a
    little for an owner that is still starting); None otherwise."""
    from pocketci_tui.control.client import find_owner_blocking
    from pocketci_tui.datalock import lock_owner

    deadline = time.monotonic() + OWNER_PATIENCE
    while True:
        socket = find_owner_blocking(paths)
        if socket is not None:
            return socket
        owner = lock_owner(paths.lock_file)
        if owner is None or time.monotonic() >= deadline:
            return None
        if owner.url:
            deadline = min(deadline, time.monotonic() + LISTENING_GRACE)
        time.sleep(0.2)


def run_attach(args: argparse.Namespace) -> int:
    """``pocketci-tui attach``: the UI over the builds of the data folder's running owner
    (or the one at ``--socket``); never an engine of its own.

    Args:
        args: Parsed options with ``config``, ``data_dir`` and ``socket``.

    Returns:
        The exit code: 1 when nothing answers at the socket.
    """
    from pocketci_tui.control.client import find_owner_blocking, greet_blocking
    from pocketci_tui.control.location import SocketLocationError, socket_path
    from pocketci_tui.launch import CommandFailed, settings_from_args

    try:
        settings, paths = settings_from_args(args)
    except CommandFailed as exc:
        print(f"pocketci-tui: {exc}", file=sys.stderr)
        return exc.code
    given: Path | None = getattr(args, "socket", None)
    try:
        socket = given if given is not None else find_owner_blocking(paths)
        where = given if given is not None else socket_path(paths)
    except SocketLocationError as exc:
        print(f"pocketci-tui: error: {exc}", file=sys.stderr)
        return 2
    hello = greet_blocking(socket) if socket is not None else None
    if socket is None or hello is None:
        folder = "the data folder it serves" if given is not None else str(paths.data_dir)
        print(
            f"pocketci-tui: error: nothing answers at {where}: no pocketci-tui runs on "
            f"{folder}. Start one with `pocketci-tui serve` (or `pocketci-tui`, the UI with its "
            "own engine), then attach again; `pocketci-tui check` says what runs where.",
            file=sys.stderr,
        )
        return 1
    return _run_attached(settings, _owner_paths(paths, hello.data_dir), socket)


def _owner_paths(paths: AppPaths, data_dir: str) -> AppPaths:
    """The paths of the data folder the owner serves (its run logs are read from there: the
    pager, the log search), which ``--socket`` may have chosen instead of this one."""
    if data_dir and Path(data_dir) != paths.data_dir:
        return AppPaths(config_file=paths.config_file, data_dir=Path(data_dir))
    return paths


def _run_attached(settings: Settings, paths: AppPaths, socket: Path) -> int:
    """Run the UI as a client of the owner at ``socket``: nothing here opens the database or
    the secret store, and quitting stops nothing."""
    from pocketci_tui.control.client import SocketClient

    log_to_app_log(paths)
    app = make_app(
        settings,
        paths=paths,
        services=SocketClient(socket),
        first_start=False,
        quiet_gc=True,
    )
    result = app.run()
    return int(result or 0)
