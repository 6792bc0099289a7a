"""Checkout latency of the git workspace for a small repository (warm mirror).

Run: ``.venv/bin/python tests/bench/bench_workspace.py`` (or ``run_all.py workspace``). Prints
figures; asserts nothing.

The repository has 60 files in 8 directories and 20 commits. Figures are medians of 10 rounds:

* re-fire: the event's commit is already in the mirror (no network), a new checkout is made;
* new commit over a local path remote: fetch of one new commit into the warm mirror + checkout;
* new commit over HTTP: the same through ``git http-backend`` behind basic auth on loopback
  (a CGI process per request, so mostly the test server's own cost);
* cold: the first checkout of the repository over HTTP (mirror created).

Side by side, in the same run: a plain ``git clone --quiet`` of the same repository from its
local path, which is what a naive "clone per event" would cost at least.
"""

from __future__ import annotations

import asyncio
import statistics
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

from githttp import GitHttpServer  # noqa: E402
from gitrepo import BareRepo, git_env, push_event  # noqa: E402

from pocketci_tui.engine.git import Workspace  # noqa: E402

ROUNDS = 10
TARGET_MS = 1000.0
TOKEN = "bench-token-0123456789"


def _small_repo(path: Path) -> BareRepo:
    repo = BareRepo(path)
    files = {f"dir{i % 8}/file{i}.txt": f"content {i}\n" * 20 for i in range(60)}
    repo.commit(files)
    for i in range(19):
        repo.commit({f"dir{i % 8}/file{i}.txt": f"changed {i}\n"})
    return repo


def _plain_clone(src: Path, dest: Path) -> float:
    """Time a plain ``git clone`` (the event loop has nothing else to do meanwhile)."""
    t0 = time.perf_counter()
    subprocess.run(
        ["git", "clone", "--quiet", str(src), str(dest)],
        check=True,
        env=git_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return time.perf_counter() - t0


async def _measure() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp_name:
        tmp = Path(tmp_name)
        repo = _small_repo(tmp / "served" / "repo.git")
        with GitHttpServer(tmp / "served", password=TOKEN) as srv:
            url = srv.url("repo.git")
            local_ws = Workspace(tmp / "ws-local", timeout=60)
            http_ws = Workspace(tmp / "ws-http", timeout=60)
            head = repo.rev("refs/heads/main")
            event = push_event("refs/heads/main", head, repo.rev("refs/heads/main~1"))

            t0 = time.perf_counter()
            await http_ws.checkout("bench", url, TOKEN, event)
            cold_ms = (time.perf_counter() - t0) * 1000
            await local_ws.checkout("bench", str(repo.path), None, event)

            refire, fetch_local, fetch_http, plain = [], [], [], []
            for i in range(ROUNDS):
                t0 = time.perf_counter()
                co = await local_ws.checkout("bench", str(repo.path), None, event)
                refire.append(time.perf_counter() - t0)
                await local_ws.remove(co)

                before = repo.rev("refs/heads/main")
                after = repo.commit({f"round{i}.txt": "x"})
                new_event = push_event("refs/heads/main", after, before)
                t0 = time.perf_counter()
                co = await local_ws.checkout("bench", str(repo.path), None, new_event)
                await local_ws.changed_files(co, new_event)
                fetch_local.append(time.perf_counter() - t0)
                await local_ws.remove(co)

                t0 = time.perf_counter()
                co = await http_ws.checkout("bench", url, TOKEN, new_event)
                await http_ws.changed_files(co, new_event)
                fetch_http.append(time.perf_counter() - t0)
                await http_ws.remove(co)

                dest = tmp / f"plain-{i}"
                plain.append(_plain_clone(repo.path, dest))

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    baseline = f"plain `git clone` from the local path: {ms(plain):.1f} ms"
    rows: list[dict[str, Any]] = []
    for name, value in (
        ("workspace: re-fire, commit already mirrored", ms(refire)),
        ("workspace: new commit, local remote (fetch + checkout + diff)", ms(fetch_local)),
        ("workspace: new commit, HTTP + auth (fetch + checkout + diff)", ms(fetch_http)),
        ("workspace: cold first checkout over HTTP", cold_ms),
    ):
        rows.append(
            {
                "name": name,
                "target": f"< {TARGET_MS:.0f} ms (small repository)",
                "value": value,
                "unit": "ms",
                "comparison": baseline,
                "ok": value < TARGET_MS,
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    """Measure and return the rows (see the module docstring)."""
    return asyncio.run(_measure())


def main() -> None:
    """Print the figures."""
    for row in run():
        verdict = "ok" if row["ok"] else "MISSED"
        print(
            f"{row['name']}: {row['value']:.1f} {row['unit']} (target {row['target']}, {verdict})"
        )
        print(f"    vs {row['comparison']}")


if __name__ == "__main__":
    main()
