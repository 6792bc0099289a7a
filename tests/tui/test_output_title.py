"""The Output pane's title at 80 columns: with the time of each line shown (``t``), a long
function name gives way, not its attempt (the title was cut at its end, ``testOnGithubPull…``,
and the ``#2`` saying which attempt is shown was lost); zoomed, the state shows too."""

from __future__ import annotations

import dataclasses

from pocketci_tui.model import RunState, RunUpdated
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.widgets.output_pane import OutputPane
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .fakes import run
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

NAME = "testOnGithubPullRequestWithCoverage"


def title(pane: OutputPane) -> str:
    return str(pane.border_title or "")


async def test_a_long_name_gives_way_to_the_attempt(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        long = dataclasses.replace(
            run("run-long-2", ids["failed"], NAME, RunState.FAILED, started=3, seconds=20),
            attempt=2,
        )
        services.engine.publish(RunUpdated(long))
        await wait_for(lambda: "run-long-2" in main.runs[ids["failed"]], pilot)
        table = main.query_one(RunsTable)
        table.focus()
        await wait_for(lambda: table.selected is not None, pilot)
        while table.selected is not None and table.selected.id != "run-long-2":
            await pilot.press("j")
        await wait_for(lambda: main.run_id == "run-long-2", pilot)
        pane = main.query_one(OutputPane)
        room = pane.size.width - 6

        main.query_one(RunLog).focus()
        await pilot.press("t")  # the wall clock of each line
        await wait_for(lambda: "time" in title(pane), pilot)
        shown = title(pane)
        assert shown.startswith("Output · time · testOnGithub"), shown
        assert shown.endswith("… #2"), shown
        assert len(shown) <= room

        await pilot.press("z")
        await wait_for(lambda: title(pane).endswith(" · failed"), pilot)
        assert title(pane) == f"Output · time · {NAME} #2 · failed"  # room for it whole
        await pilot.press("z")
        await wait_for(lambda: title(pane).endswith("… #2"), pilot)
