"""What the Output pane shows after the user acts: the newest attempt of what they acted on, and
never a run they did not choose. Real engine, listener, git and the stand-in ``dagger``."""

from __future__ import annotations

from textual.widgets import Label

from pocketci_tui.model import RunState
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import Rig, dagger_call_groups, describe, make_flaky_pass, wait_for
from .test_engine_actions import main, push_and_finish, runs, start_app, started


async def test_a_passing_rerun_is_shown_not_the_old_failure(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "flaky")
        screen = main(app)
        events = screen.query_one(EventsTable)
        event_id = screen.event_id
        assert event_id is not None
        failed = runs(app).selected
        assert failed is not None
        assert (failed.function, failed.state) == ("onGithubPushFlaky", RunState.FAILED)
        assert events.states[event_id] == "failed"

        make_flaky_pass()
        await pilot.press("tab", "r")
        await wait_for(
            lambda: any(r.attempt == 2 and r.state.finished for r in runs(app).runs),
            pilot,
            explain=lambda: describe(rig),
        )
        await pilot.pause(0.3)  # later notices must not move the cursor back
        shown = runs(app).selected
        assert shown is not None
        assert (shown.function, shown.attempt, shown.state) == (
            "onGithubPushFlaky",
            2,
            RunState.PASSED,
        )
        assert screen.run_id == shown.id
        assert screen.query_one("#log-pane").border_title == "Output · onGithubPushFlaky #2"
        assert not screen.query_one("#run-reason", Label).display  # no "✗ failed" above it
        # The event's state is the latest attempt's: passed.
        await wait_for(lambda: events.states[event_id] == "passed", pilot)


async def test_a_refire_shows_the_newest_attempt(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "flaky")
        make_flaky_pass()
        assert isinstance(app.focused, EventsTable)
        await pilot.press("r")  # Events focused: fire the whole event again
        await wait_for(
            lambda: any(
                r.function == "onGithubPushFlaky" and r.attempt == 2 and r.state.finished
                for r in runs(app).runs
            ),
            pilot,
        )
        await pilot.pause(0.3)
        shown = runs(app).selected
        assert shown is not None
        assert (shown.function, shown.attempt, shown.state) == (
            "onGithubPushFlaky",
            2,
            RunState.PASSED,
        )
        assert main(app).query_one(EventsTable).states[main(app).event_id or 0] == "passed"


async def test_rerun_of_a_passed_function_stays_on_it_while_another_failed(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "main")
        await pilot.press("tab")
        table = runs(app)
        assert table.selected is not None
        assert table.selected.function == "testOnGithubPushMain"  # the failure first
        await pilot.press("up")  # the user chooses the passed build
        assert table.selected is not None
        assert table.selected.function == "onGithubPushMain"
        await pilot.press("r")
        await wait_for(
            lambda: any(
                r.function == "onGithubPushMain" and r.attempt == 2 and r.state.finished
                for r in table.runs
            ),
            pilot,
        )
        await pilot.pause(0.3)
        shown = table.selected
        assert shown is not None
        assert (shown.function, shown.attempt) == ("onGithubPushMain", 2)
        assert main(app).run_id == shown.id


async def test_cancel_keeps_the_selection_the_user_acted_on(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        assert (await rig.post_push("mixed")).status == 202
        table = runs(app)
        await wait_for(
            lambda: (
                any(
                    r.function == "checkOnGithubPushMixed" and r.state is RunState.FAILED
                    for r in table.runs
                )
                and any(r.state is RunState.RUNNING for r in table.runs)
                and bool(dagger_call_groups(rig.settings.dagger.cli))
            ),
            pilot,
            explain=lambda: describe(rig),
        )
        selected = table.selected
        assert selected is not None
        assert (selected.function, selected.state) == ("onGithubPushMixed", RunState.RUNNING)
        await pilot.press("tab", "c")
        await wait_for(
            lambda: any(r.state is RunState.CANCELLED for r in table.runs),
            pilot,
            explain=lambda: describe(rig),
        )
        await pilot.pause(0.3)
        shown = table.selected
        assert shown is not None
        assert (shown.id, shown.state) == (selected.id, RunState.CANCELLED)
        assert main(app).run_id == selected.id


async def test_a_clicked_run_stays_selected_when_others_change(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        assert (await rig.post_push("mixed")).status == 202
        table = runs(app)
        await wait_for(
            lambda: (
                any(r.state is RunState.FAILED for r in table.runs)
                and any(r.state is RunState.RUNNING for r in table.runs)
            ),
            pilot,
            explain=lambda: describe(rig),
        )
        clicked = table.runs[2]  # the first skipped function (skipped rows come last)
        assert clicked.state is RunState.SKIPPED
        assert await pilot.click(RunsTable, offset=(4, 3))  # header on line 0, row 2 on line 3
        await wait_for(lambda: main(app).run_id == clicked.id, pilot)
        event_id = main(app).event_id
        assert event_id is not None
        app.actions.cancel_event(event_id)  # the runs change state: the click must hold
        await wait_for(lambda: any(r.state is RunState.CANCELLED for r in table.runs), pilot)
        await pilot.pause(0.3)
        assert table.selected is not None
        assert table.selected.id == clicked.id
        assert main(app).run_id == clicked.id
