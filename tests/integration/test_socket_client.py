"""A client attached over the control socket when the link breaks: it says so at once, every
read and action fails at once instead of hanging, and it attaches again by itself, resuming the
notices where it left them (or re-reading the snapshot when the owner is a new process). Real
services and control socket, SQLite, git and the stand-in ``dagger``; the link is broken by
stopping the owner, or by a relay between the two (:mod:`sockrelay`) that is cut, closed or
frozen while the owner runs on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from corekit import Told, deliver, forge_delivery
from daggerstub import arg, fn
from enginekit import EngineKit
from sockrelay import SocketRelay

from pocketci_tui.contract import (
    ClientNotice,
    CoreClient,
    LinkChanged,
    NotStarted,
    RejectionSummary,
    SecretChanged,
)
from pocketci_tui.control import link as control_link
from pocketci_tui.control.client import (
    AttachError,
    SocketClient,
    VersionMismatch,
    find_owner,
)
from pocketci_tui.control.hub import NoticeHub
from pocketci_tui.control.location import socket_path
from pocketci_tui.datalock import DataLock
from pocketci_tui.model import (
    EventMatched,
    EventSettled,
    EventStored,
    EventUpdated,
    RunOutput,
    RunState,
    RunUpdated,
)
from pocketci_tui.secrets import SecretStoreUnavailable, SecretValueError
from pocketci_tui.services import Services

BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))
QUICK = (0.05, 0.2)
"""A short backoff, so that a test does not wait seconds for the next try."""


@pytest.fixture
def kit(tmp_path: Path) -> EngineKit:
    return EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"output": ["one", "two"], "exit": 0})],
    )


@pytest.fixture
async def owner(kit: EngineKit) -> AsyncIterator[Services]:
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        yield services
    finally:
        await services.stop()


@pytest.fixture
async def relay(kit: EngineKit, owner: Services, tmp_path: Path) -> AsyncIterator[SocketRelay]:
    """A relay to the running owner's socket, listening in a private folder of its own."""
    folder = tmp_path / "relay"
    folder.mkdir(mode=0o700)
    relay = SocketRelay(folder / "relay.sock", socket_path(kit.paths))
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


def settled(told: Told, event_id: int) -> bool:
    return any(isinstance(n, EventSettled) and n.event_id == event_id for n in told.notices)


def run_ids(notices: list[ClientNotice], event_id: int) -> set[str]:
    """The ids of the event's runs told of."""
    return {n.run.id for n in notices if isinstance(n, RunUpdated) and n.run.event_id == event_id}


def about(notices: list[ClientNotice], event_id: int) -> list[ClientNotice]:
    """The engine's notices of one event and its runs, in the order told."""
    runs = run_ids(notices, event_id)
    kept: list[ClientNotice] = []
    for n in notices:
        if (
            (isinstance(n, EventStored) and n.stored.event.id == event_id)
            or (
                isinstance(n, EventSettled | EventMatched | EventUpdated) and n.event_id == event_id
            )
            or (isinstance(n, RunUpdated) and n.run.event_id == event_id)
            or (isinstance(n, RunOutput) and n.run_id in runs)
        ):
            kept.append(n)
    return kept


async def test_a_client_is_a_core_client_and_says_whose_builds_these_are(
    kit: EngineKit, owner: Services
) -> None:
    client = SocketClient(socket_path(kit.paths))
    core: CoreClient = client  # the UI is handed either implementation
    assert not core.started
    with pytest.raises(NotStarted):
        await core.events_page(limit=1)
    assert await core.start() == owner.url
    try:
        assert core.started
        assert core.owner is not None
        assert core.owner.startswith("pocketci-tui serve (pid ")
    finally:
        await core.stop()
    assert not core.started
    with pytest.raises(NotStarted):
        await core.events_page(limit=1)
    # Detached, it attaches again as new.
    assert await core.start() == owner.url
    try:
        assert await core.events_page(limit=1) == []
    finally:
        await core.stop()


async def test_the_owner_is_found_while_it_runs_only(kit: EngineKit) -> None:
    assert await find_owner(kit.paths) is None
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        assert await find_owner(kit.paths) == socket_path(kit.paths)
    finally:
        await services.stop()
    assert await find_owner(kit.paths) is None


async def test_an_owner_of_another_protocol_version_is_refused_naming_both(
    kit: EngineKit, owner: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_link, "PROTOCOL_VERSION", 99)
    client = SocketClient(socket_path(kit.paths))
    with pytest.raises(VersionMismatch, match=r"version 1\b.*version 99\b"):
        await client.start()
    assert not client.started


