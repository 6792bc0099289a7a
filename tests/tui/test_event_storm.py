"""A storm of deliveries costs the Events pane rows for the new events only: the pane shares
the event loop with the listener, and building every shown row again per batch kept that loop
busy (intake waited seconds with the UI embedded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pocketci_tui.model import EventStatus, EventStored, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.events_table import MAX_ROWS, EventsTable

from .fakes import push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded

BURST = 200
BATCH = 10


def count_rows(table: EventsTable) -> list[int]:
    """Count the rows the table builds from now on (each ``add_row`` call)."""
    built = [0]
    add_row: Callable[..., Any] = table.add_row

    def counting(*cells: Any, **kw: Any) -> Any:
        built[0] += 1
        return add_row(*cells, **kw)

    table.add_row = counting  # type: ignore[method-assign]
    return built


def shown_keys(table: EventsTable) -> list[int]:
    """The events in the order the table draws its rows."""
    return [int(str(row.key.value)) for row in table.ordered_rows]


async def storm(app: Any, pilot: Any, services: Any, table: EventsTable, first: int) -> None:
    """Publish :data:`BURST` new events, :data:`BATCH` at a time, each batch shown before the
    next is published (so the pane takes many batches, as under a steady storm)."""
    for start in range(0, BURST, BATCH):
        for n in range(start, start + BATCH):
            sha = f"{first + n:040x}"
            event = replace(push(f"storm-{n}", "acme/api", "main", sha, 1), id=first + n)
            services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        newest = first + start + BATCH - 1
        await wait_for(lambda n=newest: table.event(n) is not None, pilot)  # type: ignore[misc]


async def test_a_storm_builds_each_new_row_once_and_follows_the_head(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause()
        shown_before = len(table.events)
        built = count_rows(table)
        await storm(app, pilot, services, table, 5000)
        newest = 5000 + BURST - 1
        await wait_for(lambda: table.selected_id == newest, pilot)
        # Each new row once, plus at most one full build (the columns may widen once).
        assert built[0] <= BURST + shown_before + MAX_ROWS, built[0]
        ids = [e.event.id for e in table.events]
        assert ids == sorted(ids, reverse=True)  # type: ignore[type-var]
        assert shown_keys(table) == ids
        assert table.row_count == MAX_ROWS
        await wait_for(lambda: screen(app).event_id == newest, pilot)


async def test_a_storm_keeps_the_cursor_on_an_older_event(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        table.focus()
        table.move_cursor(row=2)
        await pilot.pause()
        chosen = table.selected_id
        assert chosen is not None
        built = count_rows(table)
        await storm(app, pilot, services, table, 7000)
        assert built[0] <= BURST + MAX_ROWS, built[0]
        assert table.selected_id == chosen
        await wait_for(lambda: screen(app).event_id == chosen, pilot)
        ids = [e.event.id for e in table.events]
        assert shown_keys(table) == ids
        assert ids[: BURST // BATCH] == list(range(7000 + BURST - 1, 7000 + BURST - 21, -1))
