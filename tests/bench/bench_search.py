"""Search in the Output pane over a 1,000,000-line log: the first match, keys answered while the
whole file is read, the full count (issue 16, SPEC 6 key-latency target).

Run: ``tests/with_keyring.sh .venv/bin/python tests/bench/bench_search.py`` (or ``run_all.py
search``; ``--in-thread`` reads the log in a thread of the UI's process, as before the search
had a process of its own; ``--rounds N``). Prints figures; asserts nothing.

``pocketci-tui`` (the real CLI entry, real Services, real store) runs in a pseudo-terminal of
120x40 with a finished run whose log file holds ``LOG_LINES`` lines, its Output pane focused.
A small hook in the program records every frame it writes (monotonic time, the screen, the
search's state) and when each reading of the file starts and ends. Each round writes ``/``, a
term (a letter every 30 ms, as a fast typist) and Enter 30 ms later, so that the search starts
at Enter. Rounds alternate between two kinds:

* *first match*: nothing else is written until the search has read the whole file; from the
  Enter, the first match shown (on the screen, its line marked, the count in the border) and
  the full count shown. This is the key press the target is about.
* *keys*: ``?`` (open the help) and ``?`` (close it), ↑ and ↓ are written one after the other,
  each waited for on the screen, until the search has read the whole file, and as many again
  once it has: key press to screen while the search reads, against the same keys with no
  search running, side by side in the same run. The first match is timed in these rounds too,
  and printed apart: it can only be painted once the help written before it is closed again
  (the help covers the pane), so it measures the help dialog as much as the search.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
for entry in (ROOT, TESTS, TESTS / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from bench_ui import Terminal, _free_port, _percentile  # noqa: E402

LOG_LINES = 1_000_000
ROUNDS = 16
SIZE = (120, 40)
TARGET_P95_MS = 100.0
TYPING = 0.03
"""Seconds between the letters of a term, and from the last one to Enter: a fast typist (over
30 words a minute), quicker than the pause after which the search starts by itself, so that
each search starts at Enter."""
TERMS = ("cache miss", "Warning", "retry")
FIRST = {"cache miss": 40, "Warning": 5_000, "retry": 125}
"""Searched in turn: a new term each round, so that every round reads the whole file again.
``cache miss`` is on one line in 2,500 (the first near the top, older than the lines the pane
keeps), ``Warning`` (capital: case-sensitive) on one in 10,000, ``retry`` on one in 250; the
line of each one's first match (0-based) is in :data:`FIRST`."""

# The program run inside the pseudo-terminal: the real CLI, plus a hook that appends
# "F <time> <screen> <matches> <done> <current line> <focused> <scroll y>" after each frame
# whose state changed, and "R <start> <end> <lines>" after each search of the whole log file.
CHILD = r"""
import os, sys, time
from textual.app import App

records = open(os.environ["BENCH_RECORDS"], "a", buffering=1)
original = App._display
last = [None]

def display(self, screen, renderable):
    original(self, screen, renderable)
    if renderable is None:
        return
    now = time.monotonic()
    focused = getattr(self.focused, "id", None) or type(self.focused).__name__
    state = (type(self.screen).__name__, -1, 1, -1, focused, -1)
    try:
        from pocketci_tui.tui.widgets.output_pane import OutputPane
        from pocketci_tui.tui.widgets.run_log import RunLog
        if self.main_screen is not None:
            pane = self.main_screen.query_one(OutputPane)
            log = self.main_screen.query_one(RunLog)
            current = -1 if log.current is None else log.current
            if log.line_count == 0 or not log.run_label:
                current = -2  # not the run's output yet
            y = log.scroll_offset.y
            state = (state[0], len(pane.hits), int(pane.done), current, focused, y)
    except Exception:
        pass
    if state != last[0]:
        records.write(f"F {now:.6f} {' '.join(map(str, state))}\n")
        last[0] = state

App._display = display

from pocketci_tui.tui import logscan
from pocketci_tui.tui.widgets import output_pane
scan = output_pane.scan
if os.environ.get("BENCH_IN_THREAD"):  # as before the fix: read in the UI's own thread
    def scan(mode, path, needle, on_hits, stop):
        return logscan.find(path, needle, on_hits, stop)

def timed_scan(mode, path, needle, on_hits, stop):
    started = time.monotonic()
    lines = scan(mode, path, needle, on_hits, stop)
    if mode == "find" and not stop.is_set():
        records.write(f"R {started:.6f} {time.monotonic():.6f} {lines}\n")
    return lines

output_pane.scan = timed_scan
from pocketci_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def write_log(path: Path, lines: int = LOG_LINES) -> int:
    """A build's plain progress output of ``lines`` lines (about 70 bytes each); return bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, lines, 10_000):
            block = []
            for i in range(start, min(start + 10_000, lines)):
                step = i % 97
                text = (
                    f"{i // 97 + 1:<4}: [{i / 1000:7.2f}s] | compile pkg/mod{step:02d}/file{i}.go"
                )
                if i % 2_500 == 40:
                    text += " (cache miss)"
                if i % 10_000 == 5_000:
                    text = f"{step}Warning: slow test {i}"
                if i % 250 == 125:
                    text += " retry 1/3"
                block.append(text)
            chunk = "\n".join(block) + "\n"
            handle.write(chunk)
            size += len(chunk.encode("utf-8"))
    return size


