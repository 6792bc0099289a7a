"""Wrapped output keeps its rows in step with its lines: lines dropped past the limit, a new
width, a search match over a wrapped line (issue 16)."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import App, ComposeResult

from pocketci_tui.tui.widgets.run_log import RunLog


class _LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RunLog(id="log", max_lines=50)


def _rows(lines: list[str], width: int) -> int:
    return sum(max(1, -(-len(line) // width)) for line in lines)


async def test_rows_follow_dropped_lines_and_a_new_width() -> None:
    app = _LogApp()
    async with app.run_test(size=(40, 12)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", [])
        log.focus()
        await pilot.press("w")
        assert log.wrap
        width = log.scrollable_content_region.width
        written: list[str] = []
        for batch in range(6):
            lines = [f"{batch}.{i} " + "x" * ((batch * 17 + i * 29) % 90) for i in range(20)]
            log.add_output(lines)
            written += lines
            kept = written[-50:]
            assert list(log.lines) == kept
            assert log.virtual_size.height == _rows(kept, width)
        await pilot.pause()
        assert log.is_vertical_scroll_end
        row = log.virtual_size.height - 1
        assert log.line_at(row)[0] == 49
        bottom = "".join(
            seg.text for seg in log.render_line(log.scrollable_content_region.height - 1)
        )
        last = written[-1]
        assert bottom.rstrip() == last[(_rows([last], width) - 1) * width :]

        await pilot.resize_terminal(60, 12)
        await pilot.pause()
        wider = log.scrollable_content_region.width
        assert wider > width
        assert log.virtual_size == (wider, _rows(written[-50:], wider))
        assert log.is_vertical_scroll_end


async def test_a_match_on_a_wrapped_line_is_marked_on_each_of_its_rows() -> None:
    app = _LogApp()
    async with app.run_test(size=(40, 12)) as pilot:
        log = app.query_one(RunLog)
        long = "start " + "y" * 70 + " needle at the end"
        log.show("build", ["first", long, "last"])
        log.focus()
        await pilot.press("w")
        log.set_needle("needle")
        log.go_to(1)
        await pilot.pause()
        width = log.scrollable_content_region.width
        pieces = -(-len(long) // width)
        assert pieces == 3
        assert log.scroll_y == 0  # five rows: all in view
        shown = [log.line_at(y) for y in range(5)]
        assert shown == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]
        rows_of_match = [1, 2, 3]
        for y in rows_of_match:
            assert any(s.style is not None and s.style.bold for s in log.render_line(y))
        assert not any(s.style is not None and s.style.bold for s in log.render_line(4))
        last_piece = "".join(s.text for s in log.render_line(3))
        assert "needle" in last_piece


async def test_the_wrap_toggle_and_a_new_width_keep_the_line_read_at_the_top() -> None:
    """Reading line 24 of a failed run opened at its failure (line 40): w wraps the lines
    above and below, line 24 stays at the top (the view does not jump back to the failure);
    a wider screen keeps it there too; w again shows the lines whole, line 24 still on top."""
    app = _LogApp()
    async with app.run_test(size=(40, 12)) as pilot:
        log = app.query_one(RunLog)
        lines = [f"line {n:02d} " + "z" * (n % 3) * 30 for n in range(50)]
        log.show("build", lines)
        log.go_to(40)
        log.focus()
        await pilot.pause()
        log.scroll_to(y=24, animate=False, immediate=True)
        await pilot.pause()
        await pilot.press("w")
        await pilot.pause()
        assert log.wrap
        assert log.line_at(round(log.scroll_y)) == (24, 0)
        assert not log.follow
        await pilot.resize_terminal(60, 12)
        await pilot.pause()
        assert log.line_at(round(log.scroll_y)) == (24, 0)
        await pilot.press("w")
        await pilot.pause()
        assert round(log.scroll_y) == 24


async def test_wide_characters_and_tabs_take_the_rows_they_fill() -> None:
    """A CJK character fills two cells and a tab up to eight: rows are counted in cells."""
    app = _LogApp()
    async with app.run_test(size=(40, 12)) as pilot:
        log = app.query_one(RunLog)
        lines = ["界" * 30, "\t" * 6 + "tabbed", "plain"]
        log.show("build", lines)
        log.focus()
        await pilot.press("w")
        width = log.scrollable_content_region.width
        expected = [-(-cell_len(line.expandtabs()) // width) for line in lines]
        assert expected[:2] == [-(-60 // width), -(-54 // width)]
        assert log.virtual_size.height == sum(expected)
        assert log.line_at(expected[0]) == (1, 0)
