"""Keyring-backed stores: the OS keyring, the encrypted file and the opt-in plaintext file.

Every blocking backend call runs on one daemon thread per store (:mod:`.worker`), bounded by a
timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pocketci_tui.secrets.base import (
    _HINT_HEADLESS,
    _PROBE_NAME,
    DEFAULT_TIMEOUT,
    FILE_TIMEOUT,
    PASSPHRASE_CREDENTIAL,
    PLAINTEXT_WARNING,
    SERVICE,
    PassphraseRequired,
    SecretIndex,
    SecretStoreError,
    SecretStoreLocked,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    SecretValueError,
    Watchers,
    WrongPassphrase,
    _write_private,
    check_new_passphrase,
    validate_name,
)
from pocketci_tui.secrets.worker import _Worker

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

T = TypeVar("T")

# --- keyring-backed stores -------------------------------------------------------------------

_DISABLED_BACKENDS = {
    "keyring.backends.null": "the null keyring, which stores nothing",
    "keyring.backends.fail": "the fail keyring, which refuses every call",
}


def _describe(backend: object) -> str:
    name = getattr(backend, "name", None)
    return str(name) if name else type(backend).__name__


def _check_usable(backend: object, origin: str = "") -> None:
    """Refuse backends that store nothing or that would prompt on the terminal."""
    module = type(backend).__module__
    for prefix, what in _DISABLED_BACKENDS.items():
        if module.startswith(prefix):
            raise SecretStoreUnavailable(
                f"{origin or 'the keyring'} selects {what} ({module}); treated as no secret "
                f"store; unset it or choose another backend; {_HINT_HEADLESS}"
            )
    if module.startswith("keyring.backends.chainer") and not getattr(backend, "backends", None):
        raise SecretStoreUnavailable(f"no usable OS keyring; {_HINT_HEADLESS}")
    if module.startswith(("keyrings.cryptfile", "keyrings.alt")) and not getattr(
        backend, "pocketci_no_prompt", False
    ):
        raise SecretStoreUnavailable(
            f"{origin or 'the keyring configuration'} selects a file keyring ({module}), which "
            "asks for its password on the terminal or stores values unencrypted; use "
            "`secrets: {backend: file}` instead (encrypted, the passphrase given without a "
            "prompt), or `plaintext` if you accept unencrypted values"
        )


def _select_os_backend() -> KeyringBackend:
    """Pick the OS keyring (blocking: may talk to D-Bus). Never a file keyring.

    Raises:
        SecretStoreUnavailable: No OS keyring is usable; the message says why and what to do.
    """
    import keyring.core

    for origin, load in (
        ("PYTHON_KEYRING_BACKEND", keyring.core.load_env),
        ("the keyring config file (keyringrc.cfg)", keyring.core.load_config),
    ):
        try:
            explicit = load()
        except Exception as exc:
            raise SecretStoreUnavailable(f"{origin}: cannot load the keyring: {exc}") from exc
        if explicit is not None:
            _check_usable(explicit, origin)
            return explicit

    reasons: list[str] = []
    if sys.platform == "darwin":
        from keyring.backends import macOS

        classes: list[type[KeyringBackend]] = [macOS.Keyring]
    elif sys.platform == "win32":
        from keyring.backends import Windows

        classes = [Windows.WinVaultKeyring]
    else:
        if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            raise SecretStoreUnavailable(
                "no OS keyring: there is no D-Bus session (DBUS_SESSION_BUS_ADDRESS is unset, "
                f"as usual over SSH); {_HINT_HEADLESS}"
            )
        from keyring.backends import SecretService, kwallet, libsecret

        classes = [SecretService.Keyring, libsecret.Keyring, kwallet.DBusKeyring]
    best: tuple[float, Any] | None = None
    for cls in classes:
        try:
            priority = float(cls.priority)  # type: ignore[attr-defined]
        except Exception as exc:
            reasons.append(f"{cls.__module__.rsplit('.', 1)[-1]}: {exc}")
            continue
        if priority > 0 and (best is None or priority > best[0]):
            best = (priority, cls)
    if best is None:
        detail = "; ".join(reasons) or "no backend for this platform"
        raise SecretStoreUnavailable(f"no OS keyring is usable ({detail}); {_HINT_HEADLESS}")
    chosen: KeyringBackend = best[1]()
    return chosen


LOCKED_HINT = (
    "keyring locked: unlock it with your desktop's keyring (log in to the desktop session, or "
    "unlock the collection in Seahorse or KWallet Manager); pocketci-tui reads secrets without "
    "ever opening the unlock prompt"
)
"""How a locked keyring is reported (the problem line of the UI, ``check`` and held events)."""


def _map_error(exc: BaseException, where: str) -> BaseException:
    """Turn a backend exception into a SecretStoreError with advice (never with a value)."""
    if isinstance(exc, SecretStoreError):
        return exc
    import keyring.errors

    if isinstance(exc, keyring.errors.KeyringLocked):
        return SecretStoreLocked(f"{LOCKED_HINT} ({where}); or {_HINT_HEADLESS}")
    if isinstance(exc, keyring.errors.NoKeyringError | keyring.errors.InitError):
        return SecretStoreUnavailable(f"{where} is not usable ({exc}); {_HINT_HEADLESS}")
    name = type(exc).__name__
    if name in {"SecretServiceNotAvailableException", "DBusErrorResponse"}:
        return SecretStoreUnavailable(f"{where} is not reachable ({exc}); {_HINT_HEADLESS}")
    if name in {"LockedException", "PromptDismissedException"}:
        return SecretStoreLocked(f"{LOCKED_HINT} ({where}: {exc}); or {_HINT_HEADLESS}")
    return SecretStoreError(f"{where} failed: {name}: {exc}")


def _secret_service_read(backend: Any, service: str, name: str) -> str | None:
    """Read one value from the Secret Service without ever asking it to unlock.

    keyring's own ``get_password`` calls ``Unlock`` on a locked collection, which makes the
    desktop show its unlock prompt (or, without a display, waits on a prompter) every time the
    listener or the engine reads a secret. Here the collection's ``Locked`` property is checked
    first and a locked collection or item is reported as :class:`SecretStoreLocked`; a missing
    default collection means nothing is stored (creating one could prompt as well).

    Raises:
        SecretStoreLocked: The collection or the item is locked.
    """
    import secretstorage
    from secretstorage.exceptions import ItemNotFoundException

    connection = secretstorage.dbus_init()
    try:
        path = getattr(backend, "preferred_collection", None)
        try:
            if path:
                collection = secretstorage.Collection(connection, path)
            else:
                collection = secretstorage.Collection(connection)  # the default alias
        except ItemNotFoundException:
            return None
        if collection.is_locked():
            raise SecretStoreLocked(f"{LOCKED_HINT}; or {_HINT_HEADLESS}")
        for item in collection.search_items(backend._query(service, name)):
            if item.is_locked():
                raise SecretStoreLocked(f"{LOCKED_HINT}; or {_HINT_HEADLESS}")
            value: bytes = item.get_secret()
            return value.decode("utf-8")
        return None
    finally:
        connection.close()


def _read_without_prompt(backend: KeyringBackend, service: str, name: str) -> str | None:
    """``backend.get_password``, except that a Secret Service keyring is never asked to unlock."""
    if type(backend).__module__ == "keyring.backends.SecretService":
        return _secret_service_read(backend, service, name)
    return backend.get_password(service, name)


class KeyringSecretStore:
    """A secret store on a ``keyring`` backend, safe to call from the event loop.

    Args:
        keyring_backend: The backend; None picks the OS keyring on first use (never a file
            keyring that prompts, never the null keyring).
        service: The keyring service name the values are stored under.
        timeout: Seconds to wait for any one call before :class:`SecretStoreTimeout`.
        index: Where the names are listed; None keeps them in memory.
        kind: The short backend id recorded in the index (``keyring``, ``file``, ``plaintext``).
    """

    warning: str | None = None
    """A warning to show wherever the store is in use (set for the plaintext store)."""

    def __init__(
        self,
        keyring_backend: KeyringBackend | None = None,
        *,
        service: str = SERVICE,
        timeout: float = DEFAULT_TIMEOUT,
        index: SecretIndex | None = None,
        kind: str = "keyring",
    ) -> None:
        self._backend = keyring_backend
        self.service = service
        self.timeout = timeout
        self.index = index or SecretIndex(None)
        self.kind = kind
        self._worker = _Worker(f"pocketci-secrets-{kind}")
        self._watchers = Watchers()
        self.backend_name = (
            _describe(keyring_backend) if keyring_backend is not None else "OS keyring"
        )

    # The blocking half: runs on the worker thread.

    def _backend_now(self) -> KeyringBackend:
        if self._backend is None:
            self._backend = _select_os_backend()
            self.backend_name = _describe(self._backend)
        _check_usable(self._backend)
        return self._backend

    def _wrap(self, fn: Callable[[KeyringBackend], T]) -> Callable[[], T]:
        def call() -> T:
            try:
                return fn(self._backend_now())
            except BaseException as exc:
                raise _map_error(exc, self.backend_name) from None

        return call

    async def _call(self, fn: Callable[[KeyringBackend], T], what: str) -> T:
        busy = self._worker.busy_since
        if busy is not None and time.monotonic() - busy > self.timeout:
            raise SecretStoreTimeout(self._timeout_message(what, waiting=True))
        try:
            return await self._worker.run(self._wrap(fn), self.timeout)
        except TimeoutError:
            raise SecretStoreTimeout(self._timeout_message(what, waiting=False)) from None

    def _timeout_message(self, what: str, *, waiting: bool) -> str:
        lead = (
            "an earlier call is still waiting"
            if waiting
            else f"no answer within {self.timeout:g} s"
        )
        return (
            f"{self.backend_name} is unresponsive ({what}: {lead}); it may be locked and "
            "waiting for an unlock prompt nobody can see: unlock it, or restart the keyring "
            f"daemon, or {_HINT_HEADLESS}"
        )

    # The async API.

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None.

        Raises:
            SecretStoreTimeout: The backend did not answer in time.
            SecretStoreUnavailable: There is no usable backend, or it is locked.
            SecretStoreError: Any other failure.
        """
        validate_name(name)
        return await self._call(
            lambda b: _read_without_prompt(b, self.service, name), f"reading {name}"
        )

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` and record the name in the index.

        Raises:
            SecretValueError: Bad name or empty value.
            SecretStoreError: As for :meth:`get`.
        """
        validate_name(name)
        if not value:
            raise SecretValueError("refusing to store an empty value")

        def do(b: KeyringBackend) -> None:
            b.set_password(self.service, name, value)
            self.index.add(name, self.kind)

        await self._call(do, f"storing {name}")
        self._watchers.tell(name)

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        validate_name(name)

        def do(b: KeyringBackend) -> None:
            import keyring.errors

            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                b.delete_password(self.service, name)
            self.index.remove(name, self.kind)

        await self._call(do, f"deleting {name}")
        self._watchers.tell(name)

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback`` with the name of each entry set or deleted through this store
        from now on (not by another process)."""
        return self._watchers.add(callback)

    async def names(self) -> list[str]:
        """Return the names the index lists for this backend, sorted (no keyring call)."""
        entries = await asyncio.to_thread(self.index.entries)
        return sorted(n for n, kind in entries.items() if kind == self.kind)

    async def unlock(self) -> None:
        """Select and exercise the backend (read a probe entry); raise what a real call would."""
        await self._call(
            lambda b: _read_without_prompt(b, self.service, _PROBE_NAME), "checking the keyring"
        )


@functools.cache
def _cryptfile_class() -> type[Any]:
    """Return a CryptFileKeyring subclass that can never prompt for its passphrase.

    keyrings.cryptfile asks with ``getpass`` when its key is missing; here the key is set from
    the passphrase before any call, and both prompting paths raise instead.
    """
    from keyrings.cryptfile.cryptfile import CryptFileKeyring  # type: ignore[import-untyped]

    class NoPromptCryptFile(CryptFileKeyring):  # type: ignore[misc]
        """CryptFileKeyring whose passphrase is set up front; asking for it is an error."""

        pocketci_no_prompt = True
        name = "encrypted file"

        def _get_new_password(self) -> str:
            raise PassphraseRequired("the encrypted secrets file needs a passphrase")

        def _unlock(self) -> None:
            if self._keyring_key is None:
                raise PassphraseRequired("the encrypted secrets file needs a passphrase")
            super()._unlock()

    return NoPromptCryptFile


class EncryptedFileSecretStore(KeyringSecretStore):
    """Secrets in a passphrase-protected file (AES-GCM, Argon2 key), for headless servers.

    Decrypting costs an Argon2 derivation (about half a second), so values read once are kept
    in memory until the file changes.

    Args:
        path: The encrypted file (created on first use).
        passphrase: The passphrase; required, never prompted for.
        service: As for :class:`KeyringSecretStore`.
        timeout: As for :class:`KeyringSecretStore`, but at least :data:`FILE_TIMEOUT` (each
            call derives a key; the first one also checks the passphrase).
        index: As for :class:`KeyringSecretStore`.

    Raises:
        PassphraseRequired: ``passphrase`` is empty.
    """

    def __init__(
        self,
        path: Path,
        passphrase: str | None,
        *,
        service: str = SERVICE,
        timeout: float = DEFAULT_TIMEOUT,
        index: SecretIndex | None = None,
    ) -> None:
        if not passphrase or not passphrase.strip():
            raise PassphraseRequired(
                f"the encrypted secrets file {path} needs its passphrase: type it into the UI, "
                f"provide the systemd credential {PASSPHRASE_CREDENTIAL}, or run the command in "
                "a terminal to be prompted"
            )
        self.path = path
        self._passphrase: str | None = passphrase
        self._cache: dict[str, str | None] = {}
        self._cache_sig: tuple[int, int] | None = None
        super().__init__(
            None, service=service, timeout=max(timeout, FILE_TIMEOUT), index=index, kind="file"
        )
        self.backend_name = f"encrypted file ({path})"

    def _backend_now(self) -> KeyringBackend:
        if self._backend is None:
            backend = _cryptfile_class()()
            backend.file_path = str(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            passphrase, self._passphrase = self._passphrase, None
            if passphrase is not None and not self.path.exists():
                try:
                    check_new_passphrase(passphrase)  # a new file: the rule of every prompt
                except SecretValueError:
                    self._passphrase = passphrase
                    raise
            try:
                backend.keyring_key = passphrase  # verifies it, or creates the file
            except ValueError as exc:
                self._passphrase = passphrase  # allow a retry with the same store
                raise WrongPassphrase(
                    f"wrong passphrase for the encrypted secrets file {self.path}"
                ) from exc
            self._backend = backend
        return self._backend

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None (cached until the file changes)."""
        validate_name(name)

        def do(b: KeyringBackend) -> str | None:
            sig = self._signature()
            if sig != self._cache_sig:
                self._cache, self._cache_sig = {}, sig
            if name not in self._cache:
                self._cache[name] = b.get_password(self.service, name)
            return self._cache[name]

        return await self._call(do, f"reading {name}")

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` (see :meth:`KeyringSecretStore.set`)."""
        await super().set(name, value)
        self._cache_sig = None

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        await super().delete(name)
        self._cache_sig = None


class _PlaintextBackend:
    """A tiny keyring-like backend: a JSON file with mode 0600 (explicit opt-in only)."""

    name = "plaintext file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise SecretStoreError(
                f"{self.path} is readable by other users (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {self.path}`"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SecretStoreError(f"{self.path} is not valid JSON") from exc
        return data if isinstance(data, dict) else {}

    def get_password(self, service: str, username: str) -> str | None:
        value = self._load().get(service, {}).get(username)
        return value if isinstance(value, str) else None

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            data = self._load()
            data.setdefault(service, {})[username] = password
            _write_private(self.path, json.dumps(data, indent=2) + "\n")

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            data = self._load()
            if data.get(service, {}).pop(username, None) is not None:
                _write_private(self.path, json.dumps(data, indent=2) + "\n")


def plaintext_store(
    path: Path,
    *,
    service: str = SERVICE,
    timeout: float = DEFAULT_TIMEOUT,
    index: SecretIndex | None = None,
) -> KeyringSecretStore:
    """Return a store on an unencrypted JSON file (mode 0600), with :attr:`warning` set."""
    store = KeyringSecretStore(
        _PlaintextBackend(path),  # type: ignore[arg-type]
        service=service,
        timeout=timeout,
        index=index,
        kind="plaintext",
    )
    store.backend_name = f"plaintext file ({path})"
    store.warning = PLAINTEXT_WARNING.format(path=path)
    return store


# --- choosing a backend ----------------------------------------------------------------------
