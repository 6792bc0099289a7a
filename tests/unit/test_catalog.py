"""Catalog pieces without a session: content keys on real git repos, parsing, CLI lookup."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from daggerstub import FAKE_DIR, install_fake_dagger, write_module
from graphql import build_schema, parse, validate

from pocketci_tui.engine.dagger.catalog import (
    CatalogError,
    catalog_from_json,
    catalog_query,
    catalog_to_json,
    main_object_name,
    module_content_key,
    parse_catalog,
    resolve_dagger_cli,
)
from pocketci_tui.engine.git import GitCommand
from pocketci_tui.model import ArgSpec, FunctionSpec, ModuleCatalog


def git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_module(
        root / "ci",
        "ci",
        dependencies=[
            {"name": "lib", "source": "../lib"},
            {"name": "remote", "source": "github.com/acme/daggerverse/tool@v1.2.0"},
        ],
    )
    (root / "ci" / "main.go").write_text("package main\n")
    write_module(root / "lib", "lib", dependencies=[{"name": "base", "source": "../base"}])
    (root / "lib" / "lib.go").write_text("package main\n")
    (root / "base").mkdir()
    (root / "base" / "base.go").write_text("package main\n")
    (root / "app").mkdir()
    (root / "app" / "app.py").write_text("print('hi')\n")
    commit_all(root, "initial")
    return root


async def test_key_is_stable_for_unrelated_changes(repo: Path, git_runner: GitCommand) -> None:
    key = await module_content_key(repo, repo / "ci", git=git_runner)
    assert key.startswith("git-")
    (repo / "app" / "app.py").write_text("print('changed')\n")
    (repo / "README.md").write_text("docs\n")
    commit_all(repo)
    assert await module_content_key(repo, repo / "ci", git=git_runner) == key


async def test_key_changes_with_the_module(repo: Path, git_runner: GitCommand) -> None:
    key = await module_content_key(repo, repo / "ci", git=git_runner)
    (repo / "ci" / "main.go").write_text("package main\n// changed\n")
    commit_all(repo)
    assert await module_content_key(repo, repo / "ci", git=git_runner) != key


@pytest.mark.parametrize("changed", ["lib/lib.go", "base/base.go"])
async def test_key_changes_with_local_dependencies_transitively(
    repo: Path, changed: str, git_runner: GitCommand
) -> None:
    key = await module_content_key(repo, repo / "ci", git=git_runner)
    (repo / changed).write_text("package main\n// changed\n")
    commit_all(repo)
    assert await module_content_key(repo, repo / "ci", git=git_runner) != key


async def test_key_reads_head_not_the_work_tree(repo: Path, git_runner: GitCommand) -> None:
    key = await module_content_key(repo, repo / "ci", git=git_runner)
    (repo / "ci" / "main.go").write_text("uncommitted\n")
    assert await module_content_key(repo, repo / "ci", git=git_runner) == key


async def test_key_of_a_module_at_the_repository_root(
    tmp_path: Path, git_runner: GitCommand
) -> None:
    root = tmp_path / "root-mod"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_module(root, "ci")
    commit_all(root)
    key = await module_content_key(root, root, git=git_runner)
    assert key == await module_content_key(root, root / ".", git=git_runner)
    (root / "anything.txt").write_text("x\n")
    commit_all(root)
    assert await module_content_key(root, root, git=git_runner) != key


async def test_key_follows_a_source_directory_outside_the_module(
    tmp_path: Path, git_runner: GitCommand
) -> None:
    root = tmp_path / "src-repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write_module(root / "dagger", "ci", extra_config={"source": "../pipeline"})
    (root / "pipeline").mkdir()
    (root / "pipeline" / "main.go").write_text("package main\n")
    commit_all(root)
    key = await module_content_key(root, root / "dagger", git=git_runner)
    (root / "pipeline" / "main.go").write_text("package main\n// v2\n")
    commit_all(root)
    assert await module_content_key(root, root / "dagger", git=git_runner) != key


async def test_key_reads_the_checkout_whatever_git_variables_we_run_with(
    repo: Path, tmp_path: Path, git_runner: GitCommand, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git runs hardened here too: a ``GIT_DIR`` of our own environment never leads it to
    another repository, so the key is the checkout's."""
    key = await module_content_key(repo, repo / "ci", git=git_runner)
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    write_module(other / "ci", "other")
    commit_all(other)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    assert await module_content_key(repo, repo / "ci", git=git_runner) == key


async def test_key_errors(repo: Path, tmp_path: Path, git_runner: GitCommand) -> None:
    with pytest.raises(CatalogError, match="outside the checkout"):
        await module_content_key(repo, tmp_path, git=git_runner)
    (repo / "new").mkdir()
    (repo / "new" / "dagger.json").write_text("{}")
    with pytest.raises(CatalogError, match="not committed"):
        await module_content_key(repo, repo / "new", git=git_runner)
    not_git = tmp_path / "not-git"
    not_git.mkdir()
    with pytest.raises(CatalogError, match="not committed"):
        await module_content_key(not_git, not_git, git=git_runner)


def _typedef(
    kind: str, name: str | None = None, element: Any = None, optional: bool = False
) -> Any:
    return {
        "kind": kind,
        "optional": optional,
        "asObject": {"name": name} if kind == "OBJECT_KIND" else None,
        "asEnum": {"name": name} if kind == "ENUM_KIND" else None,
        "asInterface": None,
        "asScalar": {"name": name} if kind == "SCALAR_KIND" else None,
        "asList": {"elementTypeDef": element} if kind == "LIST_KIND" else None,
    }


