"""What the screen shows between Enter in the Output pane's search field and the first match.

Enter closes the field and moves the focus, and the search's first match follows within tens
of milliseconds: the screen waits for it (up to ``HOLD``) and paints both in one frame, rather
than a frame without the match first; a search that finds nothing, or is slow, never keeps the
screen waiting longer than that.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import RenderableType
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from pocketci_tui.paths import AppPaths
from pocketci_tui.tui import logscan
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.logscan import Hit
from pocketci_tui.tui.widgets import output_pane
from pocketci_tui.tui.widgets.run_log import MAX_LINES, RunLog

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

Frame = tuple[bool, int | None, str]
"""What a frame showed: the search field open, the marked line, the count."""

FIRST = 7
"""The line of the log's one match of ``needle`` (0-based)."""

OTHER = 5_000
"""The line of its one match of ``another``."""

Scan = Callable[[str, Path, str, Callable[[list[Hit]], None], threading.Event], int]


def _record(app: PocketCIApp, monkeypatch: pytest.MonkeyPatch) -> list[Frame]:
    """Every frame the app paints from now on, as what it showed."""
    frames: list[Frame] = []
    original = app._display

    def display(screen: Screen[Any], renderable: RenderableType | None) -> None:
        original(screen, renderable)
        main = app.main_screen
        if main is None or renderable is None:
            return
        log = main.query_one(RunLog)
        field = main.query_one("#log-search", Input)
        frames.append((field.display, log.current, log.search_status))

    monkeypatch.setattr(app, "_display", display)
    return frames


def _write_log(app_paths: AppPaths, event_id: int) -> int:
    """A log longer than the pane keeps, one match near the top; its line."""
    lines = [f"line {i}" for i in range(MAX_LINES * 2)]
    lines[FIRST] = "needle: the first"
    lines[OTHER] = "another: older than the tail, far from the first"
    path = app_paths.logs_dir / f"{event_id}" / "run-main-test.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return FIRST


def _gated(gate: threading.Event) -> Scan:
    """The real search, started only once ``gate`` is set (so Enter comes before it)."""
    real = logscan.scan

    def scan(
        mode: str,
        path: Path,
        needle: str,
        on_hits: Callable[[list[Hit]], None],
        stop: threading.Event,
    ) -> int:
        gate.wait(10)
        return real(mode, path, needle, on_hits, stop)

    return scan


@contextlib.asynccontextmanager
async def _shown(app_paths: AppPaths) -> AsyncIterator[tuple[PocketCIApp, Pilot[int], RunLog]]:
    """The app at 80x24 showing the failed run, whose log (see :func:`_write_log`) is longer
    than the pane keeps, the Output pane focused."""
    services, ids = await seeded(app_paths)
    _write_log(app_paths, ids["failed"])
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: log.line_count == MAX_LINES, pilot)
        log.focus()
        yield app, pilot, log


