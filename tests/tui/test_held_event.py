"""An event held while the secret store does not answer waits too, but it is no fork's pull
request: the screen must not offer to approve it (the engine would refuse: only forks need
approval) nor tell the user to press ``a``; a fork's waiting pull request still is offered."""

from __future__ import annotations

from textual.pilot import Pilot

from pocketci_tui.model import EventStatus
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.footer import KeysFooter
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import push
from .harness import wait_for
from .test_quiet import footer_keys
from .test_ui_actions import build, ready, screen, seeded

HELD = "held: the secret store did not answer (timed out); trying again in 30s"


async def choose(app: PocketCIApp, pilot: Pilot[int], event_id: int) -> None:
    """Select the event (which may have no runs) and wait for the footer to follow."""
    table = screen(app).query_one(EventsTable)
    table.focus()
    table.move_cursor(row=[e.event.id for e in table.events].index(event_id))
    await wait_for(lambda: screen(app).event_id == event_id, pilot)
    await wait_for(lambda: screen(app).query_one(KeysFooter).current, pilot)


def offers_approve(app: PocketCIApp) -> bool:
    return any(key == "a" for key, _, _ in footer_keys(app))


async def test_a_held_push_is_not_offered_for_approval(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    store = await Store.open(app_paths.db_file)
    held, _ = await store.record_event(
        push("d-held", "acme/api", "main", "a" * 40, 0.5), EventStatus.WAITING, HELD
    )
    await store.close()
    assert held.event.id is not None
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 6)
        main = screen(app)
        log = main.query_one(RunLog)

        await choose(app, pilot, ids["waiting"])  # the fork's pull request: offered
        await wait_for(lambda: offers_approve(app), pilot)
        await wait_for(lambda: any("press a" in line for line in log.lines), pilot)

        await choose(app, pilot, held.event.id)
        await wait_for(lambda: any("secret store" in line for line in log.lines), pilot)
        assert not any("press a" in line for line in log.lines), log.lines
        await wait_for(lambda: not offers_approve(app), pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)  # no fork approval dialog for a push
        assert not [call for call in services.engine.calls if "approve" in call[0]]
