"""The embedded UI under a storm of deliveries: intake and key press to screen, with and
without the storm, side by side in one run.

Run: ``.venv/bin/python tests/bench/bench_storm.py [--seconds 20] [--storm-rate 17]
[--calm-rate 1] [--rounds 2] [--rate 2000] [--profile out.txt]`` (or ``run_all.py storm``).
Prints figures and ratios; asserts nothing about times.

One real ``pocketci-tui`` (the UI embedded: it owns the home, its listener and engine share the
UI's process) runs in a pseudo-terminal of 120x40 with the frame hook of ``bench_ui.py``. A
push to ``flood`` starts the stand-in ``dagger`` printing ``--rate`` lines a second for the
whole run, shown live in the Output pane (the newest event's run). Then rounds alternate:

* *calm*: ``--calm-rate`` signed deliveries a second (of a repository not in the config:
  stored and acknowledged, nothing runs) for ``--seconds``;
* *storm*: ``--storm-rate`` deliveries a second for ``--seconds``.

In both, ``?`` (open the help) and ``?`` again (close it) are written to the terminal the
whole time: key press to screen. Intake is timed from the request written to the reply read.
The UI process's CPU time per second of each window says how busy its loop is; a small hook
in the UI also counts the frames that render the whole screen (a layout asked for them) and
the Output pane's rewrites (cleared to show another event or run), per second: they depend
far less on what else the shared machine runs than latencies do.
The figures are medians over the rounds of each kind, with the ratio storm / calm. With
``--profile``, ``py-spy`` (when installed) records the UI process during the last storm round
and the flat profile is written to that file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for entry in (HERE, HERE.parents[0], HERE.parents[1]):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from bench_attach import VISITOR, _body, _deliver, _percentile, post, probe_until  # noqa: E402
from bench_ui import CHILD, SIZE, Frames, Terminal, make_home, wait_port  # noqa: E402

# Prepended to the UI's program: counts the frames that render the whole screen (a layout
# asked for them) and the times the Output pane was cleared to show something else, written to
# "<frames file>.counts" every 0.2 s.
COUNTS_HOOK = r"""
import os, threading, time
from textual._compositor import Compositor
from textual.widgets import Log
counts = {"full": 0, "rewrites": 0}
_full = Compositor.render_full_update
def _counted_full(self, *args, **kw):
    counts["full"] += 1
    return _full(self, *args, **kw)
Compositor.render_full_update = _counted_full
_clear = Log.clear
def _counted_clear(self, *args, **kw):
    if type(self).__name__ == "RunLog":
        counts["rewrites"] += 1
    return _clear(self, *args, **kw)
Log.clear = _counted_clear
def _write_counts():
    path = os.environ["BENCH_FRAMES"] + ".counts"
    while True:
        with open(path + ".tmp", "w") as out:
            out.write(f"{counts['full']} {counts['rewrites']}\n")
        os.replace(path + ".tmp", path)
        time.sleep(0.2)
