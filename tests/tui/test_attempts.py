"""Attempts grouped under their function: the latest first, older ones collapsed (space
shows them), a function skipped by every re-fire shown once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from textual.pilot import Pilot

from pocketci_tui.model import Run, RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.widgets.runs_table import RunsTable, group_attempts, run_name

from .fakes import ScriptedEngine, ScriptedServices, at
from .harness import wait_for
from .scenes import seed_attempts
from .test_ui_actions import build, ready, screen, select_event


def _run(run_id: str, function: str, attempt: int, state: RunState, minutes: float) -> Run:
    return Run(
        id=run_id,
        event_id=1,
        function=function,
        state=state,
        attempt=attempt,
        created_at=at(minutes),
    )


def test_group_attempts_latest_first_older_collapsed() -> None:
    runs = [
        _run("b1", "build", 1, RunState.FAILED, 30),
        _run("d1", "deploy", 1, RunState.SKIPPED, 30),
        _run("b2", "build", 2, RunState.PASSED, 20),
        _run("d2", "deploy", 2, RunState.SKIPPED, 20),
        _run("a1", "audit", 1, RunState.PASSED, 30),
        _run("b3", "build", 3, RunState.RUNNING, 10),
    ]
    assert [(r.id, d) for r, d in group_attempts(runs)] == [("a1", 0), ("b3", 0), ("d2", 0)]
    assert [(r.id, d) for r, d in group_attempts(runs, {"build"})] == [
        ("a1", 0),
        ("b3", 0),
        ("b2", 1),
        ("b1", 1),
        ("d2", 0),
    ]


def test_two_runs_of_one_attempt_the_later_leads() -> None:
    first = _run("x", "build", 2, RunState.FAILED, 20)
    later = Run(
        id="y",
        event_id=1,
        function="build",
        state=RunState.PASSED,
        attempt=2,
        created_at=(first.created_at or at(0)) + timedelta(seconds=1),
    )
    assert [r.id for r, _ in group_attempts([first, later])] == ["y"]


async def _app(app_paths: AppPaths) -> tuple[PocketCIApp, dict[str, int]]:
    app_paths.data_dir.mkdir(parents=True, exist_ok=True)
    engine = ScriptedEngine()
    store = await Store.open(app_paths.db_file)
    try:
        ids = await seed_attempts(store, app_paths, engine)
    finally:
        await store.close()
    app, _ = build(ScriptedServices(app_paths, engine), app_paths)
    return app, ids


async def _on_test_function(app: PocketCIApp, pilot: Pilot[int], event_id: int) -> RunsTable:
    await ready(app, pilot, 5)
    await select_event(app, pilot, event_id)
    table = screen(app).query_one(RunsTable)
    await wait_for(lambda: table.older_attempts("testOnGithubPushMain") == 2, pilot)
    await pilot.press("tab")
    row = [r.function for r in table.runs].index("testOnGithubPushMain")
    table.move_cursor(row=row)
    await wait_for(lambda: screen(app).run_id == "run-3-testOnGithubPushMain", pilot)
    return table


async def test_space_shows_and_hides_older_attempts(app_paths: AppPaths) -> None:
    app, ids = await _app(app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await _on_test_function(app, pilot, ids["failed"])
        # Three attempts of three functions, nine runs: three rows, the latest of each.
        assert len(table.all_runs) == 9
        assert [(r.function, r.attempt) for r in table.runs] == [
            ("onGithubPushMain", 3),
            ("testOnGithubPushMain", 3),
            ("deployOnGithubPushRelease", 3),  # skipped by every re-fire: once
        ]
        await pilot.press("space")
        await wait_for(lambda: len(table.runs) == 5, pilot)
        assert [r.id for r in table.runs][1:4] == [
            "run-3-testOnGithubPushMain",
            "run-2-testOnGithubPushMain",
            "run-main-test",
        ]
        assert str(table.get_row_at(2)[0]).strip() == "└ #2"
        await pilot.press("down")  # an older attempt shows its own output
        await wait_for(lambda: screen(app).run_id == "run-2-testOnGithubPushMain", pilot)
        pane = screen(app).query_one("#log-pane")
        assert "#2" in str(pane.border_title)
        await pilot.press("space")  # hide them again: the cursor goes back to the latest
        await wait_for(lambda: len(table.runs) == 3, pilot)
        await wait_for(lambda: screen(app).run_id == "run-3-testOnGithubPushMain", pilot)


async def test_space_does_nothing_without_older_attempts(app_paths: AppPaths) -> None:
    app, ids = await _app(app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        table = screen(app).query_one(RunsTable)
        await pilot.press("tab")
        rows = list(table.runs)
        assert not screen(app).check_action("attempts", ())
        await pilot.press("space")
        await pilot.pause(0.1)
        assert table.runs == rows
        # No function has a second attempt: no tree marks take room from the names.
        assert not str(table.get_row_at(0)[0]).startswith(("▸", " "))


def test_functions_of_two_specs_with_one_name_are_two_rows_named_by_spec() -> None:
    api = replace(_run("a1", "build", 1, RunState.PASSED, 30), spec="api")
    web = replace(_run("w1", "build", 1, RunState.FAILED, 20), spec="web")
    rows = group_attempts([api, web])
    assert [(r.id, d) for r, d in rows] == [("a1", 0), ("w1", 0)]
    assert [run_name(r) for r, _ in rows] == ["api/build", "web/build"]
    assert run_name(_run("s1", "build", 1, RunState.PASSED, 10)) == "build"
