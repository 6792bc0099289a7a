"""The secret store: backends, timeouts, fail-closed choices, the passphrase (rows K1-K8).

The real OS keyring is exercised in tests/integration/test_keyring_real.py; here the backends
are real ``keyring`` backend classes (null, fail, the encrypted file) or small in-process ones.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null

from pocketci_tui import secrets as sec
from pocketci_tui.secrets import (
    ENCRYPTED_FILE,
    INDEX_FILE,
    MIN_PASSPHRASE_LENGTH,
    MIN_SECRET_LENGTH,
    PASSPHRASE_CREDENTIAL,
    PLAINTEXT_FILE,
    EncryptedFileSecretStore,
    KeyringSecretStore,
    MemorySecretStore,
    PassphraseRequired,
    SecretIndex,
    SecretStoreError,
    SecretStoreLocked,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    SecretTooShort,
    SecretValueError,
    WrongPassphrase,
    check_new_passphrase,
    check_secret,
    check_value,
    open_secret_store,
    probe,
    read_passphrase,
)

VALUE = "tok-3f9a7c1e5b2d"


class DictKeyring(KeyringBackend):
    """A keyring backend in a dict (the interface the real backends implement)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.values: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.values.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.values[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.values.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


class HangingKeyring(DictKeyring):
    """A backend whose reads hang until released (a locked collection waiting on a prompt)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.calls = 0

    def get_password(self, service: str, username: str) -> str | None:
        self.calls += 1
        self.release.wait(60)
        return super().get_password(service, username)


class LockedKeyring(DictKeyring):
    """A backend that reports a locked collection, like the Secret Service without a prompter."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


@pytest.fixture(autouse=True)
def no_ambient_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No keyring choice leaks in from the developer's environment or config."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def no_getpass(monkeypatch: pytest.MonkeyPatch) -> None:
    """K5: any attempt to prompt on the terminal fails the test."""

    def refuse(*args: object, **kwargs: object) -> str:
        raise AssertionError("getpass.getpass must never be called")

    monkeypatch.setattr(getpass, "getpass", refuse)


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheaper Argon2 parameters for unit tests (the CLI tests use the real ones)."""
    cls = sec._cryptfile_class()
    monkeypatch.setattr(cls, "time_cost", 1)
    monkeypatch.setattr(cls, "memory_cost", 2**10)


@pytest.fixture
def hanging() -> Iterator[HangingKeyring]:
    backend = HangingKeyring()
    yield backend
    backend.release.set()


# --- values and names ------------------------------------------------------------------------


async def test_memory_store_round_trip() -> None:
    store = MemorySecretStore({"a": "1"})
    await store.set("b", VALUE)
    assert await store.get("b") == VALUE
    assert await store.names() == ["a", "b"]
    await store.delete("b")
    await store.delete("b")
    assert await store.get("b") is None


def test_short_values_are_refused_unless_forced() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    with pytest.raises(SecretTooShort, match="not masked"):
        check_value(short)
    warning = check_value(short, allow_short=True)
    assert warning is not None
    assert "not masked" in warning
    assert check_value(VALUE) is None
    with pytest.raises(SecretValueError, match="empty"):
        check_value("", allow_short=True)


@pytest.mark.parametrize(
    ("name", "value", "refused"),
    [
        ("pin", "abc", "not masked"),
        ("pin", "", "empty"),
        ("a b", VALUE, "invalid secret name"),
        ("tok\n", VALUE, "invalid secret name"),
        ("-rf", VALUE, "invalid secret name"),
    ],
)
def test_check_secret_is_the_one_rule_for_names_and_values(
    name: str, value: str, refused: str
) -> None:
    with pytest.raises(SecretValueError, match=refused):
        check_secret(name, value)
    assert check_secret("github-token", VALUE) is None
    assert check_secret("pin", "abc", allow_short=True) is not None


def test_a_new_passphrase_needs_the_minimum_length() -> None:
    with pytest.raises(SecretValueError, match=f"at least {MIN_PASSPHRASE_LENGTH}"):
        check_new_passphrase("abc")
    with pytest.raises(SecretValueError):
        check_new_passphrase(" " * 20 + "abc")
    check_new_passphrase("x" * MIN_PASSPHRASE_LENGTH)


@pytest.mark.parametrize("name", ["", "-rf", "a b", "../x", "x" * 129, "a/b", "tok\n"])
async def test_bad_names_are_refused(name: str) -> None:
    store = KeyringSecretStore(DictKeyring())
    with pytest.raises(SecretValueError, match="invalid secret name"):
        await store.set(name, VALUE)


async def test_keyring_store_round_trip_and_index_holds_no_values(tmp_path: Path) -> None:
    backend = DictKeyring()
    index = SecretIndex(tmp_path / INDEX_FILE)
    store = KeyringSecretStore(backend, index=index)
    await store.set("github-token", VALUE)
    await store.set("webhook-secret", VALUE + "2")
    assert await store.get("github-token") == VALUE
    assert backend.values[("pocketci-tui", "github-token")] == VALUE
    assert await store.names() == ["github-token", "webhook-secret"]
    text = (tmp_path / INDEX_FILE).read_text()
    assert VALUE not in text
    assert json.loads(text)["secrets"]["github-token"] == {"backend": "keyring"}
    assert stat.S_IMODE((tmp_path / INDEX_FILE).stat().st_mode) == 0o600
    await store.delete("github-token")
    await store.delete("github-token")  # absent: no error
    assert await store.get("github-token") is None
    assert await store.names() == ["webhook-secret"]


async def test_index_keeps_names_of_other_backends(tmp_path: Path) -> None:
    index = SecretIndex(tmp_path / INDEX_FILE)
    index.add("old", "file")
    store = KeyringSecretStore(DictKeyring(), index=index)
    await store.set("new", VALUE)
    assert await store.names() == ["new"]
    assert sec.index_entries(tmp_path) == {"old": "file", "new": "keyring"}


# --- K3: the null and fail keyrings fail closed ----------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [null.Keyring(), fail.Keyring()],  # type: ignore[no-untyped-call]
)
async def test_k3_null_and_fail_backends_are_unavailable_not_empty(
    backend: KeyringBackend,
) -> None:
    store = KeyringSecretStore(backend)
    with pytest.raises(SecretStoreUnavailable, match="treated as no secret store"):
        await store.get("github-token")
    health = await probe(store)
    assert health.state == "unavailable"


async def test_k3_python_keyring_backend_null_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    with pytest.raises(SecretStoreUnavailable, match="PYTHON_KEYRING_BACKEND selects the null"):
        await open_secret_store(tmp_path, backend="keyring")


async def test_k5_file_keyring_as_os_keyring_is_refused_it_would_prompt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_getpass: None
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.cryptfile.cryptfile.CryptFileKeyring")
    with pytest.raises(SecretStoreUnavailable, match="asks for its password on the terminal"):
        await open_secret_store(tmp_path, backend="auto")


# --- K1: no D-Bus session --------------------------------------------------------------------


async def test_k1_no_dbus_means_no_viable_backend_with_the_headless_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(SecretStoreUnavailable) as info:
        await open_secret_store(tmp_path, backend="auto")
    message = str(info.value)
    assert "DBUS_SESSION_BUS_ADDRESS is unset" in message
    assert "backend: file" in message
    assert not isinstance(info.value, PassphraseRequired)


async def test_k1_no_dbus_and_an_encrypted_file_asks_for_the_passphrase(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_getpass: None
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    (tmp_path / ENCRYPTED_FILE).write_text("")
    with pytest.raises(PassphraseRequired, match="give its passphrase"):
        await open_secret_store(tmp_path, backend="auto")


async def test_unreachable_dbus_address_is_unavailable_quickly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    with pytest.raises(SecretStoreUnavailable, match="no OS keyring is usable"):
        await open_secret_store(tmp_path, backend="keyring", timeout=5)


# --- K2 / K6: locked and hanging keyrings ----------------------------------------------------


async def test_k2_locked_collection_gives_a_clear_message() -> None:
    store = KeyringSecretStore(LockedKeyring())
    with pytest.raises(SecretStoreLocked, match="keyring locked: unlock it with"):
        await store.get("github-token")
    health = await probe(store)
    assert health.state == "locked"
    assert "unlock" in health.message


async def test_k6_hanging_keyring_times_out_and_the_loop_stays_responsive(
    hanging: HangingKeyring,
) -> None:
    store = KeyringSecretStore(hanging, timeout=0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(SecretStoreTimeout, match="unresponsive") as info:
            await store.get("github-token")
    finally:
        task.cancel()
    assert ticks > 1  # the event loop kept running while the keyring hung
    assert "locked" in str(info.value)
    assert hanging.calls == 1


async def test_k6_calls_behind_a_hung_call_fail_fast_and_recover(
    hanging: HangingKeyring,
) -> None:
    store = KeyringSecretStore(hanging, timeout=0.2)
    with pytest.raises(SecretStoreTimeout):
        await store.get("a-name")
    await asyncio.sleep(0.25)  # the hung call has now been busy for longer than the timeout
    with pytest.raises(SecretStoreTimeout, match="an earlier call is still waiting"):
        await store.get("b-name")
    health = await probe(store)
    assert health.state == "slow"
    hanging.release.set()  # the keyring comes back (unlocked)
    hanging.values[("pocketci-tui", "c-name")] = VALUE
    for _ in range(50):
        if store._worker.busy_since is None:
            break
        await asyncio.sleep(0.02)
    assert await store.get("c-name") == VALUE


async def test_set_errors_are_mapped_without_the_value() -> None:
    class Broken(DictKeyring):
        def set_password(self, service: str, username: str, password: str) -> None:
            raise keyring.errors.PasswordSetError("D-Bus said no")

    store = KeyringSecretStore(Broken())
    with pytest.raises(SecretStoreError, match="D-Bus said no") as info:
        await store.set("github-token", VALUE)
    assert VALUE not in str(info.value)


# --- the encrypted file: K4, K5 --------------------------------------------------------------


async def test_k5_encrypted_file_without_passphrase_never_prompts(
    tmp_path: Path, no_getpass: None
) -> None:
    with pytest.raises(PassphraseRequired, match="needs its passphrase"):
        await open_secret_store(tmp_path, backend="file")
    with pytest.raises(PassphraseRequired):
        await open_secret_store(tmp_path, backend="file", passphrase="   ")
    # The backend class itself refuses to prompt when no key was set: neither to create a
    # new file nor to read an existing one.
    raw = sec._cryptfile_class()()
    raw.file_path = str(tmp_path / "other.cfg")
    with pytest.raises(PassphraseRequired):
        raw.set_password("pocketci-tui", "x", VALUE)
    store = await open_secret_store(tmp_path, backend="file", passphrase="right horse battery")
    await store.set("x", VALUE)
    raw = sec._cryptfile_class()()
    raw.file_path = str(tmp_path / ENCRYPTED_FILE)
    with pytest.raises(PassphraseRequired):
        raw.get_password("pocketci-tui", "x")


async def test_encrypted_file_round_trip_and_k4_wrong_passphrase(
    tmp_path: Path, no_getpass: None
) -> None:
    store = await open_secret_store(tmp_path, backend="file", passphrase="correct horse")
    assert isinstance(store, EncryptedFileSecretStore)
    await store.set("github-token", VALUE)
    assert await store.get("github-token") == VALUE
    assert await store.names() == ["github-token"]
    path = tmp_path / ENCRYPTED_FILE
    assert VALUE.encode() not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (await probe(store)).ok

    wrong = await open_secret_store(tmp_path, backend="file", passphrase="wrong horse")
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        await wrong.get("github-token")
    health = await probe(wrong)
    assert health.state == "locked"
    assert "wrong passphrase" in health.message

    # auto picks the existing file when a passphrase is given, and sees other writers.
    again = await open_secret_store(tmp_path, backend="auto", passphrase="correct horse")
    assert isinstance(again, EncryptedFileSecretStore)
    assert await again.get("github-token") == VALUE
    await store.set("github-token", VALUE + "-rotated")
    assert await again.get("github-token") == VALUE + "-rotated"


# --- plaintext -------------------------------------------------------------------------------


async def test_plaintext_only_on_request_with_a_warning(tmp_path: Path) -> None:
    store = await open_secret_store(tmp_path, backend="plaintext")
    assert store.backend_name.startswith("plaintext file")
    warning = getattr(store, "warning", None)
    assert warning is not None
    assert "UNENCRYPTED" in warning
    await store.set("github-token", VALUE)
    path = tmp_path / PLAINTEXT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await store.get("github-token") == VALUE
    health = await probe(store)
    assert health.ok
    assert health.warning == warning
    path.chmod(0o644)
    with pytest.raises(SecretStoreError, match="chmod 600"):
        await store.get("github-token")


async def test_memory_and_unknown_backends(tmp_path: Path) -> None:
    assert isinstance(await open_secret_store(tmp_path, backend="memory"), MemorySecretStore)
    with pytest.raises(SecretValueError, match="unknown secrets backend"):
        await open_secret_store(tmp_path, backend="vault")


# --- K8: the passphrase from a systemd credential --------------------------------------------


def test_k8_passphrase_from_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_getpass: None
) -> None:
    cred = tmp_path / PASSPHRASE_CREDENTIAL
    cred.write_text("s3cret passphrase\n")
    cred.chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_passphrase(prompt=False) == "s3cret passphrase"


@pytest.mark.parametrize("mode", [0o600, 0o440, 0o644, 0o444])
def test_k8_credential_with_another_mode_is_refused(tmp_path: Path, mode: int) -> None:
    cred = tmp_path / PASSPHRASE_CREDENTIAL
    cred.write_text("s3cret passphrase")
    cred.chmod(mode)
    with pytest.raises(SecretStoreError, match="must be 0400"):
        read_passphrase(credentials_dir=tmp_path, prompt=False)


def test_passphrase_prompt_only_with_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str) -> str:
        asked.append(prompt)
        return "typed"

    monkeypatch.setattr(sec, "_can_prompt", lambda: False)
    assert read_passphrase(credentials_dir=tmp_path, getpass_fn=fake_getpass) is None
    monkeypatch.setattr(sec, "_can_prompt", lambda: True)
    assert read_passphrase(credentials_dir=tmp_path, prompt=False) is None
    assert read_passphrase(credentials_dir=tmp_path, getpass_fn=fake_getpass) == "typed"
    assert len(asked) == 1
    assert "PASS" not in os.environ.get("CREDENTIALS_DIRECTORY", "")


async def test_idle_worker_thread_ends_and_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sec._Worker, "IDLE_EXIT", 0.05)
    backend = DictKeyring()
    store = KeyringSecretStore(backend)
    await store.set("a-name", VALUE)
    worker = store._worker
    for _ in range(100):
        if worker._thread is None:
            break
        await asyncio.sleep(0.02)
    assert worker._thread is None  # no thread left behind by an idle store
    assert await store.get("a-name") == VALUE


def test_a_new_passphrase_is_asked_twice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    answers = iter(["first horse battery", "other horse battery"])
    monkeypatch.setattr(sec, "_can_prompt", lambda: True)
    with pytest.raises(SecretStoreError, match="differ"):
        read_passphrase(credentials_dir=tmp_path, confirm=True, getpass_fn=lambda _: next(answers))
    same = iter(["same horse battery", "same horse battery"])
    assert (
        read_passphrase(credentials_dir=tmp_path, confirm=True, getpass_fn=lambda _: next(same))
        == "same horse battery"
    )


def test_a_short_new_passphrase_is_refused_before_it_is_repeated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "abc"

    monkeypatch.setattr(sec, "_can_prompt", lambda: True)
    with pytest.raises(SecretValueError, match=f"at least {MIN_PASSPHRASE_LENGTH}"):
        read_passphrase(credentials_dir=tmp_path, confirm=True, getpass_fn=answer)
    assert len(prompts) == 1
    assert f"at least {MIN_PASSPHRASE_LENGTH} characters" in prompts[0]
    # Unlocking an existing file asks once and applies no rule (it opens or it does not).
    prompts.clear()
    assert read_passphrase(credentials_dir=tmp_path, getpass_fn=answer) == "abc"
    assert len(prompts) == 1


async def test_a_new_encrypted_file_is_never_made_with_a_short_passphrase(
    tmp_path: Path, no_getpass: None
) -> None:
    short = await open_secret_store(tmp_path, backend="file", passphrase="abc")
    with pytest.raises(SecretValueError, match=f"at least {MIN_PASSPHRASE_LENGTH}"):
        await short.set("x", VALUE)
    assert not (tmp_path / ENCRYPTED_FILE).exists()
    store = await open_secret_store(tmp_path, backend="file", passphrase="correct horse")
    await store.set("x", VALUE)
    # An existing file only checks the passphrase: a short wrong one is simply wrong.
    wrong = await open_secret_store(tmp_path, backend="file", passphrase="abc")
    with pytest.raises(WrongPassphrase):
        await wrong.get("x")


async def test_a_bus_that_never_answers_times_out_the_keyring_lookup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    path = tmp_path / "silent-bus"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(5)  # accepts connections (in the backlog) and never says a word
    try:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={path}")
        with pytest.raises(SecretStoreTimeout, match=r"did not answer within 0\.5 s"):
            await open_secret_store(tmp_path, backend="keyring", timeout=0.5)
    finally:
        server.close()
