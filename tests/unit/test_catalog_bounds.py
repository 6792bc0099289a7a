"""The module's catalog and ``dagger.json`` come from the repository: names are checked and
every size is bounded (functions per module, arguments, names, defaults, runs per event)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from daggerstub import write_module

from pocketci_tui.engine.dagger.catalog import CatalogError, module_content_key, parse_catalog
from pocketci_tui.engine.dagger.module_key import MAX_DAGGER_JSON, MAX_LOCAL_PATHS
from pocketci_tui.engine.dagger.query import MAX_ARGS, MAX_DEFAULT, MAX_FUNCTIONS, MAX_NAME
from pocketci_tui.engine.git import GitCommand
from pocketci_tui.engine.match.matching import (
    MAX_DEFAULT_ENTRIES,
    MAX_RUNS_PER_EVENT,
    RUN_CAP_REASON,
    is_identifier,
    match,
)
from pocketci_tui.engine.match.naming import kebab
from pocketci_tui.model import ArgSpec, Event, FunctionSpec, ModuleCatalog

SRC = ArgSpec("src", "Directory", False, None)
TRIGGER = ArgSpec("eventTrigger", "File", False, None)
PUSH_MAIN = Event(
    vendor="github",
    event_type="push",
    filter="main",
    repository="acme/api",
    ref="refs/heads/main",
    sha="a" * 40,
    base_ref="",
    base_sha="",
    pr_number=None,
    is_fork=False,
    delivery_id="d-1",
    received_at=datetime(2026, 1, 1, tzinfo=UTC),
    body=b"{}",
)


def trigger(name: str, *args: ArgSpec) -> FunctionSpec:
    return FunctionSpec(name=name, args=(SRC, TRIGGER, *args))


def catalog(*functions: FunctionSpec) -> ModuleCatalog:
    return ModuleCatalog(module_name="ci", functions=functions)


# -- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["-OnGithubPushMain", "--upload-pack=x OnGithubPushMain", "évilOnGithubPushMain", "a b"],
)
def test_a_name_that_is_not_an_identifier_is_never_called(name: str) -> None:
    result = match(catalog(trigger(name), trigger("onGithubPushMain")), PUSH_MAIN, [], ())
    decisions = {d.function: d for d in result.decisions}
    assert [c.function for c in result.calls] == ["onGithubPushMain"]
    if name in decisions:  # a name with no word boundary may not even belong to a tier
        assert not decisions[name].matched
        assert "not a GraphQL identifier" in decisions[name].reason


def test_the_flag_like_name_did_reach_a_tier() -> None:
    # Without the check this name matched tier 1 and became `dagger call ... -on-github-push-main`,
    # which the CLI reads as flags.
    assert kebab("-OnGithubPushMain").startswith("-")
    result = match(catalog(trigger("-OnGithubPushMain")), PUSH_MAIN, [], ())
    [decision] = result.decisions
    assert decision.tier == 1
    assert not decision.matched
    assert result.calls == ()


def test_an_argument_name_that_is_not_an_identifier_skips_the_function() -> None:
    bad = ArgSpec("--exec", "String", True, '"x"')
    result = match(catalog(trigger("onGithubPushMain", bad)), PUSH_MAIN, [], ())
    [decision] = result.decisions
    assert not decision.matched
    assert "argument '--exec' is not a GraphQL identifier" in decision.reason


def test_is_identifier() -> None:
    assert is_identifier("onGithubPushMain")
    assert is_identifier("_x9")
    assert not is_identifier("9x")
    assert not is_identifier("")
    assert not is_identifier("a-b")
    assert not is_identifier("a" * 300)


# -- runs per event and defaults ----------------------------------------------------------------


def test_runs_per_event_are_capped_with_a_reason() -> None:
    functions = [trigger(f"check{i}OnGithubPushMain") for i in range(300)]
    result = match(catalog(*functions), PUSH_MAIN, [], ())
    assert len(result.calls) == MAX_RUNS_PER_EVENT
    assert [c.function for c in result.calls] == [f.name for f in functions[:MAX_RUNS_PER_EVENT]]
    capped = [d for d in result.decisions if d.reason.startswith(RUN_CAP_REASON)]
    assert len(capped) == 300 - MAX_RUNS_PER_EVENT
    assert not any(d.matched for d in capped)
    assert str(MAX_RUNS_PER_EVENT) in capped[0].reason


def test_a_function_past_the_cap_can_still_be_rerun() -> None:
    functions = [trigger(f"check{i}OnGithubPushMain") for i in range(300)]
    last = functions[-1].name
    result = match(catalog(*functions), PUSH_MAIN, [], (), only={last})
    assert last in [c.function for c in result.calls]


def test_defaults_with_too_many_entries_skip_the_function() -> None:
    many = ",".join(f"b{i}" for i in range(MAX_DEFAULT_ENTRIES + 1))
    on_changes = ArgSpec("onChanges", "String", False, json.dumps(many))
    result = match(catalog(trigger("onGithubPushMain", on_changes)), PUSH_MAIN, ["a"], ())
    [decision] = result.decisions
    assert not decision.matched
    assert "invalid onChanges default" in decision.reason
    filter_list = ArgSpec("filter", "String", False, json.dumps(many.split(",")))
    result = match(catalog(trigger("onGithubPush", filter_list)), PUSH_MAIN, [], ())
    [decision] = result.decisions
    assert "invalid filter default" in decision.reason
    assert len(decision.reason) < 300


def test_a_long_default_is_quoted_short_in_a_reason() -> None:
    default = ArgSpec("filter", "String", False, json.dumps("x" * 50_000))
    result = match(catalog(trigger("onGithubPush", default)), PUSH_MAIN, [], ())
    [decision] = result.decisions
    assert not decision.matched
    assert len(decision.reason) < 400


# -- the introspection answer -------------------------------------------------------------------


def _function(name: str, args: int = 0, default: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": "d" * 5000,
        "args": [
            {"name": f"a{i}", "defaultValue": default, "typeDef": {"kind": "STRING_KIND"}}
            for i in range(args)
        ],
    }


def _answer(functions: list[dict[str, Any]], name: str = "ci") -> dict[str, Any]:
    main = {"asObject": {"name": "Ci", "functions": functions}}
    return {"moduleSource": {"asModule": {"name": name, "objects": [main]}}}


def test_the_catalog_is_bounded(tmp_path: Path) -> None:
    ok = parse_catalog(_answer([_function("f", 2)]), tmp_path)
    assert len(ok.functions[0].description) == 1000
    cases = [
        (_answer([_function(f"f{i}") for i in range(MAX_FUNCTIONS + 1)]), "functions"),
        (_answer([_function("f", MAX_ARGS + 1)]), "arguments"),
        (_answer([_function("f" * (MAX_NAME + 1))]), "function name"),
        (_answer([_function("f", 1, json.dumps("x" * MAX_DEFAULT))]), "default"),
        (_answer([], name="m" * (MAX_NAME + 1)), "module name"),
    ]
    for answer, what in cases:
        with pytest.raises(CatalogError, match=what) as info:
            parse_catalog(answer, tmp_path)
        assert len(str(info.value)) < MAX_NAME + 400


# -- dagger.json --------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, env=env, timeout=60
    )


def _repo(tmp_path: Path, **module: Any) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    write_module(root / "ci", "ci", **module)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "module")
    return root


async def test_an_oversized_dagger_json_is_refused(tmp_path: Path, git_runner: GitCommand) -> None:
    root = _repo(tmp_path, extra_config={"padding": "x" * MAX_DAGGER_JSON})
    with pytest.raises(CatalogError, match="KiB"):
        await module_content_key(root, root / "ci", git=git_runner)


async def test_too_many_local_dependencies_are_refused(
    tmp_path: Path, git_runner: GitCommand
) -> None:
    deps = [{"name": f"d{i}", "source": f"../d{i}"} for i in range(MAX_LOCAL_PATHS + 1)]
    root = _repo(tmp_path, dependencies=deps)
    with pytest.raises(CatalogError, match="dependencies"):
        await module_content_key(root, root / "ci", git=git_runner)


async def test_deeply_nested_dagger_json_is_refused(tmp_path: Path, git_runner: GitCommand) -> None:
    root = _repo(tmp_path)
    depth = 100_000
    (root / "ci" / "dagger.json").write_text(
        '{"name": "ci", "x": ' + "[" * depth + "]" * depth + "}"
    )
    _git(root, "commit", "-qam", "deep")
    with pytest.raises(CatalogError, match="nested"):
        await module_content_key(root, root / "ci", git=git_runner)
