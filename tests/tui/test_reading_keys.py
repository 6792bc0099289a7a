"""The reading keys everywhere (issue 16): ``j``/``k``, ``ctrl+d``/``ctrl+u`` and ``g``/``G`` in
every pane and dialog list, ``h``/``l`` and the wrap toggle ``w`` in the Output pane; letters
still type in a focused text field; remapped keys work."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Input, OptionList

from pocketci_tui.config import Settings
from pocketci_tui.intake.rejections import Rejection
from pocketci_tui.model import EventStatus, RunOutput
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.details import EventDetails
from pocketci_tui.tui.dialogs.fire import FireDialog
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.dialogs.refused import RefusedDialog
from pocketci_tui.tui.dialogs.repositories import RepositoriesDialog
from pocketci_tui.tui.dialogs.secrets import SecretsDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .fakes import ScriptedServices, push
from .harness import fixed_clock, wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

EXTRA = 40
"""Pushes added to the fixed history, so that the Events pane holds more than a screen."""

LONG = "x" * 30 + " the middle of a long line " + "y" * 60 + " its end"


async def many_events(app_paths: AppPaths) -> tuple[ScriptedServices, dict[str, int]]:
    services, ids = await seeded(app_paths)
    store = await Store.open(app_paths.db_file)
    try:
        for i in range(EXTRA):
            event = push(f"d-extra-{i}", "acme/extra", f"b{i}", f"{i:08x}" + "0" * 32, 300 + i)
            await store.record_event(event, EventStatus.SKIPPED, "no function matched")
    finally:
        await store.close()
    return services, ids


def half(widget: Widget) -> int:
    """Half the rows the widget shows (what ctrl+d and ctrl+u move)."""
    height = widget.scrollable_content_region.height
    if isinstance(widget, DataTable) and widget.show_header:
        height -= widget.header_height
    return max(height // 2, 1)


async def running_output(app: PocketCIApp, pilot: Pilot[int], ids: dict[str, int]) -> RunLog:
    """The running build's output, focused: its 40 lines."""
    await select_event(app, pilot, ids["running"])
    await wait_for(lambda: screen(app).run_id == "run-rel-build", pilot)
    log = screen(app).query_one(RunLog)
    await wait_for(lambda: log.line_count == 40, pilot)
    log.focus()
    await pilot.pause()
    return log


async def test_top_bottom_and_half_pages_in_the_events_pane(app_paths: AppPaths) -> None:
    services, _ = await many_events(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5 + EXTRA)
        table = screen(app).query_one(EventsTable)
        assert app.focused is table
        step = half(table)
        assert 1 < step < len(table.events) // 2
        await pilot.press("ctrl+d")
        assert table.cursor_row == step
        await pilot.press("ctrl+d", "ctrl+u")
        assert table.cursor_row == step
        await pilot.press("G")
        assert table.cursor_row == len(table.events) - 1
        await wait_for(lambda: screen(app).event_id == table.events[-1].event.id, pilot)
        await pilot.press("ctrl+u")
        assert table.cursor_row == len(table.events) - 1 - step
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("k", "ctrl+u")  # nothing above the first row
        assert table.cursor_row == 0
        await pilot.press("z")  # the Events pane alone: the same keys, a taller half page
        await wait_for(lambda: not screen(app).query_one("#lower").display, pilot)
        await pilot.pause()
        assert half(table) > step
        await pilot.press("ctrl+d")
        assert table.cursor_row == half(table)
        await pilot.press("G")
        assert table.cursor_row == len(table.events) - 1
        await pilot.press("g")
        assert table.cursor_row == 0


