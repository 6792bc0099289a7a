"""Columns sized from the width there is (issue 10: at 120 columns the pull request number was
cut while 50 columns stayed empty; at 80x24 durations lost their unit; the forge column had no
header)."""

from __future__ import annotations

import pytest

from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.events_table import EventsTable, column_layout, fit
from pocketci_tui.tui.widgets.runs_table import RunsTable, runs_layout

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event


def cell_texts(table: EventsTable | RunsTable, column: str) -> list[str]:
    return [str(value) for value in table.get_column(column)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_columns_use_the_width_there_is(app_paths: AppPaths, size: tuple[int, int]) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=size) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        events = main.query_one(EventsTable)
        runs = main.query_one(RunsTable)
        await pilot.pause(0.2)
        for table in (events, runs):
            # Everything fits the pane: nothing hides behind a horizontal scrollbar.
            assert table.max_scroll_x == 0, (table.id, table.virtual_size, table.size)
            used = sum(c.get_render_width(table) for c in table.columns.values())
            assert table.size.width - 1 - used <= 2, (table.id, used, table.size.width)
        headers = [str(c.label) for c in events.columns.values()]
        assert "forge" in headers
        labels = cell_texts(events, "event")
        assert any(label.endswith("#17") for label in labels)  # the PR number is never cut
        # Short repository names leave their room to the event, even at 80 columns.
        assert "pull_request/opened #17" in labels
        durations = [d for d in cell_texts(runs, "time") if d]
        assert durations == ["3.2s", "7.9s"]  # whole, with their unit
        if size[0] >= 120:
            assert "pull_request/opened #17" in labels
            assert "Add dark mode" in cell_texts(events, "title")
            names = cell_texts(runs, "function")
            assert "deployOnGithubPushRelease" in names
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: main.run_id == "run-rel-build", pilot)
        assert runs.max_scroll_x == 0


def test_layouts_fill_the_width_exactly() -> None:
    for width in range(40, 200):
        layout = column_layout(width)
        used = sum(w + 2 for _, w in layout) + 1
        assert used == width or width < 60, (width, layout)
    assert "title" not in dict(column_layout(78))  # at 80 columns: no room for titles
    assert dict(column_layout(118))["title"] >= 20  # at 120: a title column, not empty space
    for width in range(30, 120):
        for compact in (True, False):
            layout = runs_layout(width, 25, compact=compact)
            assert dict(layout)["time"] == 6
            assert sum(w + 2 for _, w in layout) + 1 <= max(width, 30)


def test_fit_keeps_the_suffix() -> None:
    assert fit("pull_request/opened", " #17", 40).plain == "pull_request/opened #17"
    assert fit("pull_request/opened", " #17", 16).plain == "pull_reques… #17"
    assert len(fit("pull_request/opened", " #4242 x3", 16).plain) == 16
