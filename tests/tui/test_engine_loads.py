"""A pool of engines in the UI: each engine's load in the status bar, told with the counts,
and the engine a run ran on in the Output pane's title."""

from __future__ import annotations

from dataclasses import replace

from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

WIDTH = 80


async def test_engine_loads_and_a_runs_engine_show_at_80_columns(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    store = await Store.open(app_paths.db_file)
    try:
        for stored_run in await store.list_runs(ids["failed"]):
            await store.update_run(replace(stored_run, engine="rack"))
    finally:
        await store.close()
    app, _ = build(services, app_paths)
    async with app.run_test(size=(WIDTH, 24)) as pilot:
        await ready(app, pilot, 5)
        status = screen(app).query_one(StatusBar)
        assert status.engines == ()
        services.engine.set_state(0, 2, loads=(("here", 1, 2, True), ("rack", 0, 8, False)))
        await wait_for(lambda: len(status.engines) == 2, pilot)
        await pilot.pause()
        line = status.render()
        assert line.plain.endswith("2 running · 0 queued  here 1/2 · rack down")
        assert line.cell_len <= WIDTH - 2
        # More engines than fit: the engines are cut first, the rest of the bar stays whole.
        three = (("here", 1, 2, True), ("rack", 0, 8, False), ("k8s", 3, 16, True))
        services.engine.set_state(0, 4, loads=three)
        await wait_for(lambda: len(status.engines) == 3, pilot)
        await pilot.pause()
        line = status.render()
        assert line.plain.endswith("4 running · 0 queued  here 1/2 · rack down …")
        assert line.cell_len <= WIDTH - 2

        await select_event(app, pilot, ids["failed"])
        pane = screen(app).query_one("#log-pane")
        # The title of the run shown before may still be there: wait for the failed one's.
        await wait_for(lambda: str(pane.border_title).endswith(" · on rack"), pilot)
        assert str(pane.border_title).startswith("Output · ")