async def test_top_bottom_rows_and_half_pages_in_the_functions_pane(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("tab")
        runs = screen(app).query_one(RunsTable)
        assert app.focused is runs
        last = len(runs.runs) - 1
        assert last == 2
        await pilot.press("G")
        assert runs.cursor_row == last
        await wait_for(lambda: screen(app).run_id == runs.runs[last].id, pilot)
        assert runs.pinned  # the user chose: live updates leave the cursor there
        await pilot.press("g")
        assert runs.cursor_row == 0
        await pilot.press("j", "j", "k")
        assert runs.cursor_row == 1
        await pilot.press("ctrl+d")
        assert runs.cursor_row == min(1 + half(runs), last)
        await pilot.press("ctrl+u")
        assert runs.cursor_row == max(last - half(runs), 0)


async def test_half_pages_top_and_bottom_in_the_output(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        log = await running_output(app, pilot, ids)
        bottom = log.max_scroll_y
        assert bottom > 2 * half(log)
        assert log.follow
        await pilot.press("ctrl+u")
        assert log.scroll_y == bottom - half(log)
        assert not log.follow
        await pilot.press("k")
        assert log.scroll_y == bottom - half(log) - 1
        await pilot.press("j", "ctrl+d")
        assert log.scroll_y == bottom
        assert log.follow  # back at the end: following again
        await pilot.press("g")
        assert log.scroll_y == 0
        assert not log.follow
        await pilot.press("ctrl+d")
        assert log.scroll_y == half(log)
        await pilot.press("G")
        assert log.follow
        assert log.scroll_y == log.max_scroll_y


async def test_h_l_scroll_long_lines_and_w_wraps_them_kept_across_runs(
    app_paths: AppPaths,
) -> None:
    """Long lines scroll sideways with h/l; w wraps them to the pane's width (the border says
    so, the end stays in view, h/l then do nothing); the wrap stays on for another run; w
    again shows them whole."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        log = await running_output(app, pilot, ids)
        services.engine.publish(RunOutput("run-rel-build", (LONG, "short", LONG)))
        await wait_for(lambda: log.line_count == 43, pilot)
        width = log.scrollable_content_region.width
        await wait_for(lambda: log.virtual_size.width == len(LONG), pilot)
        await pilot.pause()
        await pilot.press("l")
        step = max(width // 4, 4)
        assert log.scroll_x == step
        await pilot.press("l", "h")
        assert log.scroll_x == step
        await pilot.press("h", "h")
        assert log.scroll_x == 0

        await pilot.press("l", "w")
        assert log.wrap
        pane = screen(app).query_one("#log-pane")
        assert str(pane.border_subtitle).startswith("wrap · following")
        assert log.scroll_x == 0
        pieces = -(-len(LONG) // width)
        assert pieces > 1
        assert log.virtual_size.width == width
        assert log.virtual_size.height == 41 + 2 * pieces  # 40 short lines, 2 long ones
        await pilot.pause()
        assert log.is_vertical_scroll_end
        # The last line's rows: its pieces in order, then nothing past its end.
        rows = log.virtual_size.height
        last_rows = [log.line_at(rows - pieces + i) for i in range(pieces)]
        assert last_rows == [(42, i) for i in range(pieces)]
        assert log.line_at(rows - pieces - 1) == (41, 0)  # "short"
        await pilot.press("l")
        assert log.scroll_x == 0

        services.engine.publish(RunOutput("run-rel-build", (LONG,)))
        await wait_for(lambda: log.virtual_size.height == 41 + 3 * pieces, pilot)
        await wait_for(lambda: log.is_vertical_scroll_end, pilot)

        await select_event(app, pilot, ids["failed"])
        await wait_for(lambda: screen(app).run_id == "run-main-test", pilot)
        await wait_for(lambda: log.line_count == 8, pilot)
        assert log.wrap
        await wait_for(lambda: str(pane.border_subtitle).startswith("wrap · "), pilot)
        log.focus()
        await pilot.press("w")
        assert not log.wrap
        assert not str(pane.border_subtitle).startswith("wrap")
        assert log.virtual_size.height == 8


async def test_the_reading_keys_work_in_the_zoomed_output(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        log = await running_output(app, pilot, ids)
        services.engine.publish(RunOutput("run-rel-build", (LONG,) * 3))
        await wait_for(lambda: log.line_count == 43, pilot)
        await pilot.press("z")
        await wait_for(lambda: not screen(app).query_one("#runs-pane").display, pilot)
        await pilot.pause()
        assert screen(app).query_one("#log-pane").region.width == 80
        await pilot.press("ctrl+u")
        assert not log.follow
        await pilot.press("g")
        assert log.scroll_y == 0
        await pilot.press("l")
        assert log.scroll_x > 0
        await pilot.press("w")
        assert log.wrap
        assert log.scroll_x == 0
        assert log.virtual_size.width == log.scrollable_content_region.width
        await pilot.press("G")
        assert log.follow
        assert log.is_vertical_scroll_end


async def test_letters_type_in_a_focused_input(app_paths: AppPaths) -> None:
    """j, k, g, G are text while a field has the focus: the events filter, the output's search
    and the fire picker's search all receive them; the lists do not move."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        table = main.query_one(EventsTable)
        await pilot.press("slash")
        field = main.query_one("#events-filter", Input)
        assert app.focused is field
        await pilot.press("j", "k", "g", "G", "h", "l", "w")
        assert field.value == "jkgGhlw"
        assert table.cursor_row == 0
        await pilot.press("escape")  # clears the filter: every event comes back
        await wait_for(lambda: ids["running"] in {e.event.id for e in table.events}, pilot)
        log = await running_output(app, pilot, ids)
        await pilot.press("slash")
        search = main.query_one("#log-search", Input)
        assert app.focused is search
        await pilot.press("j", "w", "G")
        assert search.value == "jwG"
        assert not log.wrap
        await pilot.press("escape")
        table.focus()
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        dialog = app.screen
        picker = dialog.query_one("#fire-events", DataTable)
        await wait_for(lambda: picker.row_count == 5, pilot)
        assert isinstance(app.focused, Input)
        await pilot.press("j", "G")
        assert app.focused.value == "jG"
        assert picker.cursor_row == 0


async def test_rows_top_bottom_and_half_pages_in_the_fire_picker_list(app_paths: AppPaths) -> None:
    """Tab leaves the search for the list, where the list keys move the highlight."""
    services, _ = await many_events(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5 + EXTRA)
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        picker = app.screen.query_one("#fire-events", DataTable)
        await wait_for(lambda: picker.row_count == 5 + EXTRA, pilot)
        await pilot.press("tab")
        assert app.focused is picker
        await pilot.press("j", "j", "k")
        assert picker.cursor_row == 1
        await pilot.press("G")
        assert picker.cursor_row == 5 + EXTRA - 1
        await pilot.press("g", "ctrl+d")
        assert picker.cursor_row == half(picker) > 1
        await pilot.press("ctrl+u")
        assert picker.cursor_row == 0


async def test_list_keys_in_the_secrets_repositories_and_refused_dialogs(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    for name in ("a-token", "b-token", "c-token"):
        await services.secrets.set(name, "0123456789abcdef")
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        secrets = app.screen
        assert isinstance(secrets, SecretsDialog)
        await wait_for(lambda: len(secrets.names) == 5, pilot)
        options = secrets.query_one(OptionList)
        await wait_for(lambda: options.highlighted == 0, pilot)
        await pilot.press("j", "j")
        assert options.highlighted == 2
        await pilot.press("k")
        assert options.highlighted == 1
        await pilot.press("G")
        assert options.highlighted == 4
        await pilot.press("g")
        assert options.highlighted == 0
        await pilot.press("ctrl+d")
        assert options.highlighted == min(half(options), 4)
        await pilot.press("G", "ctrl+u")
        assert options.highlighted == max(4 - half(options), 0)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)

        await pilot.press("v")
        await wait_for(lambda: isinstance(app.screen, RepositoriesDialog), pilot)
        repos = app.screen.query_one("#repos-table", DataTable)
        await pilot.press("G")
        assert repos.cursor_row == repos.row_count - 1 == 1
        await pilot.press("g")
        assert repos.cursor_row == 0
        await pilot.press("ctrl+d")
        assert repos.cursor_row == 1
        await pilot.press("ctrl+u")
        assert repos.cursor_row == 0
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)

        now = fixed_clock()
        refusals = [Rejection(now, 401, "bad signature", delivery_id=f"r-{i}") for i in range(30)]
        app.push_screen(RefusedDialog(refusals, 30, fixed_clock))
        await wait_for(lambda: bool(app.screen.query("#refused-table")), pilot)
        refused = app.screen.query_one("#refused-table", DataTable)
        await pilot.press("j", "j", "k")
        assert refused.cursor_row == 1
        await pilot.press("G")
        assert refused.cursor_row == 29
        await pilot.press("ctrl+u")
        assert refused.cursor_row == 29 - half(refused)
        await pilot.press("g")
        assert refused.cursor_row == 0
        await pilot.press("ctrl+d")
        assert refused.cursor_row == half(refused)


async def test_list_keys_scroll_the_help_and_the_details(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)
        help_table = app.screen.query_one("#help-table", DataTable)
        await pilot.pause()
        assert help_table.max_scroll_y > half(help_table)
        await pilot.press("j")
        assert help_table.scroll_y == 1
        await pilot.press("G")
        assert help_table.scroll_y == help_table.max_scroll_y
        await pilot.press("g", "ctrl+d")
        assert help_table.scroll_y == half(help_table)
        await pilot.press("ctrl+u", "k")
        assert help_table.scroll_y == 0
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)

    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 16)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, EventDetails), pilot)
        body = app.screen.query_one("#details-body")
        await pilot.pause()
        assert body.max_scroll_y > 0
        await pilot.press("G")
        assert body.scroll_y == body.max_scroll_y
        await pilot.press("g")
        assert body.scroll_y == 0
        await pilot.press("ctrl+d")
        assert body.scroll_y == min(body.max_scroll_y, max(body.size.height // 2, 1))
        await pilot.press("ctrl+u")
        assert body.scroll_y == 0
        await pilot.press("j")
        assert body.scroll_y == 1
        await pilot.press("k")
        assert body.scroll_y == 0


async def test_remapped_reading_keys(app_paths: AppPaths, tmp_path: Path) -> None:
    """The new bindings have ids, and the keymap moves them: the old keys stop working."""
    services, ids = await many_events(app_paths)
    keymap = {"cursor-bottom": "b", "log-wrap": "ctrl+w", "list-bottom": "B", "log-right": "L"}
    app, _ = build(services, app_paths, Settings(keymap=keymap))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5 + EXTRA)
        table = screen(app).query_one(EventsTable)
        await pilot.press("G")
        assert table.cursor_row == 0
        await pilot.press("b")
        assert table.cursor_row == len(table.events) - 1
        log = await running_output(app, pilot, ids)
        services.engine.publish(RunOutput("run-rel-build", (LONG,)))
        await wait_for(lambda: log.virtual_size.width == len(LONG), pilot)
        await pilot.pause()
        await pilot.press("l")
        assert log.scroll_x == 0
        await pilot.press("L")
        assert log.scroll_x > 0
        await pilot.press("ctrl+w")
        assert log.wrap
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)
        rows = app.key_rows()
        assert ("ctrl+w", "wrap long lines, or not (Output focused)", "log-wrap") in (rows)
        help_table = app.screen.query_one("#help-table", DataTable)
        await pilot.press("G")
        assert help_table.scroll_y == 0
        await pilot.press("B")
        assert help_table.scroll_y == help_table.max_scroll_y > 0
