"""The control socket's notice stream and its peers, against real services over the real Unix
socket: a client that reconnects resumes without a gap or a repeat, or is told to re-read; a
client that stops reading is cut off while another keeps up; a killed client leaves the owner
serving; a process of another user is refused, by the folder's mode and, with the folder
opened up, by the peer check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from controlkit import Control, frame, running, second_server
from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.control.hub import QUEUE_SIZE, RING_SIZE
from pocketci_tui.control.server import TOO_SLOW
from pocketci_tui.control.wire import decode_notice
from pocketci_tui.model import EventStatus, RunOutput, RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.services import Services

BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))
NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
"""An interpreter another user may run (the virtual environment may sit in root's home)."""


async def push(services: Services, kit: EngineKit, text: str = "2") -> int:
    assert services.store is not None
    assert services.engine is not None
    stored, duplicate = await services.store.record_event(
        kit.push({"main.go": f"{text}\n"}), EventStatus.RECEIVED
    )
    await services.engine.submit(stored, duplicate)
    assert stored.event.id is not None
    return stored.event.id


def output_lines(frames: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for f in frames:
        notice = decode_notice(f["notice"])
        if isinstance(notice, RunOutput):
            lines.extend(notice.lines)
    return lines


async def test_a_client_that_reconnects_resumes_without_a_gap_or_a_repeat(tmp_path: Path) -> None:
    total = 3000
    kit = EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"lines": total, "lines_per_second": 3000})],
    )
    async with running(kit) as (services, control):
        snap = await control.get("/v1/snapshot")
        ws = await control.notices(snap["seq"], snap["instance"])
        event_id = await push(services, kit)
        seen: list[dict[str, Any]] = []
        while len(output_lines(seen)) < 500:
            seen.append(await frame(ws))
        await ws.close()  # the link drops mid-stream
        await asyncio.sleep(0.3)  # output goes on meanwhile

        again = await control.notices(seen[-1]["seq"], snap["instance"])
        while True:
            seen.append(await frame(again))
            notice = decode_notice(seen[-1]["notice"])
            if isinstance(notice, RunOutput) and notice.end == total:
                break
        await again.close()

    assert [f["seq"] for f in seen] == list(range(snap["seq"] + 1, seen[-1]["seq"] + 1))
    assert output_lines(seen) == [f"line {n}" for n in range(1, total + 1)]
    assert event_id


