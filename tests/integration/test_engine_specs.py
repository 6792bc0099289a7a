"""A monorepo: ``pocketci.yaml`` lists several named specs, each matched and given secrets alone.

Two applications, ``api`` and ``web``, each with its own module, ``paths`` and secrets. Both
modules declare both secrets, so what the stand-in ``dagger`` received shows which it was given.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from daggerstub import arg, fn, write_module
from enginekit import EngineKit

from pocketci_tui.engine.dispatch.queue import DispatchRequest
from pocketci_tui.engine.dispatch.recovery import resume
from pocketci_tui.model import EventStatus, Run, RunState
from pocketci_tui.statuses.routing import SettingsRouter
from pocketci_tui.store import Store

API_VALUE = "api-deploy-token-value"
NPM_VALUE = "web-npm-token-value"

SPECS = {
    "specs": [
        {
            "name": "api",
            "module-path": "./api/ci",
            "paths": ["api/**", "go.mod"],
            "secrets": [{"name": "deployToken", "from-keyring": "api-deploy"}],
        },
        {
            "name": "web",
            "module-path": "./web/ci",
            "paths": ["web/**"],
            "secrets": [{"name": "npmToken", "from-keyring": "web-npm"}],
        },
    ]
}


def _module_files(tmp: Path, app: str, functions: list[dict[str, Any]]) -> dict[str, str | None]:
    src = write_module(tmp / f"{app}-module-src", f"{app}-ci", functions)
    return {
        f"{app}/ci/dagger.json": (src / "dagger.json").read_text(),
        f"{app}/ci/pocketci-fake.json": (src / "pocketci-fake.json").read_text(),
    }


def _functions() -> list[dict[str, Any]]:
    """The same function names in both modules: only the spec tells their runs apart."""
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    secrets = [
        arg("deployToken", "Secret", optional=True),
        arg("npmToken", "Secret", optional=True),
    ]
    return [fn("onGithubPushMain", *base, *secrets), fn("lintOnGithubPullRequest", *base)]


def _monorepo(tmp: Path) -> EngineKit:
    kit = EngineKit(
        tmp,
        spec=SPECS,
        secrets={"api-deploy": API_VALUE, "web-npm": NPM_VALUE},
        grant_secrets=["api-deploy", "web-npm"],
    )
    files = {**_module_files(tmp, "api", _functions()), **_module_files(tmp, "web", _functions())}
    kit.remote.commit(dict(files), branch="main", message="two applications")
    return kit


def _given(kit: EngineKit) -> dict[str, dict[str, str]]:
    """The secrets each module's call received, by the module folder it ran in."""
    out: dict[str, dict[str, str]] = {}
    for call in kit.calls():
        app = "api" if "/api/ci" in json.dumps(call["argv"]) else "web"
        assert app not in out, "one call per application"
        assert call["event_trigger"]["spec"] == app  # the function learns its spec
        out[app] = call["secrets"]
    return out


def _ran(runs: list[Run]) -> set[tuple[str, str]]:
    return {(r.spec, r.function) for r in runs if r.state is RunState.PASSED}


