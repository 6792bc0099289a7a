"""``pocketci-tui locate config|data|db|logs|socket``: print where things are."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pocketci_tui.launch import CommandFailed, run_command

if TYPE_CHECKING:
    from pocketci_tui.paths import AppPaths

WHAT = ("config", "data", "db", "logs", "socket")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``locate`` subcommand."""
    parser = sub.add_parser(
        "locate",
        parents=[common],
        help="print the path of the config, data, db, logs or control socket",
        description="Print one path. `socket` is where the owner of the data folder (`serve`, "
        "or the UI) serves its control socket, which `pocketci-tui` and `pocketci-tui attach` "
        "connect to: in the user's runtime folder ($XDG_RUNTIME_DIR) when there is one, else "
        "under the data folder (an owner started without one, such as a system service, binds "
        "there; `pocketci-tui check` says where the running owner answers).",
    )
    parser.add_argument("what", choices=WHAT)
    parser.set_defaults(func=cmd_locate)


def cmd_locate(args: argparse.Namespace) -> int:
    """Print one path."""

    def body() -> int:
        from pocketci_tui.paths import resolve_paths

        paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
        if args.what == "socket":
            print(_socket(paths))
            return 0
        path = {
            "config": paths.config_file,
            "data": paths.data_dir,
            "db": paths.db_file,
            "logs": paths.logs_dir,
        }[args.what]
        print(path)
        return 0

    return run_command(body)


def _socket(paths: AppPaths) -> Path:
    """Where the data folder's control socket is: where its running owner answers, else where
    an owner started here would bind it."""
    from pocketci_tui.control.client import greet_blocking
    from pocketci_tui.control.location import SocketLocationError, socket_candidates, socket_path

    try:
        chosen = socket_path(paths)
    except SocketLocationError as exc:
        raise CommandFailed(str(exc), 1) from exc
    for candidate in socket_candidates(paths):
        if candidate.exists() and greet_blocking(candidate) is not None:
            return candidate
    return chosen
