"""Intake throughput: signed deliveries stored durably per second by ``pocketci-tui serve``.

Side by side, in one run, against three servers started as separate processes on loopback:

* ``pocketci-tui serve`` (the real command: HMAC check, strict JSON, normalization, SQLite WAL
  with ``synchronous=FULL``, group commit, reply after the commit), with deliveries of a
  repository that is not configured (stored and marked ignored: the intake alone), and again
  with a configured repository (the engine dispatching every event in the same process);
* a bare aiohttp hello-world handler (reads the body, answers "hello"), SPEC 6 target >= 0.5x;
* adnanh/webhook (``/usr/bin/webhook``) with a ``payload-hmac-sha256`` rule on
  ``X-Hub-Signature-256`` running ``/bin/true``, SPEC 6 target: serve >= 1.5x its rate.

The client is one asyncio process (a minimal HTTP/1.1 client, 64 keep-alive connections) sending
a small signed push payload with a new delivery id each time. Each server is measured in
interleaved rounds; the figures are medians of the rounds. Latency is per request, client side.

Usage: ``.venv/bin/python tests/bench/bench_intake.py [--requests N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from signing import push_body

from pocketci_tui.forges.github import sign

SECRET = "bench-webhook-secret-0123456789"
CONCURRENCY = 64
WEBHOOK_BIN = "/usr/bin/webhook"

HELLO_SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def hello(request):
        await request.read()
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_post("/webhooks/github", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@dataclass
class Server:
    """A server under test, as a child process."""

    name: str
    url: str
    proc: asyncio.subprocess.Process
    drain: asyncio.Task[None] | None = None
    repository: str = "someone/else"
    results: list[tuple[float, list[float]]] = field(default_factory=list)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self.drain is not None:
            self.drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.drain


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is None:
        return
    while await stream.read(65536):
        pass


async def start_serve(home: Path, *, configured: bool) -> Server:
    """Start `pocketci-tui serve` with its own home, config and plaintext secret."""
    home.mkdir(parents=True)  # noqa: ASYNC240 - set-up before measuring
    port = _free_port()
    repos = "[{name: acme/api, clone-url: 'https://127.0.0.1:9/acme/api.git'}]"
    (home / "config.yaml").write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\nsecrets: {{backend: plaintext}}\n"
        f"repos: {repos if configured else '[{name: someone/else}]'}\n"
    )
    env = {**os.environ, "POCKETCI_TUI_HOME": str(home)}
    subprocess.run(  # noqa: ASYNC221 - set-up before measuring
        [sys.executable, "-m", "pocketci_tui", "secrets", "set", "webhook-secret", "--stdin"],
        input=SECRET,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pocketci_tui",
        "serve",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    server = Server(
        "serve (configured repo, engine dispatching)"
        if configured
        else "serve (stored, marked ignored: intake only)",
        f"http://127.0.0.1:{port}/webhooks/github",
        proc,
        asyncio.create_task(_drain(proc.stdout)),
        "acme/api" if configured else "someone/else",
    )
    await _wait_port(port)
    return server


async def start_hello() -> Server:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HELLO_SERVER,
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await _wait_port(port)
    return Server("aiohttp hello-world", f"http://127.0.0.1:{port}/webhooks/github", proc)


async def start_webhook(work: Path) -> Server | None:
    if shutil.which(WEBHOOK_BIN) is None:
        return None
    port = _free_port()
    hooks = [
        {
            "id": "github",
            "execute-command": "/bin/true",
            "command-working-directory": str(work),
            "response-message": "ok",
            "trigger-rule": {
                "match": {
                    "type": "payload-hmac-sha256",
                    "secret": SECRET,
                    "parameter": {"source": "header", "name": "X-Hub-Signature-256"},
                }
            },
        }
    ]
    hooks_file = work / "hooks.json"
    hooks_file.write_text(json.dumps(hooks))
    proc = await asyncio.create_subprocess_exec(
        WEBHOOK_BIN,
        "-hooks",
        str(hooks_file),
        "-ip",
        "127.0.0.1",
        "-port",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await _wait_port(port)
    return Server("adnanh/webhook (HMAC rule)", f"http://127.0.0.1:{port}/hooks/github", proc)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return its status and whether the server closes."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    chunked = False
    close = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def measure(url: str, requests: int, repository: str) -> tuple[float, list[float], int]:
    """Send ``requests`` signed deliveries over CONCURRENCY keep-alive connections.

    A minimal HTTP/1.1 client on asyncio streams, so the client costs far less CPU than the
    servers it measures (the aiohttp client would be the bottleneck on a small machine).

    Returns:
        (requests per second, latencies in seconds, count of non-2xx answers).
    """
    body = push_body(repository=repository)
    signature = sign(SECRET, body)
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    prefix = (
        f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: push\r\n"
        f"X-Hub-Signature-256: {signature}\r\nX-GitHub-Delivery: "
    ).encode()
    latencies: list[float] = []
    failures = 0
    todo = iter(range(requests))

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in todo:
                t0 = time.perf_counter()
                writer.write(prefix + uuid.uuid4().hex.encode() + b"\r\n\r\n" + body)
                status, close = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if not 200 <= status < 300:
                    failures += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    return requests / elapsed, latencies, failures


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def _children(pid: int) -> int:
    """How many child processes ``pid`` has right now (Linux /proc), 0 if unknown."""
    count = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                count += len(f.read().split())
    except OSError:
        return 0
    return count


async def _settle(server: Server, limit: float = 30.0) -> None:
    """Wait until the server has no child processes left (webhook runs one per delivery,
    after answering), so its backlog does not slow the next server measured."""
    deadline = time.monotonic() + limit
    while _children(server.proc.pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


async def _rounds(servers: list[Server], requests: int, rounds: int, stats: dict[str, Any]) -> None:
    for s in servers:  # warm up: imports, connections, first pages of the database
        await measure(s.url, min(500, requests), s.repository)
        await _settle(s)
    for _ in range(rounds):
        for s in servers:
            rate, latencies, failures = await measure(s.url, requests, s.repository)
            await _settle(s)
            stats["rates"].setdefault(s.name, []).append(rate)
            stats["lats"].setdefault(s.name, []).extend(latencies)
            stats["fails"][s.name] = stats["fails"].get(s.name, 0) + failures
            stats["names"].append(s.name) if s.name not in stats["names"] else None


async def _run(requests: int, rounds: int) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="pocketci-bench-intake-"))
    stats: dict[str, Any] = {"rates": {}, "lats": {}, "fails": {}, "names": []}
    servers: list[Server] = []
    try:
        # Phase 1, interleaved: the intake alone, the hello-world, adnanh/webhook.
        servers.append(await start_serve(work / "serve-intake", configured=False))
        servers.append(await start_hello())
        webhook_server = await start_webhook(work)
        if webhook_server is not None:
            servers.append(webhook_server)
        await _rounds(servers, requests, rounds, stats)
        for s in servers:
            await s.stop()
        # Phase 2, alone (its engine keeps cloning in the background, which would slow the
        # others): serve with a configured repository, every event dispatched.
        servers = [await start_serve(work / "serve-engine", configured=True)]
        await _rounds(servers, requests, rounds, stats)
    finally:
        for s in servers:
            await s.stop()
        shutil.rmtree(work, ignore_errors=True)
    rates, lats, fails, names = stats["rates"], stats["lats"], stats["fails"], stats["names"]

    med = {n: statistics.median(rates[n]) for n in names}
    p50 = {n: _pct(lats[n], 0.50) for n in names}
    p99 = {n: _pct(lats[n], 0.99) for n in names}
    intake = "serve (stored, marked ignored: intake only)"
    engine = "serve (configured repo, engine dispatching)"
    hello = "aiohttp hello-world"
    webhook = "adnanh/webhook (HMAC rule)"
    rows: list[dict[str, Any]] = []
    for n in names:
        rows.append(
            {
                "name": f"intake: {n}",
                "target": "",
                "value": round(med[n]),
                "unit": "req/s",
                "comparison": f"p50 {p50[n]:.1f} ms, p99 {p99[n]:.1f} ms, non-2xx {fails[n]}",
                "ok": fails[n] == 0,
            }
        )
    ratio_hello = med[intake] / med[hello]
    rows.append(
        {
            "name": "intake: serve / aiohttp hello-world",
            "target": ">= 0.5x",
            "value": round(ratio_hello, 2),
            "unit": "x",
            "comparison": f"{med[intake]:,.0f} vs {med[hello]:,.0f} req/s "
            f"(with the engine dispatching: {med[engine] / med[hello]:.2f}x)",
            "ok": ratio_hello >= 0.5 and fails[intake] == 0,
        }
    )
    if webhook in med:
        ratio_webhook = med[intake] / med[webhook]
        rows.append(
            {
                "name": "intake: serve / adnanh/webhook (HMAC)",
                "target": ">= 1.5x",
                "value": round(ratio_webhook, 2),
                "unit": "x",
                "comparison": f"{med[intake]:,.0f} vs {med[webhook]:,.0f} req/s "
                f"(with the engine dispatching: {med[engine] / med[webhook]:.2f}x)",
                "ok": ratio_webhook >= 1.5 and fails[intake] == 0,
            }
        )
    else:
        rows.append(
            {
                "name": "intake: serve / adnanh/webhook (HMAC)",
                "target": ">= 1.5x",
                "value": "n/a",
                "unit": "x",
                "comparison": f"{WEBHOOK_BIN} is not installed (apt install webhook)",
                "ok": False,
            }
        )
    return rows


def run(requests: int = 3000, rounds: int = 3) -> list[dict[str, Any]]:
    """Run the benchmark; return one row per figure for the suite runner.

    Args:
        requests: Deliveries per measurement.
        rounds: Interleaved rounds per server (the median is reported).

    Returns:
        Rows with ``name``, ``target``, ``value``, ``unit``, ``comparison`` and ``ok``.
    """
    return asyncio.run(_run(requests, rounds))


def main() -> None:
    """Print the figures as a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = run(args.requests, args.rounds)
    print(f"{'benchmark':<58} {'value':>9} {'unit':<6} {'target':<8} ok   details")
    for r in rows:
        value = f"{r['value']:,}" if isinstance(r["value"], int | float) else str(r["value"])
        print(
            f"{r['name']:<58} {value:>9} {r['unit']:<6} {r['target']:<8} "
            f"{'yes' if r['ok'] else 'NO ':<4} {r['comparison']}"
        )


if __name__ == "__main__":
    main()