async def test_enter_paints_the_closed_field_and_the_first_match_in_one_frame(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No frame shows the field closed without the match: the screen waited for it."""
    first = FIRST
    gate = threading.Event()
    monkeypatch.setattr(output_pane, "scan", _gated(gate))
    monkeypatch.setattr(output_pane, "HOLD", 10.0)  # however slow the machine
    async with _shown(app_paths) as (app, pilot, log):
        await pilot.press("slash", *"needle")
        frames = _record(app, monkeypatch)
        await pilot.press("enter")
        gate.set()
        await wait_for(lambda: log.current == first and log.search_status == "1/1", pilot)
        await pilot.pause(0.1)
        closed = [frame for frame in frames if not frame[0]]
        assert closed, frames
        assert closed[0][1] == first, frames
        assert all(current == first for _, current, _ in closed), frames


async def test_a_search_without_a_match_lets_the_screen_go_on_at_once(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing found: the screen says so when the search ends, without waiting out the
    hold."""
    gate = threading.Event()
    monkeypatch.setattr(output_pane, "scan", _gated(gate))
    monkeypatch.setattr(output_pane, "HOLD", 60.0)
    async with _shown(app_paths) as (app, pilot, _log):
        await pilot.press("slash", *"absent")
        frames = _record(app, monkeypatch)
        await pilot.press("enter")
        gate.set()
        await wait_for(lambda: (False, None, "no match") in frames, pilot, limit=30.0)


async def test_a_slow_search_holds_the_screen_no_longer_than_the_hold(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search still reading when the hold is over: the screen shows the field closed and
    the search under way, and the match once it comes."""
    first = FIRST
    gate = threading.Event()
    monkeypatch.setattr(output_pane, "scan", _gated(gate))
    monkeypatch.setattr(output_pane, "HOLD", 0.2)
    async with _shown(app_paths) as (app, pilot, log):
        await pilot.press("slash", *"needle")
        frames = _record(app, monkeypatch)
        await pilot.press("enter")
        await wait_for(lambda: (False, None, "searching…") in frames, pilot, limit=30.0)
        assert log.current is None  # still reading: the screen did not wait for it
        gate.set()
        await wait_for(lambda: any(frame[1] == first for frame in frames), pilot)


async def test_the_count_is_updated_a_few_times_a_second_while_the_search_reads(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search reporting its matches in many batches: the first match and the final count
    are shown at once, the count in between at most every ``COUNT_EVERY`` seconds rather
    than once per batch (each a frame of its own, competing with the keys)."""
    first = FIRST
    batches = 60

    def scan(
        mode: str,
        path: Path,
        needle: str,
        on_hits: Callable[[list[Hit]], None],
        stop: threading.Event,
    ) -> int:
        if needle != "needle":
            return MAX_LINES * 2  # a search started while the needle was typed
        on_hits([Hit(first, 0)])
        for batch in range(batches):
            on_hits([Hit(1_000 + batch, -1)])
        return MAX_LINES * 2

    statuses: list[str] = []
    original = RunLog.watch_search_status

    def watch(self: RunLog) -> None:
        statuses.append(self.search_status)
        original(self)

    monkeypatch.setattr(output_pane, "scan", scan)
    monkeypatch.setattr(output_pane, "COUNT_EVERY", 5.0)  # however slow the machine
    monkeypatch.setattr(RunLog, "watch_search_status", watch)
    async with _shown(app_paths) as (_app, pilot, log):
        statuses.clear()
        await pilot.press("slash", *"needle", "enter")
        await wait_for(lambda: log.search_status == f"1/{batches + 1}", pilot)
        assert log.current == first
        assert statuses[-1] == f"1/{batches + 1}"
        assert "1/1+" in statuses
        assert len([status for status in statuses if status.endswith("+")]) <= 3, statuses


async def test_the_search_starts_reading_without_waiting_for_the_screen(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Enter starts the reading at once, even while the loop is busy (here: blocked) with
    the frame the key asked for; a worker of the app would start only once the loop got to
    it."""
    reading = threading.Event()
    real = logscan.scan

    def scan(
        mode: str,
        path: Path,
        needle: str,
        on_hits: Callable[[list[Hit]], None],
        stop: threading.Event,
    ) -> int:
        if mode == "find":  # not the failure line, read when the failed run opens
            reading.set()
        return real(mode, path, needle, on_hits, stop)

    monkeypatch.setattr(output_pane, "scan", scan)
    async with _shown(app_paths) as (app, pilot, log):
        await pilot.press("slash")  # as a search starts: the run shown, the field open
        pane = screen(app).query_one(output_pane.OutputPane)
        pane.start("needle", delay=0)
        assert reading.wait(10)  # the loop does not run meanwhile
        await wait_for(lambda: log.search_status == "1/1", pilot, explain=lambda: _say(log))


async def test_a_search_that_fails_says_so_and_ends(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scan(
        mode: str,
        path: Path,
        needle: str,
        on_hits: Callable[[list[Hit]], None],
        stop: threading.Event,
    ) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(output_pane, "scan", scan)
    async with _shown(app_paths) as (app, pilot, log):
        await pilot.press("slash", *"needle", "enter")
        await wait_for(lambda: log.search_status == "no match", pilot, explain=lambda: _say(log))
        said = [n.message for n in app._notifications]
        assert any("The search stopped" in m and "Permission denied" in m for m in said), said


async def _say(log: RunLog) -> str:
    """The search's state as the log shows it (when a wait times out)."""
    return repr((log.search_status, log.needle_text))


async def test_a_match_outside_the_last_searchs_window_is_read_with_it(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second search whose first match is neither in the tail nor in the window the first
    search showed: its window comes with the match from the search's thread, not from
    another reading started once the match reached the screen."""
    loads: list[int] = []
    original = output_pane.OutputPane._load_window

    def load_window(self: output_pane.OutputPane, path: Path, hit: Hit, generation: int) -> None:
        loads.append(hit.line)
        original(self, path, hit, generation)

    monkeypatch.setattr(output_pane.OutputPane, "_load_window", load_window)
    async with _shown(app_paths) as (_app, pilot, log):
        await pilot.press("slash", *"needle", "enter")
        await wait_for(lambda: log.current == FIRST and log.search_status == "1/1", pilot)
        assert log.window
        await pilot.press("slash", "ctrl+u", *"another", "enter")
        await wait_for(lambda: log.current == OTHER and log.search_status == "1/1", pilot)
        assert log.holds(OTHER)
        assert loads == []
