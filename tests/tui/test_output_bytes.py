"""The Output pane keeps at most :data:`MAX_BYTES` of lines as well as :data:`MAX_LINES`: a
build printing lines as long as the runner delivers (64 KiB) keeps only its newest lines, and
the lines kept still say where they are in the run's output (the tail meets the live batches
without a gap or a repeat, each line keeps its moment, wrapped rows and the selection stay in
step, and a match older than the lines kept is shown around it)."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult

from pocketci_tui import stamps
from pocketci_tui.engine.proc import MAX_LINE
from pocketci_tui.model import Run, RunOutput, RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import make_app
from pocketci_tui.tui.bridge import MAX_PENDING_BYTES, EngineBridge
from pocketci_tui.tui.messages import EngineActivity
from pocketci_tui.tui.widgets.long_lines import held
from pocketci_tui.tui.widgets.run_log import MAX_BYTES, RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import make_rig, wait_for
from .test_run_log import _dagger_with
from .test_ui_actions import build, ready, screen, seeded, select_event

WIDTH = MAX_LINE - 64
"""Characters of each long line: as long as the runner delivers whole."""

COUNT = 3 * MAX_BYTES // WIDTH
"""Long lines for three times the bytes kept (far fewer than the lines kept)."""


def long_line(n: int) -> str:
    text = f"line {n}"
    return text + " " + "x" * (WIDTH - len(text) - 1)


def kept_bytes(log: RunLog) -> int:
    return sum(held(line) for line in log.lines)


async def test_a_build_printing_long_lines_keeps_its_newest_within_the_bytes(
    tmp_path: Path, hermetic_home: Path
) -> None:
    """A real build prints 64 KiB lines: the pane keeps the newest within the bytes, where
    they are in the log file, with their moments."""
    release = tmp_path / "release"
    behaviour = {"lines": COUNT, "line_width": WIDTH, "wait_file": str(release)}
    bin_dir = _dagger_with(tmp_path, "onGithubPushFlood", behaviour)
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

        await wait_for(lambda: flood() is not None, pilot)
        table.focus()
        table.move_cursor(row=next(i for i, r in enumerate(table.runs) if r is flood()))
        await wait_for(lambda: (run := flood()) is not None and main.run_id == run.id, pilot)
        await wait_for(lambda: log.lines[-1:] == [long_line(COUNT)], pilot, 60)
        assert 1 < log.line_count < COUNT
        assert kept_bytes(log) <= MAX_BYTES
        release.touch()
        await wait_for(lambda: (run := flood()) is not None and run.state.finished, pilot)
        run = flood()
        assert run is not None
        assert run.state is RunState.PASSED
        log_file = rig.paths.logs_dir / run.log_path
        raw = log_file.read_text(encoding="utf-8").splitlines()
        after_ms = log_file.stat().st_mtime_ns // 1_000_000 + stamps.MTIME_SLACK_MS
        expected, times = stamps.split_lines(raw, after_ms)
        first = log.first_line
        assert first + log.line_count == len(expected)
        assert list(log.lines) == expected[first:]
        assert [log.stamp_of(i) for i in range(log.line_count)] == times[first:]
        assert log.holds(len(expected) - 1)
        assert not log.holds(first - 1)


class _OneLog(App[None]):
    def compose(self) -> ComposeResult:
        yield RunLog()


async def test_long_lines_joined_by_position_keep_rows_stamps_and_selection_in_step() -> None:
    """A tail of long lines, then batches that overlap it, wrapped: the newest lines within
    the bytes, each at its place, with its moment, its rows and the selection on it."""
    app = _OneLog()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(RunLog)
        lines = [long_line(n) for n in range(COUNT)]
        moments = [float(n) for n in range(COUNT)]
        log.show("build", lines[:10], end=10, times=moments[:10])
        log.focus()
        await pilot.press("w")
        assert log.wrap
        for end in range(12, COUNT - 20, 7):
            batch = slice(max(0, end - 9), end)  # overlaps what is shown
            log.add_output(lines[batch], end=end, times=moments[batch])
        await pilot.pause()
        await pilot.press("V")  # a selection on the line in focus
        chosen = log.selected_range()
        assert chosen is not None
        selected = log.lines[chosen[0]]
        for end in range(COUNT - 20, COUNT + 1, 7):
            batch = slice(max(0, end - 9), end)
            log.add_output(lines[batch], end=end, times=moments[batch])
        log.add_output(lines[-9:], end=COUNT, times=moments[-9:])
        await pilot.pause()

        first = log.first_line
        assert log.line_count < COUNT
        assert first + log.line_count == COUNT
        assert kept_bytes(log) <= MAX_BYTES
        assert list(log.lines) == lines[first:]
        assert [log.stamp_of(i) for i in range(log.line_count)] == moments[first:]
        width = log.scrollable_content_region.width
        rows = sum(-(-len(line) // width) for line in lines[first:])
        assert log.virtual_size.height == rows
        # The selection stayed on its line while older lines were dropped.
        still = log.selected_range()
        assert still is not None
        assert still[0] < chosen[0]
        assert log.lines[still[0]] == selected


async def test_a_match_older_than_the_tail_is_shown_around_it_within_the_bytes(
    app_paths: AppPaths,
) -> None:
    """A log file of long lines: the window read around an older match is cut to the bytes
    around the match, which stays shown and marked."""
    services, ids = await seeded(app_paths)
    total = 3 * COUNT
    lines = [long_line(n) for n in range(total)]
    needle = "needle: the one"
    hit = COUNT // 2 + 7
    lines[hit] = needle + " " + "y" * (WIDTH - len(needle) - 1)
    path = app_paths.logs_dir / f"{ids['failed']}" / "run-main-test.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        main = screen(app)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.lines[-1:] == [lines[-1]], pilot)
        assert log.first_line > hit
        assert kept_bytes(log) <= MAX_BYTES
        log.focus()
        await pilot.press("slash", *"needle")
        await wait_for(lambda: log.current == hit, pilot)
        assert log.window
        assert log.holds(hit)
        assert log.lines[hit - log.first_line] == lines[hit]
        assert kept_bytes(log) <= MAX_BYTES
        assert log.line_count > 1


class _Recorder(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[EngineActivity] = []

    def on_engine_activity(self, message: EngineActivity) -> None:
        self.batches.append(message)


async def test_long_lines_waiting_for_the_next_frame_keep_their_newest_within_the_bytes() -> None:
    """Between two frames, the output waiting for the screen is bounded in bytes per run too:
    its newest lines, their moments, and how many older ones were dropped."""
    app = _Recorder()
    async with app.run_test() as pilot:
        bridge = EngineBridge(app)
        lines = [long_line(n) for n in range(3 * MAX_PENDING_BYTES // WIDTH)]
        for n, line in enumerate(lines):
            bridge.on_notice(RunOutput("r1", (line,), n + 1, (float(n),)))
        bridge.on_notice(RunOutput("r2", ("short",), 1, (0.5,)))
        bridge.flush()
        await wait_for(lambda: bool(app.batches), pilot)
        [batch] = app.batches
        kept = batch.output["r1"]
        assert 1 < len(kept) < len(lines)
        assert sum(held(line) for line in kept) <= MAX_PENDING_BYTES
        assert kept == lines[len(lines) - len(kept) :]
        assert batch.times["r1"] == [float(n) for n in range(len(lines) - len(kept), len(lines))]
        assert batch.dropped["r1"] == len(lines) - len(kept)
        assert batch.ends["r1"] == len(lines)
        assert batch.output["r2"] == ["short"]