threading.Thread(target=_write_counts, daemon=True).start()
"""


def read_counts(frames_file: Path) -> tuple[int, int]:
    """Full-screen renders and Output pane rewrites so far (see :data:`COUNTS_HOOK`)."""
    try:
        full, rewrites = Path(f"{frames_file}.counts").read_text().split()
    except (FileNotFoundError, ValueError):
        return 0, 0
    return int(full), int(rewrites)


@dataclass
class Window:
    """One measured window."""

    kind: str
    intake: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    keys: list[float] = field(default_factory=list)
    cpu: float = 0.0
    """The UI process's CPU time per second of the window (1.0: one core all the time)."""
    full_frames: float = 0.0
    """Frames per second that rendered the whole screen."""
    rewrites: float = 0.0
    """Times per second the Output pane was cleared to show something else."""


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process ``pid`` used so far, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def flood_log(home: Path) -> Path | None:
    """The newest run log (the flooding build's, once it started)."""
    logs = sorted((home / "data" / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def start_flood(url: str, home: Path, flood_sha: str, main_sha: str) -> None:
    """Warm up once (the module's catalog), then start the flooding build."""
    if post(url, _body("acme/api", main_sha, "main", "warm-up")) != 202:
        raise RuntimeError("the warm-up delivery was refused")
    time.sleep(4.0)
    if post(url, _body("acme/api", flood_sha, "flood", "flood")) != 202:
        raise RuntimeError("the flood delivery was refused")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = flood_log(home)
        if log is not None and log.stat().st_size > 100_000:
            return
        time.sleep(0.1)
    raise RuntimeError("the flood did not start")


def window(
    kind: str,
    rate: float,
    args: argparse.Namespace,
    url: str,
    sha: str,
    term: Terminal,
    frames: Frames,
    profile: Path | None = None,
) -> Window:
    """Deliveries at ``rate`` a second and key probes for ``--seconds``."""
    result = Window(kind)
    seconds = float(args.seconds)
    stamp = uuid.uuid4().hex[:8]
    count = max(1, round(rate * seconds))
    bodies = [_body(VISITOR, sha, "main", f"{stamp} {n}") for n in range(count)]
    until = time.monotonic() + seconds
    keys: list[float] = []
    prober = threading.Thread(target=lambda: keys.extend(probe_until(term, frames, until)))
    spy: subprocess.Popen[bytes] | None = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(term.proc.pid),
                "--duration",
                str(int(seconds)),
                "--format",
                "raw",
                "--output",
                str(profile),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    used = cpu_seconds(term.proc.pid)
    counted = read_counts(frames.path)
    started = time.monotonic()
    prober.start()
    asyncio.run(_deliver(url, bodies, seconds, result.intake, result.statuses))
    prober.join()
    took = time.monotonic() - started
    result.cpu = (cpu_seconds(term.proc.pid) - used) / took
    full, rewrites = read_counts(frames.path)
    result.full_frames = (full - counted[0]) / took
    result.rewrites = (rewrites - counted[1]) / took
    if spy is not None:
        spy.wait(60)
    result.keys = keys
    return result


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the rounds; return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        total = args.rounds * 2 * (args.seconds + 5) + 120
        home, env, where = make_home(base, int(args.rate * total), args.rate)
        url, flood_sha, main_sha = where.split("|")
        frames_file = base / "frames.txt"
        env["BENCH_FRAMES"] = str(frames_file)
        term = Terminal([sys.executable, "-c", COUNTS_HOOK + CHILD], env, SIZE)
        frames = Frames(frames_file)
        windows: list[Window] = []
        try:
            if frames.wait(0, "MainScreen", 60) is None or not wait_port(url, 60):
                raise RuntimeError("the embedded UI did not start")
            start_flood(url, home, flood_sha, main_sha)
            time.sleep(2.0)
            for n in range(args.rounds):
                last = n == args.rounds - 1
                for kind, rate in (("calm", args.calm_rate), ("storm", args.storm_rate)):
                    profile = args.profile if last and kind == "storm" else None
                    windows.append(window(kind, rate, args, url, flood_sha, term, frames, profile))
                    time.sleep(3.0)
        finally:
            term.proc.kill()
            term.proc.wait()
            term.close(timeout=5)
    return {"windows": windows}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summary(windows: list[Window]) -> dict[str, dict[str, float]]:
    """Per kind: medians over its rounds of intake p50/p99 and key p50/p95."""
    by_kind: dict[str, dict[str, float]] = {}
    for kind in ("calm", "storm"):
        mine = [w for w in windows if w.kind == kind]
        by_kind[kind] = {
            "intake_p50": _median([_percentile(w.intake, 0.5) for w in mine]),
            "intake_p99": _median([_percentile(w.intake, 0.99) for w in mine]),
            "keys_p50": _median([_percentile(w.keys, 0.5) for w in mine]),
            "keys_p95": _median([_percentile(w.keys, 0.95) for w in mine]),
            "cpu": _median([w.cpu for w in mine]),
            "full_frames": _median([w.full_frames for w in mine]),
            "rewrites": _median([w.rewrites for w in mine]),
            "presses": sum(len(w.keys) for w in mine),
            "accepted": sum(s == 200 for w in mine for s in w.statuses),
            "sent": sum(len(w.statuses) for w in mine),
        }
    return by_kind


def report(figures: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The figures as lines of text."""
    by_kind = summary(figures["windows"])
    calm, storm = by_kind["calm"], by_kind["storm"]
    out = [
        f"the UI embedded, a build printing {args.rate:g} lines/s; rounds of {args.seconds:g} s: "
        f"calm {args.calm_rate:g} deliveries/s, storm {args.storm_rate:g} deliveries/s; "
        f"{args.rounds} round(s) of each (medians over rounds)"
    ]
    for label, key in (
        ("intake p50", "intake_p50"),
        ("intake p99", "intake_p99"),
        ("key press to screen p50", "keys_p50"),
        ("key press to screen p95", "keys_p95"),
    ):
        ratio = storm[key] / calm[key] if calm[key] else float("nan")
        out.append(
            f"  {label:<24} calm {calm[key]:8.1f} ms   storm {storm[key]:8.1f} ms   "
            f"storm/calm {ratio:.2f}x"
        )
    for label, key, unit in (
        ("UI process CPU", "cpu", "s/s"),
        ("full-screen frames", "full_frames", "/s "),
        ("Output pane rewrites", "rewrites", "/s "),
    ):
        ratio = storm[key] / calm[key] if calm[key] else float("nan")
        out.append(
            f"  {label:<24} calm {calm[key]:8.2f} {unit} storm {storm[key]:8.2f} {unit} "
            f"storm/calm {ratio:.2f}x"
        )
    for kind, of in by_kind.items():
        out.append(
            f"  {kind}: {of['accepted']:g}/{of['sent']:g} deliveries answered 200, "
            f"{of['presses']:g} key presses measured"
        )
    if args.profile is not None:
        out.append(f"py-spy profile of the last storm round: {args.profile}")
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of a round")
    parser.add_argument("--storm-rate", type=float, default=17.0, help="deliveries/s, storm")
    parser.add_argument("--calm-rate", type=float, default=1.0, help="deliveries/s, calm")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each kind")
    parser.add_argument("--rate", type=float, default=2000.0, help="lines/s the build prints")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy raw output file")
    return parser.parse_args(argv)


def run() -> list[dict[str, Any]]:
    """The figures as rows for ``run_all.py``."""
    args = parse([])
    by_kind = summary(run_bench(args)["windows"])
    calm, storm = by_kind["calm"], by_kind["storm"]
    rows: list[dict[str, Any]] = []
    for label, key in (("intake p99", "intake_p99"), ("key press p95", "keys_p95")):
        rows.append(
            {
                "name": f"embedded UI: {label} in a storm of deliveries",
                "target": "intake never held up by the UI; keys p95 <= 100 ms",
                "value": round(storm[key], 1),
                "unit": "ms",
                "comparison": f"storm {storm[key]:.1f} ms vs calm {calm[key]:.1f} ms",
                "ok": storm[key] <= 100.0,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run and print the figures."""
    args = parse(argv)
    print("\n".join(report(run_bench(args), args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