async def test_an_owner_that_stopped_answering_fails_the_attach_in_time(
    relay: SocketRelay,
) -> None:
    relay.frozen = True
    client = SocketClient(relay.front, timeout=0.5)
    with pytest.raises(AttachError, match="did not answer"):
        await client.start()
    assert not client.started


async def test_a_socket_in_a_folder_open_to_others_is_not_trusted(relay: SocketRelay) -> None:
    """Another user could have put a socket there, to be handed secrets and actions."""
    relay.front.parent.chmod(0o755)
    client = SocketClient(relay.front)
    with pytest.raises(AttachError, match="open to other users"):
        await client.start()
    assert relay.connections == 0  # refused before connecting


async def test_the_owner_going_away_is_told_and_fails_every_call_at_once_until_it_is_back(
    kit: EngineKit,
) -> None:
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    client = SocketClient(socket_path(kit.paths), backoff=QUICK)
    await client.start()
    again: Services | None = None
    try:
        told = Told()
        client.subscribe(told)
        first = await deliver(services, kit.push({"main.go": "2\n"}))
        await told.wait_for(lambda: settled(told, first))
        before = client.snapshot
        assert before is not None

        await services.stop()
        await told.wait_for(lambda: any(not link.up for link in told.links()))
        down = told.links()[0]
        assert "pocketci-tui serve (pid" in down.owner
        assert down.detail.startswith(f"{down.owner} went away")
        # Each try that fails says why, and when the next is.
        await told.wait_for(lambda: len(told.links()) >= 2)
        retry = told.links()[1]
        assert not retry.up
        assert retry.detail.startswith(f"{down.owner} is not there (no such file or directory)")
        assert "; trying again in " in retry.detail
        assert client.started
        assert not client.link_up
        # Every call fails at once: nothing waits for an owner that is not there.
        with pytest.raises(NotStarted, match="is down"):
            await client.events_page(limit=10)
        with pytest.raises(NotStarted):
            await client.fire(first)
        ran = told.run(RunState.PASSED)
        assert ran is not None
        with pytest.raises(NotStarted):
            await client.output_tail(ran, 10)
        assert client.secrets is not None
        with pytest.raises(SecretStoreUnavailable):
            await client.secrets.names()

        # A new owner process on the same data folder: the client attaches to it by itself,
        # and is told to re-read what it shows (the new process numbers its notices anew).
        again = Services(kit.settings, kit.paths, secrets=kit.secrets)
        await again.start(port=0)
        await told.wait_for(lambda: told.links()[-1].up)
        assert told.links()[-1] == LinkChanged(up=True, owner=told.links()[-1].owner, resync=True)
        assert [link.resync for link in told.links() if link.up] == [True]  # told up once
        assert client.link_up
        assert client.url == again.url
        assert client.snapshot is not None
        assert client.snapshot.instance != before.instance
        assert [s.event.id for s in await client.events_page(limit=10)] == [first]
        second = await deliver(again, kit.push({"main.go": "3\n"}))
        await told.wait_for(lambda: settled(told, second))
        await client.fire(first)
        await told.wait_for(lambda: len(run_ids(told.notices, first)) == 2)
    finally:
        await client.stop()
        if again is not None:
            await again.stop()


async def test_a_cut_link_resumes_where_it_left_without_a_resync_or_a_lost_notice(
    kit: EngineKit, owner: Services, relay: SocketRelay
) -> None:
    """The owner runs on while the link is away: the client attaches again to the same owner
    and is sent what it missed, from its last number, exactly as an in-process subscriber was
    told it."""
    local = Told()
    owner.subscribe(local)
    client = SocketClient(relay.front, backoff=QUICK)
    await client.start()
    try:
        told = Told()
        client.subscribe(told)
        first = await deliver(owner, kit.push({"main.go": "2\n"}))
        await told.wait_for(lambda: settled(told, first))

        await relay.close()  # the link breaks, and cannot be made again for now
        await told.wait_for(lambda: any(not link.up for link in told.links()))
        seq = client.last_seq
        missed = await deliver(owner, kit.push({"main.go": "3\n"}))
        await local.wait_for(lambda: settled(local, missed))
        assert not settled(told, missed)

        await relay.start()
        await told.wait_for(lambda: told.links()[-1].up)
        assert [link.resync for link in told.links() if link.up] == [False]  # told up once
        await told.wait_for(lambda: settled(told, missed))
        assert client.last_seq > seq
        # Nothing lost, nothing twice, in the owner's order.
        assert about(told.notices, missed) == about(local.notices, missed)
        assert about(told.notices, first) == about(local.notices, first)
    finally:
        await client.stop()


