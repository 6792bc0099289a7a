"""Strangers cannot exhaust a running ``pocketci-tui serve`` (issue 11, R3-R6).

Each test floods a real ``serve`` process over loopback while real signed deliveries keep
coming, and reads the server's resident memory from ``/proc``. The figures before and after
the defences are printed by ``tests/bench/bench_floods.py``; here the bounds are generous (the
old code grew by 700 MiB to 1.4 GiB under these floods, it now stays under 100 MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from signing import push_body, send_signed

from pocketci_tui.forges.github import sign

pytestmark = pytest.mark.timeout(300)

MIB = 1024 * 1024
RSS_GROWTH_BOUND_MIB = 256
"""What a flood may add to the server's memory (the unverified-bytes budget is 48 MiB)."""
BAD_SIGNATURE = "sha256=" + "0" * 64


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _max_open_files(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError(f"no open files limit for {pid}")


@dataclass
class Watch:
    """Samples a process's memory and sends it real deliveries while a flood runs."""

    serve: ServeProcess
    baseline: float = 0.0
    peak: float = 0.0
    answered: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def growth(self) -> float:
        """The most memory the flood added, in MiB."""
        return self.peak - self.baseline

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, _rss_mib(self.serve.proc.pid))
            await asyncio.sleep(0.02)

    async def _probe(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        n = 0
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                n += 1
                body = push_body("someone/else", n=n)
                try:
                    reply = await send_signed(http, self.serve.hook_url, WEBHOOK_SECRET, body)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(repr(exc))
                else:
                    self.answered.append(reply.status)
                await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sample and probe for the duration of the block."""
        await asyncio.sleep(0.3)
        self.baseline = self.peak = _rss_mib(self.serve.proc.pid)
        tasks = [asyncio.create_task(self._sample()), asyncio.create_task(self._probe())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


@pytest.fixture
async def serve(hermetic_home: Path) -> AsyncIterator[ServeProcess]:
    """A `serve` process configured for acme/api, with the test webhook secret."""
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    process = await ServeProcess.start()
    try:
        yield process
    finally:
        await process.terminate()


def _port(serve: ServeProcess) -> int:
    return int(serve.url.rsplit(":", 1)[1])


def _head(port: int, length: int, signature: str) -> bytes:
    return (
        f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        f"X-GitHub-Event: push\r\nX-GitHub-Delivery: {uuid.uuid4()}\r\n"
        f"X-Hub-Signature-256: {signature}\r\n\r\n"
    ).encode()


async def _post_raw(
    port: int, body: memoryview, signature: str, *, declared: int | None = None, hold: float = 0
) -> str:
    """Send one request by hand; return the status, or what ended it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_head(port, len(body) if declared is None else declared, signature))
        for start in range(0, len(body), MIB):
            writer.write(body[start : start + MIB])
            await writer.drain()
        if hold:
            await asyncio.sleep(hold)
        line = await asyncio.wait_for(reader.readline(), 60)
        return line.split(b" ")[1].decode() if line.startswith(b"HTTP/") else "closed"
    except (ConnectionError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_64_unsigned_24_mib_bodies_cost_little_memory(serve: ServeProcess) -> None:
    """R3: 64 bodies with a wrong signature at once; real deliveries are answered throughout."""
    body = memoryview(b"{" + b" " * (24 * MIB - 2) + b"}")
    watch = Watch(serve)
    async with watch.running():
        results = await asyncio.gather(
            *(_post_raw(_port(serve), body, BAD_SIGNATURE) for _ in range(64))
        )
        await asyncio.sleep(0.5)
    print(f"RSS {watch.baseline:.0f} MiB -> peak {watch.peak:.0f} MiB; flood: {sorted(results)}")
    assert "202" not in results
    assert "200" not in results
    # Refused at once for want of budget (503, or the connection closed mid-send) or read
    # whole and refused for the signature (401).
    assert set(results) <= {"401", "503", "ConnectionResetError", "BrokenPipeError", "closed"}
    assert watch.growth < RSS_GROWTH_BOUND_MIB, f"grew by {watch.growth:.0f} MiB"
    assert watch.answered, watch.failures
    assert set(watch.answered) == {200}
    assert not watch.failures


async def test_32_stalled_bodies_are_held_within_the_budget(serve: ServeProcess) -> None:
    """R3: 32 bodies declared at 25 MiB, stalled after 24 MiB: memory stays bounded."""
    body = memoryview(b"{" + b" " * (24 * MIB - 1))
    watch = Watch(serve)
    async with watch.running():
        results = await asyncio.gather(
            *(
                _post_raw(_port(serve), body, BAD_SIGNATURE, declared=25 * MIB, hold=3)
                for _ in range(32)
            )
        )
    print(f"RSS {watch.baseline:.0f} MiB -> peak {watch.peak:.0f} MiB; flood: {sorted(results)}")
    assert watch.growth < RSS_GROWTH_BOUND_MIB, f"grew by {watch.growth:.0f} MiB"
    assert watch.answered, watch.failures
    assert set(watch.answered) == {200}
    assert not watch.failures


async def test_signed_body_of_millions_of_values_is_refused_cheaply(serve: ServeProcess) -> None:
    """R6: 8.7 million ``{}`` in 24.9 MiB, correctly signed: a 400, memory bounded."""
    count = (int(24.9 * MIB) - 10) // 3
    body = b'{"a":[' + b"{}," * (count - 1) + b"{}]}"
    watch = Watch(serve)
    async with watch.running():
        result = await _post_raw(_port(serve), memoryview(body), sign(WEBHOOK_SECRET, body))
        await asyncio.sleep(0.5)
    print(f"RSS {watch.baseline:.0f} MiB -> peak {watch.peak:.0f} MiB")
    assert result == "400"
    assert watch.growth < RSS_GROWTH_BOUND_MIB, f"grew by {watch.growth:.0f} MiB"
    assert watch.answered, watch.failures
    assert set(watch.answered) == {200}


async def test_refusals_are_logged_at_a_bounded_rate(serve: ServeProcess) -> None:
    """R5: 1,500 badly signed requests write a handful of lines, not one each."""
    before = len(serve.lines)
    body = push_body()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def bad(n: int) -> int:
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"bad-{n}",
                "X-Hub-Signature-256": BAD_SIGNATURE,
            }
            async with http.post(serve.hook_url, data=body, headers=headers) as resp:
                return resp.status

        for start in range(0, 1500, 100):
            statuses = await asyncio.gather(*(bad(n) for n in range(start, start + 100)))
            assert set(statuses) == {401}
        reply = await send_signed(http, serve.hook_url, WEBHOOK_SECRET, push_body(n=1))
        assert reply.status == 202
    await asyncio.sleep(0.5)
    refusal_lines = [line for line in serve.lines[before:] if "refused" in line]
    print("\n".join(refusal_lines))
    assert 1 <= len(refusal_lines) <= 10


