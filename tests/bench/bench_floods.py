"""Floods from strangers: what each costs a running ``pocketci-tui serve`` (issue 11).

Each flood runs against a fresh ``serve`` process (own home, plaintext secret, loopback) while
a probe sends one small signed delivery every 100 ms on a new connection and times the answer.
The flood itself is sent by a separate client process, so the probe's timings are not the
flood client's. Printed per flood: the server's resident memory before the flood and at its
peak (sampled from ``/proc/PID/status`` every 20 ms), the probe's median and worst answer time
and how many probes failed (no 2xx within 10 s), and how many bytes ``serve`` wrote to its log.

Floods:

* ``unsigned64``: 64 connections at once, each sending a 24 MiB body with a wrong signature;
* ``stalled32``: 32 connections that declare 25 MiB, send 24 MiB with a wrong signature, then
  stop sending (held for ``--hold`` seconds);
* ``idle1100``: ``serve`` started under ``prlimit --nofile=1024:1024``; 1,100 connections
  opened and left idle;
* ``tiny``: one signed 24.9 MiB body of 8.7 million ``{}`` values;
* ``rejects``: unauthenticated requests (bad signatures, small bodies) as fast as one client
  sends them, for ``--hold`` seconds (the log is what this one measures).

Usage: ``.venv/bin/python tests/bench/bench_floods.py [--flood NAME ...] [--hold S]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apphome import write_home
from signing import push_body

from pocketci_tui.forges.github import sign

SECRET = "bench-webhook-secret-0123456789"
MIB = 1024 * 1024
FLOODS = ("unsigned64", "stalled32", "idle1100", "tiny", "rejects")
BAD_SIGNATURE = "sha256=" + "0" * 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    """The resident set of ``pid`` in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _head(port: int, length: int, signature: str, delivery: str) -> bytes:
    return (
        f"POST /webhooks/github HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        f"X-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\n"
        f"X-Hub-Signature-256: {signature}\r\nConnection: close\r\n\r\n"
    ).encode()


# -- the flood client (runs in its own process) -------------------------------------------------


