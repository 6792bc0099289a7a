"""``pocketci-tui secrets set|list|delete``: manage secret values by name, never printing one.

Exit codes: 0 ok, 1 runtime failure (the store failed or timed out), 2 usage or configuration
error, including "no secret store backend available", with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from pocketci_tui.config import SECRET_BACKENDS
from pocketci_tui.secrets import (
    DEFAULT_TIMEOUT,
    ENCRYPTED_FILE,
    MIN_SECRET_LENGTH,
    PassphraseRequired,
    SecretStore,
    SecretStoreError,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    SecretTooShort,
    SecretValueError,
    WrongPassphrase,
    check_secret,
    index_entries,
    open_secret_store,
    read_passphrase,
    validate_name,
)

PROG = "pocketci-tui"


class _Fail(Exception):
    """A failure with its exit code; the message is the one line for stderr."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``secrets`` subcommand (``set``, ``list``, ``delete``) to ``subparsers``.

    Each leaf parser sets ``func`` to a handler ``(args) -> int``. The handlers read
    ``args.config`` and ``args.data_dir`` (Path or None) when present.

    Args:
        subparsers: The result of ``parser.add_subparsers()`` of the main parser.
    """
    parser = subparsers.add_parser(
        "secrets",
        help="store, list and delete secret values (the OS keyring or the encrypted file)",
        description=(
            "Secret values live in the OS keyring (or the encrypted file on a headless server), "
            "addressed by NAME; config.yaml and pocketci.yaml name them, never hold them."
        ),
    )
    backend_help = "override `secrets.backend` of config.yaml for this command"
    parser.add_argument("--backend", choices=SECRET_BACKENDS, default=None, help=backend_help)
    parser.set_defaults(func=_usage(parser))
    actions = parser.add_subparsers(dest="secrets_command", metavar="{set,list,delete}")

    p_set = actions.add_parser(
        "set",
        help="store a value under NAME (hidden prompt, or --stdin)",
        description=(
            "Store a value under NAME. The value is read with a hidden prompt, or from stdin "
            "with --stdin (one trailing newline removed). It never goes through argv. "
            f"Values shorter than {MIN_SECRET_LENGTH} characters are refused unless "
            "--allow-short is given (they would not be masked in build output)."
        ),
    )
    p_set.add_argument("name", metavar="NAME")
    p_set.add_argument("--stdin", action="store_true", help="read the value from stdin")
    p_set.add_argument(
        "--allow-short",
        action="store_true",
        help=f"accept a value shorter than {MIN_SECRET_LENGTH} characters (it is not masked)",
    )
    p_set.add_argument(
        "--backend", choices=SECRET_BACKENDS, default=argparse.SUPPRESS, help=backend_help
    )
    p_set.set_defaults(func=cmd_set)

    p_list = actions.add_parser(
        "list", help="list names and the backend holding each, never values"
    )
    p_list.add_argument(
        "--backend", choices=SECRET_BACKENDS, default=argparse.SUPPRESS, help=backend_help
    )
    p_list.set_defaults(func=cmd_list)

    p_delete = actions.add_parser("delete", help="delete the value stored under NAME")
    p_delete.add_argument("name", metavar="NAME")
    p_delete.add_argument(
        "--backend", choices=SECRET_BACKENDS, default=argparse.SUPPRESS, help=backend_help
    )
    p_delete.set_defaults(func=cmd_delete)


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        print(f"{PROG} secrets: error: choose one of set, list, delete", file=sys.stderr)
        return 2

    return show


# --- helpers ---------------------------------------------------------------------------------


def _config_dir_and_backend(args: argparse.Namespace) -> tuple[Path, str]:
    """Resolve the config folder and the backend (``--backend`` over config.yaml)."""
    from pocketci_tui.config import ConfigError, load_settings
    from pocketci_tui.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None), getattr(args, "data_dir", None))
    backend = getattr(args, "backend", None)
    if backend is None:
        try:
            backend = load_settings(paths.config_file).secrets_backend
        except ConfigError as exc:
            raise _Fail(str(exc), 2) from exc
    return paths.config_dir, backend


async def _open(config_dir: Path, backend: str) -> SecretStore:
    """Open the store, asking for the encrypted file's passphrase only when it is needed."""
    passphrase: str | None = None
    if backend == "file":
        # A new file is created with the first passphrase given: ask twice when prompting.
        passphrase = _passphrase(confirm=not (config_dir / ENCRYPTED_FILE).exists())
    try:
        return await open_secret_store(
            config_dir, backend=backend, passphrase=passphrase, timeout=DEFAULT_TIMEOUT
        )
    except PassphraseRequired:
        if backend != "auto":
            raise
    passphrase = _passphrase()
    return await open_secret_store(
        config_dir, backend="auto", passphrase=passphrase, timeout=DEFAULT_TIMEOUT
    )


