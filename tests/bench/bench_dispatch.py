"""Dispatch latency: from a delivery committed to SQLite to the first ``dagger call`` spawned.

Real parts: a small repository served by git's own http-backend on loopback from a process of
its own (basic auth, token from the secret store), the real workspace mirror, the real catalog
(dagger-io SDK against the stand-in ``dagger session``), the real store and engine, and the
stand-in ``dagger call``.

Four cases, each a median of several deliveries (a new commit each time):

* warm mirror, cached catalog  (SPEC 6 target: median <= 150 ms)
* cold mirror (the mirror is deleted before each delivery), cached catalog
* warm mirror, uncached catalog (a fresh catalog cache for each delivery)
* local path clone URL, warm and cached (no HTTP: the engine's own cost)

Side by side, in the same run: a bare ``git fetch`` of one new commit over the same server,
authenticated the way the engine does it (the token sent with the first request) and the
common way (a credential helper, asked after an anonymous ``401``), and the number of HTTP
requests the server answered per delivery.

The test server writes a response's headers and body with two ``send()`` calls and does not set
``TCP_NODELAY``, so on loopback most responses after a connection's first wait ~40 ms for the
client's delayed ACK (Nagle). That is part of every figure here, as it is of the target; one
more row, reported only, shows the same case with ``TCP_NODELAY`` set on the server, as
production web servers do.

Usage: ``.venv/bin/python tests/bench/bench_dispatch.py``
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enginekit import EngineKit
from gitrepo import BareRepo, git_env

from pocketci_tui.engine.dagger.catalog import Catalog
from pocketci_tui.engine.git import Credentials
from pocketci_tui.model import EventStatus, Notice, RunState, RunUpdated

TOKEN = "bench-token-0123456789abcdef"
TARGET_MS = 150.0


async def _one(kit: EngineKit, n: int) -> float:
    """Deliver one push and return ms from stored to the first call spawned."""
    event = kit.push({"main.go": f"package main // {n}\n"})
    spawned: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def watch(notice: Notice) -> None:
        if (
            isinstance(notice, RunUpdated)
            and notice.run.state is RunState.RUNNING
            and not spawned.done()
        ):
            spawned.set_result(time.perf_counter())

    unsubscribe = kit.engine.subscribe(watch)
    try:
        stored, duplicate = await kit.store.record_event(event, EventStatus.RECEIVED)
        t0 = time.perf_counter()
        await kit.engine.submit(stored, duplicate)
        t1 = await asyncio.wait_for(spawned, 60)
    finally:
        unsubscribe()
    assert stored.event.id is not None
    await kit.wait_runs_finished(stored.event.id)
    return (t1 - t0) * 1000.0


SERVER = """
import sys
sys.path.insert(0, sys.argv[1])
from githttp import GitHttpServer
server = GitHttpServer(sys.argv[2], password=sys.argv[3], nodelay=sys.argv[4] == "1").start()
print(server.base_url, flush=True)
for line in sys.stdin:
    if line.strip() == "count":
        print(len(server.seen()), flush=True)
