"""The Events pane says which forge each event came from (issue 13)."""

from __future__ import annotations

from dataclasses import replace

from pocketci_tui.model import EventStatus, EventStored, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.events_table import EventsTable

from .fakes import push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded


async def test_each_forge_is_named_in_the_forge_column(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        vendors = {"gitea": "me/app", "forgejo": "me/app", "gitlab": "team/sub/api"}
        for n, (vendor, repository) in enumerate(vendors.items()):
            event = replace(
                push(f"{vendor}-1", repository, "main", f"{n + 1:040x}", 1),
                vendor=vendor,
                id=900 + n,
            )
            services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        await wait_for(lambda: len(table.events) == 8, pilot)
        # Newest first: GitLab's, Forgejo's, Gitea's, then the seeded GitHub events.
        rows = [[str(c) for c in table.get_row_at(row)] for row in range(3)]
        assert [(r[1], r[2]) for r in rows] == [
            ("glab", "team/sub/api"),
            ("fj", "me/app"),
            ("gitea", "me/app"),
        ]
        assert str(table.get_row_at(3)[1]) == "gh"  # the seeded GitHub events
