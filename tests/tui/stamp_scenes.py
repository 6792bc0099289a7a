"""Scenes of the Output pane with the time each line arrived: the realistic day, its logs
stamped as the engine writes them, its live build carrying the same moments."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from textual.pilot import Pilot

from pocketci_tui import stamps
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.widgets.run_log import RunLog

from .day import API_TEST_LOG, WEB_BUILD_LOG, seed_day
from .fakes import ScriptedEngine, ScriptedServices, at
from .harness import wait_for
from .scenes import Scene, _app, _paths, _seed, _select_event, _settle


def spaced(start_minutes_ago: float, count: int, step: float) -> list[float]:
    """``count`` moments (seconds since the epoch) ``step`` seconds apart from a start."""
    first = at(start_minutes_ago).timestamp()
    return [round((first + i * step) * 1000) / 1000 for i in range(count)]


def write_stamped(path: Path, lines: Sequence[str], moments: Sequence[float]) -> None:
    """Write a log file as the engine does (each line stamped), last changed at its last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        stamps.stamp_lines([line], round(moment * 1000))
        for line, moment in zip(lines, moments, strict=True)
    )
    path.write_text(text, encoding="utf-8")
    last = round(moments[-1] * 1_000_000_000)
    os.utime(path, ns=(last, last))


async def seed_stamped_day(store: Store, paths: AppPaths, engine: ScriptedEngine) -> dict[str, int]:
    """The day, with the failed test's log stamped (it ran 63 minutes ago, for 38 s) and the
    running build's live tail carrying when each line arrived."""
    ids = await seed_day(store, paths, engine)
    test_times = spaced(63, len(API_TEST_LOG), 3.4)
    write_stamped(
        paths.logs_dir / str(ids["failing"]) / "day-pr-test.log", API_TEST_LOG, test_times
    )
    engine.tail_times_of["day-web-build"] = spaced(1.2, len(WEB_BUILD_LOG), 4.1)
    return ids


def day_clock(folder: Path) -> Scene:
    """The running build of the day, each line after the wall clock it arrived at."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine, seed_stamped_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        await wait_for(lambda: main.run_id == "day-web-build", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.line_count == len(WEB_BUILD_LOG), pilot)
        log.focus()
        await pilot.press("t")
        await wait_for(lambda: log.stamp_mode == "clock", pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


def day_elapsed(folder: Path) -> Scene:
    """The failed test of the day opened at its failure, each line after the time since the
    run started."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_stamped_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.run_id == "day-pr-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.current is not None, pilot)
        log.focus()
        await pilot.press("t", "t")
        await wait_for(lambda: log.stamp_mode == "elapsed", pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


STAMP_SCENES: dict[str, Callable[[Path], Scene]] = {
    "day-clock": day_clock,
    "day-elapsed": day_elapsed,
}