def _answer(objects: list[Any], name: str = "my-ci") -> dict[str, Any]:
    return {"moduleSource": {"asModule": {"name": name, "objects": objects}}}


def test_parse_maps_types_defaults_and_keeps_only_the_main_object() -> None:
    main = {
        "asObject": {
            "name": "MyCi",
            "functions": [
                {
                    "name": "dispatch",
                    "description": "all events",
                    "args": [
                        {"name": "a", "defaultValue": None, "typeDef": _typedef("STRING_KIND")},
                        {"name": "b", "defaultValue": "", "typeDef": _typedef("INTEGER_KIND")},
                        {
                            "name": "c",
                            "defaultValue": '["x","y"]',
                            "typeDef": _typedef("LIST_KIND", element=_typedef("STRING_KIND")),
                        },
                        {
                            "name": "d",
                            "defaultValue": ["raw", "list"],
                            "typeDef": _typedef(
                                "LIST_KIND",
                                element=_typedef("LIST_KIND", element=_typedef("BOOLEAN_KIND")),
                                optional=True,
                            ),
                        },
                        {
                            "name": "e",
                            "defaultValue": '"A"',
                            "typeDef": _typedef("ENUM_KIND", "Mode"),
                        },
                        {
                            "name": "f",
                            "defaultValue": None,
                            "typeDef": _typedef("SCALAR_KIND", "Platform"),
                        },
                        {
                            "name": "g",
                            "defaultValue": None,
                            "typeDef": _typedef("OBJECT_KIND", "Secret"),
                        },
                        {"name": "h", "defaultValue": "1.5", "typeDef": _typedef("FLOAT_KIND")},
                    ],
                }
            ],
        }
    }
    helper = {"asObject": {"name": "Helper", "functions": [{"name": "x", "args": []}]}}
    catalog = parse_catalog(_answer([helper, main]), Path("/m"))
    assert catalog.module_name == "my-ci"
    [dispatch] = catalog.functions
    assert dispatch.description == "all events"
    assert dispatch.args == (
        ArgSpec("a", "String", False, None),
        ArgSpec("b", "Int", False, None),
        ArgSpec("c", "[String]", False, '["x","y"]'),
        ArgSpec("d", "[[Boolean]]", True, '["raw", "list"]'),
        ArgSpec("e", "Mode", False, '"A"'),
        ArgSpec("f", "Platform", False, None),
        ArgSpec("g", "Secret", False, None),
        ArgSpec("h", "Float", False, "1.5"),
    )


def test_parse_without_a_main_object_fails() -> None:
    helper = {"asObject": {"name": "Helper", "functions": []}}
    with pytest.raises(CatalogError, match="no main object 'MyCi'"):
        parse_catalog(_answer([helper]), Path("/m"))
    with pytest.raises(CatalogError, match="unexpected introspection answer"):
        parse_catalog({"moduleSource": None}, Path("/m"))


@pytest.mark.parametrize(
    ("module", "main"),
    [("ci", "Ci"), ("my-ci", "MyCi"), ("my_mod2x", "MyMod2X"), ("pocketci.ci", "PocketciCi")],
)
def test_main_object_name(module: str, main: str) -> None:
    assert main_object_name(module) == main


def test_the_query_is_valid_against_the_engine_schema_subset() -> None:
    schema = build_schema((FAKE_DIR / "schema.graphqls").read_text())
    query = catalog_query('/path/with "quotes" and \\ back\nslash')
    assert validate(schema, parse(query)) == []


def test_cache_json_round_trip() -> None:
    catalog = ModuleCatalog(
        "ci",
        (
            FunctionSpec("a", (ArgSpec("x", "[String]", True, '["1"]'),), "doc"),
            FunctionSpec("b"),
        ),
    )
    assert catalog_from_json(json.loads(json.dumps(catalog_to_json(catalog)))) == catalog


def test_resolve_dagger_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_fake_dagger(tmp_path) / "dagger"
    assert resolve_dagger_cli(str(fake)) == str(fake)
    assert resolve_dagger_cli(str(tmp_path / "missing" / "dagger")) is None
    not_exec = tmp_path / "plain-file"
    not_exec.write_text("x")
    assert resolve_dagger_cli(str(not_exec)) is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert resolve_dagger_cli("") is None
    monkeypatch.setenv("PATH", str(fake.parent))
    assert resolve_dagger_cli("") == str(fake)
    assert resolve_dagger_cli("dagger") == str(fake)


async def test_cache_files_are_pruned_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pocketci_tui.engine.dagger import catalog as catalog_module

    monkeypatch.setattr(catalog_module, "DISK_ENTRIES", 2)
    monkeypatch.setattr(catalog_module, "MEMORY_ENTRIES", 1)
    cache = catalog_module.Catalog(tmp_path / "cache", dagger_cli="")
    for i in range(3):
        key = f"key-{i}"
        cache._write_cache(cache._cache_file(key), key, ModuleCatalog(f"m{i}", ()))
        os.utime(cache._cache_file(key), ns=(i * 10**9, i * 10**9))
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.json")) == sorted(
        cache._cache_file(k).name for k in ("key-1", "key-2")
    )
    cache._remember("a", ModuleCatalog("a", ()))
    cache._remember("b", ModuleCatalog("b", ()))
    assert cache._remember("a") is None
    assert cache._remember("b") == ModuleCatalog("b", ())
