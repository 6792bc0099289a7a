"""Reading a run in the Output pane: zoom, search over the whole log file, the failure line."""

from __future__ import annotations

import dataclasses

from textual.widgets import Input

from pocketci_tui.model import RunState, RunUpdated
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.output_pane import OutputPane
from pocketci_tui.tui.widgets.run_log import MAX_LINES, RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .fakes import TEST_LOG, run
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

FAILURE = TEST_LOG.index("--- FAIL: TestLogin (0.03s)")


async def test_zoom_fills_the_screen_with_the_output_and_keeps_the_run(
    app_paths: AppPaths,
) -> None:
    """z from the Functions pane: the Output pane alone, its title saying the function and
    its state; a new attempt arriving meanwhile does not take its place; z brings the panes
    back."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        await wait_for(lambda: main.run_id == "run-main-test", pilot)
        await pilot.press("tab")
        assert isinstance(app.focused, RunsTable)
        await pilot.press("z")
        pane = main.query_one(OutputPane)
        log = main.query_one(RunLog)
        assert main.focused is log
        assert not main.query_one("#events-pane").display
        assert not main.query_one("#runs-pane").display
        assert pane.region.width == 80
        assert pane.border_title == "Output · testOnGithubPushMain · failed"
        newer = run("run-main-test-2", ids["failed"], "testOnGithubPushMain", RunState.RUNNING)
        newer = dataclasses.replace(newer, attempt=2)
        services.engine.publish(RunUpdated(newer))
        await wait_for(lambda: "run-main-test-2" in main.runs[ids["failed"]], pilot)
        await pilot.pause(0.1)
        assert main.run_id == "run-main-test"
        assert pane.border_title == "Output · testOnGithubPushMain · failed"
        await pilot.press("z")
        assert main.query_one("#events-pane").display
        assert main.query_one("#runs-pane").display
        assert pane.border_title == "Output · testOnGithubPushMain"


async def test_zoom_from_the_events_pane_fills_the_screen_with_the_events(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        assert isinstance(app.focused, EventsTable)
        await pilot.press("z")
        assert not main.query_one("#lower").display
        assert main.query_one("#events-pane").region.height == 23  # all but the footer
        await pilot.press("z")
        assert main.query_one("#lower").display


async def test_a_failed_run_opens_at_its_failure_and_e_goes_back_there(
    app_paths: AppPaths,
) -> None:
    """The first line that looks like the failure (``--- FAIL:``) is marked and in view; after
    scrolling away, e goes back to it."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: log.current == FAILURE, pilot)
        assert log.lines[FAILURE] == "--- FAIL: TestLogin (0.03s)"
        log.current = None
        log.focus()
        await pilot.press("e")
        await wait_for(lambda: log.current == FAILURE, pilot)


async def test_search_reads_the_whole_log_file_and_n_moves_between_matches(
    app_paths: AppPaths,
) -> None:
    """A log longer than the pane keeps: / finds lines older than the tail (read from the
    file around the match), shows the count, n/N move (wrapping), End goes back to the tail,
    Escape clears the search."""
    services, ids = await seeded(app_paths)
    total = MAX_LINES * 3
    lines = [f"line {i}" for i in range(total)]
    lines[7] = "needle: the first"
    lines[total - 5] = "a NEEDLE near the end"
    path = app_paths.logs_dir / f"{ids['failed']}" / "run-main-test.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        log = main.query_one(RunLog)
        await wait_for(
            lambda: log.line_count == MAX_LINES and log.first_line == total - MAX_LINES, pilot
        )
        log.focus()
        await pilot.press("slash")
        field = main.query_one("#log-search", Input)
        assert app.focused is field
        await pilot.press(*"needle")
        await wait_for(lambda: log.current == 7, pilot)
        assert log.window
        assert log.first_line == 0
        assert log.lines[7] == "needle: the first"
        await wait_for(lambda: log.search_status == "1/2", pilot)
        # At 80x24: the count first, then the needle, the state and the hints that fit.
        subtitle = str(main.query_one("#log-pane").border_subtitle)
        assert subtitle == "1/2 /needle · paused · n/N · End follows", subtitle
        await pilot.press("enter")
        assert screen(app).focused is log
        assert not field.display
        await pilot.press("n")
        await wait_for(lambda: log.current == total - 5, pilot)
        assert log.lines[total - 5 - log.first_line] == "a NEEDLE near the end"
        assert log.search_status == "2/2"
        await pilot.press("n")
        await wait_for(lambda: log.current == 7, pilot)
        await pilot.press("N")
        await wait_for(lambda: log.current == total - 5, pilot)
        await pilot.press("end")
        await wait_for(lambda: not log.window and log.follow, pilot)
        await pilot.press("slash", "escape")
        assert not field.display
        assert log.search_status == ""


async def test_search_is_smart_case_and_says_when_nothing_matches(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: log.current == FAILURE, pilot)
        log.focus()
        await pilot.press("slash", *"FAIL", "enter")
        await wait_for(lambda: log.search_status == "1/2", pilot)
        await pilot.press("slash", "backspace", "backspace", "backspace", "backspace", *"fail")
        await wait_for(lambda: log.search_status == "1/2" and log.needle_text == "fail", pilot)
        await pilot.press(*"ed")
        await wait_for(
            lambda: log.search_status == "no match" and log.needle_text == "failed", pilot
        )