async def test_a_change_under_one_application_runs_only_its_functions_with_its_secrets(
    tmp_path: Path,
) -> None:
    async with _monorepo(tmp_path) as kit:
        stored = await kit.deliver(kit.push({"api/main.go": "package main\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        assert _ran(runs) == {("api", "onGithubPushMain")}
        assert {r.spec for r in runs} == {"api"}  # web's paths did not match: no run at all
        assert _given(kit) == {"api": {"deployToken": API_VALUE}}
        assert NPM_VALUE not in json.dumps(kit.calls())
        # `events --json` says which spec each run belongs to.
        [row] = await _events_json(kit)
        assert [(r["spec"], r["function"], r["state"]) for r in row["runs"]] == [
            ("api", "onGithubPushMain", "passed")
        ]


async def _events_json(kit: EngineKit) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "pocketci_tui", "events", "--json"),
        *("--config", str(kit.paths.config_file), "--data-dir", str(kit.paths.data_dir)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


async def test_a_change_touching_both_runs_both_each_with_its_own_secrets(
    tmp_path: Path,
) -> None:
    kit = _monorepo(tmp_path)
    repo = replace(kit.settings.repos[0], statuses=True, status_token="forge-token")
    kit.settings = replace(kit.settings, repos=(repo,))
    async with kit:
        kit.store.status_router = SettingsRouter(kit.settings)
        event = kit.push({"api/main.go": "package main\n", "web/app.js": "x\n"})
        stored = await kit.deliver(event)
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id, count=2)
        assert _ran(runs) == {("api", "onGithubPushMain"), ("web", "onGithubPushMain")}
        assert _given(kit) == {
            "api": {"deployToken": API_VALUE},
            "web": {"npmToken": NPM_VALUE},
        }
        done = await kit.wait_status(stored.event.id, EventStatus.DISPATCHED)
        assert "2 of 2 functions matched" in done.detail
        # Each application's function has a commit status of its own, named by its spec.
        statuses = {(s.context, s.state) for s in await kit.store.all_statuses()}
        assert ("pocketci/api/onGithubPushMain", "success") in statuses
        assert ("pocketci/web/onGithubPushMain", "success") in statuses
        assert {context for context, _ in statuses} == {
            "pocketci/api/onGithubPushMain",
            "pocketci/web/onGithubPushMain",
        }


async def test_a_rerun_repeats_the_function_of_its_own_spec_only(tmp_path: Path) -> None:
    async with _monorepo(tmp_path) as kit:
        event = kit.push({"api/main.go": "package main\n", "web/app.js": "x\n"})
        stored = await kit.deliver(event)
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id, count=2)
        [api_run] = [r for r in runs if r.spec == "api"]
        await kit.engine.rerun(api_run.id)
        runs = await kit.wait_runs_finished(stored.event.id, count=3)
        [again] = [r for r in runs if r.attempt == 2]
        assert (again.spec, again.function, again.parent_id) == (
            "api",
            api_run.function,
            api_run.id,
        )
        assert again.state is RunState.PASSED
        assert [c["secrets"] for c in kit.calls()][-1] == {"deployToken": API_VALUE}
        assert len(kit.calls()) == 3


async def test_a_change_under_no_application_is_skipped(tmp_path: Path) -> None:
    async with _monorepo(tmp_path) as kit:
        stored = await kit.deliver(kit.push({"README.md": "more\n"}))
        assert stored.event.id is not None
        done = await kit.wait_status(stored.event.id, EventStatus.SKIPPED)
        assert "paths of any spec" in done.detail
        assert kit.calls() == []


async def test_a_spec_whose_module_leaves_the_repository_is_refused(tmp_path: Path) -> None:
    hostile = {
        "specs": [{"name": "api", "module-path": "./api/ci"}, {"name": "x", "module-path": "../.."}]
    }
    async with _monorepo(tmp_path) as kit:
        stored = await kit.deliver(
            kit.push({"api/main.go": "y\n", "pocketci.yaml": yaml.safe_dump(hostile)})
        )
        assert stored.event.id is not None
        done = await kit.wait_status(stored.event.id, EventStatus.ERROR)
        assert "specs[1].module-path" in done.detail
        assert "outside the repository" in done.detail
        assert kit.calls() == []


async def test_runs_left_queued_by_a_stop_are_queued_again_per_spec(tmp_path: Path) -> None:
    """After a stop, each spec's queued functions are dispatched again, and only them."""
    store = await Store.open(tmp_path / "pocketci.db")
    try:
        kit = EngineKit(tmp_path / "kit")
        stored, _ = await store.record_event(kit.push({"a": "1\n"}), EventStatus.RECEIVED)
        event_id = stored.event.id
        assert event_id is not None
        await store.set_event_status(event_id, EventStatus.DISPATCHED)
        await store.add_runs(
            [
                Run(
                    id=f"r-{spec}",
                    event_id=event_id,
                    function="build",
                    state=RunState.QUEUED,
                    spec=spec,
                )
                for spec in ("api", "web")
            ]
        )
        requests: list[DispatchRequest] = []
        await resume(store, requests.append, lambda notice: None)
    finally:
        await store.close()
    assert sorted(requests, key=lambda r: r.spec or "") == [
        DispatchRequest(event_id, frozenset({"build"}), spec="api"),
        DispatchRequest(event_id, frozenset({"build"}), spec="web"),
    ]


async def test_approving_a_fork_shows_what_each_spec_of_its_head_asks_for(tmp_path: Path) -> None:
    async with _monorepo(tmp_path) as kit:
        hostile = {
            "specs": [
                {**SPECS["specs"][0]},
                {**SPECS["specs"][1], "secrets": [{"name": "npmToken", "from-keyring": "other"}]},
            ]
        }
        event = kit.pull_request(
            {"web/app.js": "y\n", "pocketci.yaml": yaml.safe_dump(hostile)}, fork=True
        )
        stored = await kit.deliver(event)
        assert stored.event.id is not None
        await kit.wait_status(stored.event.id, EventStatus.WAITING)
        head = await kit.engine.head_secrets(stored.event.id)
        assert head.error == ""
        assert head.given == ("api/deployToken: secret-store entry 'api-deploy'",)
        assert head.refused == (
            "web/npmToken: secret-store entry 'other', not granted to owner/repo",
        )
        assert kit.calls() == []
