"""The Output pane keeps the newest line in view while it follows."""

from __future__ import annotations

from pocketci_tui.model import RunOutput
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.run_log import RunLog

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event


async def test_following_survives_the_horizontal_scrollbar(app_paths: AppPaths) -> None:
    """A line wider than the pane brings a horizontal scrollbar, one row less of view:
    following goes on (it used to stop at the row the scrollbar took, still saying
    "following")."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: screen(app).run_id == "run-rel-build", pilot)
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: log.line_count == 40, pilot)
        assert log.is_vertical_scroll_end
        services.engine.publish(RunOutput("run-rel-build", ("wide " + "=" * 200,)))
        await wait_for(lambda: log.virtual_size.width > log.size.width, pilot)
        await pilot.pause(0.1)
        for batch in range(5):
            lines = tuple(f"line {batch}.{i}" for i in range(30))
            services.engine.publish(RunOutput("run-rel-build", lines))
            last = lines[-1]
            await wait_for(lambda last=last: log.lines[-1] == last, pilot)  # type: ignore[misc]
            await pilot.pause(0.05)
            assert log.follow
            assert log.is_vertical_scroll_end
        assert log.max_scroll_y > 0
        bottom = log.scrollable_content_region.height - 1
        assert "line 4.29" in str(log.render_line(bottom))