async def test_a_client_of_a_restarted_owner_is_told_to_resync(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (_, control):
        first = await control.get("/v1/hello")
    async with running(kit) as (services, control):
        assert services.control is not None
        ws = await control.notices(first["seq"], first["instance"])
        resync = await frame(ws)
        hello = await control.get("/v1/hello")
        assert resync == {"resync": True, "seq": hello["seq"], "instance": hello["instance"]}
        assert hello["instance"] != first["instance"]
        # Then the stream goes on after that number.
        event_id = await push(services, kit)
        nxt = await frame(ws)
        assert nxt["seq"] == hello["seq"] + 1
        assert event_id
        await ws.close()


async def test_a_client_whose_number_aged_out_is_told_to_resync(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, control):
        assert services.control is not None
        hub = services.control.hub
        hello = await control.get("/v1/hello")
        for n in range(RING_SIZE + 5):
            hub.publish(RunOutput("r", (f"{n}",), n + 1))
        ws = await control.notices(hello["seq"], hello["instance"])
        assert await frame(ws) == {"resync": True, "seq": hub.seq, "instance": hub.instance}
        # A number still in the ring resumes.
        recent = await control.notices(hub.seq - 3, hub.instance)
        assert [(await frame(recent))["seq"] for _ in range(3)] == [
            hub.seq - 2,
            hub.seq - 1,
            hub.seq,
        ]
        await ws.close()
        await recent.close()


async def test_a_client_that_stops_reading_is_cut_off_and_another_keeps_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit = EngineKit(tmp_path)
    caplog.set_level(logging.INFO, logger="pocketci_tui.control")
    async with running(kit) as (services, control):
        assert services.control is not None
        hub = services.control.hub
        hello = await control.get("/v1/hello")
        stalled = await control.notices(hello["seq"], hello["instance"])  # never reads
        reader_control = Control(control.path)
        reader = await reader_control.notices(hello["seq"], hello["instance"])
        got: list[int] = []

        async def read() -> None:
            while True:
                msg = await reader.receive()
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    return
                got.append(json.loads(msg.data)["seq"])

        task = asyncio.create_task(read())
        published = 5000
        line = "x" * 1000
        for n in range(published):
            hub.publish(RunOutput("r", (line,), n + 1))
            # The publisher never waits for a client; this test only lets the one that
            # reads keep up, as a live UI does.
            while hub.seq - (got[-1] if got else hello["seq"]) > QUEUE_SIZE // 2:
                await asyncio.sleep(0.001)
        while not got or got[-1] < hub.seq:
            await asyncio.sleep(0.01)

        assert got == list(range(hello["seq"] + 1, hub.seq + 1))
        assert hub.cut_off == 1
        assert hub.clients == 1  # the reader only
        # The stalled client, once it reads again, finds what reached it, then the close.
        seqs: list[int] = []
        while True:
            msg = await stalled.receive(30)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            seqs.append(json.loads(msg.data)["seq"])
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert stalled.close_code == TOO_SLOW
        assert seqs == list(range(hello["seq"] + 1, hello["seq"] + 1 + len(seqs)))
        assert len(seqs) < published
        # The server still answers, and the cut-off client may come back and resume.
        back = await control.notices(seqs[-1], hello["instance"])
        assert (await frame(back))["seq"] == seqs[-1] + 1
        await back.close()
        await reader.close()
        await task
        await reader_control.close()
    detached = [r.getMessage() for r in caplog.records if r.getMessage().startswith("detached")]
    assert any("too slow" in m for m in detached), detached


CLIENT = """
import asyncio, json, sys
import aiohttp

async def main(path):
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as s:
        hello = await (await s.get("http://control/v1/hello")).json()
        async with s.ws_connect(
            "http://control/v1/notices",
            params={"after": str(hello["seq"]), "instance": hello["instance"]},
        ) as ws:
            print("attached", flush=True)
            async for msg in ws:
                print(msg.data[:40], flush=True)

asyncio.run(main(sys.argv[1]))
"""


async def test_a_killed_client_leaves_the_owner_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit = EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"lines": 100000, "lines_per_second": 5000})],
    )
    caplog.set_level(logging.INFO, logger="pocketci_tui.control")
    async with running(kit) as (services, control):
        assert services.control is not None
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            str(services.control.path),
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"attached\n"
        event_id = await push(services, kit)
        for _ in range(20):  # mid-stream
            await asyncio.wait_for(proc.stdout.readline(), 30)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

        async def gone() -> None:
            while services.control is not None and services.control.hub.clients:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(gone(), 30)
        # The owner goes on: its build runs, and a new client is served.
        runs = await services.runs(event_id)
        assert [r.state for r in runs] == [RunState.RUNNING]
        hello = await control.get("/v1/hello")
        ws = await control.notices(hello["seq"], hello["instance"])
        assert "notice" in await frame(ws)
        await ws.close()
        await services.cancel_event(event_id)
    messages = [r.getMessage() for r in caplog.records]
    assert f"attached: pid {proc.pid} uid {os.getuid()}" in messages
    assert any(m.startswith(f"detached: pid {proc.pid} (") for m in messages), messages


PEER = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(json.dumps({"connect": type(exc).__name__}))
    sys.exit()
s.settimeout(20)
data = b""
try:
    s.sendall(b"GET /v1/hello HTTP/1.1\\r\\nHost: control\\r\\nConnection: close\\r\\n\\r\\n")
    while chunk := s.recv(65536):
        data += chunk
except OSError as exc:
    print(json.dumps({"connect": "ok", "error": type(exc).__name__, "reply": data.decode()}))
    sys.exit()
