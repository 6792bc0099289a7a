"""Summaries: a queued run's place in the queue, and every repository at a glance (v)."""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import DataTable, Label

from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.dialogs.details import EventDetails
from pocketci_tui.tui.dialogs.repositories import RepositoriesDialog
from pocketci_tui.tui.text import ordinal, queue_note
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event


def test_ordinals_and_queue_notes() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip
    assert queue_note("a", ["a", "b", "c"]) == "next to start"
    assert queue_note("c", ["a", "b", "c"]) == "3rd in line"
    assert queue_note("x", ["a"]) == ""


async def test_a_queued_run_says_its_place(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        table = screen(app).query_one(RunsTable)
        await pilot.press("tab")
        table.move_cursor(row=[r.id for r in table.runs].index("run-rel-lint"))
        await wait_for(lambda: screen(app).run_id == "run-rel-lint", pilot)
        reason = screen(app).query_one("#run-reason", Label)
        await wait_for(lambda: str(reason.render()) == "· queued: next to start", pilot)
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, EventDetails), pilot)
        dialog = app.screen
        assert isinstance(dialog, EventDetails)
        console = Console(width=120, file=io.StringIO())
        console.print(dialog.fields_table())
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert "next to start" in text
        assert "took" in text  # the build has been running: the event's time so far


async def test_v_shows_every_repository(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("v")
        await wait_for(lambda: isinstance(app.screen, RepositoriesDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, RepositoriesDialog)
        rows = {s.repository: s for s in dialog.summaries}
        assert set(rows) == {"acme/api", "acme/web"}
        api = rows["acme/api"]
        assert (api.latest_state, api.outcome) == ("running", "failed")
        assert rows["acme/web"].latest_state == "waiting"
        table = dialog.query_one("#repos-table", DataTable)
        assert table.row_count == 2
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, RepositoriesDialog), pilot)
