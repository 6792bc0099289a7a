"""The keys help at 80 and 120 columns: every binding id shows whole (it is what a user types
into ``keymap``), and no word of what a key does is lost; long descriptions wrap."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widgets import DataTable

from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.openers import key_rows


class Keys(App[None]):
    """Only the help, with the rows of the real program."""

    def on_mount(self) -> None:
        self.push_screen(HelpDialog(key_rows(PocketCIApp, {}, hidden="detach")))


@pytest.mark.parametrize("width", [80, 120])
async def test_ids_show_whole_and_descriptions_wrap(width: int) -> None:
    app = Keys()
    rows = key_rows(PocketCIApp, {}, hidden="detach")
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        table: DataTable[object] = app.screen.query_one("#help-table", DataTable)
        # Nothing is hidden past the right edge (the table does not scroll sideways).
        assert table.virtual_size.width <= table.scrollable_content_region.width, (
            table.virtual_size,
            table.scrollable_content_region,
        )
        shown = [
            tuple(str(cell) for cell in table.get_row_at(index)) for index in range(table.row_count)
        ]
        assert len(shown) == len(rows)
        for (keys, what, binding_id), (shown_keys, shown_what, shown_id) in zip(
            rows, shown, strict=True
        ):
            assert (shown_keys, shown_id) == (keys, binding_id)
            assert " ".join(shown_what.split()) == what
        if width == 80:
            assert any("\n" in row[1] for row in shown), "nothing needed to wrap at 80?"
