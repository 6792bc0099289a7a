"""The secret store interface, its errors, the names index and the memory store."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pocketci_tui.config import SECRET_NAME_RE

log = logging.getLogger("pocketci_tui.secrets")

MIN_SECRET_LENGTH = 6
"""Shorter values are refused by ``secrets set`` (unless forced) and never masked."""

MIN_PASSPHRASE_LENGTH = 12
"""A new encrypted file's passphrase is at least this long (four words or so)."""

SERVICE = "pocketci-tui"
"""The keyring service name under which every value is stored."""

INDEX_FILE = "secrets-index.json"
ENCRYPTED_FILE = "secrets.cfg"
PLAINTEXT_FILE = "secrets-plaintext.json"
PASSPHRASE_CREDENTIAL = "pocketci-passphrase"
"""The systemd credential (``LoadCredential=``, ``LoadCredentialEncrypted=``): the passphrase."""

DEFAULT_TIMEOUT = 5.0
FILE_TIMEOUT = 30.0
"""The encrypted file cannot hang, but Argon2 is slow on a busy small box: allow this long."""

_PROBE_NAME = "pocketci-probe"

PLAINTEXT_WARNING = (
    "secrets are stored UNENCRYPTED in {path} (mode 0600): anyone who can read that file, "
    "root and your backups included, can read them; prefer the OS keyring or the encrypted file"
)

_HINT_HEADLESS = (
    "on a server without a desktop session, use the encrypted file: set `secrets: {backend: "
    "file}` in config.yaml and give its passphrase (typed into the UI, a systemd credential "
    f"named {PASSPHRASE_CREDENTIAL}, or a hidden prompt when run in a terminal)"
)


class SecretStoreError(Exception):
    """The secret store failed; the message says what to do."""


class SecretStoreUnavailable(SecretStoreError):
    """No usable backend (no keyring, locked, or explicitly disabled)."""


class SecretStoreTimeout(SecretStoreError):
    """The backend did not answer in time (a locked or hung keyring)."""


class SecretStoreLocked(SecretStoreUnavailable):
    """The keyring exists but is locked and could not be unlocked without a prompt."""


class PassphraseRequired(SecretStoreUnavailable):
    """The encrypted file is the store to use, but no passphrase was given."""


class WrongPassphrase(SecretStoreError):
    """The passphrase does not open the encrypted file."""


class SecretValueError(SecretStoreError, ValueError):
    """A secret name or value was refused (bad name, empty or too short a value)."""


class SecretTooShort(SecretValueError):
    """The value is shorter than :data:`MIN_SECRET_LENGTH` (it could not be masked)."""


