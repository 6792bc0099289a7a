"""What polling costs: CPU and git requests per minute for 100 polled repositories.

Run: ``.venv/bin/python tests/bench/bench_polling.py [--repos 100] [--interval 10]
[--seconds 60]`` (or ``run_all.py polling``). Prints figures; asserts nothing.

The repositories (each with a few branches and tags) are served by git's own ``http-backend``
behind basic auth, in a separate process, so what is measured is pocketci-tui's side only: the
poller in this process and the ``git ls-remote`` children it starts (their CPU is reaped into
this process's children's time). Every repository is polled every ``--interval`` seconds
(through the timing seam; the configuration's minimum is 10 s) for ``--seconds``, after the
first polls recorded the refs; nothing changes meanwhile, which is the steady state of a
polled server. Figures per minute are scaled from the measured window; the cost at the usual
``poll: 60s`` is the per-poll cost times 100.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from gitrepo import BareRepo  # noqa: E402

from pocketci_tui.config import RepoConfig, Settings  # noqa: E402
from pocketci_tui.engine.git import GitCommand  # noqa: E402
from pocketci_tui.model import StoredEvent  # noqa: E402
from pocketci_tui.polling import Poller, PollTiming  # noqa: E402
from pocketci_tui.problems import Problem, Problems  # noqa: E402
from pocketci_tui.secrets import MemorySecretStore  # noqa: E402
from pocketci_tui.store import Store  # noqa: E402

TOKEN = "bench-token-0123456789"

_SERVER = """
import sys
sys.path.insert(0, {tests!r})
from githttp import GitHttpServer
srv = GitHttpServer(__import__("pathlib").Path({root!r}), password={token!r}, nodelay=True)
srv.start()
print(srv.base_url, flush=True)
sys.stdin.read()
print(len(srv.seen()), flush=True)
srv.stop()
"""


class _Sink:
    def __init__(self) -> None:
        self.events = 0

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        self.events += 1


class _Board:
    def __init__(self) -> None:
        self.problems = Problems()

    def raise_problem(self, problem: Problem) -> None:
        self.problems.raise_problem(problem)

    def clear_problems(self, *keys: str) -> None:
        self.problems.clear(*keys)


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process (the poller) and of its reaped children (git)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _serve(root: Path, repos: int) -> subprocess.Popen[str]:
    """Make the repositories and serve them from another process."""
    for i in range(repos):
        repo = BareRepo(root / f"r{i}.git")
        repo.commit({"README.md": f"repo {i}\n"}, branch="main")
        sha = repo.commit({"a.txt": "a\n"}, branch="develop")
        repo.tag("v1", sha)
    code = _SERVER.format(tests=str(ROOT / "tests"), root=str(root), token=TOKEN)
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


async def _measure(
    root: Path, base_url: str, repos: int, interval: float, seconds: float
) -> dict[str, Any]:
    settings = Settings(
        repos=tuple(
            RepoConfig(
                name=f"bench/r{i}",
                clone_url=f"{base_url}/r{i}.git",
                token="token",
                poll=60.0,
            )
            for i in range(repos)
        )
    )
    store = await Store.open(root / "data" / "pocketci.db")
    sink = _Sink()
    board = _Board()
    poller = Poller(
        settings=settings,
        store=store,
        secrets=MemorySecretStore({"token": TOKEN}),
        sink=sink,
        problems=board,
        git=GitCommand(root / "home"),
        timing=PollTiming(interval=interval),
    )
    try:
        poller.start()
        # Warm up: every repository polled once (its refs recorded).
        while poller.completed < repos:
            await asyncio.sleep(0.05)
        polls0, failures0, cpu0, t0 = poller.polls, poller.failures, _cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        polls, failures = poller.polls - polls0, poller.failures - failures0
        own, kids = _cpu()
        own, kids, elapsed = own - cpu0[0], kids - cpu0[1], time.monotonic() - t0
        cpu = own + kids
    finally:
        await poller.stop()
        await store.close()
    per_minute = 60.0 / elapsed
    return {
        "repos": repos,
        "interval": interval,
        "elapsed": elapsed,
        "polls": polls,
        "failures": failures,
        "events": sink.events,
        "problems": len(board.problems),
        "polls_per_min": polls * per_minute,
        "cpu_s_per_min": cpu * per_minute,
        "cpu_ms_per_poll": 1000 * cpu / max(1, polls),
        "git_share": kids / cpu if cpu else 0.0,
    }


def run(repos: int = 100, interval: float = 10.0, seconds: float = 60.0) -> list[dict[str, Any]]:
    """Measure and return rows for ``run_all.py``."""
    with tempfile.TemporaryDirectory() as tmp:
        server = _serve(Path(tmp), repos)
        stdin, stdout = server.stdin, server.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            base_url = stdout.readline().strip()
            m = asyncio.run(_measure(Path(tmp), base_url, repos, interval, seconds))
        finally:
            stdin.close()
            m_requests = int(stdout.readline().strip() or 0)
            server.wait(10)
    m["requests_total"] = m_requests
    # Requests counted by the server include the warm-up polls: 2 per ls-remote over smart
    # HTTP (protocol v2: the capability advertisement and ls-refs), checked here.
    total_polls = m["polls"] + repos
    per_poll = m["requests_total"] / max(1, total_polls)
    at_60s = m["cpu_ms_per_poll"] * repos / 1000
    return [
        {
            "name": f"polls/min, {repos} repos every {interval:g}s",
            "target": "",
            "value": round(m["polls_per_min"]),
            "unit": "polls/min",
            "comparison": f"{m['failures']} failed, {m['events']} events, {m['problems']} problems",
            "ok": m["failures"] == 0,
        },
        {
            "name": "git HTTP requests per poll",
            "target": "",
            "value": round(per_poll, 2),
            "unit": "requests",
            "comparison": f"{round(m['polls_per_min'] * per_poll)} requests/min",
            "ok": True,
        },
        {
            "name": f"CPU, {repos} repos every {interval:g}s",
            "target": "",
            "value": round(m["cpu_s_per_min"], 2),
            "unit": "CPU s/min",
            "comparison": f"{m['cpu_s_per_min'] / 60 * 100:.1f}% of one core, "
            f"{m['cpu_ms_per_poll']:.1f} ms per poll, {m['git_share']:.0%} of it in git",
            "ok": True,
        },
        {
            "name": f"CPU, {repos} repos at poll: 60s (scaled)",
            "target": "",
            "value": round(at_60s, 2),
            "unit": "CPU s/min",
            "comparison": f"{at_60s / 60 * 100:.2f}% of one core, {repos} polls/min, "
            f"{round(repos * per_poll)} requests/min",
            "ok": True,
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    for row in run(args.repos, args.interval, args.seconds):
        print(f"{row['name']}: {row['value']} {row['unit']} ({row['comparison']})")


if __name__ == "__main__":
    main()
