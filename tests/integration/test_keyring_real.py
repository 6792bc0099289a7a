"""The secret store against a real GNOME Keyring over D-Bus (rows K2, K3, K6 for real).

Run the suite under ``tests/with_keyring.sh`` to use one shared keyring; without it a private
bus and daemon are started here when the tools exist. Tests that lock the keyring or make it
hang always get their own bus. Under ``CI=true`` a missing keyring fails these tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import secretstorage
from aiohttp import web
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]
from keyringenv import PrivateBus, session_secret_service

from pocketci_tui.secrets import (
    INDEX_FILE,
    KeyringSecretStore,
    SecretStoreLocked,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    open_secret_store,
    probe,
)

pytestmark = pytest.mark.keyring

PEM = (
    "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nbW9yZSBrZXkgbWF0ZXJpYWw=\n"
    "-----END KEY-----"
)


@pytest.fixture(scope="module")
def bus_address() -> Iterator[str]:
    """The address of a bus with a working, unlocked Secret Service."""
    address, private = session_secret_service()
    try:
        yield address
    finally:
        if private is not None:
            private.close()


@pytest.fixture
def on_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No keyring choice from the environment or a keyringrc in the home folder."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def service() -> str:
    """A keyring service name of this test alone (the shared keyring outlives the test)."""
    return f"pocketci-tui-test-{uuid.uuid4().hex[:12]}"


def items_in_keyring(address: str, service: str) -> dict[str, str]:
    """Read what GNOME Keyring holds for ``service``, straight through the Secret Service."""
    with open_dbus_connection(address) as conn:
        found = secretstorage.search_items(conn, {"service": service})
        return {item.get_attributes()["username"]: item.get_secret().decode() for item in found}


async def test_values_live_in_gnome_keyring(
    bus_address: str,
    on_bus: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    service: str,
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus_address)
    store = await open_secret_store(tmp_path, backend="auto", service=service)
    assert isinstance(store, KeyringSecretStore)
    assert store.kind == "keyring"
    assert "SecretService" in store.backend_name
    assert (await probe(store)).ok

    await store.set("github-token", "ghp_realKeyringValue123")
    await store.set("deploy-key", PEM)
    await store.set("unicode", "pässwörd-✓-秘密")
    assert await store.get("github-token") == "ghp_realKeyringValue123"
    assert await store.get("deploy-key") == PEM
    assert await store.get("unicode") == "pässwörd-✓-秘密"
    assert await store.get("absent") is None
    assert items_in_keyring(bus_address, service) == {
        "github-token": "ghp_realKeyringValue123",
        "deploy-key": PEM,
        "unicode": "pässwörd-✓-秘密",
    }
    assert await store.names() == ["deploy-key", "github-token", "unicode"]
    index_text = (tmp_path / INDEX_FILE).read_text()
    assert "ghp_realKeyringValue123" not in index_text
    assert "MIIEvQ" not in index_text

    for name in ("github-token", "deploy-key", "unicode"):
        await store.delete(name)
    await store.delete("github-token")
    assert items_in_keyring(bus_address, service) == {}
    assert await store.names() == []


async def test_k3_null_backend_fails_closed_even_with_a_keyring_present(
    bus_address: str, on_bus: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus_address)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    with pytest.raises(SecretStoreUnavailable, match="null keyring"):
        await open_secret_store(tmp_path, backend="auto")


async def test_k2_locked_collection_is_reported_without_a_prompt(
    on_bus: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    service: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with PrivateBus("gnome") as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
        store = await open_secret_store(tmp_path, backend="keyring", service=service, timeout=3)
        await store.set("github-token", "ghp_beforeTheLock1")
        bus.lock_default_collection()
        # gnome-keyring asks its prompter, which has no display here: the unlock fails (or,
        # on a desktop whose prompt nobody answers, the call times out).
        with pytest.raises((SecretStoreLocked, SecretStoreTimeout)) as info:
            await store.get("github-token")
        assert "unlock" in str(info.value)
        health = await probe(store)
        assert health.state in {"locked", "slow"}
        assert "ghp_beforeTheLock1" not in health.message
    out, err = capfd.readouterr()
    assert out == ""
    assert "assword" not in err  # nothing asked for a password on our terminal


async def _serve_healthz() -> tuple[web.AppRunner, str]:
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/healthz"


async def test_k6_hung_secret_service_times_out_and_http_keeps_answering(
    on_bus: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with PrivateBus("hung") as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
        # Choosing the backend only asks the bus daemon, which answers.
        store = await open_secret_store(tmp_path, backend="keyring", timeout=1.5)
        runner, url = await _serve_healthz()
        try:
            pending = asyncio.create_task(store.get("github-token"))
            answers = []
            async with aiohttp.ClientSession() as client:
                while not pending.done():
                    async with client.get(url) as resp:
                        answers.append((resp.status, await resp.text()))
                    await asyncio.sleep(0.05)
            with pytest.raises(SecretStoreTimeout) as info:
                await pending
        finally:
            await runner.cleanup()
        assert answers
        assert all(answer == (200, "ok") for answer in answers)
        message = str(info.value)
        assert "unresponsive" in message
        assert "locked" in message
        health = await probe(store)
        assert health.state == "slow"