def make_home(base: Path) -> tuple[dict[str, str], int]:
    """A home whose store holds one push with one finished run and its long log."""
    from apphome import write_home
    from tui.fakes import push, run

    from pocketci_tui.model import EventStatus, RunState
    from pocketci_tui.paths import AppPaths
    from pocketci_tui.store import Store

    home = base / "home"
    env = write_home(
        home,
        port=_free_port(),
        secret="bench-webhook-secret-0123456789abcdef",
        repos="[{name: acme/api}]",
    )
    env.update(TERM="xterm-256color", COLORTERM="truecolor")
    env.pop("TEXTUAL", None)
    paths = AppPaths(config_file=home / "config.yaml", data_dir=home / "data")

    async def seed() -> int:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(paths.db_file)
        try:
            stored, _ = await store.record_event(
                push("d-big", "acme/api", "main", "9f1c2e7d" + "0" * 32, 5, "Big build"),
                EventStatus.DISPATCHED,
                "",
            )
            assert stored.event.id is not None
            build = run(
                "run-big",
                stored.event.id,
                "onGithubPushMain",
                RunState.PASSED,
                started=4,
                seconds=180,
            )
            await store.add_runs([build])
            return write_log(paths.logs_dir / build.log_path)
        finally:
            await store.close()

    return env, asyncio.run(seed())


class Records:
    """The frames and file readings the program appends, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames: list[tuple[float, str, int, bool, int, str, int]] = []
        self.reads: list[tuple[float, float, int]] = []
        self._offset = 0
        self._partial = ""

    def read(self) -> None:
        """Take in what was appended since the last call."""
        try:
            with self.path.open("r", encoding="utf-8") as handle:
                handle.seek(self._offset)
                data = handle.read()
                self._offset = handle.tell()
        except FileNotFoundError:
            return
        lines = (self._partial + data).split("\n")
        self._partial = lines.pop()
        for line in lines:
            parts = line.split()
            if parts[0] == "F" and len(parts) == 8:
                stamp, screen, hits, done, current, focused, y = parts[1:]
                self.frames.append(
                    (float(stamp), screen, int(hits), done == "1", int(current), focused, int(y))
                )
            elif parts[0] == "R" and len(parts) == 4:
                self.reads.append((float(parts[1]), float(parts[2]), int(parts[3])))

    def frame(self, since: float, test: Any, timeout: float = 10.0) -> float | None:
        """The time of the first frame after ``since`` whose record passes ``test``, or None
        (``timeout`` seconds without one: the bench goes on rather than waiting forever)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self.read()
            for record in self.frames[seen:]:
                if record[0] > since and test(record):
                    return record[0]
            seen = len(self.frames)
            time.sleep(0.002)
        return None


UP, DOWN = b"\x1b[A", b"\x1b[B"

