"""While a text field (the events filter, the search in the Output pane) has the focus, the
footer says how to leave it, Enter and Esc, and no longer offers ``/ Filter``: there ``/``
only types a slash."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input

from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.footer import KeysFooter
from pocketci_tui.tui.widgets.run_log import RunLog

from .harness import wait_for
from .test_quiet import footer_keys, settled
from .test_ui_actions import build, ready, screen, seeded, select_event


async def keys_in(app: PocketCIApp, pilot: Pilot[int], field: Input) -> set[tuple[str, str]]:
    """The footer's (key, description) pairs once ``field`` has the focus."""
    footer = screen(app).query_one(KeysFooter)
    await wait_for(lambda: screen(app).focused is field, pilot)
    await wait_for(lambda: footer.current, pilot)
    return {(key, what) for key, what, _ in footer_keys(app)}


async def test_the_footer_says_enter_and_esc_in_the_filter_and_the_search(
    app_paths: AppPaths,
) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await settled(app, pilot)
        main = screen(app)
        assert ("slash", "Filter") in {(key, what) for key, what, _ in footer_keys(app)}

        await pilot.press("slash")
        shown = await keys_in(app, pilot, main.query_one("#events-filter", Input))
        assert ("slash", "Filter") not in shown
        assert {("enter", "Done"), ("escape", "Clear")} <= shown
        await pilot.press("s", "l", "a", "s", "h", "/")
        assert main.query_one("#events-filter", Input).value == "slash/"
        await pilot.press("escape")  # clears and hides the filter, as before
        await wait_for(lambda: isinstance(main.focused, EventsTable), pilot)
        assert main.query_one("#events-filter", Input).value == ""

        # Leaving the filter gives the Events pane the focus after a refresh: wait for that to
        # be over, then for the log to have it, or the slash would open the filter again.
        await pilot.pause()
        log = main.query_one(RunLog)
        log.focus()
        await wait_for(lambda: main.focused is log, pilot)
        await pilot.pause()
        assert main.focused is log
        await pilot.press("slash")
        search = main.query_one("#log-search", Input)
        shown = await keys_in(app, pilot, search)
        assert ("slash", "Filter") not in shown
        assert {("enter", "Done"), ("escape", "Clear")} <= shown
        await pilot.press("x", "escape")  # clears the search and goes back to the log
        await wait_for(lambda: isinstance(main.focused, RunLog), pilot)
        assert search.value == ""
        assert not search.display
