"""The time each output line arrived: in the log file, in the tail read from it, in search and
the failure line, and in the Output pane's column that ``t`` cycles through."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from textual.app import App, ComposeResult

from pocketci_tui import stamps
from pocketci_tui.core_feed import read_log_tail, read_stamped_tail
from pocketci_tui.model import RunOutput
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui import logscan
from pocketci_tui.tui.logscan import Hit, failure_line, find, scan
from pocketci_tui.tui.widgets.output_pane import OutputPane
from pocketci_tui.tui.widgets.run_log import MAX_LINES, RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .fakes import RUNNING_LOG, TEST_LOG, at
from .harness import wait_for
from .stamp_scenes import spaced, write_stamped
from .test_ui_actions import build, ready, screen, seeded, select_event

NOON = int(datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp() * 1000)


def _ms(hours: int, minutes: int, seconds: int, milli: int = 0) -> int:
    return NOON + ((hours - 12) * 3600 + minutes * 60 + seconds) * 1000 + milli


# -- the stamp -----------------------------------------------------------------------------------


def test_a_stamp_is_the_utc_time_of_day_to_the_millisecond() -> None:
    stamp = stamps.format_stamp(_ms(15, 9, 1, 23))
    assert stamp == "15:09:01.023Z "
    assert len(stamp) == stamps.STAMP_WIDTH
    assert stamps.stamp_lines(["a", "", "b"], _ms(9, 0, 0)) == (
        "09:00:00.000Z a\n09:00:00.000Z \n09:00:00.000Z b\n"
    )
    assert stamps.split("15:09:01.023Z make: *** Error 1") == (
        ((15 * 60 + 9) * 60 + 1) * 1000 + 23,
        "make: *** Error 1",
    )


def test_a_line_without_a_stamp_reads_as_it_is() -> None:
    """A log written before stamps (or a line that only looks alike) keeps its whole text."""
    for line in ("make: *** Error 1", "", "15:09:01 no millis", "25:00:00.000Z not a time"):
        assert stamps.split(line) == (None, line)


def test_moments_are_dated_backwards_from_a_later_moment_across_midnight() -> None:
    """A run that went on past midnight: each line is put on the latest day that keeps it
    before the next one, so the order holds and the dates are right."""
    moments = [_ms(23, 59, 58), _ms(23, 59, 59, 500), NOON + 12 * 3600_000 + 1000]
    raw = [stamps.format_stamp(m) + f"line {i}" for i, m in enumerate(moments)]
    texts, times = stamps.split_lines([*raw, "old line"], moments[-1] + stamps.MTIME_SLACK_MS)
    assert texts == ["line 0", "line 1", "line 2", "old line"]
    assert times == [m / 1000 for m in moments] + [None]


# -- reading log files ---------------------------------------------------------------------------


def test_the_tail_of_a_stamped_log_gives_texts_and_moments(tmp_path: Path) -> None:
    moments = spaced(30, 5, 1.25)
    log = tmp_path / "run.log"
    write_stamped(log, [f"line {i}" for i in range(5)], moments)
    found = read_stamped_tail(log, 3)
    assert found == (["line 2", "line 3", "line 4"], 5, moments[2:])
    assert read_log_tail(log, 2) == (["line 3", "line 4"], 5)


def test_a_log_written_before_stamps_reads_as_before(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text("\n".join(TEST_LOG) + "\n", encoding="utf-8")
    found = read_stamped_tail(log, 4)
    assert found is not None
    assert found[0] == TEST_LOG[-4:]
    assert found[1] == len(TEST_LOG)
    assert found[2] == [None] * 4
    assert read_stamped_tail(tmp_path / "missing.log", 4) is None


def test_search_looks_at_the_output_not_at_the_stamps(tmp_path: Path) -> None:
    """Every stamp holds ``14:2`` and ``Z``; only the line that printed them is found, in either
    case, and the failure line is found after its stamp."""
    log = tmp_path / "run.log"
    lines = ["start", "took 14:20 to build", "Z marks the spot", "Error: exit status 1", "end"]
    write_stamped(log, lines, spaced(10, len(lines), 0.5))  # 14:20:00Z ... 14:20:02Z
    offsets = [0]
    for line in lines[:-1]:
        offsets.append(offsets[-1] + stamps.STAMP_WIDTH + len(line.encode()) + 1)

    def search(needle: str) -> list[Hit]:
        hits: list[Hit] = []
        find(log, needle, hits.extend, threading.Event())
        return hits

    assert search("14:2") == [Hit(1, offsets[1])]
    # The same in the process the pane searches in.
    found: list[Hit] = []
    scan("find", log, "14:2", found.extend, threading.Event())
    assert found == [Hit(1, offsets[1])]
    failure: list[Hit] = []
    scan("failure", log, "", failure.extend, threading.Event())
    assert failure == [Hit(3, offsets[3])]
    assert search("Z") == [Hit(2, offsets[2])]
    assert search("z") == [Hit(2, offsets[2])]  # smart case: all lowered, the stamps too
    assert search(".0") == []
    assert failure_line(log, threading.Event()) == Hit(3, offsets[3])


FAILURE = TEST_LOG.index("--- FAIL: TestLogin (0.03s)")


def test_the_scanning_process_knows_the_stamp_as_the_engine_writes_it() -> None:
    """The scanning process imports no package: its copy of the stamp's form must stay the
    engine's."""
    assert logscan.STAMP_RE.pattern == stamps.STAMP_RE.pattern
    assert logscan.STAMP_WIDTH == stamps.STAMP_WIDTH


