"""The events filter's terms and the quick filters (F failed, R in progress, W waiting)."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Input

from pocketci_tui.model import EventStatus, EventStored, RunState, RunUpdated, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import push
from .harness import fixed_clock, wait_for
from .test_ui_actions import build, ready, screen, seeded


def _shown(table: EventsTable) -> set[int]:
    return {e.event.id for e in table.events if e.event.id is not None}


async def test_quick_filters_toggle(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        field = screen(app).query_one("#events-filter", Input)
        await pilot.press("F")
        await wait_for(lambda: _shown(table) == {ids["failed"]}, pilot)
        assert field.value == "state:failed,error"
        assert field.display
        assert table.has_focus  # the keys keep working on the list
        pane = screen(app).query_one("#events-pane")
        assert "/state:failed" in str(pane.border_title)
        await pilot.press("W")
        await wait_for(lambda: _shown(table) == {ids["waiting"]}, pilot)
        await pilot.press("R")
        await wait_for(lambda: _shown(table) == {ids["running"]}, pilot)
        await pilot.press("R")  # again: every event
        await wait_for(lambda: len(table.events) == 5, pilot)
        assert field.value == ""
        assert not field.display


async def test_typed_terms_and_an_unknown_state(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        await pilot.press("slash", *"repo:acme/* event:pull_request", "enter")
        await wait_for(lambda: _shown(table) == {ids["waiting"]}, pilot)
        field = screen(app).query_one("#events-filter", Input)
        field.value = "state:faild"
        pane = screen(app).query_one("#events-pane")
        await wait_for(lambda: "unknown state 'faild'" in str(pane.border_subtitle), pilot)
        await wait_for(lambda: not table.events, pilot)
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: any("No event matches" in line for line in log.lines), pilot)
        assert any("state:failed" in line for line in log.lines)  # the syntax, to fix it
        await pilot.press("escape")
        await wait_for(lambda: len(table.events) == 5, pilot)


async def test_live_events_obey_the_terms(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        screen(app).query_one("#events-filter", Input).value = "repo:acme/web state:received"
        await wait_for(lambda: len(table.events) == 0, pilot)
        for n, repository in enumerate(("acme/api", "acme/web")):
            event = replace(push(f"live{n}", repository, "main", "f" * 40, 0.1), id=900 + n)
            services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        await wait_for(lambda: _shown(table) == {901}, pilot)


async def test_an_event_leaves_a_state_filter_when_its_state_changes(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        await pilot.press("R")
        await wait_for(lambda: _shown(table) == {ids["running"]}, pilot)
        # Both of its runs end: the event is no longer in progress, so it leaves the list.
        assert services.store is not None
        runs = await services.store.list_runs(ids["running"])
        now = fixed_clock()
        for run in runs:
            done = replace(run, state=RunState.PASSED, started_at=now, finished_at=now)
            await services.store.update_run(done)
            services.engine.publish(RunUpdated(done))
        await wait_for(lambda: not table.events, pilot)
        await pilot.press("R")
        await wait_for(lambda: len(table.events) == 5, pilot)
        assert table.states[ids["running"]] == "passed"
