"""Attached UIs under faults: a client that stops reading, a client killed mid-stream, and what
an attached UI writes to its terminal, measured side by side in one run.

Run: ``.venv/bin/python tests/bench/bench_attach.py [--stop-seconds 30] [--deliveries 500]
[--rounds 1] [--rate 2000]`` (or ``run_all.py attach``). Prints figures and ratios; asserts
nothing about times.

Everything is a real process: ``pocketci-tui serve`` owns a home whose push to ``flood`` runs
the stand-in ``dagger`` printing ``--rate`` lines a second for as long as the whole run needs;
UIs are ``pocketci-tui attach`` processes in pseudo-terminals of 120x40.

* The *watcher* is an attached UI with the frame hook of ``bench_ui.py``: it records the
  monotonic time of each frame, so ``?`` (open the help) and ``?`` again (close it) written to
  its terminal give key press to screen.
* The *stalled* client is another attached UI. In a round "stopped" it gets SIGSTOP for
  ``--stop-seconds`` (a suspended terminal, a stalled SSH link); in a round "reading" it runs.
  During each round ``--deliveries`` signed deliveries (of a repository not in the config:
  stored and acknowledged, each one a notice to every client) arrive at a steady pace while the
  build floods, and the watcher's keys are probed the whole time. Rounds alternate (reading,
  stopped, ...); the figures are medians over the rounds of each kind: intake p50/p99 (from
  the request written to the reply read) and the watcher's key press to screen p50/p95, with
  the ratio stopped / reading. For reference, the watcher's keys are also probed with the
  flood alone (no deliveries) before the rounds, and, at the end, one round of the same
  deliveries and keys is run with the UI embedded (``serve`` stopped, the UI owning the home).
* ``serve``'s resident memory (VmRSS) before the stop, its peak during it, after the stopped
  client is resumed, then before a third attached UI is killed (SIGKILL) mid-stream and after:
  flat means the bounded per-client queue holds what a client does not read, not the server.
  What ``serve`` logged about each client (attached, detached and why) is printed.
* Bytes per second the watcher writes to its terminal over ``--bytes-seconds`` of the flood
  with nothing else going on, then the same for the UI embedded (``serve`` stopped, the UI
  owning the home, the same build started again), and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
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

from bench_ui import CHILD, SECRET, SIZE, Frames, Terminal, make_home, wait_port  # noqa: E402

from pocketci_tui.forges.github import sign  # noqa: E402

VISITOR = "someone/else"
"""A repository not in the config: its deliveries are stored and acknowledged, nothing runs."""


@dataclass
class Serve:
    """``pocketci-tui serve`` as a child process, its output in a file."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path, url: str) -> Serve:
        """Start it and wait until its listener answers."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pocketci_tui", "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_port(url, 60):
            proc.kill()
            raise RuntimeError("serve did not start:\n" + log.read_text())
        return cls(proc, log)

    def lines(self) -> list[str]:
        """What it logged so far."""
        return self.log.read_text(errors="replace").splitlines()

    def wait_log(self, text: str, timeout: float = 60.0) -> bool:
        """Wait until a line holding ``text`` is logged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines()):
                return True
            time.sleep(0.1)
        return False

    def rss_mb(self) -> float:
        """Its resident memory, in MB."""
        return _rss_kb(self.proc.pid) / 1024

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _rss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _body(repository: str, sha: str, branch: str, note: str) -> bytes:
    """A push body; ``note`` makes it unique (the intake refuses a replayed body)."""
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": sha,
            "created": True,
            "deleted": False,
            "repository": {"full_name": repository, "default_branch": "main"},
            "head_commit": {"id": sha, "message": note},
            "sender": {"login": "bench"},
        }
    ).encode()


async def _deliver(
    url: str, bodies: list[bytes], seconds: float, latencies: list[float], statuses: list[int]
) -> None:
    """Post ``bodies`` signed, at a steady pace over ``seconds``; note each reply's latency."""
    import aiohttp

    started = time.monotonic()
    limit = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int, body: bytes) -> None:
            await asyncio.sleep(max(0.0, started + n * seconds / len(bodies) - time.monotonic()))
            headers = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": sign(SECRET, body),
            }
            sent = time.monotonic()
            try:
                async with session.post(
                    f"{url}/webhooks/github", data=body, headers=headers, timeout=limit
                ) as reply:
                    await reply.read()
                    statuses.append(reply.status)
            except Exception:
                statuses.append(0)
            latencies.append((time.monotonic() - sent) * 1000)

        await asyncio.gather(*(one(n, body) for n, body in enumerate(bodies)))


