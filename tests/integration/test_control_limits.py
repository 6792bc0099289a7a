"""What one peer of the control socket may take of the owner, over the real Unix socket and
real services: a connection too many and a notices stream too many are answered ``503 busy``
(and an attaching client says so), half a request or a body that never ends does not hold a
connection, and a client's websocket frames are small."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import aiohttp
import pytest
from controlkit import Control, running, second_server
from enginekit import EngineKit

from pocketci_tui.control import answers
from pocketci_tui.control.client import SocketClient
from pocketci_tui.control.link import AttachError
from pocketci_tui.control.server import ControlServer
from pocketci_tui.control.transport import OwnerBusy

HELLO = b"GET /v1/hello HTTP/1.1\r\nHost: control\r\n\r\n"


async def until(check: object, what: str) -> None:
    """Wait (up to 30 s) for ``check()`` to be true."""
    assert callable(check)
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def raw(server: ControlServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(server.path))


async def answer_of(reader: asyncio.StreamReader) -> tuple[int, dict[str, object]]:
    """Read one whole answer (the server closes after it) into its status and JSON body."""
    data = await asyncio.wait_for(reader.read(), 30)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_a_connection_too_many_is_answered_busy_and_closed(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with (
        running(kit) as (services, _),
        second_server(services, tmp_path / "second", max_connections=3) as server,
    ):
        held = [await raw(server) for _ in range(3)]
        await until(lambda: server.connections.open == 3, "3 connections admitted")

        reader, writer = await raw(server)
        status, body = await answer_of(reader)
        writer.close()
        assert status == 503
        assert body["error"] == {
            "kind": "busy",
            "message": "the owner has 3 connections open already; close an attached client "
            "(or a script) and try again",
        }
        assert server.connections.refused == 1

        client = SocketClient(server.path)
        with pytest.raises(AttachError, match="3 connections open already") as caught:
            await client.start()
        assert isinstance(caught.value.__cause__, OwnerBusy)
        await client.stop()

        # One goes away: the next is served.
        held[0][1].close()
        await until(lambda: server.connections.open == 2, "a connection released")
        reader, writer = await raw(server)
        writer.write(HELLO)
        line = await asyncio.wait_for(reader.readline(), 30)
        assert line.startswith(b"HTTP/1.1 200"), line
        writer.close()
        for _, w in held[1:]:
            w.close()
        await until(lambda: server.connections.open == 0, "every connection released")


async def test_a_notices_stream_too_many_is_refused_busy(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with (
        running(kit) as (services, _),
        second_server(services, tmp_path / "second", max_clients=1) as server,
    ):
        control = Control(server.path)
        try:
            first = await control.notices(after=server.hub.seq, instance=server.hub.instance)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await control.notices(after=server.hub.seq, instance=server.hub.instance)
            assert refused.value.status == 503

            client = SocketClient(server.path)
            with pytest.raises(AttachError, match="busy: too many clients") as caught:
                await client.start()
            assert isinstance(caught.value.__cause__, OwnerBusy)
            await client.stop()

            # The first one detaches: a client attaches and is told the owner's notices.
            await first.close()
            await until(lambda: server.hub.clients == 0, "the first client detached")
            client = SocketClient(server.path)
            await client.start()
            try:
                assert client.link_up
            finally:
                await client.stop()
        finally:
            await control.close()


@pytest.mark.parametrize("trickle", [False, True])
async def test_half_a_request_is_closed_at_the_deadline(tmp_path: Path, trickle: bool) -> None:
    kit = EngineKit(tmp_path)
    async with (
        running(kit) as (services, _),
        second_server(services, tmp_path / "second", request_deadline=0.5) as server,
    ):
        reader, writer = await raw(server)
        writer.write(HELLO[:-2])  # the headers never end
        await until(lambda: server.connections.open == 1, "the connection admitted")

        async def trickling() -> None:
            while trickle:  # a byte now and then does not buy more time
                await asyncio.sleep(0.1)
                writer.write(b"X")

        dripping = asyncio.create_task(trickling())
        try:
            assert await asyncio.wait_for(reader.read(), 30) == b""
        finally:
            dripping.cancel()
        writer.close()
        await until(lambda: server.connections.open == 0, "the connection released")

        # A whole request in time is answered as ever.
        control = Control(server.path)
        try:
            assert (await control.get("/v1/hello"))["pid"] == os.getpid()
        finally:
            await control.close()


async def test_a_body_that_never_ends_is_refused_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answers, "BODY_DEADLINE", 0.5)
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, _), second_server(services, tmp_path / "s") as server:
        reader, writer = await raw(server)
        writer.write(
            b"POST /v1/events/1/approve HTTP/1.1\r\nHost: control\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.startswith(b"HTTP/1.1 408"), head
        writer.close()


async def test_a_client_frame_over_the_bound_closes_its_stream(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, control):
        assert services.control is not None
        hub = services.control.hub
        ws = await control.notices(after=hub.seq, instance=hub.instance)
        await ws.send_str("x" * 8192)
        msg = await ws.receive(30)
        assert msg.type is aiohttp.WSMsgType.CLOSE, (msg.type, msg.data)
        assert msg.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await ws.close()
        await until(lambda: hub.clients == 0, "the client detached")


async def test_a_client_gone_during_its_handshake_is_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that asks for the notices and hangs up at once (killed, a script) is a
    detach, not a failure with a traceback in the owner's log."""
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, _), second_server(services, tmp_path / "s") as server:
        hub = server.hub
        for _ in range(20):
            _, writer = await raw(server)
            writer.write(
                f"GET /v1/notices?after={hub.seq}&instance={hub.instance} HTTP/1.1\r\n"
                "Host: control\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            writer.transport.abort()
        await until(lambda: server.connections.open == 0, "every connection released")
        await until(lambda: hub.clients == 0, "every client detached")
        failed = [r for r in caplog.records if r.levelname == "ERROR"]
        assert failed == [], [r.getMessage() for r in failed]
