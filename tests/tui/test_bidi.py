"""Bidirectional control characters from outside never reach the screen (issue 11)."""

from __future__ import annotations

from pocketci_tui.model import EventStatus, RunOutput
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.text import BIDI_CONTROLS
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

RLO = "\u202e"
"""Right-to-left override: ``\u202egnp.exe`` is displayed as ``exe.png``."""


def has_bidi(text: str) -> bool:
    return any(char in text for char in BIDI_CONTROLS)


async def test_bidi_controls_in_branch_title_detail_and_output_are_neutralised(
    app_paths: AppPaths,
) -> None:
    services, ids = await seeded(app_paths)
    store = await Store.open(app_paths.db_file)
    sneaky, _ = await store.record_event(
        push("d-bidi", "acme/api", f"fix/{RLO}gnp.exe", "b1d1" + "0" * 36, 1, f"Add {RLO}cod.exe"),
        EventStatus.SKIPPED,
        f"no function matched: branch fix/{RLO}gnp.exe \u2066isolated\u2069",
    )
    await store.close()
    assert sneaky.event.id is not None
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 6)
        main = screen(app)
        table = main.query_one(EventsTable)
        row = table.get_row_at([e.event.id for e in table.events].index(sneaky.event.id))
        shown = " ".join(str(cell) for cell in row)
        assert "fix/?gnp.exe" in shown
        assert not has_bidi(shown)
        # The event's explanation in the Output pane (nothing ran).
        table.focus()
        table.move_cursor(row=[e.event.id for e in table.events].index(sneaky.event.id))
        log = main.query_one(RunLog)
        await wait_for(lambda: any("?isolated?" in line for line in log.lines), pilot)
        assert not any(has_bidi(line) for line in log.lines)
        # Live output of a run.
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: main.run_id == "run-rel-build", pilot)
        services.engine.publish(RunOutput("run-rel-build", (f"wrote {RLO}txt.sh", "\u200fdone")))
        await wait_for(lambda: any("?txt.sh" in line for line in log.lines), pilot)
        assert not any(has_bidi(line) for line in log.lines)
        svg = app.export_screenshot()
        assert not has_bidi(svg)
