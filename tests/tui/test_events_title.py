"""The Events pane's border counts the rows it shows, live deliveries included."""

from __future__ import annotations

from dataclasses import replace

from pocketci_tui.model import EventStatus, EventStored, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.events_table import MAX_ROWS, EventsTable

from .fakes import push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded


async def test_the_count_follows_new_deliveries(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        pane = screen(app).query_one("#events-pane")
        table = screen(app).query_one(EventsTable)
        assert str(pane.border_subtitle) == "5 shown"
        event = replace(push("new", "acme/api", "main", "f" * 40, 1), id=900)
        services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        await wait_for(lambda: len(table.events) == 6, pilot)
        await wait_for(lambda: str(pane.border_subtitle) == "6 shown", pilot)

        for n in range(MAX_ROWS):
            event = replace(push(f"b{n}", "acme/api", "main", f"{n:040x}", 1), id=1000 + n)
            services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        await wait_for(lambda: str(pane.border_subtitle) == f"{MAX_ROWS}+ shown", pilot)
