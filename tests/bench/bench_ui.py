"""The terminal UI under load: key press to screen while a build floods output, memory over the
flood, time to first frame, and the newest page of a 100,000-event history (SPEC 6).

Run: ``.venv/bin/python tests/bench/bench_ui.py`` (or ``run_all.py ui``). Prints figures;
asserts nothing.

* Latency and memory: ``pocketci-tui`` (the real CLI entry, real Services, real engine and the
  stand-in ``dagger``) runs in a pseudo-terminal of 120x40, with a small hook that records the
  monotonic time of every frame it writes. A signed push starts a function that prints
  ``FLOOD_LINES`` lines as fast as it can; the Output pane shows them live. Meanwhile the bench
  writes ``?`` into the terminal (opening the help) and ``?`` again (closing it), and measures
  from the write to the first frame written with the new screen: key press to screen, through
  the terminal, the input parser, the binding, the compositor and the driver. RSS is read from
  ``/proc/<pid>/status`` before the delivery and after the flood has been shown.
* First frame: from spawning ``pocketci-tui`` in a pseudo-terminal to its first frame, against
  ``python -c "import textual.app, aiohttp.web"`` run to completion, each the median of
  ``STARTS`` runs, side by side in the same run.
* History: 100,000 events in a real store; from the services being up to the Events pane
  holding the newest page (in-process, headless).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
for entry in (ROOT, TESTS):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

FLOOD_LINES = 3_000_000
PROBES = 40
STARTS = 7
HISTORY = 100_000
SIZE = (120, 40)
SECRET = "bench-webhook-secret-0123456789abcdef"
TARGET_P95_MS = 100.0
TARGET_RSS_MB = 50.0
TARGET_START_RATIO = 1.3
TARGET_PAGE_MS = 300.0

# The program run inside the pseudo-terminal: the real CLI, plus a hook that appends
# "<monotonic time> <screen class> <lines shown> <rss kB>" to a file after each frame.
CHILD = r"""
import os, sys, time
from textual.app import App

frames = open(os.environ["BENCH_FRAMES"], "a", buffering=1)
original = App._display
last = [None, -1.0]

def rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def display(self, screen, renderable):
    original(self, screen, renderable)
    if renderable is None:
        return
    now = time.monotonic()
    name = type(self.screen).__name__
    written = 0
    try:
        from pocketci_tui.tui.widgets.run_log import RunLog
        if self.main_screen is not None:
            log = self.main_screen.query_one(RunLog)
            written = log.written
            name += ":F" if log.follow else ":P"
    except Exception:
        pass
    if name != last[0] or now - last[1] > 0.25:
        frames.write(f"{now:.6f} {name} {written} {rss_kb()}\n")
        last[0], last[1] = name, now

App._display = display
from pocketci_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Terminal:
    """A program running in a pseudo-terminal whose output is drained in a thread."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.master, slave = pty.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.received = 0
        self._stop = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.received += len(chunk)

    def write(self, data: bytes) -> float:
        """Write keys; return the monotonic time just before the write."""
        now = time.monotonic()
        os.write(self.master, data)
        return now

    def close(self, timeout: float = 20.0) -> None:
        """Quit the app (q, then y if it asks) and wait for it."""
        if self.proc.poll() is None:
            self.write(b"q")
            time.sleep(0.5)
            if self.proc.poll() is None:
                self.write(b"y")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop = True
        self._thread.join(2)
        os.close(self.master)


def read_frames(path: Path) -> list[tuple[float, str, int, int]]:
    """Parse the frame records written by the child."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((float(parts[0]), parts[1], int(parts[2]), int(parts[3])))
    return rows