async def test_an_owner_that_stops_answering_is_noticed_by_the_heartbeat(
    kit: EngineKit, owner: Services, relay: SocketRelay
) -> None:
    client = SocketClient(relay.front, backoff=QUICK, heartbeat=0.2, timeout=1.0)
    await client.start()
    try:
        told = Told()
        client.subscribe(told)
        relay.frozen = True  # the owner's process hangs: nothing comes back any more
        await told.wait_for(lambda: any(not link.up for link in told.links()))
        assert "no reply to heartbeats" in told.links()[0].detail
        with pytest.raises(NotStarted):
            await client.events_page(limit=1)

        relay.frozen = False
        await told.wait_for(lambda: told.links()[-1].up)
        assert [link.resync for link in told.links() if link.up] == [False]  # told up once
        event_id = await deliver(owner, kit.push({"main.go": "2\n"}))
        await told.wait_for(lambda: settled(told, event_id))
    finally:
        await client.stop()


async def test_the_owners_secrets_are_shared_by_every_attached_client(
    kit: EngineKit, owner: Services
) -> None:
    path = socket_path(kit.paths)
    first, second = SocketClient(path), SocketClient(path)
    await first.start()
    await second.start()
    try:
        assert first.secrets is not None
        assert second.secrets is not None
        told = Told()
        second.subscribe(told)
        changed: list[str] = []
        second.secrets.watch(changed.append)

        await first.secrets.set("deploy-token", "deploy-token-value")
        await told.wait_for(lambda: SecretChanged("deploy-token") in told.notices)
        assert changed == ["deploy-token"]
        assert await second.secrets.get("deploy-token") == "deploy-token-value"
        assert await second.secrets.names() == ["deploy-token"]
        assert second.secrets.backend_name == "memory"  # the owner's store, as it says

        await second.secrets.delete("deploy-token")
        assert await first.secrets.get("deploy-token") is None
        assert await owner.secrets.names() == []  # type: ignore[union-attr]
        await told.wait_for(lambda: told.notices.count(SecretChanged("deploy-token")) == 2)
        assert changed == ["deploy-token", "deploy-token"]

        with pytest.raises(SecretValueError):
            await first.secrets.set("no spaces allowed", "value-of-it")
    finally:
        await first.stop()
        await second.stop()


