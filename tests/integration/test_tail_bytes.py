"""A run's output tail is bounded in bytes as well as in lines: a build printing lines as long
as the runner delivers keeps only its newest lines in memory, within the byte bound, and the
tail still says where it ends, so the live output continues from it without a gap or a repeat.
Through the real services (in-process and over the control socket), the real engine and runner,
and the stand-in ``dagger`` printing real 64 KiB lines. An owner that is a UI keeps fewer bytes
of notices for resuming clients than ``serve`` does: they are the UI's memory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from controlkit import running
from corekit import IMPLEMENTATIONS, Told, attached, deliver
from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui import stamps
from pocketci_tui.control.hub import RING_BYTES, UI_RING_BYTES
from pocketci_tui.core_feed import TAIL_READ_BYTES
from pocketci_tui.engine.dispatch.live import TAIL_BYTES, held
from pocketci_tui.engine.proc import MAX_LINE
from pocketci_tui.model import RunOutput, RunState
from pocketci_tui.services import Services

BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))

WIDTH = MAX_LINE - 64
"""Characters of each printed line: as long as the runner delivers whole."""


def long_line(n: int) -> str:
    return f"{n:05d} " + "x" * (WIDTH - 6)


@pytest.mark.parametrize("how", IMPLEMENTATIONS)
async def test_the_tail_of_a_run_printing_long_lines_keeps_its_newest_within_the_bytes(
    tmp_path: Path, how: str
) -> None:
    # Enough long lines for several times the byte bounds, far fewer than the line bounds.
    count = 4 * max(TAIL_BYTES, TAIL_READ_BYTES) // WIDTH
    printed = [long_line(n) for n in range(1, count + 1)]
    gate = tmp_path / "finish"
    call = {"output": printed, "wait_file": str(gate)}
    kit = EngineKit(tmp_path, functions=[fn("onGithubPushMain", *BASE, call=call)])
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with attached(services, how) as core:
            told = Told()
            core.subscribe(told)
            await deliver(services, kit.push({"main.go": "2\n"}))

            def streamed() -> list[str]:
                return [x for n in told.of(RunOutput) if isinstance(n, RunOutput) for x in n.lines]

            await told.wait_for(lambda: printed[-1] in streamed(), timeout=60)
            running = told.run(RunState.RUNNING)
            assert running is not None
            live = await core.output_tail(running, 10_000)
            assert live.end is not None
            assert live.lines, "the newest lines are kept"
            assert sum(held(line) for line in live.lines) <= TAIL_BYTES
            assert len(live.lines) < count
            # The newest lines, in order, at the positions the live batches gave them.
            assert list(live.lines) == streamed()[live.end - len(live.lines) : live.end]
            assert live.lines[-1] == printed[-1]
            assert len(live.times) == len(live.lines)

            gate.write_text("go")
            await told.wait_for(lambda: told.run(RunState.PASSED) is not None, timeout=60)
            finished = told.run(RunState.PASSED)
            assert finished is not None
            log_file = kit.paths.logs_dir / finished.log_path
            after_ms = log_file.stat().st_mtime_ns // 1_000_000 + stamps.MTIME_SLACK_MS
            on_disk, _ = stamps.split_lines(log_file.read_text().splitlines(), after_ms)
            # Read from the log file once finished: bounded alike, and it says where it ends.
            last = await core.output_tail(finished, 10_000)
            assert last.end == len(on_disk)
            assert last.lines
            assert sum(held(line) for line in last.lines) <= TAIL_READ_BYTES
            assert list(last.lines) == on_disk[len(on_disk) - len(last.lines) :]
            assert printed[-1] in last.lines
            assert len(last.times) == len(last.lines)
    finally:
        await services.stop()


@pytest.mark.parametrize("mode", ["ui", "serve"])
async def test_an_owner_that_is_a_ui_keeps_fewer_bytes_of_notices_for_resuming_clients(
    tmp_path: Path, mode: str
) -> None:
    line = long_line(1)
    each = sys.getsizeof(line)
    count = 2 * UI_RING_BYTES // each  # twice what a UI keeps, well within what serve keeps
    assert count * (each + 1024) < RING_BYTES
    kit = EngineKit(tmp_path)
    async with running(kit, mode=mode) as (services, _):
        assert services.control is not None
        hub = services.control.hub
        first = hub.seq + 1
        for n in range(count):
            hub.publish(RunOutput("r1", (line,), n + 1, (1_700_000_000.0,)))
        kept = hub.seq - hub.oldest + 1
        _, resync = hub.open(first - 1, hub.instance)
        if mode == "ui":
            assert kept * each <= UI_RING_BYTES
            assert resync is not None, "a client from before the flood re-reads the screen"
        else:
            assert hub.oldest <= first
            assert resync is None, "a client from before the flood resumes"