def wait_frame(path: Path, since: float, screen: str, timeout: float = 10.0) -> float | None:
    """The time of the first frame after ``since`` showing ``screen`` (a class name, with
    ``:F`` or ``:P`` for the Output pane following or paused), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for stamp, name, _, _ in read_frames(path):
            if stamp > since and (name == screen or name.split(":")[0] == screen):
                return stamp
        time.sleep(0.002)
    return None


def make_home(base: Path, lines: int) -> tuple[Path, dict[str, str], str]:
    """A home with config, plaintext webhook secret, a repository and the stand-in dagger."""
    from daggerstub import arg, fn, install_fake_dagger, write_module
    from gitrepo import BareRepo

    home = base / "home"
    home.mkdir(parents=True)
    bin_dir = install_fake_dagger(base)
    repo = BareRepo(base / "remote" / "api.git")
    module = write_module(
        base / "module" / "ci",
        "ci",
        functions=[
            fn(
                "onGithubPushFlood",
                arg("src", "Directory"),
                arg("eventTrigger", "File"),
                arg("filter", "String", optional=True, default="flood"),
                call={"lines": lines, "exit": 0},
            )
        ],
    )
    repo.commit(
        {
            "pocketci.yaml": "module-path: ./ci\n",
            "ci/dagger.json": (module / "dagger.json").read_text(),
            "ci/pocketci-fake.json": (module / "pocketci-fake.json").read_text(),
        },
        branch="main",
    )
    sha = repo.commit({"README.md": "flood\n"}, branch="flood")
    port = _free_port()
    (home / "config.yaml").write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        "secrets: {backend: plaintext}\n"
        f"repos: [{{name: acme/api, clone-url: 'file://{repo.path}'}}]\n"
        f"dagger: {{cli: '{bin_dir / 'dagger'}'}}\n"
    )
    env = {
        **os.environ,
        "POCKETCI_TUI_HOME": str(home),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }
    env.pop("TEXTUAL", None)
    subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "secrets", "set", "webhook-secret", "--stdin"],
        input=SECRET,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    return home, env, f"http://127.0.0.1:{port}|{sha}"


async def post_push(url: str, sha: str) -> int:
    """Post a signed push to ``flood``."""
    import aiohttp
    from signing import send_signed

    payload = {
        "ref": "refs/heads/flood",
        "before": "0" * 40,
        "after": sha,
        "created": True,
        "deleted": False,
        "repository": {"full_name": "acme/api", "default_branch": "main"},
        "head_commit": {"id": sha, "message": "flood"},
        "sender": {"login": "bench"},
    }
    async with aiohttp.ClientSession() as session:
        reply = await send_signed(
            session, f"{url}/webhooks/github", SECRET, json.dumps(payload).encode(), event="push"
        )
    return reply.status


def wait_port(url: str, timeout: float = 30.0) -> bool:
    """Wait until the listener accepts connections."""
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, int(port))) == 0:
                return True
        time.sleep(0.05)
    return False


def flood(lines: int = FLOOD_LINES, probes: int = PROBES) -> dict[str, Any]:
    """Key press to screen while flooding, and RSS growth over the flood."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        _home, env, where = make_home(base, lines)
        url, sha = where.split("|")
        frames = base / "frames.txt"
        env["BENCH_FRAMES"] = str(frames)
        term = Terminal([sys.executable, "-c", CHILD], env, SIZE)
        try:
            if wait_frame(frames, 0, "MainScreen", 30) is None or not wait_port(url):
                raise RuntimeError("pocketci-tui did not start")
            time.sleep(1.0)
            term.write(b"\t\t")  # focus the Output pane
            time.sleep(0.5)
            rss_before = read_frames(frames)[-1][3]
            if asyncio.run(post_push(url, sha)) != 202:
                raise RuntimeError("the delivery was refused")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(written > 0 for _, _, written, _ in read_frames(frames)):
                    break
                time.sleep(0.01)
            latencies = probe(term, frames, probes)
            flooding = [r for r in read_frames(frames) if r[2] > 0]
            # The flood is over when the Output pane stops receiving lines.
            previous, still = -1, 0
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and still < 20:
                records = read_frames(frames)
                current = records[-1][2] if records else 0
                still = still + 1 if current == previous else 0
                previous = current
                time.sleep(0.1)
            time.sleep(1.5)  # let the last frames and the Log's width worker settle
            records = read_frames(frames)
            shown_lines = records[-1][2]
            rss_after = records[-1][3]
            idle = probe(term, frames, probes // 2)  # the same keys once the flood is over
            del flooding
        finally:
            term.close()
    figures: dict[str, Any] = {"shown": shown_lines, "rss_mb": (rss_after - rss_before) / 1024}
    for kind in ("scroll", "help"):
        figures[kind] = {
            "p50": _percentile(latencies[kind], 0.5),
            "p95": _percentile(latencies[kind], 0.95),
            "samples": len(latencies[kind]),
            "idle_p50": _percentile(idle[kind], 0.5),
            "idle_p95": _percentile(idle[kind], 0.95),
        }
    return figures


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def probe(term: Terminal, frames: Path, count: int) -> dict[str, list[float]]:
    """Key presses, ``count`` of each kind; return latencies in ms by kind.

    ``scroll``: with the Output pane focused, ``k`` scrolls up one line (following stops)
    and ``G`` jumps back to the end (following again). ``help``: ``?`` opens the help and
    ``?`` closes it.
    """
    latencies: dict[str, list[float]] = {"scroll": [], "help": []}
    steps = [
        ("scroll", b"k", "MainScreen:P"),
        ("scroll", b"G", "MainScreen:F"),
        ("help", b"?", "HelpDialog"),
        ("help", b"?", "MainScreen"),
    ]
    for _ in range(count):
        for kind, key, screen in steps:
            sent = term.write(key)
            shown = wait_frame(frames, sent, screen)
            if shown is not None:
                latencies[kind].append((shown - sent) * 1000)
            time.sleep(0.02)
    return latencies


def first_frame(starts: int = STARTS) -> dict[str, float]:
    """Median time to first frame of ``pocketci-tui`` and of the bare imports, side by side."""
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(starts):
        with tempfile.TemporaryDirectory() as folder:
            base = Path(folder)
            home = base / "home"
            home.mkdir()
            (home / "config.yaml").write_text(
                f"listen: {{host: 127.0.0.1, port: {_free_port()}}}\n"
                "secrets: {backend: plaintext}\n"
            )
            frames = base / "frames.txt"
            env = {
                **os.environ,
                "POCKETCI_TUI_HOME": str(home),
                "TERM": "xterm-256color",
                "BENCH_FRAMES": str(frames),
            }
            term = Terminal([sys.executable, "-c", CHILD], env, SIZE)
            shown = wait_frame(frames, 0, "MainScreen", 30)
            if shown is not None:
                ours.append(shown - term.started)
            term.close()
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-c", "import textual.app, aiohttp.web"],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        bare.append(time.monotonic() - started)
    return {"ours": statistics.median(ours), "bare": statistics.median(bare)}


async def _history(count: int) -> float:
    from tui.fakes import ScriptedServices

    from pocketci_tui.config import Settings
    from pocketci_tui.model import Event, EventStatus
    from pocketci_tui.paths import AppPaths
    from pocketci_tui.store import Store
    from pocketci_tui.tui.app import make_app
    from pocketci_tui.tui.widgets.events_table import EventsTable

    with tempfile.TemporaryDirectory() as folder:
        paths = AppPaths(Path(folder) / "config.yaml", Path(folder) / "data")
        paths.data_dir.mkdir(parents=True)
        store = await Store.open(paths.db_file)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        body = json.dumps({"ref": "refs/heads/main"}).encode()
        for chunk in range(0, count, 2000):
            await asyncio.gather(
                *(
                    store.record_event(
                        Event(
                            vendor="github",
                            event_type="push",
                            filter=f"branch-{i % 50}",
                            repository=f"acme/repo-{i % 20}",
                            ref=f"refs/heads/branch-{i % 50}",
                            sha=uuid.uuid4().hex + "00000000",
                            base_ref="",
                            base_sha="0" * 40,
                            pr_number=None,
                            is_fork=False,
                            delivery_id=str(uuid.uuid4()),
                            received_at=start + timedelta(seconds=i),
                            body=body,
                            title=f"commit {i}",
                            event_name="push",
                        ),
                        EventStatus.SKIPPED,
                        "nothing matched",
                    )
                    for i in range(chunk, min(chunk + 2000, count))
                )
            )
        await store.close()
        services = ScriptedServices(paths)
        app = make_app(Settings(), paths=paths, services=services, first_start=False)
        marks: dict[str, float] = {}

        def hook(message: object) -> None:
            if type(message).__name__ == "ServicesStarted" and "up" not in marks:
                marks["up"] = time.perf_counter()

        async with app.run_test(size=SIZE, message_hook=hook) as pilot:
            assert app.main_screen is not None
            table = app.main_screen.query_one(EventsTable)
            while len(table.events) < 200:
                await asyncio.sleep(0.001)
            await pilot.pause(0)
            shown = time.perf_counter()
        return (shown - marks["up"]) * 1000


def history(count: int = HISTORY) -> float:
    """Milliseconds from services up to the newest page shown, with ``count`` stored events."""
    return asyncio.run(_history(count))


def run() -> list[dict[str, Any]]:
    """Every UI figure as rows for ``run_all.py``."""
    rows: list[dict[str, Any]] = []
    result = flood()
    for kind, label in (
        ("scroll", "key press to screen p95 while a build floods output (scroll the log)"),
        ("help", "key press to screen p95 while a build floods output (open/close help)"),
    ):
        figure = result[kind]
        rows.append(
            {
                "name": label,
                "target": f"<= {TARGET_P95_MS:g} ms",
                "value": round(figure["p95"], 1),
                "unit": "ms",
                "comparison": (
                    f"p50 {figure['p50']:.1f} ms over {figure['samples']} presses; idle: "
                    f"p50 {figure['idle_p50']:.1f} ms, p95 {figure['idle_p95']:.1f} ms"
                ),
                "ok": figure["p95"] <= TARGET_P95_MS,
            }
        )
    rows.append(
        {
            "name": f"RSS growth over {FLOOD_LINES:,} lines shown live",
            "target": f"< {TARGET_RSS_MB:g} MB",
            "value": round(result["rss_mb"], 1),
            "unit": "MB",
            "comparison": "VmRSS of the UI process before the delivery and after the flood",
            "ok": result["rss_mb"] < TARGET_RSS_MB,
        }
    )
    start = first_frame()
    ratio = start["ours"] / start["bare"]
    rows.append(
        {
            "name": "time to first frame",
            "target": f"<= {TARGET_START_RATIO:g} x bare imports",
            "value": round(ratio, 2),
            "unit": "x",
            "comparison": (
                f'{start["ours"] * 1000:.0f} ms vs `python -c "import textual.app, '
                f'aiohttp.web"` {start["bare"] * 1000:.0f} ms (medians of {STARTS})'
            ),
            "ok": ratio <= TARGET_START_RATIO,
        }
    )
    page = history()
    rows.append(
        {
            "name": f"newest page with {HISTORY:,} stored events",
            "target": f"< {TARGET_PAGE_MS:g} ms",
            "value": round(page, 1),
            "unit": "ms",
            "comparison": "services up -> Events pane holding the newest 200",
            "ok": page < TARGET_PAGE_MS,
        }
    )
    return rows


def main() -> int:
    """Print the figures as a table."""
    rows = run()
    widths = [max(len(str(r[k])) for r in rows) for k in ("name", "target")]
    for r in rows:
        print(
            f"{r['name']:<{widths[0]}}  {r['target']:<{widths[1]}}  "
            f"{r['value']} {r['unit']}  {'ok' if r['ok'] else 'MISSED'}  ({r['comparison']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