async def test_a_client_away_longer_than_the_owner_remembers_reads_the_snapshot_again(
    kit: EngineKit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner keeps only its latest notices: a client that missed older ones is told so,
    re-reads the snapshot, and tells the UI to re-read what it shows."""
    monkeypatch.setitem(NoticeHub.__init__.__kwdefaults__, "ring_size", 3)  # type: ignore[arg-type]
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    folder = tmp_path / "relay"
    folder.mkdir(mode=0o700)
    relay = SocketRelay(folder / "relay.sock", socket_path(kit.paths))
    await relay.start()
    client = SocketClient(relay.front, backoff=QUICK)
    try:
        await client.start()
        told = Told()
        client.subscribe(told)
        local = Told()
        services.subscribe(local)

        await relay.close()
        await told.wait_for(lambda: any(not link.up for link in told.links()))
        missed = await deliver(services, kit.push({"main.go": "2\n"}))
        await local.wait_for(lambda: settled(local, missed))  # more notices than it keeps

        await relay.start()
        await told.wait_for(lambda: any(link.up and link.resync for link in told.links()))
        # Told up once, to re-read: not up, then at once to re-read.
        assert [link.resync for link in told.links() if link.up] == [True]
        assert client.link_up
        assert client.snapshot is not None
        assert [s.event.id for s in client.snapshot.events] == [missed]
        assert not settled(told, missed)  # it was not replayed: the snapshot says it instead
        later = await deliver(services, kit.push({"main.go": "3\n"}))
        await told.wait_for(lambda: settled(told, later))
        assert about(told.notices, later) == about(local.notices, later)
    finally:
        await client.stop()
        await relay.close()
        await services.stop()


async def test_a_reload_asks_the_owner_and_takes_its_settings(
    kit: EngineKit, owner: Services
) -> None:
    """The attached UI never pushes settings of its own: the owner re-reads its file, says
    what came of it, and the client then shows the owner's settings."""
    client = SocketClient(socket_path(kit.paths))
    await client.start()
    try:
        ok, message = await client.reload_config()
        assert not ok
        assert "does not reload" in message

        asked = asyncio.Event()

        async def reload() -> tuple[bool, str]:
            owner.apply_settings(replace(owner.settings, timeout=123.0))
            asked.set()
            return True, "config.yaml reloaded: the timeout is 123 s"

        owner.reload_config = reload
        assert client.settings.timeout != 123.0
        assert await client.reload_config() == (True, "config.yaml reloaded: the timeout is 123 s")
        assert client.settings.timeout == 123.0

        asked.clear()
        client.apply_settings(replace(client.settings, timeout=5.0))  # what it was given: unused
        async with asyncio.timeout(30):
            await asked.wait()
        assert owner.settings.timeout == 123.0
    finally:
        await client.stop()


async def test_a_client_attaching_later_is_told_the_refusals_so_far_at_once(
    kit: EngineKit, owner: Services
) -> None:
    await kit.secrets.set("webhook-secret", "webhook-secret-value")
    assert await forge_delivery(owner.webhook_url) == 401
    assert owner.control is not None
    async with asyncio.timeout(30):
        while owner.control.hub.refusals is None:  # the owner's summary is sent at a pace
            await asyncio.sleep(0.05)
    client = SocketClient(socket_path(kit.paths))
    await client.start()
    try:
        told: list[RejectionSummary] = []
        client.subscribe_refusals(told.append)
        assert len(told) == 1
        assert told[0].count == 1
        assert told[0].last.status == 401
    finally:
        await client.stop()


async def test_an_owner_still_starting_is_waited_for(kit: EngineKit) -> None:
    """The owner takes the data folder's lock first and opens its socket last."""
    lock = await asyncio.to_thread(DataLock.acquire, kit.paths.lock_file, "serve")
    services = Services(kit.settings, kit.paths, secrets=kit.secrets, lock=lock)
    try:
        assert await find_owner(kit.paths) is None  # owned, but nothing answers yet
        looking = asyncio.create_task(find_owner(kit.paths, wait=60))
        await services.start(port=0)
        assert await looking == socket_path(kit.paths)
    finally:
        await services.stop()
        lock.release()


async def test_a_snapshot_read_by_a_failed_try_still_makes_the_ui_read_again(
    kit: EngineKit, tmp_path: Path
) -> None:
    """A try to attach again can read the new owner's snapshot and then fail to open the
    stream: the try that then succeeds must still say that what the UI shows is to be read
    anew, although it read no snapshot itself."""
    first = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await first.start(port=0)
    folder = tmp_path / "relay"
    folder.mkdir(mode=0o700)
    relay = SocketRelay(folder / "relay.sock", socket_path(kit.paths))
    await relay.start()
    client = SocketClient(relay.front, backoff=QUICK)
    second: Services | None = None
    try:
        await client.start()
        told = Told()
        client.subscribe(told)
        assert client.snapshot is not None
        before = client.snapshot.instance

        await first.stop()
        await told.wait_for(lambda: any(not link.up for link in told.links()))
        relay.refuse_streams = True
        second = Services(kit.settings, kit.paths, secrets=kit.secrets)
        await second.start(port=0)
        async with asyncio.timeout(30):  # a try read the new owner's snapshot, then failed
            while client.snapshot is None or client.snapshot.instance == before:
                await asyncio.sleep(0.02)
        assert not client.link_up

        relay.refuse_streams = False
        await told.wait_for(lambda: told.links()[-1].up)
        assert [link.resync for link in told.links() if link.up] == [True]
    finally:
        await client.stop()
        await relay.close()
        if second is not None:
            await second.stop()
        await first.stop()


async def test_a_client_cut_off_as_too_slow_resumes_and_misses_nothing(
    kit: EngineKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owner cuts off a client whose queue fills (here at once: it holds one notice); the
    client says why, attaches again, and resumes from its last notice each time, so what it
    tells in the end is exactly what an in-process subscriber was told."""
    monkeypatch.setitem(NoticeHub.__init__.__kwdefaults__, "queue_size", 1)  # type: ignore[arg-type]
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    client = SocketClient(socket_path(kit.paths), backoff=QUICK)
    try:
        await client.start()
        told = Told()
        client.subscribe(told)
        local = Told()
        services.subscribe(local)
        names = [f"burst-{n}" for n in range(5)]
        for name in names:  # five changes told in one go: more than its queue holds
            await kit.secrets.set(name, "burst-value")
        changed = [SecretChanged(name) for name in names]
        await told.wait_for(lambda: [n for n in told.notices if n in changed] == changed)
        downs = [link for link in told.links() if not link.up]
        assert downs
        assert "cut this client off for reading its notices too slowly" in downs[0].detail

        event_id = await deliver(services, kit.push({"main.go": "2\n"}))
        await local.wait_for(lambda: settled(local, event_id))
        await told.wait_for(lambda: settled(told, event_id))
        assert not any(link.resync for link in told.links())  # every time resumed
        assert about(told.notices, event_id) == about(local.notices, event_id)
        assert [n for n in told.notices if isinstance(n, SecretChanged)] == changed
    finally:
        await client.stop()
        await services.stop()
