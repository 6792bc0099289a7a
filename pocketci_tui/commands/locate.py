"""``pocketci-tui locate config|data|db|logs``: print where things are."""

from __future__ import annotations

import argparse

from pocketci_tui.launch import run_command

WHAT = ("config", "data", "db", "logs")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``locate`` subcommand."""
    parser = sub.add_parser(
        "locate", parents=[common], help="print the path of the config, data, db or logs"
    )
    parser.add_argument("what", choices=WHAT)
    parser.set_defaults(func=cmd_locate)


def cmd_locate(args: argparse.Namespace) -> int:
    """Print one path."""

    def body() -> int:
        from pocketci_tui.paths import resolve_paths

        paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
        path = {
            "config": paths.config_file,
            "data": paths.data_dir,
            "db": paths.db_file,
            "logs": paths.logs_dir,
        }[args.what]
        print(path)
        return 0

    return run_command(body)