async def test_idle_connections_under_a_1024_descriptor_limit(hermetic_home: Path) -> None:
    """R4: 1,100 idle connections under ``nofile=1024``: real deliveries are still answered,
    and running out of descriptors is not logged once per attempt."""
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start(prefix=("prlimit", "--nofile=1024:1024", "--"))
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        assert _max_open_files(serve.proc.pid) == (1024, 1024)
        before = len(serve.lines)
        port = _port(serve)
        for _ in range(1100):
            conns.append(await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10))
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for n in range(5):
                reply = await send_signed(http, serve.hook_url, WEBHOOK_SECRET, push_body(n=n))
                assert reply.status == 202
        # Some of the idle connections were closed to make room (oldest first).
        closed = 0
        for reader, _ in conns[:200]:
            with contextlib.suppress(TimeoutError, ConnectionError):
                if await asyncio.wait_for(reader.read(1), 0.05) == b"":
                    closed += 1
        assert closed > 0
        log_bytes = sum(len(line) + 1 for line in serve.lines[before:])
        assert log_bytes < 100_000, "\n".join(serve.lines[before : before + 40])
        # The cap leaves room for a burst: the descriptors never ran out (which would have
        # stopped accepting for a second).
        assert not [line for line in serve.lines if "cannot accept connections" in line]
    finally:
        for _, writer in conns:
            writer.close()
        await serve.terminate()


async def test_soft_open_files_limit_is_raised_to_the_hard_one(hermetic_home: Path) -> None:
    """R4: the soft limit is raised at start so connections can use all the process may."""
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start(prefix=("prlimit", "--nofile=1024:4096", "--"))
    try:
        assert _max_open_files(serve.proc.pid) == (4096, 4096)
        async with aiohttp.ClientSession() as http:
            reply = await send_signed(http, serve.hook_url, WEBHOOK_SECRET, push_body())
            assert reply.status == 202
    finally:
        await serve.terminate()


async def test_serve_warns_when_the_listener_is_exposed(hermetic_home: Path) -> None:
    """R8: `serve --host 0.0.0.0` says the listener is exposed and how to put it behind a tunnel."""
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start("--host", "0.0.0.0")
    try:
        async with asyncio.timeout(30):
            while not any("exposed to other machines" in line for line in serve.lines):
                await asyncio.sleep(0.05)
        line = next(line for line in serve.lines if "exposed to other machines" in line)
        assert "WARNING" in line
        assert "tunnel" in line
    finally:
        await serve.terminate()
