"""Hostile ``pocketci.yaml`` files pushed to a real ``serve`` while deliveries keep arriving.

One scenario, used by ``tests/integration/test_repo_bounds.py`` (which asserts on its figures)
and ``tests/bench/bench_hostile_spec.py`` (which prints them, for today's code or another
checkout): a repository served by git's own ``http-backend`` behind basic auth receives two
pushes, a YAML alias bomb of a few hundred bytes and a 10 MB file of 330,000 ``paths``; a real
``pocketci-tui serve`` child is told about both while four senders keep posting signed
deliveries of another repository. The figures are each delivery's wait for its answer, the
server's peak resident memory, and the two events' final status and detail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from enginekit import REPOSITORY, EngineKit
from githttp import TEST_TOKEN, GitHttpServer
from signing import push_body, send_signed

from pocketci_tui.model import EventStatus, StoredEvent
from pocketci_tui.store import Store

SETTLED = {EventStatus.ERROR, EventStatus.SKIPPED, EventStatus.DISPATCHED}


def alias_bomb(levels: int) -> str:
    """A ``pocketci.yaml`` whose ``module-path`` expands to 9**(levels + 1) strings."""
    lines = ["module-path:", "  - &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  - &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def huge_spec(count: int = 330_000) -> str:
    """A ``pocketci.yaml`` of about 11 MB listing ``count`` path patterns."""
    return "paths:\n" + "".join(f"  - src/module-{i:06d}/deep/**/*.go\n" for i in range(count))


@dataclass
class Figures:
    """What one run of the scenario measured."""

    latencies: list[float] = field(default_factory=list)
    """Seconds each steady delivery waited for its answer."""
    failures: list[str] = field(default_factory=list)
    """Deliveries not answered 2xx (or not within ``answer_timeout``), and scenario problems."""
    peak_rss: int = 0
    """The serve process's peak resident set size in bytes (``VmHWM``, or the highest sample)."""
    killed_at_cap: bool = False
    """The serve process passed ``rss_cap`` and was killed."""
    events: dict[str, StoredEvent] = field(default_factory=dict)
    """The two hostile events (``bomb``, ``big``) once settled."""
    exit_code: int | None = None
    """How serve ended when told to stop (SIGTERM, then SIGKILL after 60 s)."""

    @property
    def max_latency(self) -> float:
        """The longest wait for an answer, in seconds."""
        return max(self.latencies, default=float("inf"))

    def summary(self) -> str:
        """Two lines for a report."""
        lines = [
            f"intake: {len(self.latencies)} deliveries answered, max latency "
            f"{self.max_latency * 1000:.0f} ms, {len(self.failures)} failures; serve peak RSS "
            f"{self.peak_rss / 2**20:.0f} MiB"
            + (" (killed at the cap)" if self.killed_at_cap else "")
        ]
        for name, stored in sorted(self.events.items()):
            lines.append(
                f"{name}: {stored.status.value}, detail {len(stored.detail)} chars: "
                f"{stored.detail[:160]!r}"
            )
        return "\n".join(lines)


def _status_kib(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _push(before: str, after: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "deleted": False,
            "repository": {"full_name": REPOSITORY, "default_branch": "main"},
            "head_commit": {"id": after, "message": "a hostile pocketci.yaml"},
            "sender": {"login": "mallory"},
        }
    ).encode()


async def _settled(db: Path) -> dict[str, StoredEvent]:
    store = await Store.open(db)
    try:
        found = {
            s.event.delivery_id: s
            for s in await store.list_events(limit=5000)
            if s.event.delivery_id in ("bomb", "big")
        }
    finally:
        await store.close()
    if len(found) == 2 and all(s.status in SETTLED for s in found.values()):
        return found
    return {}


