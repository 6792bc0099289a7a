"""The ``pocketci-tui`` command line (SPEC 4.1).

Without a subcommand it starts the terminal UI; ``serve`` runs the same listener and engine
headless. Subcommands are imported only when chosen, so ``--version`` and the one-shot commands
start fast and never load the UI. Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration
error (with one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pocketci_tui import __version__

PROG = "pocketci-tui"

EPILOG = """\
environment:
  POCKETCI_TUI_HOME  one folder for everything: config.yaml and the secrets file in it, the
                     data (database, logs, checkouts) under data/; --config and --data-dir
                     still win. Unset: the platform's config and data folders
                     (`pocketci-tui locate` prints them).

`pocketci-tui COMMAND --help` describes each command; `pocketci-tui check` checks a set-up.
"""


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, got {port}")
    return port


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the subcommand.

    On the subcommands their default is SUPPRESS, so a value given before the subcommand is not
    overwritten by the subparser's default.
    """
    default = argparse.SUPPRESS if suppress else None
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("common options")
    group.add_argument(
        "--config", type=Path, default=default, metavar="PATH", help="the config.yaml to use"
    )
    group.add_argument(
        "--data-dir", type=Path, default=default, metavar="DIR", help="where data is kept"
    )
    group.add_argument("--host", default=default, metavar="H", help="listen on this address")
    group.add_argument("--port", type=_port, default=default, metavar="P", help="listen port")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A self-hosted CI runner for Dagger pipelines, with a terminal UI.\n"
        "Without a command, starts the terminal UI with the webhook listener; when `serve`\n"
        "(or another UI) already runs on the data folder, the UI attaches to it instead.",
        parents=[_common_options(suppress=False)],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options(suppress=True)

    from pocketci_tui.commands import check, events, fire, locate, serve

    for module in (serve, events, fire, check, locate):
        module.register(sub, common)
    _register_attach(sub, common)
    _register_secrets(sub, common)
    return parser


def _register_attach(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``attach``: the terminal UI over the builds of a running ``serve`` (or UI)."""
    # Only the options that pick the data folder: the listener is the owner's.
    folder = argparse.ArgumentParser(add_help=False)
    group = folder.add_argument_group("common options")
    for action in common._actions:
        if set(action.option_strings) & {"--config", "--data-dir"}:
            group._add_action(action)
    parser = sub.add_parser(
        "attach",
        parents=[folder],
        help="open the terminal UI on the builds of a running `serve` (or UI)",
        description="Open the terminal UI on the builds of the pocketci-tui that owns the data "
        "folder (`pocketci-tui serve`, or the UI in another terminal), through its control "
        "socket: the same panes, keys and actions, while its listener and engine keep running "
        "in that process. q detaches and stops nothing. `pocketci-tui` alone does this by "
        "itself when the data folder has a running owner; attach says so when nothing answers "
        "instead of starting an engine of its own.",
        epilog="`pocketci-tui locate socket` prints where the socket of this data folder is; "
        "`pocketci-tui check` says whether it answers.",
    )
    parser.add_argument(
        "--socket",
        type=Path,
        metavar="PATH",
        help="the owner's control socket (default: the one of this data folder)",
    )
    parser.set_defaults(func=_run_attach)


def _run_attach(args: argparse.Namespace) -> int:
    from pocketci_tui.tui.run import run_attach

    return run_attach(args)


def _register_secrets(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    try:
        from pocketci_tui.commands import secrets as secrets_cmd
    except ImportError:
        return
    secrets_cmd.register(sub)
    parser = sub.choices.get("secrets")
    if parser is not None:
        for action in common._actions:
            if action.option_strings and not any(
                s in parser._option_string_actions for s in action.option_strings
            ):
                parser._add_action(action)


def _run_tui(args: argparse.Namespace) -> int:
    try:
        from pocketci_tui.tui.run import run_app
    except ImportError:
        print(f"{PROG}: the terminal UI is not available yet; use `{PROG} serve`", file=sys.stderr)
        return 2
    return run_app(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; None reads ``sys.argv``.

    Returns:
        The exit code.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    func: Callable[[argparse.Namespace], int] | None = args.func
    # Everything created from here on is private to the user (files 0600, folders 0700),
    # whatever umask the shell or service manager gave: git and SQLite honour it too.
    from pocketci_tui.paths import private_umask

    try:
        with private_umask():
            if func is None:
                return _run_tui(args)
            return func(args)
    except KeyboardInterrupt:
        return 130
