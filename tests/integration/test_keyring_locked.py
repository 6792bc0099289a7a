"""A locked GNOME Keyring is read without ever asking it to unlock (no desktop prompt).

keyring's Secret Service backend calls ``Unlock`` on a locked collection, and GNOME Keyring then
runs its prompt (``org.freedesktop.Secret.Prompt.Prompt``, the desktop's unlock dialog) for every
read: every delivery and every dispatched event would pop it up. The store now checks the
collection's ``Locked`` property and reports a typed :class:`SecretStoreLocked` that says how to
unlock. Each test locks a real keyring on a private bus and watches the bus with
``dbus-monitor`` to prove that neither ``Unlock`` nor a prompt was ever asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, IntakeFactory
from enginekit import REPOSITORY, EngineKit
from keyringenv import BusMonitor, PrivateBus
from signing import push_body, send_signed

from pocketci_tui.config import RepoConfig
from pocketci_tui.model import EventStatus
from pocketci_tui.secrets import (
    KeyringSecretStore,
    SecretStoreLocked,
    probe,
)

pytestmark = pytest.mark.keyring

PROMPTING = {"org.freedesktop.Secret.Service.Unlock", "org.freedesktop.Secret.Prompt.Prompt"}
"""The calls that open the desktop's unlock prompt."""


@pytest.fixture
def locked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[PrivateBus, KeyringSecretStore, BusMonitor]]:
    """A keyring store on a private GNOME Keyring holding two values, then locked."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    with PrivateBus("gnome") as bus:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
        store = KeyringSecretStore(service=f"pocketci-tui-test-{uuid.uuid4().hex[:12]}", timeout=5)
        yield bus, store, BusMonitor(bus.address)


async def _lock(bus: PrivateBus, store: KeyringSecretStore, values: dict[str, str]) -> None:
    for name, value in values.items():
        await store.set(name, value)
    assert await store.get(next(iter(values))) == values[next(iter(values))]
    bus.lock_default_collection()


async def test_a_locked_keyring_is_reported_without_asking_to_unlock(
    locked: tuple[PrivateBus, KeyringSecretStore, BusMonitor],
) -> None:
    bus, store, monitor = locked
    errors: list[SecretStoreLocked] = []
    try:
        await _lock(bus, store, {"github-token": "ghp_lockedValue123"})
        monitor.lines.clear()
        for _ in range(3):
            with pytest.raises(SecretStoreLocked) as info:
                await store.get("github-token")
            errors.append(info.value)
        health = await probe(store)
    finally:
        monitor.close()
    seen = monitor.members()
    assert "org.freedesktop.DBus.Properties.Get" in seen  # the monitor saw the reads
    assert not PROMPTING & set(seen), seen
    for error in errors:
        assert str(error).startswith("keyring locked: unlock it with")
    assert health.state == "locked"
    assert health.message.startswith("keyring locked: unlock it with")
    assert "ghp_lockedValue123" not in health.message


async def test_an_unlocked_keyring_still_reads_through_the_same_path(
    locked: tuple[PrivateBus, KeyringSecretStore, BusMonitor],
) -> None:
    _bus, store, monitor = locked
    try:
        await store.set("deploy", "first-value-1")
        assert await store.get("deploy") == "first-value-1"
        assert await store.get("absent") is None
        assert (await probe(store)).ok
    finally:
        monitor.close()
    assert "org.freedesktop.Secret.Item.GetSecret" in monitor.members()


async def test_the_engine_holds_an_event_and_says_the_keyring_is_locked(
    locked: tuple[PrivateBus, KeyringSecretStore, BusMonitor], tmp_path: Path
) -> None:
    bus, store, monitor = locked
    kit = EngineKit(tmp_path / "kit")
    clone = RepoConfig(name=REPOSITORY, clone_url=str(kit.remote.path), token="clone-token")
    kit.settings = replace(kit.settings, repos=(clone,))
    kit.secrets = store  # type: ignore[assignment]
    try:
        await _lock(bus, store, {"clone-token": "ghp_cloneToken123"})
        monitor.lines.clear()
        async with kit:
            stored = await kit.deliver(kit.push({"main.go": "package main // locked\n"}))
            assert stored.event.id is not None
            held = await kit.wait_status(stored.event.id, EventStatus.WAITING)
    finally:
        monitor.close()
    assert not PROMPTING & set(monitor.members())
    assert "keyring locked: unlock it with" in held.detail
    assert kit.calls() == []


async def test_the_listener_answers_503_and_says_the_keyring_is_locked(
    locked: tuple[PrivateBus, KeyringSecretStore, BusMonitor],
    intake_factory: IntakeFactory,
    http: aiohttp.ClientSession,
) -> None:
    bus, store, monitor = locked
    try:
        await _lock(bus, store, {"webhook-secret": WEBHOOK_SECRET})
        intake = await intake_factory(secrets=store)
        monitor.lines.clear()
        replies = [
            await send_signed(http, intake.hook_url, WEBHOOK_SECRET, push_body(n=n))
            for n in range(3)
        ]
    finally:
        monitor.close()
    assert not PROMPTING & set(monitor.members())
    for reply in replies:
        assert reply.status == 503
        assert b"keyring locked" in reply.body
