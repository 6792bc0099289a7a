"""Output ingest: lines per second from a ``dagger call`` child into the log file and the live
callback, and the memory that costs (SPEC 6: >= 100,000 lines/s, 1M lines add < 50 MB RSS).

Run: ``.venv/bin/python tests/bench/bench_ingest.py [N]`` (or through ``run_all.py ingest``).
Prints figures; asserts nothing.

A stand-in CLI prints N lines (1,000,000 by default) of dagger-like plain progress output as
fast as it can; :meth:`Runner.run` reads them, strips ANSI, masks, appends them to the log file
and hands batches to a callback that keeps a bounded tail, like the UI does. Side by side, in the
same run, ``cat`` of the same content is read by a plain asyncio ``readline()`` loop (the
ordinary way to read lines) and by a bare chunked reader that only counts newlines (the pipe's
own limit). Each figure is the median of 3 rounds. Memory: ``VmHWM`` (peak RSS, reset through
``/proc/self/clear_refs`` before the run) minus ``VmRSS`` before it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pocketci_tui.engine.dagger.runner import CallRequest, DaggerEnv, Runner  # noqa: E402
from pocketci_tui.model import Event, FunctionCall, RunState  # noqa: E402

N_LINES = 1_000_000
ROUNDS = 3
TARGET_LINES_PER_S = 100_000
TARGET_RSS_MB = 50.0
SECRETS = [
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "npm_SECRETvalue_987654321",
    "hunter2-pw-xyz",
]

PRODUCER = """\
import shutil, sys
with open({path!r}, "rb") as src:
    shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