def post(url: str, body: bytes) -> int:
    """Post one signed delivery; return its status."""
    statuses: list[int] = []
    asyncio.run(_deliver(url, [body], 0.0, [], statuses))
    return statuses[0]


def probe_until(term: Terminal, frames: Frames, until: float) -> list[float]:
    """Open and close the help (``?``) until ``until``; return each key's latency (ms)."""
    latencies: list[float] = []
    while time.monotonic() < until:
        for key, screen in ((b"?", "HelpDialog"), (b"?", "MainScreen")):
            sent = term.write(key)
            shown = frames.wait(sent, screen)
            if shown is not None:
                latencies.append((shown - sent) * 1000)
        time.sleep(0.05)
    return latencies


@dataclass
class Round:
    """One measured window: the stalled client reading or stopped."""

    kind: str
    intake: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    keys: list[float] = field(default_factory=list)
    rss_peak_mb: float = 0.0


class Bench:
    """The whole run: one home, one ``serve``, the UIs attached to it."""

    def __init__(self, base: Path, args: argparse.Namespace) -> None:
        self.args = args
        total = args.bytes_seconds * 2 + args.rounds * 2 * (args.stop_seconds + 15) + 120
        self.home, self.env, where = make_home(base, int(args.rate * total), args.rate)
        self.url, self.flood_sha, self.main_sha = where.split("|")
        self.base = base
        self.serve = Serve.start(self.env, base / "serve.log", self.url)
        self.terminals: list[Terminal] = []

    def ui(self, *, frames: Path | None = None, args: tuple[str, ...] = ("attach",)) -> Terminal:
        """A UI in a pseudo-terminal: ``pocketci-tui ARGS``, with the frame hook if ``frames``."""
        env = dict(self.env)
        if frames is not None:
            env["BENCH_FRAMES"] = str(frames)
            argv = [sys.executable, "-c", CHILD, *args]
        else:
            argv = [sys.executable, "-m", "pocketci_tui", *args]
        term = Terminal(argv, env, SIZE)
        self.terminals.append(term)
        return term

    def attached(self, term: Terminal) -> None:
        """Wait until ``serve`` logged the UI's attach."""
        if not self.serve.wait_log(f"attached: pid {term.proc.pid}"):
            raise RuntimeError("the UI did not attach:\n" + "\n".join(self.serve.lines()[-20:]))

    def flood_log(self) -> Path | None:
        """The newest run log (the flooding build's, once it started)."""
        logs = sorted((self.home / "data" / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1] if logs else None

    def start_flood(self, note: str) -> None:
        """Warm up once (the module's catalog), then start the flooding build."""
        if post(self.url, _body("acme/api", self.main_sha, "main", f"warm-up {note}")) != 202:
            raise RuntimeError("the warm-up delivery was refused")
        time.sleep(4.0)
        if post(self.url, _body("acme/api", self.flood_sha, "flood", f"flood {note}")) != 202:
            raise RuntimeError("the flood delivery was refused")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = self.flood_log()
            if log is not None and log.stat().st_size > 100_000:
                return
            time.sleep(0.1)
        raise RuntimeError("the flood did not start")

    def window(
        self, kind: str, watcher: Terminal, frames: Frames, stalled: Terminal | None
    ) -> Round:
        """One round: deliveries and key probes for ``--stop-seconds``, the stalled client
        stopped for it when ``kind`` is ``stopped``."""
        result = Round(kind)
        seconds = float(self.args.stop_seconds)
        stamp = uuid.uuid4().hex[:8]
        bodies = [
            _body(VISITOR, self.flood_sha, "main", f"{stamp} {n}")
            for n in range(self.args.deliveries)
        ]
        if kind == "stopped" and stalled is not None:
            os.kill(stalled.proc.pid, signal.SIGSTOP)
        until = time.monotonic() + seconds
        keys: list[float] = []
        prober = threading.Thread(target=lambda: keys.extend(probe_until(watcher, frames, until)))
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], self.serve.rss_mb())
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        prober.start()
        sampler.start()
        try:
            asyncio.run(_deliver(self.url, bodies, seconds, result.intake, result.statuses))
            prober.join()
        finally:
            if kind == "stopped" and stalled is not None:
                os.kill(stalled.proc.pid, signal.SIGCONT)
            done.set()
            sampler.join()
        result.keys = keys
        result.rss_peak_mb = peak[0]
        return result

    def bytes_per_second(self, term: Terminal) -> float:
        """What ``term``'s program wrote to its terminal per second over ``--bytes-seconds``."""
        seconds = float(self.args.bytes_seconds)
        before = term.received
        time.sleep(seconds)
        return (term.received - before) / seconds

    def close(self) -> None:
        """Stop every UI, then ``serve``."""
        for term in self.terminals:
            if term.proc.poll() is None:
                term.proc.kill()
                term.proc.wait()
            term.close(timeout=5)
        self.serve.stop()


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run every phase; return the figures."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        bench = Bench(base, args)
        figures: dict[str, Any] = {}
        try:
            frames_file = base / "frames.txt"
            watcher = bench.ui(frames=frames_file)
            frames = Frames(frames_file)
            if frames.wait(0, "MainScreen", 60) is None:
                raise RuntimeError("the watcher did not start")
            bench.attached(watcher)
            stalled = bench.ui()
            bench.attached(stalled)
            bench.start_flood("attached")
            time.sleep(2.0)
            figures["bytes_attached"] = bench.bytes_per_second(watcher)
            # For reference: the watcher's keys with the flood alone, no deliveries.
            alone = time.monotonic() + args.bytes_seconds
            figures["keys_flood_only"] = probe_until(watcher, frames, alone)

            rounds: list[Round] = []
            figures["rss_before_mb"] = bench.serve.rss_mb()
            for _ in range(args.rounds):
                for kind in ("reading", "stopped"):
                    rounds.append(bench.window(kind, watcher, frames, stalled))
                    time.sleep(5.0)  # the resumed client catches up (or resyncs)
            figures["rss_after_resume_mb"] = bench.serve.rss_mb()
            figures["rounds"] = rounds

            victim = bench.ui()
            bench.attached(victim)
            time.sleep(3.0)
            figures["rss_before_kill_mb"] = bench.serve.rss_mb()
            victim.proc.kill()
            victim.proc.wait()
            bench.serve.wait_log(f"detached: pid {victim.proc.pid}", 30)
            time.sleep(5.0)
            figures["rss_after_kill_mb"] = bench.serve.rss_mb()
            figures["flood_running"] = bench.serve.proc.poll() is None
            figures["clients"] = [
                line
                for line in bench.serve.lines()
                if "attached: pid" in line or "detached: pid" in line
            ]
            pids = {
                "watcher": watcher.proc.pid,
                "stalled": stalled.proc.pid,
                "killed": victim.proc.pid,
            }
            figures["pids"] = pids
        finally:
            bench.close()

        # The same flood with the UI embedded: serve is gone, the UI owns the home.
        embedded_frames = base / "embedded-frames.txt"
        embedded = bench.ui(frames=embedded_frames, args=())
        try:
            shown = Frames(embedded_frames)
            if shown.wait(0, "MainScreen", 60) is None:
                raise RuntimeError("the embedded UI did not start")
            if not wait_port(bench.url, 60):
                raise RuntimeError("the embedded UI's listener did not start")
            bench.start_flood("embedded")
            time.sleep(2.0)
            figures["bytes_embedded"] = bench.bytes_per_second(embedded)
            # For reference: the same deliveries and keys with the UI embedded.
            figures["embedded_round"] = bench.window("embedded", embedded, shown, None)
        finally:
            embedded.proc.kill()
            embedded.proc.wait()
            embedded.close(timeout=5)
    return figures


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(figures: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The figures as lines of text."""
    rounds: list[Round] = figures["rounds"]
    out: list[str] = []
    by_kind: dict[str, dict[str, float]] = {}
    for kind in ("reading", "stopped"):
        mine = [r for r in rounds if r.kind == kind]
        by_kind[kind] = {
            "intake_p50": _median([_percentile(r.intake, 0.5) for r in mine]),
            "intake_p99": _median([_percentile(r.intake, 0.99) for r in mine]),
            "keys_p50": _median([_percentile(r.keys, 0.5) for r in mine]),
            "keys_p95": _median([_percentile(r.keys, 0.95) for r in mine]),
            "presses": sum(len(r.keys) for r in mine),
            "accepted": sum(s == 200 for r in mine for s in r.statuses),
            "sent": sum(len(r.statuses) for r in mine),
            "rss_peak": max((r.rss_peak_mb for r in mine), default=float("nan")),
        }
    read, stop = by_kind["reading"], by_kind["stopped"]
    out.append(
        f"{args.deliveries} deliveries over {args.stop_seconds} s per round, a build printing "
        f"{args.rate:g} lines/s, {args.rounds} round(s) of each kind (medians over rounds)"
    )
    for label, key, unit in (
        ("intake p50", "intake_p50", "ms"),
        ("intake p99", "intake_p99", "ms"),
        ("watcher key press to screen p50", "keys_p50", "ms"),
        ("watcher key press to screen p95", "keys_p95", "ms"),
    ):
        ratio = stop[key] / read[key] if read[key] else float("nan")
        out.append(
            f"  {label:<34} client reading {read[key]:8.1f} {unit}   client stopped "
            f"{stop[key]:8.1f} {unit}   stopped/reading {ratio:.2f}x"
        )
    alone = figures["keys_flood_only"]
    out.append(
        f"  {'(reference) keys, flood only':<34} p50 {_percentile(alone, 0.5):.1f} ms, "
        f"p95 {_percentile(alone, 0.95):.1f} ms over {len(alone)} presses, no deliveries"
    )
    same = figures["embedded_round"]
    out.append(
        f"  {'(reference) the UI embedded, same':<34} intake p50 "
        f"{_percentile(same.intake, 0.5):.1f} ms, p99 {_percentile(same.intake, 0.99):.1f} ms; "
        f"keys p50 {_percentile(same.keys, 0.5):.1f} ms, p95 {_percentile(same.keys, 0.95):.1f} "
        f"ms over {len(same.keys)} presses (one round, after the others)"
    )
    for kind, figures_of in by_kind.items():
        out.append(
            f"  {kind}: {figures_of['accepted']}/{figures_of['sent']} deliveries answered 200, "
            f"{figures_of['presses']} key presses measured, serve RSS peak "
            f"{figures_of['rss_peak']:.1f} MB"
        )
    out.append(
        "serve RSS (MB): before the stop {:.1f}, after the stopped client resumed {:.1f}; "
        "before a client was killed {:.1f}, 5 s after {:.1f}".format(
            figures["rss_before_mb"],
            figures["rss_after_resume_mb"],
            figures["rss_before_kill_mb"],
            figures["rss_after_kill_mb"],
        )
    )
    pids = figures["pids"]
    for line in figures["clients"]:
        who = next((name for name, pid in pids.items() if f"pid {pid}" in line), "?")
        out.append(f"  [{who}] {line.strip()[-140:]}")
    attached, embedded = figures["bytes_attached"], figures["bytes_embedded"]
    out.append(
        f"bytes/s written to the terminal while the build floods ({args.bytes_seconds} s): "
        f"attached {attached / 1024:.1f} KiB/s, embedded {embedded / 1024:.1f} KiB/s, "
        f"attached/embedded {attached / embedded if embedded else float('nan'):.2f}x"
    )
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stop-seconds", type=float, default=30.0, help="length of a round")
    parser.add_argument("--deliveries", type=int, default=500, help="deliveries per round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of each kind")
    parser.add_argument("--rate", type=float, default=2000.0, help="lines/s the build prints")
    parser.add_argument("--bytes-seconds", type=float, default=10.0, help="bytes/s window")
    return parser.parse_args(argv)


def run() -> list[dict[str, Any]]:
    """The figures as rows for ``run_all.py``."""
    args = parse([])
    figures = run_bench(args)
    rounds: list[Round] = figures["rounds"]
    rows: list[dict[str, Any]] = []
    for label, key, q in (("intake p99", "intake", 0.99), ("key press p95", "keys", 0.95)):
        reading = _median([_percentile(getattr(r, key), q) for r in rounds if r.kind == "reading"])
        stopped = _median([_percentile(getattr(r, key), q) for r in rounds if r.kind == "stopped"])
        rows.append(
            {
                "name": f"{label} with an attached client stopped (SIGSTOP)",
                "target": "unchanged within noise",
                "value": round(stopped / reading, 2),
                "unit": "x",
                "comparison": f"stopped {stopped:.1f} ms vs reading {reading:.1f} ms",
                "ok": stopped / reading < 1.5,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run and print the figures."""
    args = parse(argv)
    figures = run_bench(args)
    print("\n".join(report(figures, args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
