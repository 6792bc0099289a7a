"""What an event's outcome says after re-runs: the latest attempt of each function counts, and a
re-run never rewrites what the event's dispatch matched. Real engine, git, SQLite and CLI."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.cli import main
from pocketci_tui.model import EventStatus, Run, RunState, event_outcome, latest_attempts

FLAKY_EXIT = "~/flaky-exit"
"""The stand-in's exit code for ``flakyOnGithubPush`` once this file exists."""


def functions() -> list[dict[str, object]]:
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    return [
        fn("onGithubPushMain", *base, call={"output": ["build ok"], "exit": 0}),
        fn(
            "testOnGithubPushMain",
            *base,
            call={"output": ["FAIL test_login"], "exit": 1, "exit_file": FLAKY_EXIT},
        ),
        fn(
            "deployOnGithubPush",
            *base,
            arg("filter", "String", default="release/**"),
            call={"output": ["deployed"], "exit": 0},
        ),
    ]


def pass_from_now_on() -> None:
    """Make the flaky function pass on its next call (the stand-in reads the file)."""
    Path(os.path.expanduser(FLAKY_EXIT)).write_text("0\n", encoding="utf-8")


async def test_a_passing_rerun_makes_the_event_pass_and_keeps_the_match_detail(
    tmp_path: Path,
) -> None:
    async with EngineKit(tmp_path, functions=functions(), spec={"module-path": "./ci"}) as kit:
        stored = await kit.deliver(kit.push({"main.go": "package main // 2\n"}))
        event_id = stored.event.id
        assert event_id is not None
        runs = await kit.wait_runs_finished(event_id)
        first = await kit.store.get_event(event_id)
        assert first is not None
        assert first.detail == "2 of 3 functions matched"
        assert event_outcome(first.status, runs) == "failed"

        pass_from_now_on()
        failed = next(r for r in runs if r.state is RunState.FAILED)
        await kit.engine.rerun(failed.id)
        runs = await kit.wait_runs_finished(event_id, count=len(runs) + 1)

        rerun = next(r for r in runs if r.attempt == 2)
        assert (rerun.function, rerun.state, rerun.parent_id) == (
            "testOnGithubPushMain",
            RunState.PASSED,
            failed.id,
        )
        after = await kit.store.get_event(event_id)
        assert after is not None
        assert after.status is EventStatus.DISPATCHED
        assert after.detail == "2 of 3 functions matched"  # the re-run's "1 of 1" never lands
        assert event_outcome(after.status, runs) == "passed"
        # The history keeps the failed attempt.
        assert [r.state for r in runs if r.function == "testOnGithubPushMain"] == [
            RunState.FAILED,
            RunState.PASSED,
        ]


async def test_a_rerun_of_a_function_that_does_not_match_is_a_skipped_attempt(
    tmp_path: Path,
) -> None:
    async with EngineKit(tmp_path, functions=functions(), spec={"module-path": "./ci"}) as kit:
        stored = await kit.deliver(kit.push({"main.go": "package main // 3\n"}))
        event_id = stored.event.id
        assert event_id is not None
        runs = await kit.wait_runs_finished(event_id)
        skipped = next(r for r in runs if r.function == "deployOnGithubPush")
        assert skipped.state is RunState.SKIPPED

        await kit.engine.rerun(skipped.id)
        runs = await kit.wait_runs_finished(event_id, count=len(runs) + 1)

        refused = next(r for r in runs if r.attempt == 2)
        assert refused.function == "deployOnGithubPush"
        assert refused.state is RunState.SKIPPED
        assert refused.reason.startswith("re-run refused: ")
        assert refused.reason == "re-run refused: tier 1 (onGithubPushMain) matched first"
        after = await kit.store.get_event(event_id)
        assert after is not None
        assert (after.status, after.detail) == (EventStatus.DISPATCHED, "2 of 3 functions matched")
        assert not kit.calls()[2:]  # nothing ran for the refused re-run


def test_events_command_reports_the_outcome_and_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def scenario() -> tuple[Path, list[Run]]:
        async with EngineKit(tmp_path, functions=functions(), spec={"module-path": "./ci"}) as kit:
            stored = await kit.deliver(kit.push({"main.go": "package main // 4\n"}))
            event_id = stored.event.id
            assert event_id is not None
            runs = await kit.wait_runs_finished(event_id)
            pass_from_now_on()
            failed = next(r for r in runs if r.state is RunState.FAILED)
            await kit.engine.rerun(failed.id)
            runs = await kit.wait_runs_finished(event_id, count=len(runs) + 1)
            return kit.paths.data_dir, runs

    data_dir, runs = asyncio.run(scenario())
    assert main(["events", "--json", "--data-dir", str(data_dir)]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["status"] == "dispatched"
    assert row["outcome"] == "passed"
    assert row["detail"] == "2 of 3 functions matched"
    by_attempt = {(r["function"], r["attempt"]): r for r in row["runs"]}
    assert set(by_attempt) == {
        ("onGithubPushMain", 1),
        ("testOnGithubPushMain", 1),
        ("testOnGithubPushMain", 2),
        ("deployOnGithubPush", 1),
    }
    first, second = by_attempt["testOnGithubPushMain", 1], by_attempt["testOnGithubPushMain", 2]
    assert (first["state"], first["exit_code"]) == ("failed", 1)
    assert (second["state"], second["exit_code"]) == ("passed", 0)
    assert second["parent_id"] == first["id"]
    assert isinstance(second["duration_seconds"], float)
    assert second["duration_seconds"] >= 0
    assert by_attempt["deployOnGithubPush", 1]["duration_seconds"] is None

    assert main(["events", "--data-dir", str(data_dir)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[6] == "OUTCOME"
    assert table[1].split()[7] == "passed"  # RECEIVED is two words
    assert {r.function for r in latest_attempts(runs)} == {
        "onGithubPushMain",
        "testOnGithubPushMain",
        "deployOnGithubPush",
    }