server.stop()
"""


def _start_server(root: Path, *, nodelay: bool = False) -> tuple[subprocess.Popen[str], str]:
    """Serve ``root`` with git http-backend from a process of its own, as a forge would be."""
    tests = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, tests, str(root), TOKEN, "1" if nodelay else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _served(server: subprocess.Popen[str]) -> int:
    """How many HTTP requests the server has answered so far."""
    assert server.stdin is not None
    assert server.stdout is not None
    server.stdin.write("count\n")
    server.stdin.flush()
    return int(server.stdout.readline())


async def _case(
    name: str, *, http: bool, reps: int, before: str = "", nodelay: bool = False
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    server = None
    per_delivery = 0.0
    try:
        kit = EngineKit(tmp, secrets={"gh-token": TOKEN})
        if http:
            server, base_url = _start_server(tmp, nodelay=nodelay)
            repo = replace(
                kit.settings.repos[0], clone_url=f"{base_url}/remote.git", token="gh-token"
            )
            kit.settings = replace(kit.settings, repos=(repo,))
        async with kit:
            await _one(kit, 0)  # warm: mirror fetched, catalog cached
            served = _served(server) if server is not None else 0
            samples = []
            for n in range(1, reps + 1):
                if before == "cold-mirror":
                    shutil.rmtree(kit.paths.work_dir / "git" / "mirrors", ignore_errors=True)
                elif before == "no-catalog":
                    kit.engine.catalog = Catalog(
                        tmp / f"catalog-{n}", dagger_cli=kit.settings.dagger.cli
                    )
                samples.append(await _one(kit, n))
            if server is not None:
                per_delivery = (_served(server) - served) / reps
    finally:
        if server is not None:
            server.communicate("", timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    median = statistics.median(samples)
    target = before == "" and http and not nodelay
    requests = f", {per_delivery:.1f} HTTP requests each" if http else ""
    return {
        "name": name,
        "target": f"<= {TARGET_MS:.0f} ms" if target else "(reported)",
        "value": round(median, 1),
        "unit": "ms median",
        "comparison": f"p90 {sorted(samples)[int(0.9 * (len(samples) - 1))]:.0f} ms, "
        f"min {min(samples):.0f} ms, n={len(samples)}{requests}",
        "ok": median <= TARGET_MS if target else True,
    }


def _fetch_floor(*, preemptive: bool, reps: int = 10) -> tuple[list[float], float]:
    """ms of a bare ``git fetch`` of one new commit over the same server.

    This is the transport's share of the dispatch latency, measured in the same run: the
    engine cannot be faster than git fetching the commit it must build.

    Returns:
        The times, and the HTTP requests the server answered per fetch.

    Args:
        preemptive: Authenticate as the engine does (the basic-auth header from the first
            request on, from the environment :class:`Credentials` builds); otherwise through
            a credential helper, which git asks after the server's anonymous ``401``.
        reps: How many fetches.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bench-fetch-"))
    server = None
    try:
        remote = BareRepo(tmp / "remote.git")
        remote.commit({"a": "0"}, branch="main")
        server, base_url = _start_server(tmp)
        mirror = tmp / "mirror.git"
        url = f"{base_url}/remote.git"
        env = git_env()
        git = ["git", "-c", "protocol.version=2", "--git-dir", str(mirror)]
        if preemptive:
            env.update(Credentials.for_url(url, TOKEN, preemptive=True).env())
        else:
            helper = tmp / "helper.sh"
            helper.write_text(f"#!/bin/sh\necho username=x-access-token\necho password={TOKEN}\n")
            helper.chmod(0o700)
            git[1:1] = ["-c", f"credential.helper={helper}"]
        subprocess.run(["git", "init", "-q", "--bare", str(mirror)], check=True)
        subprocess.run([*git, "fetch", "-q", url, "main"], check=True, env=env)
        served = _served(server)
        samples = []
        for n in range(reps):
            sha = remote.commit({"a": str(n + 1)}, branch="main")
            started = time.perf_counter()
            subprocess.run([*git, "fetch", "-q", "--no-tags", url, sha], check=True, env=env)
            samples.append((time.perf_counter() - started) * 1000.0)
        return samples, (_served(server) - served) / reps
    finally:
        if server is not None:
            server.communicate("", timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


async def _all() -> list[dict[str, Any]]:
    warm = await _case("stored -> spawned, warm mirror, cached catalog", http=True, reps=15)
    floor, floor_requests = _fetch_floor(preemptive=True)
    helper, helper_requests = _fetch_floor(preemptive=False)
    return [
        warm,
        {
            "name": "  of which: git fetch alone over the same server",
            "target": "(transport)",
            "value": round(statistics.median(floor), 1),
            "unit": "ms median",
            "comparison": f"engine's own share {warm['value'] - statistics.median(floor):.0f} ms,"
            f" {floor_requests:.1f} HTTP requests each",
            "ok": True,
        },
        {
            "name": "  git fetch, token from a helper after a 401",
            "target": "(reported)",
            "value": round(statistics.median(helper), 1),
            "unit": "ms median",
            "comparison": f"{helper_requests:.1f} HTTP requests each",
            "ok": True,
        },
        await _case("same, clone URL is a local path", http=False, reps=15),
        await _case("same, test server with TCP_NODELAY", http=True, reps=15, nodelay=True),
        await _case("cold mirror, cached catalog", http=True, reps=5, before="cold-mirror"),
        await _case("warm mirror, uncached catalog", http=True, reps=5, before="no-catalog"),
    ]


def run() -> list[dict[str, Any]]:
    """Run every case and return the rows for the suite table."""
    return asyncio.run(_all())


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<50} {row['value']:>8} {row['unit']:<10} {row['comparison']}")