"""


def _write_content(path: Path, n: int) -> int:
    """Write n dagger-like output lines to ``path``; return the size in bytes."""
    with path.open("wb") as fh:
        block: list[bytes] = []
        for i in range(n):
            block.append(
                b"%-4d: [%d.%ds] | step %d: compiling github.com/acme/api/internal/pkg%d ok\n"
                % (i % 997, i % 60, i % 10, i, i % 50)
            )
            if len(block) == 10_000:
                fh.write(b"".join(block))
                block.clear()
        fh.write(b"".join(block))
    return path.stat().st_size


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def _baseline_readline(content: Path) -> float:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "cat",
        str(content),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    n = 0
    while await proc.stdout.readline():
        n += 1
    await proc.wait()
    return n / (time.perf_counter() - start)


async def _baseline_chunks(content: Path) -> float:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "cat",
        str(content),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    n = 0
    while chunk := await proc.stdout.read(1 << 18):
        n += chunk.count(b"\n")
    await proc.wait()
    return n / (time.perf_counter() - start)


async def _runner(
    tmp: Path, cli: Path, n: int, round_no: int, secrets: list[str]
) -> tuple[float, int, int]:
    """Return (lines/s, lines received by the callback, lines in the log file)."""
    event = Event(
        vendor="github",
        event_type="push",
        filter="main",
        repository="acme/api",
        ref="refs/heads/main",
        sha="a" * 40,
        base_ref="",
        base_sha="",
        pr_number=None,
        is_fork=False,
        delivery_id="bench",
        received_at=datetime.now(UTC),
        body=b"{}",
        event_name="push",
    )
    names = tuple(f"secret{i}" for i in range(len(secrets)))
    log_path = tmp / "logs" / f"run-{round_no}-{len(secrets)}.log"
    req = CallRequest(
        run_id=f"bench-{round_no}",
        call=FunctionCall("onGithubPushMain", secrets=names),
        event=event,
        module_dir=tmp,
        checkout_dir=tmp,
        changes=[],
        secrets=dict(zip(names, secrets, strict=True)),
        log_path=log_path,
    )
    runner = Runner(DaggerEnv(cli=str(cli)), work_dir=tmp / "work", timeout=600)
    tail: deque[str] = deque(maxlen=10_000)
    received = 0

    def on_lines(run_id: str, lines: list[str], times: list[float]) -> None:
        nonlocal received
        received += len(lines)
        tail.extend(lines)

    start = time.perf_counter()
    outcome = await runner.run(req, on_lines)
    elapsed = time.perf_counter() - start
    if outcome.state is not RunState.PASSED:
        raise RuntimeError(f"producer failed: {outcome.reason}")
    with log_path.open("rb") as fh:
        logged = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    log_path.unlink()
    return n / elapsed, received, logged


async def _measure(n: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="pocketci-bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        content = tmp / "content.txt"
        size = _write_content(content, n)
        cli = tmp / "dagger"
        cli.write_text(f"#!{sys.executable}\n" + PRODUCER.format(path=str(content)))
        cli.chmod(0o755)

        # Memory first, on a fresh run, so the peak reflects this ingest and nothing before it.
        rss_before = _status_kb("VmRSS")
        peak_reset = _reset_peak()
        _, received, logged = await _runner(tmp, cli, n, 0, [])
        rss_peak = _status_kb("VmHWM") if peak_reset else _status_kb("VmRSS")
        rss_after = _status_kb("VmRSS")
        if received != n or logged != n:
            raise RuntimeError(f"lost lines: callback {received}, log {logged}, sent {n}")

        readline_rates: list[float] = []
        chunk_rates: list[float] = []
        runner_rates: list[float] = []
        masked_rates: list[float] = []
        for round_no in range(1, ROUNDS + 1):
            readline_rates.append(await _baseline_readline(content))
            chunk_rates.append(await _baseline_chunks(content))
            rate, received, logged = await _runner(tmp, cli, n, round_no, [])
            runner_rates.append(rate)
            rate, received_m, logged_m = await _runner(tmp, cli, n, round_no, SECRETS)
            masked_rates.append(rate)
            if {received, logged, received_m, logged_m} != {n}:
                raise RuntimeError("lost lines in a measured round")

    readline = statistics.median(readline_rates)
    chunks = statistics.median(chunk_rates)
    plain = statistics.median(runner_rates)
    masked = statistics.median(masked_rates)
    growth_mb = (rss_peak - rss_before) / 1024
    baseline = (
        f"cat | asyncio readline(): {readline:,.0f} lines/s (x{plain / readline:.2f}); "
        f"cat | chunked read, count only: {chunks:,.0f} lines/s"
    )
    return [
        {
            "name": f"ingest {n:,} lines ({size / 1e6:.0f} MB) -> log file + live callback",
            "target": f">= {TARGET_LINES_PER_S:,} lines/s",
            "value": plain,
            "unit": "lines/s",
            "comparison": baseline,
            "ok": plain >= TARGET_LINES_PER_S,
        },
        {
            "name": f"same, masking {len(SECRETS)} secrets (all encoded forms)",
            "target": f">= {TARGET_LINES_PER_S:,} lines/s",
            "value": masked,
            "unit": "lines/s",
            "comparison": f"unmasked: {plain:,.0f} lines/s",
            "ok": masked >= TARGET_LINES_PER_S,
        },
        {
            "name": f"RSS growth over {n:,} lines",
            "target": f"< {TARGET_RSS_MB:.0f} MB",
            "value": growth_mb,
            "unit": "MB",
            "comparison": (
                f"VmRSS before {rss_before / 1024:.1f} MB, "
                f"{'peak (VmHWM)' if peak_reset else 'after'} {rss_peak / 1024:.1f} MB, "
                f"after {rss_after / 1024:.1f} MB"
            ),
            "ok": growth_mb < TARGET_RSS_MB,
        },
    ]


def run(n: int = N_LINES) -> list[dict[str, Any]]:
    """Measure and return the rows (see the module docstring)."""
    return asyncio.run(_measure(n))


def main() -> None:
    """Print the figures."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_LINES
    for row in run(n):
        value = row["value"]
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
        verdict = "ok" if row["ok"] else "MISSED"
        print(f"{row['name']}: {shown} {row['unit']} (target {row['target']}, {verdict})")
        print(f"    vs {row['comparison']}")


if __name__ == "__main__":
    main()