class SecretStore(Protocol):
    """Where secret values live, addressed by name. Every method is safe on the event loop."""

    backend_name: str
    """A human name of where values live (``SecretService``, ``encrypted file``, ``memory``)."""

    warning: str | None
    """A warning to show wherever the store is in use (the plaintext store's), or None."""

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None."""
        ...

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``."""
        ...

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        ...

    async def names(self) -> list[str]:
        """Return the stored names, sorted."""
        ...

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback`` with the name of each entry set or deleted through this store.

        A change made by another process (``pocketci-tui secrets set`` in another terminal) is
        not seen. Returns a function that stops the calls.
        """
        ...


class Watchers:
    """Who is told of a store's changes: the store holds one and tells it each change."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[str], None]] = []

    def add(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Tell ``callback`` from now on; return a function that stops it."""
        self._callbacks.append(callback)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return stop

    def tell(self, name: str) -> None:
        """Tell every watcher that ``name`` was set or deleted (a failing one is logged)."""
        for callback in list(self._callbacks):
            try:
                callback(name)
            except Exception:
                log.exception("a watcher of the secret store failed")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid secret name.

    Raises:
        SecretValueError: The name is not letters, digits, ``.``, ``_``, ``-`` (max 128).
    """
    if not SECRET_NAME_RE.fullmatch(name):
        raise SecretValueError(
            f"invalid secret name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return name


def check_value(value: str, *, allow_short: bool = False) -> str | None:
    """Check a value before it is stored.

    Args:
        value: The secret value.
        allow_short: Accept a value shorter than :data:`MIN_SECRET_LENGTH`.

    Returns:
        None, or a warning to show when a short value is accepted (it will not be masked).

    Raises:
        SecretValueError: The value is empty.
        SecretTooShort: The value is short and ``allow_short`` is false.
    """
    if not value:
        raise SecretValueError("refusing to store an empty value")
    if len(value) < MIN_SECRET_LENGTH:
        message = (
            f"the value is {len(value)} characters long; values shorter than "
            f"{MIN_SECRET_LENGTH} are not masked in build output"
        )
        if not allow_short:
            raise SecretTooShort(message)
        return f"warning: {message}"
    return None


def check_secret(name: str, value: str, *, allow_short: bool = False) -> str | None:
    """The one check of a secret before it is stored, used by the CLI and the UI alike.

    Args:
        name: The secret's name.
        value: Its value.
        allow_short: Accept a value shorter than :data:`MIN_SECRET_LENGTH` (the CLI's
            ``--allow-short``; the UI never does).

    Returns:
        None, or a warning to show when a short value is accepted (it will not be masked).

    Raises:
        SecretValueError: The name is invalid or the value is empty.
        SecretTooShort: The value is short and ``allow_short`` is false.
    """
    validate_name(name)
    return check_value(value, allow_short=allow_short)


def check_new_passphrase(passphrase: str) -> None:
    """Check the passphrase that creates a new encrypted file (the CLI's and the UI's rule).

    An existing file keeps opening with the passphrase it was made with; only a new one must
    meet the rule.

    Raises:
        SecretValueError: The passphrase is shorter than :data:`MIN_PASSPHRASE_LENGTH`.
    """
    if len(passphrase.strip()) < MIN_PASSPHRASE_LENGTH:
        raise SecretValueError(
            f"a new passphrase needs at least {MIN_PASSPHRASE_LENGTH} characters "
            f"(this one has {len(passphrase.strip())}); a few words are easy to type and hard "
            "to guess"
        )


class MemorySecretStore:
    """A secret store in memory, for tests.

    Args:
        values: Initial values by name.
    """

    backend_name = "memory"
    kind = "memory"
    warning: str | None = None

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self._values = dict(values or {})
        self._watchers = Watchers()

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None."""
        return self._values.get(name)

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``."""
        self._values[name] = value
        self._watchers.tell(name)

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        self._values.pop(name, None)
        self._watchers.tell(name)

    async def names(self) -> list[str]:
        """Return the stored names, sorted."""
        return sorted(self._values)

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback`` with the name of each entry set or deleted from now on."""
        return self._watchers.add(callback)


# --- the names index -------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable only by the owner."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class SecretIndex:
    """The names of stored secrets and the backend holding each; never a value.

    Args:
        path: The JSON file (``secrets-index.json``), or None to keep the index in memory.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    def entries(self) -> dict[str, str]:
        """Return ``{name: backend kind}`` (blocking file read)."""
        if self.path is None:
            return dict(self._memory)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SecretStoreError(f"cannot read the secrets index {self.path}: {exc}") from exc
        secrets = data.get("secrets", {}) if isinstance(data, dict) else {}
        return {
            str(name): str(entry.get("backend", "?"))
            for name, entry in secrets.items()
            if isinstance(entry, dict)
        }

    def _save(self, entries: dict[str, str]) -> None:
        if self.path is None:
            self._memory = entries
            return
        doc = {
            "version": 1,
            "note": "names of pocketci-tui secrets and where they live; values are never here",
            "secrets": {name: {"backend": kind} for name, kind in sorted(entries.items())},
        }
        _write_private(self.path, json.dumps(doc, indent=2) + "\n")

    def add(self, name: str, kind: str) -> None:
        """Record that ``name`` lives in backend ``kind``."""
        with self._lock:
            entries = self.entries()
            if entries.get(name) != kind:
                entries[name] = kind
                self._save(entries)

    def remove(self, name: str, kind: str) -> None:
        """Forget ``name`` if the index says it lives in ``kind``."""
        with self._lock:
            entries = self.entries()
            if entries.get(name) == kind:
                del entries[name]
                self._save(entries)
