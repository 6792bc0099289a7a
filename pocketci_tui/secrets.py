"""Secret storage behind a small interface: the OS keyring in production, memory in tests.

Backends (chosen by ``secrets: {backend: ...}`` in ``config.yaml``, see :func:`open_secret_store`):

``keyring``
    The OS keyring through the ``keyring`` package: the Secret Service (GNOME Keyring, KWallet,
    KeePassXC) over D-Bus on Linux, the Keychain on macOS, the Credential Manager on Windows.
``file``
    An encrypted file (``secrets.cfg`` in the config folder, AES-GCM with an Argon2 key from a
    passphrase, via ``keyrings.cryptfile``), for headless servers without a usable keyring. The
    passphrase comes from the UI, a systemd credential or a hidden prompt, never from a file of
    ours or the environment.
``plaintext``
    A JSON file readable only by its owner (mode 0600). Only when chosen explicitly; the store
    carries a :attr:`~KeyringSecretStore.warning` that the UI and ``check`` show.
``auto``
    The encrypted file when it exists and a passphrase is at hand, else the OS keyring when one
    is usable, else a clear :class:`SecretStoreUnavailable`.
``memory``
    Values in memory, for tests.

Every call that can block (D-Bus, Keychain, Argon2, file I/O) runs on one dedicated daemon thread
per store, bounded by a timeout, so a hung or locked keyring gives :class:`SecretStoreTimeout`
instead of freezing the event loop (and a stuck call never keeps the process from exiting). No
backend is ever allowed to prompt on the terminal: the ``null`` and ``fail`` keyrings count as
unavailable (fail closed), file keyrings that would call ``getpass`` are refused as OS keyrings,
and the encrypted file is opened only with a passphrase given up front.

The ``keyring`` API cannot list entries, so the names (and the backend holding each) are kept in
``secrets-index.json`` next to the config. The index never holds a value; a value stored with
other tools under the ``pocketci-tui`` service is still found by name, it is only not listed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pocketci_tui.config import SECRET_NAME_RE

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

MIN_SECRET_LENGTH = 6
"""Shorter values are refused by ``secrets set`` (unless forced) and never masked."""

SERVICE = "pocketci-tui"
"""The keyring service name under which every value is stored."""

INDEX_FILE = "secrets-index.json"
ENCRYPTED_FILE = "secrets.cfg"
PLAINTEXT_FILE = "secrets-plaintext.json"
PASSPHRASE_CREDENTIAL = "pocketci-passphrase"
"""The systemd credential (``LoadCredential=``, ``LoadCredentialEncrypted=``): the passphrase."""

BACKENDS = ("auto", "keyring", "file", "plaintext", "memory")
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


class SecretStore(Protocol):
    """Where secret values live, addressed by name. Every method is safe on the event loop."""

    backend_name: str
    """A human name of where values live (``SecretService``, ``encrypted file``, ``memory``)."""

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
        SecretValueError: The value is empty, or short without ``allow_short``.
    """
    if not value:
        raise SecretValueError("refusing to store an empty value")
    if len(value) < MIN_SECRET_LENGTH:
        message = (
            f"the value is {len(value)} characters long; values shorter than "
            f"{MIN_SECRET_LENGTH} are not masked in build output"
        )
        if not allow_short:
            raise SecretValueError(f"{message} (use --allow-short to store it anyway)")
        return f"warning: {message}"
    return None


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

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None."""
        return self._values.get(name)

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``."""
        self._values[name] = value

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        self._values.pop(name, None)

    async def names(self) -> list[str]:
        """Return the stored names, sorted."""
        return sorted(self._values)


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


# --- the blocking worker ---------------------------------------------------------------------

T = TypeVar("T")


class _Worker:
    """One daemon thread that runs blocking backend calls, one at a time.

    A daemon thread (not a ThreadPoolExecutor) so a call that never returns cannot keep the
    process from exiting, and cannot eat the loop's default pool.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[
            tuple[Callable[[], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.busy_since: float | None = None

    IDLE_EXIT = 10.0
    """An idle thread ends after this many seconds; the next call starts a new one."""

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                fn, fut, loop = self._queue.get(timeout=self.IDLE_EXIT)
            except queue.Empty:
                with self._start_lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            if fut.cancelled():
                continue
            self.busy_since = time.monotonic()
            try:
                result, error = fn(), None
            except BaseException as exc:
                result, error = None, exc
            finally:
                self.busy_since = None
            with contextlib.suppress(RuntimeError):  # the loop may be closed by now
                loop.call_soon_threadsafe(_settle, fut, result, error)

    async def run(self, fn: Callable[[], T], limit: float) -> T:
        """Run ``fn`` on the worker thread and wait at most ``limit`` seconds.

        Raises:
            TimeoutError: ``fn`` did not return in time (it keeps running in the background).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, fut, loop))
        self._ensure_thread()  # after the put: an idle thread never exits with work queued
        return await asyncio.wait_for(fut, limit)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


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


