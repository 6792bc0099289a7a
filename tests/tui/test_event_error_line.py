"""A re-run (or re-fire) whose dispatch fails before any run starts, a checkout that cannot
reach the forge say, leaves the event in error while the Functions pane still lists the older
runs: the line above the output says so, where the user is looking, not only the Events
pane's status column."""

from __future__ import annotations

from textual.widgets import Label

from pocketci_tui.model import EventStatus, EventUpdated
from pocketci_tui.paths import AppPaths

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

DETAIL = (
    "checkout failed: fetch from https://github.com/acme/api.git failed: fatal: unable to "
    "access 'https://github.com/acme/api.git/': Could not resolve host: github.com"
)


async def test_the_events_error_shows_above_the_shown_run(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        await wait_for(lambda: main.run_id == "run-main-test", pilot)
        reason = main.query_one("#run-reason", Label)
        assert "event error" not in str(reason.render())

        services.engine.publish(EventUpdated(ids["failed"], EventStatus.ERROR, DETAIL + "\nmore"))
        await wait_for(lambda: "! event error: checkout failed" in str(reason.render()), pilot)
        text = str(reason.render())
        assert text.startswith("✗ failed")  # the run's own failure stays first
        assert " ".join(text.split()).endswith(DETAIL)  # the first line whole, folded not cut
        assert "more" not in text
        assert reason.display
        assert main.run_id == "run-main-test"  # the shown run stays

        services.engine.publish(EventUpdated(ids["failed"], EventStatus.DISPATCHED))
        await wait_for(lambda: "event error" not in str(reason.render()), pilot)
