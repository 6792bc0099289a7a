"""The engine end to end: a stored event becomes matched ``dagger call`` runs, for real.

Real git (a bare repository cloned by path), real SQLite, the real dagger-io SDK talking to the
stand-in ``dagger session``, and real ``dagger call`` subprocesses of the stand-in.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from enginekit import EngineKit, function_names

from pocketci_tui.engine.dispatch import EngineError
from pocketci_tui.model import EventMatched, EventStatus, RunOutput, RunState

SPEC = {
    "module-path": "./ci",
    "secrets": [{"name": "ghPassword", "from-keyring": "gh-password"}],
}
GH_PASSWORD = "s3cr3t-password-value"
GRANTED = {"gh-password": GH_PASSWORD}
CLOUD_TOKEN = "dagger-cloud-token-value"


async def test_push_to_main_runs_the_tier_one_function(tmp_path: Path) -> None:
    async with EngineKit(
        tmp_path, spec=SPEC, secrets=GRANTED, grant_secrets=["gh-password"]
    ) as kit:
        event = kit.push({"main.go": "package main // 2\n"})
        stored = await kit.deliver(event)
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)

        assert function_names(runs, RunState.PASSED) == {"onGithubPushMain"}
        # PR functions are not in a matching tier; dispatch lost to tier 1.
        skipped = {r.function: r.reason for r in runs if r.state is RunState.SKIPPED}
        assert "dispatch" in skipped
        assert "tier 1" in skipped["dispatch"] or "onGithubPushMain" in skipped["dispatch"]

        [call] = kit.calls()
        argv = call["argv"]
        assert "on-github-push-main" in argv
        assert argv[argv.index("-m") + 1].endswith("/ci")
        assert Path(argv[argv.index("--src") + 1]).is_absolute()
        assert "--gh-password" in argv
        assert GH_PASSWORD not in " ".join(argv)
        assert call["secrets"] == {"ghPassword": GH_PASSWORD}
        trigger = call["event_trigger"]
        assert trigger["sha"] == event.sha
        assert trigger["repository_name"] == "owner/repo"
        assert trigger["changes"] == ["main.go"]
        assert trigger["run_id"] == next(r.id for r in runs if r.state is RunState.PASSED)
        assert call["env"]["CI"] == "pocketci"
        assert call["env"]["GITHUB_SHA"] == event.sha

        passed = next(r for r in runs if r.state is RunState.PASSED)
        log_file = kit.paths.logs_dir / passed.log_path
        assert "hello from dagger" in log_file.read_text()
        assert any(isinstance(n, RunOutput) and n.run_id == passed.id for n in kit.notices)
        assert kit.run_states(passed.id)[:3] == [RunState.QUEUED, RunState.RUNNING, RunState.PASSED]
        final = await kit.store.get_event(stored.event.id)
        assert final is not None
        assert final.status is EventStatus.DISPATCHED


async def test_pull_request_runs_prefixed_functions_in_parallel(tmp_path: Path) -> None:
    async with EngineKit(
        tmp_path, spec=SPEC, secrets=GRANTED, grant_secrets=["gh-password"]
    ) as kit:
        stored = await kit.deliver(kit.pull_request({"pkg/a.go": "package pkg\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        assert function_names(runs, RunState.PASSED) == {
            "testOnGithubPullRequest",
            "lintOnGithubPullRequest",
        }
        calls = {c["function"]: c for c in kit.calls()}
        test_argv = calls["testOnGithubPullRequest"]["argv"]
        assert test_argv[test_argv.index("--filter") + 1] == "opened"
        assert test_argv[test_argv.index("--on-changes") + 1] == "pkg/a.go"
        # Only the function that declares the secret receives it.
        assert "--gh-password" in test_argv
        assert "--gh-password" not in calls["lintOnGithubPullRequest"]["argv"]
        lint_env = calls["lintOnGithubPullRequest"]["env"]
        assert GH_PASSWORD not in json.dumps(lint_env)
        assert any(isinstance(n, EventMatched) for n in kit.notices)


async def test_on_changes_skips_when_no_file_matches(tmp_path: Path) -> None:
    async with EngineKit(
        tmp_path, spec=SPEC, secrets=GRANTED, grant_secrets=["gh-password"]
    ) as kit:
        stored = await kit.deliver(kit.pull_request({"docs/readme.md": "docs\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        states = {r.function: r.state for r in runs}
        assert states["testOnGithubPullRequest"] is RunState.SKIPPED
        assert states["lintOnGithubPullRequest"] is RunState.PASSED


async def test_repository_paths_skip_the_event_before_loading_the_module(tmp_path: Path) -> None:
    spec = {"paths": ["src/**"]}
    async with EngineKit(tmp_path, spec=spec) as kit:
        stored = await kit.deliver(kit.push({"README.md": "changed\n"}))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.SKIPPED, EventStatus.ERROR)
        assert final.status is EventStatus.SKIPPED
        assert "paths" in final.detail
        assert kit.calls() == []


async def test_failed_function_records_exit_code_and_last_lines(tmp_path: Path) -> None:
    call = {"output": ["compiling", "error: tests failed"], "exit": 3}
    from enginekit import standard_functions

    async with EngineKit(tmp_path, functions=standard_functions(call)) as kit:
        stored = await kit.deliver(kit.push({"main.go": "broken\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        [failed] = [r for r in runs if r.state is RunState.FAILED]
        assert failed.exit_code == 3
        assert "tests failed" in failed.reason


async def test_fork_pull_request_waits_for_approval_pinned_to_its_head(tmp_path: Path) -> None:
    async with EngineKit(
        tmp_path, spec=SPEC, secrets=GRANTED, grant_secrets=["gh-password"]
    ) as kit:
        stored = await kit.deliver(kit.pull_request({"a.go": "x\n"}, fork=True))
        event_id = stored.event.id
        assert event_id is not None
        waiting = await kit.wait_status(event_id, EventStatus.WAITING)
        assert "approval" in waiting.detail
        assert kit.calls() == []

        # The approval is for the head commit the person saw, and no other.
        with pytest.raises(EngineError, match="not the 000000000000 shown"):
            await kit.engine.approve(event_id, "0" * 40)
        unapproved = await kit.store.get_event(event_id)
        assert unapproved is not None
        assert unapproved.approved_sha == ""
        await kit.engine.approve(event_id, unapproved.event.sha)
        runs = await kit.wait_runs_finished(event_id)
        assert function_names(runs, RunState.PASSED) == {
            "testOnGithubPullRequest",
            "lintOnGithubPullRequest",
        }
        # A new commit on the fork is a new event: not approved, so it waits again (P3).
        newer = await kit.deliver(
            kit.pull_request({"a.go": "y\n"}, action="synchronize", fork=True)
        )
        assert newer.event.id is not None
        again = await kit.wait_status(newer.event.id, EventStatus.WAITING)
        assert "approval" in again.detail


async def test_fork_pull_request_without_secrets_mode(tmp_path: Path) -> None:
    """no-secrets: no secret of any kind, granted ones and the Dagger Cloud token included (R10)."""
    kit = EngineKit(
        tmp_path,
        spec=SPEC,
        secrets={**GRANTED, "dagger-cloud": CLOUD_TOKEN},
        grant_secrets=["gh-password"],
        fork_pull_requests="no-secrets",
    )
    kit.settings = replace(
        kit.settings, dagger=replace(kit.settings.dagger, cloud_token="dagger-cloud")
    )
    async with kit:
        stored = await kit.deliver(kit.pull_request({"a.go": "x\n"}, fork=True))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        assert function_names(runs, RunState.PASSED) == {
            "testOnGithubPullRequest",
            "lintOnGithubPullRequest",
        }
        assert len(kit.calls()) == 2
        for call in kit.calls():
            assert "--gh-password" not in call["argv"]
            assert "DAGGER_CLOUD_TOKEN" not in call["env"]
            assert not [k for k in call["env"] if k.startswith("POCKETCI_SECRET_")]
            recorded = json.dumps(call)
            assert GH_PASSWORD not in recorded
            assert CLOUD_TOKEN not in recorded

        # The same repository's own pushes still get the token: only the fork run went without.
        pushed = await kit.deliver(kit.push({"main.go": "package main // 3\n"}))
        assert pushed.event.id is not None
        await kit.wait_runs_finished(pushed.event.id)
        [push_call] = [c for c in kit.calls() if "on-github-push-main" in c["argv"]]
        assert push_call["env"]["DAGGER_CLOUD_TOKEN"] == CLOUD_TOKEN
        assert push_call["secrets"] == {"ghPassword": GH_PASSWORD}


async def test_fork_pull_request_skip_mode(tmp_path: Path) -> None:
    async with EngineKit(tmp_path, spec=SPEC, fork_pull_requests="skip") as kit:
        stored = await kit.deliver(kit.pull_request({"a.go": "x\n"}, fork=True))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.SKIPPED)
        assert "fork" in final.detail
        assert kit.calls() == []


async def test_cancel_kills_the_process_tree(tmp_path: Path) -> None:
    from enginekit import standard_functions

    slow = {"output": ["started"], "sleep": 60, "spawn_child": True}
    async with EngineKit(tmp_path, functions=standard_functions(slow)) as kit:
        stored = await kit.deliver(kit.push({"main.go": "slow\n"}))
        assert stored.event.id is not None
        await kit.wait_for(lambda: any(c.get("child_pid") for c in kit.calls()), timeout=30)
        [call] = kit.calls()
        run_id = call["event_trigger"]["run_id"]
        assert await kit.engine.cancel(run_id)
        runs = await kit.wait_runs_finished(stored.event.id)
        assert next(r for r in runs if r.id == run_id).state is RunState.CANCELLED
        for pid in (call["pid"], call["child_pid"]):
            await _wait_gone(pid)


async def test_refire_and_rerun_make_new_linked_runs(tmp_path: Path) -> None:
    async with EngineKit(tmp_path) as kit:
        stored = await kit.deliver(kit.push({"main.go": "v1\n"}))
        event_id = stored.event.id
        assert event_id is not None
        first = await kit.wait_runs_finished(event_id)
        await kit.engine.fire(event_id)
        both = await kit.wait_runs_finished(event_id, count=2 * len(first))
        assert {r.attempt for r in both} == {1, 2}
        passed = [r for r in both if r.state is RunState.PASSED]
        assert len(passed) == 2
        assert len({c["event_trigger"]["run_id"] for c in kit.calls()}) == 2

        await kit.engine.rerun(passed[0].id)
        third = await kit.wait_runs_finished(event_id, count=len(both) + 1)
        [rerun] = [r for r in third if r.parent_id == passed[0].id]
        assert rerun.state is RunState.PASSED
        assert rerun.attempt == 3


async def test_missing_clone_token_is_reported_on_the_event(tmp_path: Path) -> None:
    async with EngineKit(tmp_path) as kit:
        kit.engine.settings = replace(
            kit.settings, repos=(replace(kit.settings.repos[0], token="gh-token"),)
        )
        stored = await kit.deliver(kit.push({"main.go": "x\n"}))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.ERROR)
        assert "secrets set gh-token" in final.detail


async def test_restart_marks_running_runs_interrupted(tmp_path: Path) -> None:
    from enginekit import standard_functions

    slow = {"output": ["started"], "sleep": 60}
    kit = EngineKit(tmp_path, functions=standard_functions(slow))
    async with kit:
        stored = await kit.deliver(kit.push({"main.go": "slow\n"}))
        assert stored.event.id is not None
        await kit.wait_for(lambda: bool(kit.calls()), timeout=30)
    runs = await _runs_after_reopen(kit, stored.event.id)
    assert RunState.INTERRUPTED in {r.state for r in runs}


async def _runs_after_reopen(kit: EngineKit, event_id: int) -> list:  # type: ignore[type-arg]
    from pocketci_tui.store import Store

    store = await Store.open(kit.paths.db_file)
    try:
        return await store.list_runs(event_id)
    finally:
        await store.close()


async def _wait_gone(pid: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)


async def test_a_bad_paths_pattern_is_reported_on_the_event(tmp_path: Path) -> None:
    async with EngineKit(tmp_path, spec={"paths": ["src/[z-a]"]}) as kit:
        stored = await kit.deliver(kit.push({"src/a.go": "x\n"}))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.ERROR, EventStatus.SKIPPED)
        assert final.status is EventStatus.ERROR
        assert "paths" in final.detail
        assert kit.calls() == []


async def test_module_path_outside_the_repository_is_refused(tmp_path: Path) -> None:
    async with EngineKit(tmp_path, spec={"module-path": "../../etc"}) as kit:
        stored = await kit.deliver(kit.push({"main.go": "x\n"}))
        assert stored.event.id is not None
        final = await kit.wait_status(stored.event.id, EventStatus.ERROR)
        assert "outside the repository" in final.detail
        assert kit.calls() == []
