"""The Output pane keeps the newest line in view while it follows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daggerstub import install_fake_dagger
from rich.style import Style
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widgets import Log

from pocketci_tui import stamps
from pocketci_tui.model import Run, RunOutput, RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import make_app
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import make_rig, wait_for
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


async def test_the_last_batch_that_brings_the_scrollbar_still_shows_its_last_line(
    app_paths: AppPaths,
) -> None:
    """When the batch that brings the horizontal scrollbar is the last one (a failed build's
    final lines), following still shows its last line: the scrollbar takes its row after the
    batch was written, and the view moves down once more then."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: screen(app).run_id == "run-rel-build", pilot)
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: log.line_count == 40, pilot)
        assert log.is_vertical_scroll_end
        assert log.virtual_size.width <= log.size.width
        lines = ("wide " + "=" * 200, "Error: exit status 1")
        services.engine.publish(RunOutput("run-rel-build", lines))
        await wait_for(lambda: log.lines[-1] == lines[-1], pilot)
        await wait_for(lambda: log.virtual_size.width > log.size.width, pilot)
        await pilot.pause(0.1)
        assert log.follow
        assert log.is_vertical_scroll_end
        bottom = log.scrollable_content_region.height - 1
        assert "Error: exit status 1" in str(log.render_line(bottom))


STREAM_LINES = 1_200
"""Lines the streaming build prints (fewer than the engine's tail keeps, so that a view filled
from the tail holds the run's whole output)."""


SWITCHES = 8
"""Switches away from the streaming run and back, at least."""

MAX_SWITCHES = 500
"""A bound on the switches made while waiting for the last line (a hang reports instead)."""


def _dagger_with(tmp_path: Path, function: str, behaviour: dict[str, object]) -> Path:
    """A stand-in ``dagger`` of this test's own, with ``behaviour`` merged over a function's."""
    bin_dir = install_fake_dagger(tmp_path / "own-dagger")
    wrapper = bin_dir / "dagger"
    lines = wrapper.read_text().splitlines(keepends=True)
    snake = "".join(f"_{c}" if c.isupper() else c.upper() for c in function)
    env = {"FAKE_DAGGER_CALL_" + snake: json.dumps(behaviour)}
    lines.insert(1, f"import os; os.environ.update({env!r})\n")
    wrapper.write_text("".join(lines))
    return bin_dir


async def test_the_pane_equals_the_log_file_when_it_switches_to_a_streaming_run(
    tmp_path: Path, hermetic_home: Path
) -> None:
    """The first line of a re-run was sometimes shown twice: the pane is filled from the
    engine's tail when it switches to a run, and the batch already on its way to the screen
    (part of that tail) was then appended too. Here a real build streams while the Functions
    pane moves away from its run and back again and again; every time, and at the end, the
    Output pane must hold the run's output exactly once, as in its log file."""
    release = tmp_path / "release"  # the build ends once this file exists
    bin_dir = _dagger_with(
        tmp_path,
        "onGithubPushFlood",
        {
            "lines": STREAM_LINES,
            "lines_per_second": 300.0,
            "output": ["first line"],
            "wait_file": str(release),
        },
    )
    rig = make_rig(tmp_path, bin_dir)
    app = make_app(rig.settings, paths=rig.paths, services=rig.make_services(), first_start=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: bool(rig.services and rig.services.url), pilot)
        reply = await rig.post_push("flood")
        assert reply.status == 202
        main = screen(app)
        table = main.query_one(RunsTable)
        log = main.query_one(RunLog)

        def flood() -> Run | None:
            return next((r for r in table.runs if r.function == "onGithubPushFlood"), None)

        running = RunState.RUNNING
        await wait_for(lambda: (run := flood()) is not None and run.state is running, pilot)
        await wait_for(lambda: len(table.runs) > 1, pilot)
        table.focus()
        # The build runs until released: the switches go on while it streams, and at least
        # SWITCHES of them happen however slow the machine (each waits for the screen).
        switches = 0
        while switches < SWITCHES or log.lines[-1:] != [f"line {STREAM_LINES}"]:
            run = flood()
            assert run is not None
            assert run.state is running  # held until released
            row = next(i for i, r in enumerate(table.runs) if r.function == "onGithubPushFlood")
            other = 1 if row == 0 else 0
            table.move_cursor(row=other)
            await pilot.pause(0.01 * (switches % 7))
            table.move_cursor(row=row)
            await wait_for(lambda: main.run_id == flood().id, pilot)  # type: ignore[union-attr]
            await pilot.pause(0.02 * (switches % 5))
            shown = list(log.lines)
            assert len(set(shown)) == len(shown), f"a line shown twice after {switches} switches"
            switches += 1
            assert switches < MAX_SWITCHES, "the streamed output never reached its last line"
        release.touch()
        await wait_for(lambda: (run := flood()) is not None and run.state.finished, pilot)
        run = flood()
        assert run is not None
        assert run.state is RunState.PASSED
        log_file = rig.paths.logs_dir / run.log_path
        raw = log_file.read_text(encoding="utf-8").splitlines()
        after_ms = log_file.stat().st_mtime_ns // 1_000_000 + stamps.MTIME_SLACK_MS
        expected, times = stamps.split_lines(raw, after_ms)
        assert len(expected) == STREAM_LINES + 1
        assert None not in times
        await wait_for(lambda: log.lines[-1:] == [f"line {STREAM_LINES}"], pilot)
        assert list(log.lines) == expected
        # Each line shows the moment its log line is stamped with, live as from the file.
        assert [log.stamp_of(i) for i in range(log.line_count)] == times
        # Shown again from the log file once finished: the same.
        table.move_cursor(row=0 if table.runs[0].id != run.id else 1)
        await wait_for(lambda: main.run_id != run.id, pilot)
        table.move_cursor(row=next(i for i, r in enumerate(table.runs) if r.id == run.id))
        await wait_for(lambda: main.run_id == run.id, pilot)
        await wait_for(lambda: log.lines[-1:] == [f"line {STREAM_LINES}"], pilot)
        assert [log.stamp_of(i) for i in range(log.line_count)] == times
        assert list(log.lines) == expected


