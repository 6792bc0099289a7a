"""The Output pane's explanations (an event's details, how to start): wrapped to the pane and
opened at their first line (issue 10: details were cut, and at 80x24 the pane opened scrolled
past the explanation)."""

from __future__ import annotations

import pytest

from pocketci_tui.model import EventStatus
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.log_text import wrap_note
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded

DETAIL = (
    "checkout failed: git --version: cannot start git: No such file or directory: install git "
    "(apt install git) and make sure it is on the PATH pocketci-tui runs with"
)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
async def test_event_details_wrap_and_open_at_the_top(
    app_paths: AppPaths, size: tuple[int, int]
) -> None:
    services, _ = await seeded(app_paths)
    store = await Store.open(app_paths.db_file)
    detail = "\n".join([DETAIL, *(f"attempt {n}: {DETAIL}" for n in range(1, 9))])
    broken, _ = await store.record_event(
        push("d-err", "acme/api", "main", "e" * 40, 0.5), EventStatus.ERROR, detail
    )
    await store.close()
    app, _ = build(services, app_paths)
    async with app.run_test(size=size) as pilot:
        await ready(app, pilot, 6)
        main = screen(app)
        table = main.query_one(EventsTable)
        table.focus()
        table.move_cursor(row=[e.event.id for e in table.events].index(broken.event.id))
        log = main.query_one(RunLog)
        await wait_for(lambda: any("cannot start git" in line for line in log.lines), pilot)
        await pilot.pause(0.2)
        width = log.scrollable_content_region.width
        assert all(len(line) <= width for line in log.lines), log.lines
        text = " ".join(line.strip() for line in log.lines)
        assert DETAIL in text  # nothing cut: every word is on screen, in order
        assert log.lines[0].startswith("acme/api")
        assert log.max_scroll_y > 0  # longer than the pane at both sizes...
        assert log.scroll_y == 0  # ...and opened at its first line
        assert main.query_one("#log-pane").border_subtitle == ""  # not "paused"


def test_wrap_note_keeps_indents_and_hangs_items() -> None:
    lines = wrap_note(["⚠ " + "word " * 12, "  → do this " + "now " * 8, "", "plain"], 24)
    assert all(len(line) <= 24 for line in lines)
    assert lines[0].startswith("⚠ word")
    assert lines[1].startswith("  word")  # hangs under the text, not under the ⚠
    arrow = next(i for i, line in enumerate(lines) if "→" in line)
    assert lines[arrow].startswith("  → do this")
    assert lines[arrow + 1].startswith("    ")
    assert lines[-2:] == ["", "plain"]