async def _send_body(
    port: int, body: memoryview, signature: str, *, declared: int | None = None, hold: float = 0
) -> str:
    """Send one POST; return the status line (or what went wrong)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect: {exc.strerror}"
    try:
        length = declared if declared is not None else len(body)
        writer.write(_head(port, length, signature, str(uuid.uuid4())))
        for start in range(0, len(body), MIB):
            writer.write(body[start : start + MIB])
            await writer.drain()
        if hold:
            with contextlib.suppress(TimeoutError):
                line = await asyncio.wait_for(reader.readline(), hold)
                return line.decode(errors="replace").strip() or "closed"
            return "held"
        line = await asyncio.wait_for(reader.readline(), 120)
        return line.decode(errors="replace").strip() or "closed"
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _flood_client(name: str, port: int, hold: float) -> dict[str, int]:
    outcomes: dict[str, int] = {}

    def count(result: str) -> None:
        key = result.split(" ", 2)[1] if result.startswith("HTTP/") else result
        outcomes[key] = outcomes.get(key, 0) + 1

    if name in ("unsigned64", "stalled32"):
        body = memoryview(b"{" + b" " * (24 * MIB - 2) + b"}")
        n, declared, wait = (64, None, 0.0) if name == "unsigned64" else (32, 25 * MIB, hold)
        results = await asyncio.gather(
            *(_send_body(port, body, BAD_SIGNATURE, declared=declared, hold=wait) for _ in range(n))
        )
        for result in results:
            count(result)
    elif name == "idle1100":
        conns: list[asyncio.StreamWriter] = []
        for _ in range(1100):
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            except (OSError, TimeoutError) as exc:
                count(f"connect {type(exc).__name__}")
                continue
            conns.append(writer)
        count(f"opened {len(conns)}")
        await asyncio.sleep(hold)
        for writer in conns:
            writer.close()
    elif name == "tiny":
        count_values = (int(24.9 * MIB) - 10) // 3
        tiny = b'{"a":[' + b"{}," * (count_values - 1) + b"{}]}"
        signature = sign(SECRET, tiny)
        count(f"values {count_values}")
        count(await _send_body(port, memoryview(tiny), signature))
    elif name == "rejects":
        small = memoryview(push_body())
        deadline = time.monotonic() + hold

        async def worker() -> None:
            while time.monotonic() < deadline:
                count(await _send_body(port, small, BAD_SIGNATURE))

        await asyncio.gather(*(worker() for _ in range(16)))
    return outcomes


# -- the probe and the measurement --------------------------------------------------------------


@dataclass
class Figures:
    """What one flood cost."""

    flood: str
    rss_before_mib: float = 0.0
    rss_peak_mib: float = 0.0
    probe_ms: list[float] = field(default_factory=list)
    probe_failures: int = 0
    log_bytes: int = 0
    seconds: float = 0.0
    flood_outcomes: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, object]:
        """The figures as one JSON-able row."""
        probes = sorted(self.probe_ms)
        return {
            "flood": self.flood,
            "rss_before_mib": round(self.rss_before_mib, 1),
            "rss_peak_mib": round(self.rss_peak_mib, 1),
            "rss_growth_mib": round(self.rss_peak_mib - self.rss_before_mib, 1),
            "probes": len(probes) + self.probe_failures,
            "probe_failures": self.probe_failures,
            "probe_p50_ms": round(statistics.median(probes), 1) if probes else None,
            "probe_max_ms": round(probes[-1], 1) if probes else None,
            "log_bytes": self.log_bytes,
            "log_bytes_per_s": round(self.log_bytes / self.seconds) if self.seconds else 0,
            "flood_outcomes": self.flood_outcomes,
        }


async def _probe(port: int, n: int) -> float | None:
    body = push_body("someone/else", n=n)
    head = _head(port, len(body), sign(SECRET, body), f"probe-{uuid.uuid4()}")
    start = time.perf_counter()
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head + body)
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    if not line.startswith((b"HTTP/1.1 20", b"HTTP/1.0 20")):
        return None
    return (time.perf_counter() - start) * 1000


async def run_flood(name: str, hold: float) -> Figures:
    """Start a fresh ``serve``, flood it, and return the figures."""
    figures = Figures(name)
    with tempfile.TemporaryDirectory(prefix="pocketci-flood-") as tmp:
        home = Path(tmp) / "home"
        port = _free_port()
        env = write_home(home, port=port, secret=SECRET, repos="[{name: acme/api}]")
        log_path = Path(tmp) / "serve.log"
        prefix = ["prlimit", "--nofile=1024:1024", "--"] if name == "idle1100" else []
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *prefix,
                sys.executable,
                "-m",
                "pocketci_tui",
                "serve",
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            for _ in range(600):
                if await _probe(port, 0) is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("serve did not start:\n" + log_path.read_text())
            await asyncio.sleep(0.5)
            figures.rss_before_mib = _rss_kib(proc.pid) / 1024
            log_start = log_path.stat().st_size
            peak = 0
            client = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--client",
                name,
                "--port",
                str(port),
                "--hold",
                str(hold),
                stdout=asyncio.subprocess.PIPE,
            )
            started = time.monotonic()

            async def sample() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, _rss_kib(proc.pid))
                    await asyncio.sleep(0.02)

            async def probes() -> None:
                n = 1
                while True:
                    took = await _probe(port, n)
                    n += 1
                    if took is None:
                        figures.probe_failures += 1
                    else:
                        figures.probe_ms.append(took)
                    await asyncio.sleep(0.1)

            sampler = asyncio.create_task(sample())
            prober = asyncio.create_task(probes())
            out, _ = await client.communicate()
            figures.seconds = time.monotonic() - started
            await asyncio.sleep(0.5)
            for task in (sampler, prober):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            figures.rss_peak_mib = peak / 1024
            figures.flood_outcomes = json.loads(out or b"{}")
            figures.log_bytes = log_path.stat().st_size - log_start
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    return figures


def main() -> None:
    """Run the floods and print one JSON row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--flood", action="append", choices=FLOODS, help="(default: all)")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds a flood is held")
    parser.add_argument("--client", choices=FLOODS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(_flood_client(args.client, args.port, args.hold))))
        return
    for name in args.flood or FLOODS:
        print(json.dumps(asyncio.run(run_flood(name, args.hold)).row()), flush=True)


if __name__ == "__main__":
    main()
