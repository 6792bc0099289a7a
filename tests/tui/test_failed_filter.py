"""``F`` (only failed events) keeps the events in error too: a checkout that could not reach
the forge fails a build as surely as a failing test, and ``F`` showed an empty list while the
Events pane said ``! error`` on two rows."""

from __future__ import annotations

from pocketci_tui.model import EventStatus
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.widgets.events_table import EventsTable

from .fakes import push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded


async def test_f_shows_failed_and_error_events(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    store = await Store.open(app_paths.db_file)
    broken, _ = await store.record_event(
        push("d-err", "acme/api", "main", "e" * 40, 0.5),
        EventStatus.ERROR,
        "checkout failed: fatal: unable to access 'https://github.com/acme/api.git/'",
    )
    await store.close()
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 6)
        table = screen(app).query_one(EventsTable)
        await pilot.press("F")
        want = {ids["failed"], broken.event.id}
        await wait_for(lambda: {e.event.id for e in table.events} == want, pilot)
        await pilot.press("F")  # again: every event
        await wait_for(lambda: len(table.events) == 6, pilot)
