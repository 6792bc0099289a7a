"""Commit statuses: how soon the forge hears of a run, and what reporting costs intake.

Two figures, side by side in one run:

* **stored -> first pending status received by the forge.** The real engine and store, the
  stand-in ``dagger``, a warm mirror (one delivery first), the sender as ``serve`` wires it,
  and a fake GitHub status API on loopback (tests/statusforge.py). Each sample is a push of a
  new commit: from the delivery committed to SQLite to the fake forge receiving the run's first
  ``pending`` status. Target: median <= 250 ms. Beside it, from the same deliveries, stored ->
  the run's ``dagger call`` spawned (the engine's own part of the path).
* **intake throughput, statuses off vs on.** ``pocketci-tui serve`` as a real process, sent
  signed deliveries by 32 concurrent connections; every acknowledged (202) delivery per second.
  With statuses on, the sender delivers a backlog of 2,000 queued statuses to the fake forge
  (10 ms per answer) during the whole burst, so the figure includes the sender competing for the
  event loop and the database writer. Rounds are interleaved off/on; figures are medians.

Usage: ``.venv/bin/python tests/bench/bench_statuses.py``
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from enginekit import REPOSITORY, EngineKit
from signing import push_body, send_signed
from statusforge import StatusForge

from pocketci_tui.config import ForgeSettings
from pocketci_tui.model import EventStatus, Notice, RunState, RunUpdated
from pocketci_tui.statuses.routing import SettingsRouter
from pocketci_tui.statuses.sender import StatusSender

TARGET_MS = 250.0
TOKEN = "bench-status-token"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latency(reps: int = 15) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-statuses-"))
    forge = await StatusForge("github", token=TOKEN).start()
    firsts: list[float] = []
    spawns: list[float] = []
    try:
        kit = EngineKit(tmp, secrets={"forge-token": TOKEN})
        repo = replace(kit.settings.repos[0], statuses=True, status_token="forge-token")
        kit.settings = replace(
            kit.settings,
            repos=(repo,),
            forges={"github": ForgeSettings(api_url=forge.api_url)},
        )
        async with kit:
            kit.store.status_router = SettingsRouter(kit.settings)
            sender = StatusSender(kit.store, kit.secrets, kit.settings)
            kit.engine.subscribe(sender.wake)
            await sender.start()
            try:
                for n in range(reps + 1):  # the first one warms the mirror and the catalog
                    first, spawned = await _one(kit, forge, n)
                    if n:
                        firsts.append(first)
                        spawns.append(spawned)
            finally:
                await sender.stop()
    finally:
        await forge.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    median = statistics.median(firsts)
    return [
        {
            "name": "stored -> first pending status at the forge",
            "target": f"<= {TARGET_MS:.0f} ms",
            "value": round(median, 1),
            "unit": "ms median",
            "comparison": f"p95 {_pct(firsts, 0.95):.0f} ms, min {min(firsts):.0f} ms, "
            f"n={len(firsts)}; stored -> call spawned {statistics.median(spawns):.0f} ms median",
            "ok": median <= TARGET_MS,
        }
    ]


async def _one(kit: EngineKit, forge: StatusForge, n: int) -> tuple[float, float]:
    """One push: ms from stored to the first pending status received, and to the call spawned."""
    event = kit.push({"main.go": f"package main // {n}\n"})
    spawned: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def watch(notice: Notice) -> None:
        if (
            isinstance(notice, RunUpdated)
            and notice.run.state is RunState.RUNNING
            and not spawned.done()
        ):
            spawned.set_result(time.monotonic())

    unsubscribe = kit.engine.subscribe(watch)
    try:
        stored, duplicate = await kit.store.record_event(event, EventStatus.RECEIVED)
        t0 = time.monotonic()
        await kit.engine.submit(stored, duplicate)
        async with asyncio.timeout(60):
            while True:
                got = [
                    r.at
                    for r in forge.received
                    if r.method == "POST"
                    and r.sha == event.sha
                    and r.body
                    and r.body.get("state") == "pending"
                ]
                if got:
                    break
                forge.posted.clear()
                await forge.posted.wait()
        t_spawn = await asyncio.wait_for(spawned, 60)
    finally:
        unsubscribe()
    assert stored.event.id is not None
    await kit.wait_runs_finished(stored.event.id)
    return (min(got) - t0) * 1000.0, (t_spawn - t0) * 1000.0


def _seed_backlog(db: Path, count: int) -> None:
    """Queue ``count`` statuses of the configured repository, as runs would have."""
    conn = sqlite3.connect(db)
    try:
        conn.executemany(
            "INSERT INTO status_outbox (event_id, run_id, vendor, repository, sha, context, state, "
            "description, created_at) VALUES (0, NULL, 'github', ?, ?, 'pocketci/backlog', "
            "'success', 'passed in 1s', '2026-01-01T00:00:00+00:00')",
            [(REPOSITORY, f"{i:040x}") for i in range(count)],
        )
        conn.commit()
    finally:
        conn.close()


async def _burst(url: str, count: int, start: int) -> float:
    """Send ``count`` signed deliveries over 32 connections; return acknowledged per second."""
    bodies = [push_body(REPOSITORY, n=start + i) for i in range(count)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    acked = 0
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal acked
            while not queue.empty():
                body = queue.get_nowait()
                reply = await send_signed(
                    http, url, WEBHOOK_SECRET, body, delivery=str(uuid.uuid4())
                )
                if reply.status == 202:
                    acked += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(32)))
        elapsed = time.monotonic() - t0
    return acked / elapsed


class ForgeThread:
    """A fake forge on a thread and event loop of its own, so it costs the client nothing."""

    def __init__(self, delay: float) -> None:
        self.forge = StatusForge("github", token=TOKEN, delay=delay)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> StatusForge:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.forge.start(), self._loop).result(30)
        return self.forge

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.forge.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


async def _intake(rounds: int = 3, count: int = 400) -> list[dict[str, Any]]:
    rates: dict[bool, list[float]] = {False: [], True: []}
    sent: dict[bool, int] = {False: 0, True: 0}
    start = 0
    for _ in range(rounds):
        for statuses in (False, True):
            home = Path(tempfile.mkdtemp(prefix="bench-statuses-home-"))
            os.environ["POCKETCI_TUI_HOME"] = str(home)
            with ForgeThread(delay=0.01) as forge:
                flag = "true" if statuses else "false"
                write_serve_config(
                    home,
                    repos=f"[{{name: {REPOSITORY}, clone-url: 'https://127.0.0.1:9/x.git', "
                    f"statuses: {flag}, status-token: forge-token}}]",
                    extra=f"forges: {{github: {{api-url: '{forge.api_url}'}}}}\n",
                )
                await asyncio.to_thread(set_secret_cli, "webhook-secret", WEBHOOK_SECRET)
                await asyncio.to_thread(set_secret_cli, "forge-token", TOKEN)
                # A first start creates the database; the backlog is queued before the second.
                serve = await ServeProcess.start()
                await serve.terminate()
                if statuses:
                    await asyncio.to_thread(_seed_backlog, home / "data" / "pocketci.db", 2000)
                serve = await ServeProcess.start()
                rates[statuses].append(await _burst(serve.hook_url, count, start))
                start += count
                await serve.terminate()
                sent[statuses] += len(
                    [r for r in forge.received if r.method == "POST" and r.answer == 201]
                )
            shutil.rmtree(home, ignore_errors=True)
    off = statistics.median(rates[False])
    on = statistics.median(rates[True])
    return [
        {
            "name": "intake, statuses off",
            "target": "(baseline)",
            "value": round(off),
            "unit": "deliveries/s",
            "comparison": f"rounds {[round(r) for r in rates[False]]}",
            "ok": True,
        },
        {
            "name": "intake, statuses on (sender delivering a backlog)",
            "target": "~ the same as off",
            "value": round(on),
            "unit": "deliveries/s",
            "comparison": f"{on / off:.2f}x off; rounds {[round(r) for r in rates[True]]}; "
            f"{sent[True]} statuses delivered meanwhile",
            "ok": on >= 0.8 * off,
        },
    ]


async def _all() -> list[dict[str, Any]]:
    home = os.environ.get("POCKETCI_TUI_HOME")
    try:
        return [*(await _latency()), *(await _intake())]
    finally:
        if home is None:
            os.environ.pop("POCKETCI_TUI_HOME", None)
        else:
            os.environ["POCKETCI_TUI_HOME"] = home


def run() -> list[dict[str, Any]]:
    """Run every case and return the rows for the suite table."""
    return asyncio.run(_all())


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<52} {row['value']:>8} {row['unit']:<14} {row['comparison']}")
