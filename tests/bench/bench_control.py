"""Backpressure on the control socket under a real flood: what N attached clients receive and
what serving them costs the owner, with and without one stalled client (issue 15).

The owner runs in this process: real services (SQLite, engine, git, the stand-in dagger) with
their control socket, a push whose build prints output as fast as the stand-in can. The
clients run in other processes (``--procs`` at most, the clients shared among them), each a
real :class:`~pocketci_tui.control.client.SocketClient` on the real Unix socket counting what
it is told. The stalled client is a raw connection in this process that opens the notices
websocket and never reads a byte (a suspended terminal, a frozen SSH link).

For each number of clients (``--clients``, default 1, 8 and 32; 0 is the owner alone, the
baseline), without and then with the stalled client, over ``--seconds`` each, printed side by
side:

* notices/s the owner published (all of them numbered by the hub), and per client the
  notices/s and output lines/s it was told (lowest, median, highest), and how many times a
  client's link went down (cut off as too slow, then resumed or resynced);
* the owner's publish cost per notice (the CPU time of the hub's ``publish``, which never
  encodes or sends),
  its whole CPU per notice (engine, log reading, encoding once, sending to every client), and
  its resident memory at the start of the window and at its peak (sampled every 50 ms);
* how many clients the hub cut off in the window.

Usage: ``.venv/bin/python tests/bench/bench_control.py [--clients 1 8 32] [--seconds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.contract import ClientNotice, LinkChanged
from pocketci_tui.control.client import SocketClient
from pocketci_tui.control.hub import NoticeHub
from pocketci_tui.model import EventStatus, RunOutput, RunState
from pocketci_tui.services import Services

FLOOD_LINES = 200_000_000
"""Lines the flooding build prints (it is cancelled long before)."""


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the clients (in their own processes) --------------------------------------------------------


async def clients_main(path: Path, count: int, seconds: float) -> None:
    """Attach ``count`` clients, say ``ready``, count for ``seconds`` after ``go``, print."""
    clients = [SocketClient(path) for _ in range(count)]
    stats = [{"notices": 0, "lines": 0, "downs": 0, "resyncs": 0} for _ in clients]
    measuring = False

    def counter(st: dict[str, int]) -> Any:
        def on(notice: ClientNotice) -> None:
            if not measuring:
                return
            st["notices"] += 1
            if isinstance(notice, RunOutput):
                st["lines"] += len(notice.lines)
            elif isinstance(notice, LinkChanged) and not notice.up:
                st["downs"] += 1
            elif isinstance(notice, LinkChanged) and notice.resync:
                st["resyncs"] += 1

        return on

    for client, st in zip(clients, stats, strict=True):
        await client.start()
        client.subscribe(counter(st))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    measuring = True
    started = time.monotonic()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.monotonic() - started
    for client in clients:
        await client.stop()
    print(json.dumps({"elapsed": elapsed, "clients": stats}), flush=True)


# -- the stalled client ---------------------------------------------------------------------------


def stalled_client(path: Path, hub: NoticeHub) -> socket.socket:
    """Open the notices websocket and never read: its receive buffer is kept small so the
    owner's socket fills soon, as a stalled link's does."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(path))
    sock.sendall(
        (
            f"GET /v1/notices?after={hub.seq}&instance={hub.instance} HTTP/1.1\r\n"
            "Host: control\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


# -- the owner ------------------------------------------------------------------------------------


class PublishCost:
    """Times the hub's ``publish`` (patched on the class before the owner starts)."""

    def __init__(self) -> None:
        self.ns = 0
        self.count = 0
        original = NoticeHub.publish

        def timed(hub: NoticeHub, notice: Any) -> None:
            started = time.thread_time_ns()
            original(hub, notice)
            self.ns += time.thread_time_ns() - started
            self.count += 1

        setattr(NoticeHub, "publish", timed)  # noqa: B010 - a method swapped on purpose


async def measure(
    services: Services, cost: PublishCost, clients: int, stalled: bool, args: argparse.Namespace
) -> dict[str, Any]:
    """One window: ``clients`` attached (and a stalled one if asked); the figures."""
    assert services.control is not None
    hub = services.control.hub
    path = services.control.path
    procs = min(clients, args.procs)
    shares = [clients // procs + (i < clients % procs) for i in range(procs)] if procs else []
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--client",
            str(path),
            "--count",
            str(share),
            "--seconds",
            str(args.seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for share in shares
    ]
    for child in children:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 120)
        assert line.strip() == b"ready", line
    stall = stalled_client(path, hub) if stalled else None
    await asyncio.sleep(0.5)
    seq0, ns0, n0, cpu0, cut0 = hub.seq, cost.ns, cost.count, time.process_time(), hub.cut_off
    rss0 = peak = _rss_mib()
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        await asyncio.sleep(0.05)
        peak = max(peak, _rss_mib())
    elapsed = time.monotonic() - started
    seq1, ns1, n1, cpu1, cut1 = hub.seq, cost.ns, cost.count, time.process_time(), hub.cut_off
    told: list[dict[str, int]] = []
    child_elapsed: list[float] = []
    for child in children:
        out, _ = await asyncio.wait_for(child.communicate(), 120)
        answer = json.loads(out.splitlines()[-1])
        told += answer["clients"]
        child_elapsed.append(answer["elapsed"])
    if stall is not None:
        stall.close()
    published = seq1 - seq0
    windows = _spread(child_elapsed, shares)
    rates = sorted(c["notices"] / e for c, e in zip(told, windows, strict=True)) or [0.0]
    lines = sorted(c["lines"] / e for c, e in zip(told, windows, strict=True)) or [0.0]
    return {
        "clients": clients,
        "stalled": stalled,
        "published_per_s": published / elapsed,
        "told_per_s": (rates[0], statistics.median(rates), rates[-1]),
        "lines_per_s_median": statistics.median(lines),
        "downs": sum(c["downs"] for c in told),
        "publish_us": (ns1 - ns0) / max(1, n1 - n0) / 1000,
        "owner_cpu_us_per_notice": (cpu1 - cpu0) / max(1, published) * 1e6,
        "owner_cpu_share": (cpu1 - cpu0) / elapsed,
        "rss_mib": (rss0, peak),
        "cut_off": cut1 - cut0,
    }


def _spread(elapsed: list[float], shares: list[int]) -> list[float]:
    """Each client's window, from its process's."""
    return [e for e, n in zip(elapsed, shares, strict=True) for _ in range(n)]


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    cost = PublishCost()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pcui-benchctl-") as tmp:
        call = {"output": ["flood"], "lines": FLOOD_LINES, "lines_per_second": args.rate}
        kit = EngineKit(
            Path(tmp),
            functions=[
                fn(
                    "onGithubPushMain",
                    arg("src", "Directory"),
                    arg("eventTrigger", "File"),
                    call=call,
                )
            ],
            timeout=3600.0,
        )
        services = Services(kit.settings, kit.paths, secrets=kit.secrets)
        await services.start(port=0)
        try:
            assert services.store is not None
            assert services.engine is not None
            assert services.control is not None
            stored, dup = await services.store.record_event(
                kit.push({"main.go": "2\n"}), EventStatus.RECEIVED
            )
            await services.engine.submit(stored, dup)
            event_id = stored.event.id
            assert event_id is not None
            for _ in range(1200):
                runs = await services.runs(event_id)
                if any(r.state is RunState.RUNNING for r in runs):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # the output flows
            for clients in args.clients:
                for stalled in (False, True):
                    row = await measure(services, cost, clients, stalled, args)
                    rows.append(row)
                    print(_line(row), flush=True)
            runs = await services.runs(event_id)
            if not any(r.state is RunState.RUNNING for r in runs):
                print("note: the flooding build ended before the last window", flush=True)
            await services.cancel_event(event_id)
        finally:
            await services.stop()
    return rows


HEADER = (
    f"{'clients':>7} {'stalled':>7} {'published/s':>11} {'told/s per client min/med/max':>30} "
    f"{'lines/s med':>11} {'downs':>5} {'publish us':>10} {'owner cpu us/notice':>19} "
    f"{'cpu':>5} {'RSS MiB start/peak':>18} {'cut off':>7}"
)


def _line(row: dict[str, Any]) -> str:
    lo, med, hi = row["told_per_s"]
    rss0, peak = row["rss_mib"]
    return (
        f"{row['clients']:>7} {'yes' if row['stalled'] else 'no':>7} "
        f"{row['published_per_s']:>11.0f} {f'{lo:.0f} / {med:.0f} / {hi:.0f}':>30} "
        f"{row['lines_per_s_median']:>11.0f} {row['downs']:>5} {row['publish_us']:>10.2f} "
        f"{row['owner_cpu_us_per_notice']:>19.0f} {row['owner_cpu_share']:>5.0%} "
        f"{f'{rss0:.0f} / {peak:.0f}':>18} {row['cut_off']:>7}"
    )


def run() -> list[dict[str, Any]]:
    """The figures as rows for ``run_all.py``: per number of clients, what each is told with
    one stalled client next to it, against without."""
    args = parse([])
    print(HEADER, flush=True)
    figures = asyncio.run(_run(args))
    rows: list[dict[str, Any]] = []
    for clients in args.clients:
        alone, stalled = (
            next(r for r in figures if r["clients"] == clients and r["stalled"] is s)
            for s in (False, True)
        )
        ratio = stalled["told_per_s"][1] / max(alone["told_per_s"][1], 1e-9)
        rows.append(
            {
                "name": f"notices/s told to each of {clients} clients, one stalled client beside",
                "target": "unchanged within noise",
                "value": round(ratio, 2),
                "unit": "x",
                "comparison": (
                    f"median {stalled['told_per_s'][1]:.0f}/s vs {alone['told_per_s'][1]:.0f}/s "
                    f"without; owner RSS peak {stalled['rss_mib'][1]:.0f} vs "
                    f"{alone['rss_mib'][1]:.0f} MiB"
                ),
                "ok": ratio >= 0.8,
            }
        )
    return rows


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[1, 8, 32], help="0: the owner alone"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="each window")
    parser.add_argument("--procs", type=int, default=4, help="client processes at most")
    parser.add_argument(
        "--rate", type=int, default=0, help="lines/s the build prints (0: as fast as it can)"
    )
    parser.add_argument("--client", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    if args.client is not None:
        asyncio.run(clients_main(args.client, args.count, args.seconds))
        return
    print(HEADER, flush=True)
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
