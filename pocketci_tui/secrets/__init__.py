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
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pocketci_tui.config import SECRET_BACKENDS
from pocketci_tui.secrets.base import (
    _HINT_HEADLESS,
    _PROBE_NAME,
    DEFAULT_TIMEOUT,
    ENCRYPTED_FILE,
    FILE_TIMEOUT,
    INDEX_FILE,
    MIN_PASSPHRASE_LENGTH,
    MIN_SECRET_LENGTH,
    PASSPHRASE_CREDENTIAL,
    PLAINTEXT_FILE,
    PLAINTEXT_WARNING,
    SERVICE,
    MemorySecretStore,
    PassphraseRequired,
    SecretIndex,
    SecretStore,
    SecretStoreError,
    SecretStoreLocked,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    SecretTooShort,
    SecretValueError,
    WrongPassphrase,
    _write_private,
    check_new_passphrase,
    check_secret,
    check_value,
    validate_name,
)
from pocketci_tui.secrets.keyring_store import (
    EncryptedFileSecretStore,
    KeyringSecretStore,
    _cryptfile_class,
    _select_os_backend,
    plaintext_store,
)
from pocketci_tui.secrets.worker import _Worker

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENCRYPTED_FILE",
    "FILE_TIMEOUT",
    "INDEX_FILE",
    "MIN_PASSPHRASE_LENGTH",
    "MIN_SECRET_LENGTH",
    "PASSPHRASE_CREDENTIAL",
    "PLAINTEXT_FILE",
    "PLAINTEXT_WARNING",
    "SERVICE",
    "_HINT_HEADLESS",
    "_PROBE_NAME",
    "EncryptedFileSecretStore",
    "HealthState",
    "KeyringSecretStore",
    "MemorySecretStore",
    "PassphraseRequired",
    "SecretIndex",
    "SecretStore",
    "SecretStoreError",
    "SecretStoreHealth",
    "SecretStoreLocked",
    "SecretStoreTimeout",
    "SecretStoreUnavailable",
    "SecretTooShort",
    "SecretValueError",
    "WrongPassphrase",
    "_Worker",
    "_cryptfile_class",
    "_select_os_backend",
    "_write_private",
    "check_new_passphrase",
    "check_secret",
    "check_value",
    "index_entries",
    "open_secret_store",
    "open_secret_store_blocking",
    "plaintext_store",
    "probe",
    "read_passphrase",
    "validate_name",
]


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
        SecretValueError: ``backend`` is not one of
            :data:`~pocketci_tui.config.SECRET_BACKENDS`.
    """
    if backend not in SECRET_BACKENDS:
        raise SecretValueError(
            f"unknown secrets backend {backend!r}: choose one of {', '.join(SECRET_BACKENDS)}"
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
    warning = store.warning
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
        SecretValueError: A new passphrase is shorter than :data:`MIN_PASSPHRASE_LENGTH`.
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
        if not confirm:
            return getpass_fn("Passphrase of the encrypted secrets file: ") or None
        value = getpass_fn(
            "New passphrase for the encrypted secrets file "
            f"(at least {MIN_PASSPHRASE_LENGTH} characters): "
        )
        if not value:
            return None
        check_new_passphrase(value)  # before asking again: the same rule as the UI's dialog
        if getpass_fn("Repeat the passphrase: ") != value:
            raise SecretStoreError("the two passphrases differ; nothing was changed")
        return value
    return None