# -- the Output pane -----------------------------------------------------------------------------


def _stamp_failed_log(app_paths: AppPaths, event_id: int) -> list[float]:
    """Stamp the failed test's log as the engine writes it: from its start, 0.5 s apart."""
    moments = spaced(42, len(TEST_LOG), 0.5)
    write_stamped(app_paths.logs_dir / str(event_id) / "run-main-test.log", TEST_LOG, moments)
    return moments


async def test_t_cycles_none_wall_clock_and_since_start_and_stays_for_other_runs(
    app_paths: AppPaths,
) -> None:
    """t in the Output pane: the wall clock before each line (the title says ``time``), then
    the time since the run started (``+time``), then nothing; the choice stays when another
    run is shown, live output included."""
    services, ids = await seeded(app_paths)
    moments = _stamp_failed_log(app_paths, ids["failed"])
    services.engine.tail_times_of["run-rel-build"] = spaced(0.5, len(RUNNING_LOG), 1.0)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        await wait_for(lambda: main.run_id == "run-main-test", pilot)
        log = main.query_one(RunLog)
        pane = main.query_one(OutputPane)
        await wait_for(lambda: log.current is not None, pilot)  # opened at its failure
        assert log.stamp_mode == "none"
        assert pane.border_title == "Output · testOnGithubPushMain"
        assert [log.stamp_of(i) for i in range(log.line_count)] == moments
        log.focus()
        await pilot.press("t")
        assert log.stamp_mode == "clock"
        assert pane.border_title == "Output · time · testOnGithubPushMain"
        assert log.stamp_text(0) == "13:48:00 "  # 42 minutes before the fixed 14:30
        await pilot.pause()
        row = log.render_line(0).text
        assert row.startswith(log.stamp_text(log.scroll_offset.y))
        await pilot.press("t")
        assert log.stamp_mode == "elapsed"
        assert pane.border_title == "Output · +time · testOnGithubPushMain"
        assert log.stamp_text(0) == "+0:00:00 "
        assert log.stamp_text(4) == "+0:00:02 "
        # Another run, live: the same kind of stamp, from its own start.
        main.query_one(RunsTable).focus()
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: main.run_id == "run-rel-build", pilot)
        await wait_for(lambda: log.line_count == len(RUNNING_LOG), pilot)
        assert log.stamp_mode == "elapsed"
        assert pane.border_title.startswith("Output · +time · ")
        assert log.stamp_text(0) == "+0:00:15 "  # started 45 s ago, first line 30 s ago
        now = at(0).timestamp()
        services.engine.publish(RunOutput("run-rel-build", ("new line",), None, (now,)))
        await wait_for(lambda: log.lines[-1] == "new line", pilot)
        assert log.stamp_text(log.line_count - 1) == "+0:00:45 "
        log.focus()
        await pilot.press("t")
        assert log.stamp_mode == "none"
        assert pane.border_title == "Output · onGithubPush"
        assert log.render_line(0).text.rstrip() == log.lines[log.scroll_offset.y].rstrip()


async def test_an_old_log_shows_no_time_and_a_window_keeps_the_stamps(
    app_paths: AppPaths,
) -> None:
    """A log written before stamps shows a blank column; a failed run whose failure is older
    than the lines kept opens on a window of its file, with the file's moments."""
    services, ids = await seeded(app_paths)
    lines = [*TEST_LOG, *(f"after {i}" for i in range(MAX_LINES + 500))]
    moments = spaced(42, len(lines), 0.001)
    write_stamped(app_paths.logs_dir / str(ids["failed"]) / "run-main-test.log", lines, moments)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        await wait_for(lambda: main.run_id == "run-main-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.window and log.current == FAILURE, pilot)
        start = log.first_line
        shown = [log.stamp_of(i) for i in range(log.line_count)]
        assert list(log.lines) == lines[start : start + log.line_count]
        assert shown == moments[start : start + log.line_count]
        # The build of the same event has a log from before stamps: no time to show.
        main.query_one(RunsTable).move_cursor(row=0)
        await wait_for(lambda: main.run_id == "run-main-build", pilot)
        await wait_for(lambda: log.line_count > 0 and not log.window, pilot)
        log.focus()
        await pilot.press("t")
        assert log.stamp_mode == "clock"
        assert all(log.stamp_of(i) is None for i in range(log.line_count))
        assert log.stamp_text(0) == " " * 9


class _OneLog(App[None]):
    def compose(self) -> ComposeResult:
        yield RunLog()


async def test_wrapped_lines_make_room_for_the_time_column() -> None:
    """While wrapping, a line as wide as the view takes one row, and two once the time column
    is shown before it; each piece is drawn, the time on the first."""
    app = _OneLog()
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.query_one(RunLog)
        width = log.scrollable_content_region.width
        moment = at(1).timestamp()
        log.show("run", ["a" * width, "b"], times=[moment, moment])
        log.focus()
        await pilot.press("w")
        await pilot.pause()
        assert log.wrap
        assert log.virtual_size.height == 2
        await pilot.press("t")
        await pilot.pause()
        assert log.stamp_mode == "clock"
        assert log.virtual_size.height == 3
        log.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert log.render_line(0).text.rstrip() == log.stamp_text(0) + "a" * (width - 9)
        assert log.render_line(1).text.rstrip() == "a" * 9