print(json.dumps({"connect": "ok", "reply": data.decode()}))
"""


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A short folder anyone may enter (another user must reach the data folder in it)."""
    path = Path(tempfile.mkdtemp(prefix="pcs-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


async def as_user(uid: int | None, socket_path: Path) -> tuple[int, dict[str, Any]]:
    """Run the stdlib client as ``uid`` (None: as we are); its pid and what it saw."""
    argv = [SYSTEM_PYTHON, "-I", "-c", PEER, str(socket_path)]
    if uid is not None:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL, cwd="/"
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out
    return proc.pid, json.loads(out)


@contextlib.asynccontextmanager
async def owner_in(kit: EngineKit, data_dir: Path) -> AsyncIterator[Services]:
    paths = AppPaths(config_file=data_dir.parent / "config.yaml", data_dir=data_dir)
    services = Services(kit.settings, paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        yield services
    finally:
        await services.stop()


@pytest.mark.skipif(os.getuid() != 0, reason="running a process as another user needs root")
@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="no system python for that user")
async def test_another_user_is_refused(
    tmp_path: Path,
    open_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")  # the socket goes to the data folder, in open_tmp
    kit = EngineKit(tmp_path)
    caplog.set_level(logging.INFO, logger="pocketci_tui.control")
    async with owner_in(kit, open_tmp / "data") as services:
        assert services.control is not None
        path = services.control.path
        assert path == open_tmp / "data" / "run" / "control.sock"

        # Our own user is served: the client works.
        _, ours = await as_user(None, path)
        assert ours["reply"].startswith("HTTP/1.1 200")

        # Another user: the private folders stop it at connect.
        _, theirs = await as_user(NOBODY, path)
        assert theirs == {"connect": "PermissionError"}

        # Folders and socket opened up, as by mistake: the peer check still refuses.
        (open_tmp / "data").chmod(0o711)
        path.parent.chmod(0o711)
        path.chmod(0o666)
        pid, theirs = await as_user(NOBODY, path)
        assert theirs["connect"] == "ok"
        assert theirs["reply"] == ""  # not one byte of an answer
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert refused == [
            f"refused a control connection from pid {pid} uid {NOBODY}: only user id "
            f"{os.getuid()} (and root) may attach"
        ]
        assert services.control.refusals.count == 1
        # And the owner still serves its own user.
        _, ours = await as_user(None, path)
        assert ours["reply"].startswith("HTTP/1.1 200")


async def test_a_client_that_answers_no_heartbeat_is_detached(
    tmp_path: Path, open_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit = EngineKit(tmp_path)
    caplog.set_level(logging.INFO, logger="pocketci_tui.control")
    async with (
        running(kit) as (services, _),
        second_server(services, open_tmp, heartbeat=0.3) as server,
    ):
        control = Control(server.path)
        try:
            # A client that neither reads nor answers pings (a hung process).
            ws = await control.session.ws_connect(
                "http://control/v1/notices", autoping=False, heartbeat=None
            )
            while server.hub.clients:
                await asyncio.sleep(0.05)
            await ws.close()
        finally:
            await control.close()
    detached = [r.getMessage() for r in caplog.records if r.getMessage().startswith("detached")]
    assert detached == [f"detached: pid {os.getpid()} (no answer to the heartbeat)"]


def ws_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each whole frame a server sent (servers do not mask)."""
    frames: list[tuple[int, bytes]] = []
    at = 0
    while at + 2 <= len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        if at + length > len(data):
            break
        frames.append((opcode, data[at : at + length]))
        at += length
    return frames


def read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(1 << 20):
            data += chunk
    return data


async def test_a_client_a_frame_cannot_reach_in_time_is_cut_off(
    tmp_path: Path, open_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit = EngineKit(tmp_path)
    caplog.set_level(logging.INFO, logger="pocketci_tui.control")
    async with (
        running(kit) as (services, _),
        second_server(services, open_tmp, send_timeout=0.5) as server,
    ):
        # A client that attaches, then never reads its socket again (a stopped process).
        raw = socket.socket(socket.AF_UNIX)
        raw.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(raw, str(server.path))
        await loop.sock_sendall(
            raw,
            b"GET /v1/notices HTTP/1.1\r\nHost: control\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n",
        )
        while not server.hub.clients:
            await asyncio.sleep(0.01)
        # Fewer frames than its queue holds, but more bytes than the socket takes: a send
        # blocks, and the send deadline (not the queue's bound) cuts the client off.
        for n in range(200):
            server.hub.publish(RunOutput("r", ("y" * 40_000,), n + 1))
        while server.hub.clients:
            await asyncio.sleep(0.05)
        assert server.hub.cut_off == 0
        raw.setblocking(True)
        raw.settimeout(5)
        data = await asyncio.to_thread(read_all, raw)
        raw.close()
    detached = [r.getMessage() for r in caplog.records if r.getMessage().startswith("detached")]
    assert detached == [
        f"detached: pid {os.getpid()} (too slow: it did not keep up with the notices)"
    ]
    assert data.startswith(b"HTTP/1.1 101")
    frames = ws_frames(data[data.index(b"\r\n\r\n") + 4 :])
    texts = [json.loads(payload) for opcode, payload in frames if opcode == 0x1]
    assert 0 < len(texts) < 200  # what reached it before it was cut off, in order
    assert [t["seq"] for t in texts] == list(range(texts[0]["seq"], texts[0]["seq"] + len(texts)))


async def test_an_owner_whose_engine_stopped_answers_not_started(
    tmp_path: Path, open_tmp: Path
) -> None:
    kit = EngineKit(tmp_path)
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with second_server(services, open_tmp) as server:
            control = Control(server.path)
            try:
                assert await control.get("/v1/counts") == {
                    "queued": 0,
                    "running": 0,
                    "engines": [],
                }
                await services.stop()
                status, answer = await control.call("GET", "/v1/counts")
                assert (status, answer["error"]["kind"]) == (503, "not_started")
                status, answer = await control.call("POST", "/v1/events/1/fire", body={})
                assert (status, answer["error"]["kind"]) == (503, "not_started")
            finally:
                await control.close()
    finally:
        await services.stop()
