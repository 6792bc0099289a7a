"""Drawing the Output pane stays cheap while a build floods it: no thread per batch, the pane's
style worked out once a frame (SPEC 6: key press to screen while output streams). The lines
kept drawn still follow every change of style."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.worker import Worker
from textual.worker_manager import WorkerManager

from pocketci_tui.tui.widgets.run_log import RunLog


class _LogApp(App[None]):
    CSS = """
    #box { background: #202020; }
    #box.-alarm { background: #a00000; }
    RunLog { background: transparent; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield RunLog(id="log")


def _batch(start: int, count: int = 200) -> list[str]:
    return [f"step {n}: compiling module_{n % 97}.c [ok]" for n in range(start, start + count)]


async def test_batches_of_plain_lines_start_no_thread_and_measure_the_widest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The log measured each batch's widest line in a worker thread of its own: three
    messages on the loop and a thread, 20 times a second under a flood."""
    started: list[str] = []
    add_worker = WorkerManager.add_worker

    def counting(self: WorkerManager, worker: Worker[Any], **kwargs: Any) -> None:
        started.append(worker.name)
        add_worker(self, worker, **kwargs)

    monkeypatch.setattr(WorkerManager, "add_worker", counting)
    app = _LogApp()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", [])
        await pilot.pause()
        before = len(started)
        for batch in range(10):
            log.add_output(_batch(batch * 200))
            await pilot.pause()
        log.add_output(["wide " + "=" * 150])
        await pilot.pause()
        assert started[before:] == []
        assert log.virtual_size.width == len("wide " + "=" * 150)


async def test_lines_that_are_not_plain_are_still_measured_in_cells() -> None:
    app = _LogApp()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", [])
        log.add_output(["a\tb", "界" * 40])  # a tab; wide characters (two cells each)
        await pilot.pause(0.2)
        assert log.virtual_size.width == 80


async def test_a_frame_works_out_the_pane_style_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each line asked for the pane's style, which walks every ancestor's styles."""
    asked: Counter[str] = Counter()
    declared: property = DOMNode.__dict__["rich_style"]
    style_of = declared.fget
    assert style_of is not None

    def counting(self: DOMNode) -> Style:
        asked[type(self).__name__] += 1
        style: Style = style_of(self)
        return style

    monkeypatch.setattr(DOMNode, "rich_style", property(counting))
    app = _LogApp()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", [])
        await pilot.pause()
        height = log.scrollable_content_region.height
        for batch in range(3):
            asked.clear()
            log.add_output(_batch(batch * 200))
            await pilot.pause()
            assert asked["RunLog"] <= 2, asked  # was one per line in view (and more)
        assert height > 10


async def test_lines_follow_a_change_of_the_pane_background() -> None:
    """A line kept drawn is drawn again when the pane's look changes, even when only a
    container around it changed (its own rules stay the same)."""
    app = _LogApp()
    async with app.run_test(size=(60, 20)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", _batch(0, 50))
        await pilot.pause()

        def background() -> object:
            segment = next(iter(log.render_line(0)))
            assert segment.style is not None
            return segment.style.bgcolor

        calm = background()
        app.query_one("#box").add_class("-alarm")
        await pilot.pause()
        assert background() != calm