def _passphrase(*, confirm: bool = False) -> str | None:
    """The encrypted file's passphrase: systemd credential, else a hidden prompt on a tty."""
    try:
        return read_passphrase(prompt=True, confirm=confirm)
    except SecretStoreError as exc:
        raise _Fail(str(exc), 2) from exc


def _run(action: Callable[[], int]) -> int:
    """Run a handler body, turning failures into an exit code and one line on stderr."""
    try:
        return action()
    except _Fail as exc:
        code, message = exc.code, str(exc)
    except (SecretValueError, SecretStoreUnavailable, WrongPassphrase) as exc:
        code, message = 2, str(exc)
    except SecretStoreTimeout as exc:
        code, message = 1, str(exc)
    except SecretStoreError as exc:
        code, message = 1, str(exc)
    except KeyboardInterrupt:
        code, message = 1, "interrupted"
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _read_value(from_stdin: bool) -> str:
    """Read the value from stdin (one trailing newline removed) or a hidden prompt."""
    if from_stdin:
        value = sys.stdin.read()
        if value.endswith("\r\n"):
            return value[:-2]
        return value[:-1] if value.endswith("\n") else value
    import getpass

    return getpass.getpass("Value (input hidden): ")


# --- handlers --------------------------------------------------------------------------------


def cmd_set(args: argparse.Namespace) -> int:
    """``secrets set NAME [--stdin] [--allow-short]``."""

    def body() -> int:
        name = validate_name(args.name)
        if not args.stdin and (sys.stdin is None or not sys.stdin.isatty()):
            raise _Fail(
                "stdin is not a terminal: pass --stdin to read the value from it "
                "(values never go on the command line)",
                2,
            )
        config_dir, backend = _config_dir_and_backend(args)
        store = asyncio.run(_open(config_dir, backend))
        # The store is known to be there before anyone types a value into it.
        value = _read_value(args.stdin)
        try:
            short = check_secret(name, value, allow_short=args.allow_short)
        except SecretTooShort as exc:
            raise _Fail(f"{exc} (use --allow-short to store it anyway)", 2) from exc
        if short:
            print(f"{PROG}: {short}", file=sys.stderr)
        asyncio.run(store.set(name, value))
        print(f"stored {name} in {store.backend_name}")
        warning = store.warning
        if warning:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        return 0

    return _run(body)


def cmd_list(args: argparse.Namespace) -> int:
    """``secrets list``: ``NAME  BACKEND`` lines from the index; no keyring call, no values."""

    def body() -> int:
        config_dir, _backend = _config_dir_and_backend(args)
        entries = index_entries(config_dir)
        if not entries:
            print(f"{PROG}: no secrets stored yet (pocketci-tui secrets set NAME)", file=sys.stderr)
            return 0
        width = max(len(n) for n in entries)
        for name in sorted(entries):
            print(f"{name:<{width}}  {entries[name]}")
        return 0

    return _run(body)


def cmd_delete(args: argparse.Namespace) -> int:
    """``secrets delete NAME``."""

    def body() -> int:
        name = validate_name(args.name)
        config_dir, backend = _config_dir_and_backend(args)

        async def delete_it() -> tuple[bool, str]:
            store = await _open(config_dir, backend)
            listed = name in index_entries(config_dir)
            if not listed and await store.get(name) is None:
                return False, store.backend_name
            await store.delete(name)
            return True, store.backend_name

        deleted, where = asyncio.run(delete_it())
        if not deleted:
            raise _Fail(
                f"no secret named {name!r} in {where}; nothing was deleted "
                f"(`{PROG} secrets list` shows the stored names)",
                1,
            )
        print(f"deleted {name} from {where}")
        return 0

    return _run(body)


def main(argv: list[str] | None = None) -> int:
    """Run ``secrets ...`` on its own (tests, and the CLI before it is wired).

    Args:
        argv: The arguments after the program name, starting with ``secrets``.

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(prog=PROG)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
