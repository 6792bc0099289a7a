"""Smoke: the app starts, shows a delivery posted to its listener, and its runs finish."""

from __future__ import annotations

from pocketci_tui.model import RunState
from pocketci_tui.tui.app import make_app
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import Rig, wait_for


async def test_push_shows_event_and_runs(rig: Rig) -> None:
    app = make_app(rig.settings, paths=rig.paths, services=rig.make_services(), first_start=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: bool(rig.services and rig.services.url), pilot)
        reply = await rig.post_push("main")
        assert reply.status == 202
        table = app.screen.query_one(EventsTable)
        await wait_for(lambda: len(table.events) == 1, pilot)
        runs = app.screen.query_one(RunsTable)
        await wait_for(
            lambda: len(runs.runs) >= 2 and all(r.state.finished for r in runs.runs), pilot
        )
        states = {r.function: r.state for r in runs.runs}
        assert states["onGithubPushMain"] is RunState.PASSED
        assert states["testOnGithubPushMain"] is RunState.FAILED