class _OneLog(App[None]):
    def compose(self) -> ComposeResult:
        yield RunLog()


async def test_batches_join_the_shown_tail_by_position() -> None:
    """A batch that overlaps what the pane shows adds only the lines after it; one that was
    already shown adds nothing; a gap (lines dropped under a flood) is said in one line; with
    no position known, batches are appended as they come."""
    app = _OneLog()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", ["l1", "l2", "l3"], end=3)
        log.add_output(["l2", "l3", "l4"], end=4)
        log.add_output(["l3", "l4"], end=4)
        log.add_output(["l10", "l11"], end=11)
        await pilot.pause()
        assert list(log.lines) == [
            "l1",
            "l2",
            "l3",
            "l4",
            "··· 5 lines not shown here (p: full log) ···",
            "l10",
            "l11",
        ]
        log.show("", ["placeholder"])
        log.add_output(["a"], end=None, dropped=2)
        log.add_output(["b"], end=None)
        await pilot.pause()
        assert list(log.lines) == [
            "placeholder",
            "··· 2 lines not shown here (p: full log) ···",
            "a",
            "b",
        ]


async def test_a_frame_draws_again_only_the_lines_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines already drawn are drawn from the cache: a frame for a new count in the border
    or a line scrolled draws no line again (or only the new one), while a new needle, new
    stamps or a selection draw them all anew."""
    drawn: list[int] = []
    original = Log._render_line_strip

    def counting(self: Log, y: int, rich_style: Style) -> Strip:
        drawn.append(y)
        return original(self, y, rich_style)

    monkeypatch.setattr(Log, "_render_line_strip", counting)
    app = _OneLog()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", [f"step {i} ok" for i in range(200)], end=200)
        await pilot.pause()

        def top() -> Strip:
            return log.render_line(0)

        assert len(set(drawn)) >= 20  # the view's lines, drawn once
        drawn.clear()
        log.border_subtitle = "1/3 /step"
        await pilot.pause()
        assert drawn == []
        log.scroll_relative(y=-1, animate=False)
        await pilot.pause()
        assert len(drawn) <= 1
        drawn.clear()
        log.set_needle("step")
        await pilot.pause()
        assert len(set(drawn)) >= 20
        assert any(segment.style is not None and segment.style.reverse for segment in top())
        drawn.clear()
        log.cycle_stamps()
        await pilot.pause()
        assert len(set(drawn)) >= 20
        assert top().text.startswith(log.stamp_text(log.line_at(round(log.scroll_offset.y))[0]))
        drawn.clear()
        log.toggle_selection()
        await pilot.pause()
        assert drawn  # the selected line drawn anew, marked
        assert log.selection is not None


async def test_only_lines_of_a_sensible_width_are_kept_drawn() -> None:
    """A line up to 64 KiB wide is drawn each time it is in view rather than kept: the cache
    of up to 1,024 drawn lines would otherwise hold tens of megabytes of them."""
    app = _OneLog()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(RunLog)
        log.show("build", ["short line", "x" * 65_536, "another short line"], end=3)
        await pilot.pause()
        assert 0 in log._render_line_cache
        assert 2 in log._render_line_cache
        assert 1 not in log._render_line_cache
        assert log.render_line(1).cell_length == log.size.width  # still drawn, cropped