async def hostile_pushes(
    home: Path,
    tmp: Path,
    *,
    levels: int = 8,
    deadline: float = 240.0,
    answer_timeout: float = 120.0,
    rss_cap: int | None = None,
) -> Figures:
    """Run the scenario once and return its figures (it raises only on setup failures).

    Args:
        home: ``POCKETCI_TUI_HOME`` of the serve child (already in the environment).
        tmp: A fresh folder for the repository and the stand-in ``dagger``.
        levels: Nesting of the alias bomb (8: 9**9 strings once expanded).
        deadline: Seconds to wait for both hostile events to settle.
        answer_timeout: Seconds a steady delivery may wait before it counts as unanswered.
        rss_cap: Kill serve when its resident memory passes this many bytes (protects the
            machine when measuring code without the bounds).
    """
    kit = EngineKit(tmp)
    figures = Figures()
    with GitHttpServer(kit.remote.path.parent, password=TEST_TOKEN) as server:
        write_serve_config(
            home,
            repos=(
                f"[{{name: {REPOSITORY}, clone-url: '{server.url('remote.git')}', "
                "token: github-token}]"
            ),
            extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
        )
        set_secret_cli("webhook-secret", WEBHOOK_SECRET)
        set_secret_cli("github-token", TEST_TOKEN)
        base = kit.remote.rev("main")
        bomb = kit.remote.commit({"pocketci.yaml": alias_bomb(levels)}, branch="main")
        big = kit.remote.commit({"pocketci.yaml": huge_spec()}, branch="main")

        serve = await ServeProcess.start()
        pid = serve.proc.pid
        finished = asyncio.Event()

        async def watch_memory() -> None:
            while not finished.is_set() and serve.proc.returncode is None:
                rss = _status_kib(pid, "VmRSS")
                figures.peak_rss = max(figures.peak_rss, rss, _status_kib(pid, "VmHWM"))
                if rss_cap is not None and rss > rss_cap:
                    figures.killed_at_cap = True
                    figures.failures.append(f"serve passed {rss_cap / 2**20:.0f} MiB: killed")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    finished.set()
                    return
                await asyncio.sleep(0.1)

        async def steady(session: aiohttp.ClientSession, worker: int) -> None:
            n = 0
            while not finished.is_set():
                n += 1
                body = push_body("acme/elsewhere", n=worker * 1_000_000 + n)
                started = time.monotonic()
                try:
                    async with asyncio.timeout(answer_timeout):
                        reply = await send_signed(session, serve.hook_url, WEBHOOK_SECRET, body)
                except TimeoutError:
                    figures.failures.append(f"no answer within {answer_timeout:.0f} s")
                    continue
                except aiohttp.ClientError as exc:
                    figures.failures.append(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.1)
                    continue
                figures.latencies.append(time.monotonic() - started)
                if reply.status not in (200, 202):
                    figures.failures.append(f"{reply.status}: {reply.body[:200]!r}")
                await asyncio.sleep(0.02)

        try:
            async with aiohttp.ClientSession() as session:
                tasks = [asyncio.create_task(watch_memory())]
                tasks += [asyncio.create_task(steady(session, w)) for w in range(4)]
                await asyncio.sleep(0.5)  # intake is busy before the hostile pushes arrive
                for delivery, before, after in (("bomb", base, bomb), ("big", bomb, big)):
                    reply = await send_signed(
                        session,
                        serve.hook_url,
                        WEBHOOK_SECRET,
                        _push(before, after),
                        delivery=delivery,
                    )
                    if reply.status != 202:
                        figures.failures.append(f"{delivery}: {reply.status} {reply.body!r}")
                try:
                    async with asyncio.timeout(deadline):
                        while not figures.events and not finished.is_set():
                            await asyncio.sleep(0.25)
                            figures.events = await _settled(home / "data" / "pocketci.db")
                    await asyncio.sleep(1.0)  # and intake still answers right after
                except TimeoutError:
                    figures.failures.append(f"the two events did not settle within {deadline} s")
                finally:
                    finished.set()
                    await asyncio.gather(*tasks)
                if serve.proc.returncode is None:
                    figures.peak_rss = max(figures.peak_rss, _status_kib(pid, "VmHWM"))
        finally:
            try:
                figures.exit_code = await serve.terminate()
            except AssertionError as exc:  # it did not stop within 60 s: killed
                figures.failures.append(str(exc).splitlines()[0])
    return figures
