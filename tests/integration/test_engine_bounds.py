"""The engine end to end against modules that try to overreach: too many matching functions, a
function name that would read as a flag, an oversized ``dagger.json`` or catalog.

Real git, real SQLite, the real dagger-io SDK talking to the stand-in ``dagger session``, and
real ``dagger call`` subprocesses of the stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.engine.dagger.module_key import MAX_DAGGER_JSON
from pocketci_tui.engine.dagger.query import MAX_FUNCTIONS
from pocketci_tui.engine.match.matching import MAX_RUNS_PER_EVENT, RUN_CAP_REASON
from pocketci_tui.model import MAX_DETAIL, EventStatus, RunState

OK = {"output": ["ok"], "exit": 0}
BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))


def trigger(name: str, *args: dict[str, Any]) -> dict[str, Any]:
    return fn(name, *BASE, *args, call=OK)


async def test_runs_per_event_are_capped_and_the_event_says_so(tmp_path: Path) -> None:
    count = MAX_RUNS_PER_EVENT + 8
    functions = [trigger(f"check{i}OnGithubPushMain") for i in range(count)]
    async with EngineKit(tmp_path, functions=functions, concurrency=8) as kit:
        stored = await kit.deliver(kit.push({"main.go": "package main // many\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id, count=count, timeout=120)
        event = await kit.store.get_event(stored.event.id)
    assert event is not None
    assert event.status is EventStatus.DISPATCHED
    assert f"8 more matched but were not run: at most {MAX_RUNS_PER_EVENT}" in event.detail
    assert len([r for r in runs if r.state is RunState.PASSED]) == MAX_RUNS_PER_EVENT
    capped = [r for r in runs if r.reason.startswith(RUN_CAP_REASON)]
    assert len(capped) == 8
    assert all(r.state is RunState.SKIPPED for r in capped)
    assert len(kit.calls()) == MAX_RUNS_PER_EVENT


async def test_a_function_name_that_reads_as_a_flag_is_never_called(tmp_path: Path) -> None:
    functions = [trigger("-OnGithubPushMain"), trigger("onGithubPushMain")]
    async with EngineKit(tmp_path, functions=functions) as kit:
        stored = await kit.deliver(kit.push({"main.go": "package main // flags\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id, count=2)
    by_name = {r.function: r for r in runs}
    assert by_name["onGithubPushMain"].state is RunState.PASSED
    assert by_name["-OnGithubPushMain"].state is RunState.SKIPPED
    assert "not a GraphQL identifier" in by_name["-OnGithubPushMain"].reason
    [call] = kit.calls()
    assert not any(a.startswith("-on-github") for a in call["argv"])


async def test_an_oversized_dagger_json_fails_the_event_with_a_short_reason(
    tmp_path: Path,
) -> None:
    async with EngineKit(tmp_path) as kit:
        config = json.loads((kit.tmp / "module-src" / "dagger.json").read_text())
        config["padding"] = "x" * MAX_DAGGER_JSON
        stored = await kit.deliver(kit.push({"ci/dagger.json": json.dumps(config)}))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.ERROR)
    assert "dagger.json" in final.detail
    assert "KiB" in final.detail
    assert len(final.detail) <= MAX_DETAIL
    assert kit.calls() == []


async def test_a_module_with_too_many_functions_is_refused(tmp_path: Path) -> None:
    functions = [trigger(f"f{i}OnGithubPushMain") for i in range(MAX_FUNCTIONS + 1)]
    async with EngineKit(tmp_path, functions=functions) as kit:
        stored = await kit.deliver(kit.push({"main.go": "package main // huge\n"}))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.ERROR, timeout=120)
    assert f"declares {MAX_FUNCTIONS + 1} functions" in final.detail
    assert kit.calls() == []
