"""Zoomed, the screen says how to get back: the footer shows ``esc Back`` and Esc brings the
other panes back, once the line selection (and a search or filter) has had its Esc; not
zoomed, Esc is what it was and the footer does not offer it."""

from __future__ import annotations

from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.footer import KeysFooter
from pocketci_tui.tui.widgets.run_log import RunLog

from .harness import wait_for
from .test_quiet import footer_keys
from .test_ui_actions import build, ready, screen, seeded, select_event

BACK = ("escape", "Back", False)


def zoomed(main: MainScreen) -> bool:
    return main.has_class("-zoom-output") or main.has_class("-zoom-events")


def shows_back(app: PocketCIApp) -> bool:
    return screen(app).query_one(KeysFooter).current and BACK in footer_keys(app)


def hides_back(app: PocketCIApp) -> bool:
    footer = screen(app).query_one(KeysFooter)
    return footer.current and bool(footer_keys(app)) and BACK not in footer_keys(app)


async def test_esc_leaves_the_zoom_and_the_footer_says_so(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        await wait_for(lambda: main.run_id == "run-main-test", pilot)
        await wait_for(lambda: hides_back(app), pilot)

        main.query_one(RunLog).focus()
        await pilot.press("z")
        assert main.has_class("-zoom-output")
        await wait_for(lambda: shows_back(app), pilot)
        log = main.query_one(RunLog)
        await pilot.press("V")
        await wait_for(lambda: log.selection is not None, pilot)
        await pilot.press("escape")  # the selection goes first; still zoomed
        await pilot.pause()
        assert log.selection is None
        assert main.has_class("-zoom-output")
        await pilot.press("escape")
        await wait_for(lambda: not zoomed(main), pilot)
        assert main.query_one("#events-pane").display
        assert main.query_one("#runs-pane").display
        await wait_for(lambda: hides_back(app), pilot)

        main.query_one(EventsTable).focus()
        await pilot.press("z")
        assert main.has_class("-zoom-events")
        await wait_for(lambda: shows_back(app), pilot)
        await pilot.press("escape")
        await wait_for(lambda: not zoomed(main), pilot)
        await pilot.press("escape")  # not zoomed: nothing to leave, nothing changes
        await pilot.pause()
        assert not zoomed(main)
        assert main.event_id == ids["failed"]