def _map_error(exc: BaseException, where: str) -> BaseException:
    """Turn a backend exception into a SecretStoreError with advice (never with a value)."""
    if isinstance(exc, SecretStoreError):
        return exc
    import keyring.errors

    if isinstance(exc, keyring.errors.KeyringLocked):
        return SecretStoreLocked(
            f"{where} is locked and cannot be unlocked without a prompt: unlock it (log in to "
            "the desktop session, or run `gnome-keyring-daemon --unlock` in this session), "
            f"or {_HINT_HEADLESS}"
        )
    if isinstance(exc, keyring.errors.NoKeyringError | keyring.errors.InitError):
        return SecretStoreUnavailable(f"{where} is not usable ({exc}); {_HINT_HEADLESS}")
    name = type(exc).__name__
    if name in {"SecretServiceNotAvailableException", "DBusErrorResponse"}:
        return SecretStoreUnavailable(f"{where} is not reachable ({exc}); {_HINT_HEADLESS}")
    if name in {"LockedException", "PromptDismissedException"}:
        return SecretStoreLocked(f"{where} is locked ({exc}); unlock it or {_HINT_HEADLESS}")
    return SecretStoreError(f"{where} failed: {name}: {exc}")


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
        return await self._call(lambda b: b.get_password(self.service, name), f"reading {name}")

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

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        validate_name(name)

        def do(b: KeyringBackend) -> None:
            import keyring.errors

            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                b.delete_password(self.service, name)
            self.index.remove(name, self.kind)

        await self._call(do, f"deleting {name}")

    async def names(self) -> list[str]:
        """Return the names the index lists for this backend, sorted (no keyring call)."""
        entries = await asyncio.to_thread(self.index.entries)
        return sorted(n for n, kind in entries.items() if kind == self.kind)

    async def unlock(self) -> None:
        """Select and exercise the backend (read a probe entry); raise what a real call would."""
        await self._call(lambda b: b.get_password(self.service, _PROBE_NAME), "unlocking")


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