Press = tuple[str, float, float]
"""A key pressed: its kind (``scroll`` or ``help``), when it was written, ms to the screen."""


def _probe(term: Terminal, records: Records) -> list[Press]:
    """Four keys, each waited for on the screen: ``?`` opens the help and ``?`` closes it
    (``help``), ↑ scrolls the Output pane a line up and ↓ down again (``scroll``)."""
    presses: list[Press] = []
    for screen in ("HelpDialog", "MainScreen"):
        sent = term.write(b"?")
        shown = records.frame(sent, lambda r, s=screen: r[1] == s)
        if shown is not None:
            presses.append(("help", sent, (shown - sent) * 1000))
        time.sleep(0.01)
    for key in (UP, DOWN):
        records.read()
        y = records.frames[-1][6]
        sent = term.write(key)
        shown = records.frame(sent, lambda r, y=y: r[1] == "MainScreen" and r[6] != y)
        if shown is not None:
            presses.append(("scroll", sent, (shown - sent) * 1000))
        time.sleep(0.01)
    return presses


def search_round(
    term: Terminal, records: Records, needle: str, *, keys: bool = True
) -> dict[str, Any]:
    """One search: ``/``, the term, Enter; keys while it reads, the same keys after (or, not
    ``keys``, nothing but waiting for the whole file to be read).

    Every wait is bounded, and the focus is checked before the keys are written: a key that
    lands elsewhere (``/`` in the Events pane opens the event filter, where ``?`` is typed
    rather than opening the help) must stop the bench, not leave it waiting for a screen that
    never comes.
    """
    records.read()
    if not records.frames or records.frames[-1][5] != "log":
        raise RuntimeError(f"the Output pane lost the focus: {records.frames[-1:]}")
    sent = term.write(b"/")
    if records.frame(sent, lambda r: r[5] == "log-search", 5) is None:
        raise RuntimeError("/ did not open the search field")
    term.write(b"\x15")  # ctrl+u: empty the field (it holds the last term)
    time.sleep(0.2)
    for letter in needle:  # a fast typist: quicker than the search's typing pause (80 ms)
        term.write(letter.encode())
        time.sleep(TYPING)
    entered = term.write(b"\r")
    if records.frame(entered, lambda r: r[5] == "log", 5) is None:
        raise RuntimeError("Enter did not close the search field")
    presses: list[Press] = []
    deadline = entered + 30
    read_end: float | None = None
    while time.monotonic() < deadline and read_end is None:  # bounded: 30 s
        if keys:
            presses += _probe(term, records)
        else:
            time.sleep(0.02)
        records.read()
        ends = [end for start, end, _ in records.reads if start > entered - 0.2]
        read_end = ends[0] if ends else None
    line = FIRST[needle]
    first = records.frame(entered, lambda r: r[2] > 0 and r[4] == line)
    full = records.frame(entered, lambda r: r[3] and r[2] > 0)
    hits = next((r[2] for r in records.frames if full is not None and r[0] == full), 0)
    started = next((s for s, _, _ in records.reads if s > entered - 0.2), entered)
    during = [p for p in presses if read_end is not None and started <= p[1] <= read_end]
    idle: list[Press] = []
    for _ in range(max(len(during), 4) // 4 + 1 if keys else 0):
        idle += _probe(term, records)
    return {
        "keys": keys,
        "during": during,
        "idle": idle,
        "first_ms": None if first is None else (first - entered) * 1000,
        "full_ms": None if full is None else (full - entered) * 1000,
        "read_ms": None if read_end is None else (read_end - started) * 1000,
        "hits": hits,
    }


def measure(rounds: int = ROUNDS, *, in_thread: bool = False) -> dict[str, Any]:
    """Every round's figures, pooled (``in_thread``: the log read in a thread of the UI's
    process, as before the search had a process of its own)."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        env, size = make_home(base)
        records_file = base / "records.txt"
        env["BENCH_RECORDS"] = str(records_file)
        if in_thread:
            env["BENCH_IN_THREAD"] = "1"
        records = Records(records_file)
        term = Terminal([sys.executable, "-c", CHILD], env, SIZE)
        results = []
        try:
            # The run's tail shown (the newest event and its run are selected at start).
            if records.frame(0, lambda r: r[1] == "MainScreen" and r[4] == -1, 60) is None:
                raise RuntimeError("pocketci-tui did not show the run")
            time.sleep(1.0)
            for _ in range(4):  # Tab until the Output pane has the focus
                if records.frames[-1][5] == "log":
                    break
                sent = term.write(b"\t")
                records.frame(sent, lambda r: True, 2)
                time.sleep(0.2)
                records.read()
            for i in range(rounds):
                needle = TERMS[(i // 2) % len(TERMS)]
                results.append(search_round(term, records, needle, keys=i % 2 == 1))
        finally:
            term.close()

    def figures(key: str, keys: bool = False) -> list[float]:
        return [r[key] for r in results if r[key] is not None and r["keys"] == keys]

    return {
        "bytes": size,
        "during": [press for r in results for press in r["during"]],
        "idle": [press for r in results for press in r["idle"]],
        "first": figures("first_ms"),
        "first_keys": figures("first_ms", keys=True),
        "full": figures("full_ms"),
        "read": figures("read_ms"),
        "hits": {TERMS[(i // 2) % len(TERMS)]: r["hits"] for i, r in enumerate(results)},
        "rounds": len(results),
    }


def run(in_thread: bool = False, rounds: int = ROUNDS) -> list[dict[str, Any]]:
    """The search figures as rows for ``run_all.py``."""
    result = measure(rounds, in_thread=in_thread)
    size = f"{LOG_LINES:,} lines ({result['bytes'] / 1e6:.0f} MB)"
    rows = []
    for kind, keys in (("scroll", "up/down in the Output pane"), ("help", "? opens/closes help")):
        during = [ms for k, _, ms in result["during"] if k == kind]
        idle = [ms for k, _, ms in result["idle"] if k == kind]
        p95, idle_p95 = _percentile(during, 0.95), _percentile(idle, 0.95)
        rows.append(
            {
                "name": f"key press to screen p95 while searching {size} ({keys})",
                "target": f"<= {TARGET_P95_MS:g} ms",
                "value": round(p95, 1),
                "unit": "ms",
                "comparison": (
                    f"p50 {_percentile(during, 0.5):.1f} ms over {len(during)} presses during "
                    f"{result['rounds'] // 2} searches; no search running: p50 "
                    f"{_percentile(idle, 0.5):.1f} ms, p95 {idle_p95:.1f} ms over {len(idle)}; "
                    f"ratio of p95s {p95 / idle_p95:.2f}x"
                ),
                "ok": p95 <= TARGET_P95_MS,
            }
        )
    for key, label in (
        ("first", "Enter to the first match shown"),
        ("first_keys", "Enter to the first match shown, help and scroll keys written meanwhile"),
        ("full", "Enter to the full count shown"),
        ("read", "the whole file read (worker thread)"),
    ):
        values = result[key]
        p95 = _percentile(values, 0.95)
        rows.append(
            {
                "name": f"{label}, {LOG_LINES:,} lines",
                "target": f"<= {TARGET_P95_MS:g} ms" if key == "first" else "(figure)",
                "value": round(p95, 1),
                "unit": "ms p95",
                "comparison": (
                    f"median {statistics.median(values):.1f} ms over {len(values)} searches; "
                    f"matches {result['hits']}"
                    if values
                    else "never shown"
                ),
                "ok": bool(values) and (key != "first" or p95 <= TARGET_P95_MS),
            }
        )
    return rows


def main(argv: list[str]) -> int:
    """Print the figures as a table (``--in-thread``: the log read in a thread of the UI's
    process, as before, to compare)."""
    load = os.getloadavg()[0]
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else ROUNDS
    rows = run(in_thread="--in-thread" in argv, rounds=rounds)
    print(f"load average (1 min) before: {load:.1f}, after: {os.getloadavg()[0]:.1f}")
    for r in rows:
        print(
            f"{r['name']}  {r['target']}  {r['value']} {r['unit']}  "
            f"{'ok' if r['ok'] else 'MISSED'}  ({r['comparison']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
