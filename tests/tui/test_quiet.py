"""The work the UI spares itself under load: the footer is not rebuilt when nothing in it
changes, and the collector freezes long-lived objects so full collections stay short."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets._footer import FooterKey

from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.collector import QuietCollector
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.footer import KeysFooter
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event


def footer_keys(app: PocketCIApp) -> list[tuple[str, str, bool]]:
    footer = screen(app).query_one(KeysFooter)
    return [
        (key.key, key.description, key.disabled) for key in footer.query(FooterKey) if key.display
    ]


async def settled(app: PocketCIApp, pilot: Pilot[int]) -> None:
    """Wait until the Events pane has the focus, the selected run is the screen's and the
    footer shows the bindings as they are, with no rebuild on its way (focus moves and the
    run is selected by messages after the table fills, and the footer looks again at the
    bindings only after a refresh)."""
    main = screen(app)
    events, table = main.query_one(EventsTable), main.query_one(RunsTable)
    footer = main.query_one(KeysFooter)

    def done() -> bool:
        selected = table.selected
        return (
            main.focused is events
            and selected is not None
            and main.run_id == selected.id
            and footer.current
            and bool(footer_keys(app))
        )

    await wait_for(done, pilot)


async def toggle_help(app: PocketCIApp, pilot: Pilot[int]) -> None:
    await pilot.press("question_mark")
    await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)
    await pilot.press("question_mark")
    await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
    await settled(app, pilot)


async def test_footer_is_kept_across_the_help_and_rebuilt_when_bindings_change(
    app_paths: AppPaths,
) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        footer = screen(app).query_one(KeysFooter)
        await settled(app, pilot)
        keys, rebuilds = footer_keys(app), footer.rebuilds
        assert ("question_mark", "Help", False) in keys
        assert not any(key[0] == "a" for key in keys)  # approve: only for a waiting event

        for _ in range(3):
            await toggle_help(app, pilot)
        assert footer.rebuilds == rebuilds
        assert footer_keys(app) == keys

        # Selecting a waiting fork pull request offers approve: the footer follows.
        table = screen(app).query_one(EventsTable)
        table.move_cursor(row=[e.event.id for e in table.events].index(ids["waiting"]))
        await wait_for(lambda: screen(app).event_id == ids["waiting"], pilot)
        await wait_for(lambda: ("a", "Approve", False) in footer_keys(app), pilot)
        assert footer.rebuilds > rebuilds

        # The narrow layout drops the palette hint from the footer.
        await pilot.resize_terminal(80, 24)
        await wait_for(lambda: not footer.show_command_palette, pilot)
        await wait_for(lambda: not any(k[0] == "ctrl+p" for k in footer_keys(app)), pilot)
        await pilot.resize_terminal(120, 40)
        await wait_for(lambda: any(k[0] == "ctrl+p" for k in footer_keys(app)), pilot)


@pytest.fixture
def thawed() -> Iterator[None]:
    """Give frozen objects back to the collector after the test (freezing is process-wide)."""
    yield
    gc.unfreeze()


class Node:
    """A container in a reference cycle with itself."""

    def __init__(self) -> None:
        self.me = self


def test_freeze_moves_survivors_out_of_full_collections(thawed: None) -> None:
    collector = QuietCollector(refreeze_objects=20_000)
    collector.watch()
    try:
        kept = [Node() for _ in range(1000)]
        record = collector.freeze()
        # At least what it froze stays frozen (another app's collector, still winding down
        # in this process, may freeze a few more objects meanwhile).
        assert gc.get_freeze_count() >= record.frozen >= len(kept)
        assert not any(o is kept[0] for o in gc.get_objects(generation=2))
        gc.collect()
        assert collector.survivors < 20_000
        assert collector.check() is None  # nothing much appeared since

        more = [{"n": [i]} for i in range(30_000)]
        gc.collect()  # a full collection: they survive it
        assert collector.survivors >= len(more)
        again = collector.check()
        assert again is not None
        assert again.frozen >= record.frozen + len(more)
        assert collector.survivors == 0
        assert len(collector.freezes) == 2
    finally:
        collector.unwatch()
    assert collector._on_collection not in gc.callbacks


def test_freeze_does_not_keep_garbage(thawed: None) -> None:
    garbage = [Node() for _ in range(500)]
    refs = [weakref.ref(node) for node in garbage]
    del garbage
    QuietCollector().freeze()
    assert all(ref() is None for ref in refs)


def test_refreezing_is_bounded(thawed: None) -> None:
    collector = QuietCollector(refreeze_objects=0, max_freezes=2)
    assert collector.check() is not None
    assert collector.check() is not None
    assert collector.check() is not None
    assert collector.check() is None
    assert len(collector.freezes) == 3


async def test_the_app_freezes_once_the_services_are_up(app_paths: AppPaths, thawed: None) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths, quiet_gc=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        assert app.collector is not None
        await wait_for(lambda: bool(app.collector and app.collector.freezes), pilot)
        assert gc.get_freeze_count() > 0
        assert len(app.collector.freezes) == 1
        assert app.collector._on_collection in gc.callbacks
    assert app.collector._on_collection not in gc.callbacks  # stopped with the app
    plain, _ = build(services, app_paths)
    assert plain.collector is None


async def test_the_footer_shows_new_keys_in_the_key_widgets_it_has(app_paths: AppPaths) -> None:
    """The search field takes the focus and gives it back: the footer shows the field's keys,
    then the log's again, in the key widgets it already has (hiding those left over), rather
    than removing them all and mounting new ones."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        footer = main.query_one(KeysFooter)
        main.query_one(RunLog).focus()
        await wait_for(
            lambda: footer.current and ("slash", "Search", False) in footer_keys(app), pilot
        )
        log_keys, widgets = footer_keys(app), set(footer.query(FooterKey))
        await pilot.press("slash")
        await wait_for(lambda: footer.current and footer_keys(app) != log_keys, pilot)
        assert ("slash", "Search", False) not in footer_keys(app)
        assert set(footer.query(FooterKey)) == widgets
        await pilot.press("escape")
        await wait_for(lambda: footer.current and footer_keys(app) == log_keys, pilot)
        assert set(footer.query(FooterKey)) == widgets