async def open_secret_store(
    config_dir: Path,
    *,
    backend: str = "auto",
    passphrase: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - also the timeout of the returned store
    service: str = SERVICE,
) -> SecretStore:
    """Open the secret store that ``backend`` selects (the ``secrets.backend`` config key).

    Only the choice is made here (probing the OS keyring off the loop, within ``timeout``);
    whether the store answers is for :func:`probe`.

    Args:
        config_dir: The config folder: holds the index, the encrypted and the plaintext file.
        backend: ``auto``, ``keyring``, ``file``, ``plaintext`` or ``memory``.
        passphrase: The encrypted file's passphrase (``file``, or ``auto`` when the file exists).
        timeout: Seconds allowed for any one backend call.
        service: The keyring service name.

    Returns:
        The store. Its ``kind`` is the backend actually chosen.

    Raises:
        SecretStoreUnavailable: Nothing usable; the message explains the options.
        SecretStoreTimeout: Looking for the OS keyring took longer than ``timeout``.
        PassphraseRequired: The encrypted file is the store to use but no passphrase was given.
        SecretValueError: ``backend`` is not one of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise SecretValueError(
            f"unknown secrets backend {backend!r}: choose one of {', '.join(BACKENDS)}"
        )
    index = SecretIndex(config_dir / INDEX_FILE)
    encrypted = config_dir / ENCRYPTED_FILE
    if backend == "memory":
        return MemorySecretStore()
    if backend == "plaintext":
        return plaintext_store(
            config_dir / PLAINTEXT_FILE, service=service, timeout=timeout, index=index
        )
    if backend == "file":
        return EncryptedFileSecretStore(
            encrypted, passphrase, service=service, timeout=timeout, index=index
        )
    if backend == "auto" and passphrase and encrypted.exists():
        return EncryptedFileSecretStore(
            encrypted, passphrase, service=service, timeout=timeout, index=index
        )
    worker = _Worker("pocketci-secrets-probe")
    try:
        os_backend = await worker.run(_select_os_backend, timeout)
    except TimeoutError:
        raise SecretStoreTimeout(
            f"the OS keyring did not answer within {timeout:g} s (D-Bus or the keyring daemon "
            f"is unresponsive); {_HINT_HEADLESS}"
        ) from None
    except SecretStoreUnavailable as exc:
        if backend == "auto" and encrypted.exists():
            raise PassphraseRequired(
                f"{exc}; the encrypted secrets file {encrypted} exists: give its passphrase "
                f"(typed into the UI, systemd credential {PASSPHRASE_CREDENTIAL}, or a hidden "
                "prompt when run in a terminal)"
            ) from None
        raise
    store = KeyringSecretStore(
        os_backend, service=service, timeout=timeout, index=index, kind="keyring"
    )
    return store


def open_secret_store_blocking(
    config_dir: Path,
    *,
    backend: str = "auto",
    passphrase: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    service: str = SERVICE,
) -> SecretStore:
    """:func:`open_secret_store` for code without a running event loop (the CLI)."""
    return asyncio.run(
        open_secret_store(
            config_dir, backend=backend, passphrase=passphrase, timeout=timeout, service=service
        )
    )


def index_entries(config_dir: Path) -> dict[str, str]:
    """Return ``{name: backend kind}`` from the index in ``config_dir`` (blocking, no values)."""
    return SecretIndex(config_dir / INDEX_FILE).entries()


# --- health ----------------------------------------------------------------------------------

HealthState = Literal["ok", "unavailable", "locked", "slow", "error"]


@dataclass(frozen=True, slots=True)
class SecretStoreHealth:
    """What :func:`probe` found.

    Attributes:
        state: ``ok``, ``unavailable``, ``locked``, ``slow`` (timed out) or ``error``.
        message: One line for ``pocketci-tui check`` and the status bar.
        backend: The store's ``backend_name``.
        warning: The store's warning, if any (the plaintext store has one).
    """

    state: HealthState
    message: str
    backend: str
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """True when the store answered."""
        return self.state == "ok"


async def probe(store: SecretStore) -> SecretStoreHealth:
    """Check that ``store`` answers: read a probe entry within the store's timeout.

    Args:
        store: Any secret store.

    Returns:
        The health; never raises for a store failure.
    """
    warning = getattr(store, "warning", None)
    try:
        unlock = getattr(store, "unlock", None)
        if unlock is not None:
            await unlock()
        else:
            await store.get(_PROBE_NAME)
    except SecretStoreTimeout as exc:
        return SecretStoreHealth("slow", str(exc), store.backend_name, warning)
    except SecretStoreLocked as exc:
        return SecretStoreHealth("locked", str(exc), store.backend_name, warning)
    except WrongPassphrase as exc:
        return SecretStoreHealth("locked", str(exc), store.backend_name, warning)
    except SecretStoreUnavailable as exc:
        return SecretStoreHealth("unavailable", str(exc), store.backend_name, warning)
    except SecretStoreError as exc:
        return SecretStoreHealth("error", str(exc), store.backend_name, warning)
    return SecretStoreHealth("ok", f"secrets in {store.backend_name}", store.backend_name, warning)


# --- the passphrase of the encrypted file ----------------------------------------------------


def _can_prompt() -> bool:
    """True when a hidden prompt can reach a terminal (stdin or the controlling tty)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return True
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def read_passphrase(
    *,
    credentials_dir: str | os.PathLike[str] | None = None,
    prompt: bool = True,
    getpass_fn: Callable[[str], str] | None = None,
    confirm: bool = False,
) -> str | None:
    """Find the encrypted file's passphrase without ever reading it from the environment.

    Order: the systemd credential ``$CREDENTIALS_DIRECTORY/pocketci-passphrase`` (from
    ``LoadCredential=`` or ``LoadCredentialEncrypted=``; its mode must be 0400), then a hidden
    prompt when ``prompt`` is true and a terminal is attached.

    Args:
        credentials_dir: Overrides ``$CREDENTIALS_DIRECTORY``.
        prompt: Allow the hidden prompt (false while the UI owns the terminal).
        getpass_fn: The prompt function (``getpass.getpass``).
        confirm: Ask twice when prompting (the passphrase creates a new file).

    Returns:
        The passphrase, or None when there is no source.

    Raises:
        SecretStoreError: The credential file has the wrong mode, or is empty; or the two
            prompted passphrases differ.
    """
    directory = credentials_dir or os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        path = Path(directory) / PASSPHRASE_CREDENTIAL
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode != 0o400:
                raise SecretStoreError(
                    f"refusing the passphrase credential {path}: its mode is {mode:04o}, "
                    "it must be 0400 (systemd's LoadCredential= sets that)"
                )
            text = path.read_text(encoding="utf-8")
            text = text[:-1] if text.endswith("\n") else text
            if not text.strip():
                raise SecretStoreError(f"the passphrase credential {path} is empty")
            return text
    if prompt and _can_prompt():
        if getpass_fn is None:
            import getpass

            getpass_fn = getpass.getpass
        value = getpass_fn("Passphrase of the encrypted secrets file: ")
        if value and confirm and getpass_fn("Repeat the passphrase: ") != value:
            raise SecretStoreError("the two passphrases differ; nothing was changed")
        return value or None
    return None
