"""The stand-in ``dagger``: its ``call`` behaviour, its session, and its schema subset."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import pytest
from daggerstub import (
    FAKE_DIR,
    FAKE_VERSION_LINE,
    arg,
    count_sessions,
    fn,
    install_fake_dagger,
    read_calls,
    write_module,
)
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(FAKE_DIR))
from fixture import to_kebab, to_pascal

from pocketci_tui.engine.match.naming import kebab

REAL_SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "dagger" / "schema-v0.21.8.graphqls"


@pytest.fixture
def dagger_bin(tmp_path: Path) -> Path:
    return install_fake_dagger(tmp_path) / "dagger"


@pytest.fixture
def sdk_log(tmp_path: Path) -> Iterator[Callable[[], TextIO]]:
    """A file for the SDK's log output, opened outside the event loop."""
    with (tmp_path / "sdk.log").open("w") as f:
        yield lambda: f


@pytest.fixture
def module(tmp_path: Path) -> Path:
    return write_module(
        tmp_path / "repo" / "ci",
        "ci",
        [
            fn(
                "onGithubPushMain",
                arg("src", "Directory"),
                arg("eventTrigger", "File"),
                arg("filter", optional=True, default="main,dev"),
                arg("onChanges", "[String]", optional=True),
                arg("ghPassword", "Secret", optional=True),
                arg("verbose", "Boolean", optional=True),
                arg("count", "Int", optional=True),
                call={
                    "output": ["hello {secret:ghPassword}", "b64 {secret_b64:ghPassword}"],
                    "stderr": ["progress line"],
                    "exit": 3,
                },
            ),
            fn("testOnGithubPullRequest", arg("src", "Directory")),
        ],
    )


def run(
    dagger: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [str(dagger), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_version_prints_the_fixed_line(dagger_bin: Path) -> None:
    for args in (["version"], ["--version"]):
        done = run(dagger_bin, *args)
        assert done.returncode == 0
        assert done.stdout == FAKE_VERSION_LINE + "\n"


def test_call_records_then_prints_and_exits_with_the_chosen_code(
    dagger_bin: Path, module: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"run_id": "r1", "vendor": "github"}))
    done = run(
        dagger_bin,
        "call",
        "-m",
        str(module),
        "on-github-push-main",
        "--src",
        str(tmp_path),
        "--event-trigger",
        str(event),
        "--filter=main",
        "--on-changes",
        "a.txt,b.txt",
        "--gh-password",
        "env://GH_PASS",
        "--verbose",
        "--count",
        "7",
        "--progress",
        "plain",
        env={"FAKE_DAGGER_RECORD_DIR": str(record), "GH_PASS": "s3cr3t", "MARK": "x"},
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    b64 = base64.b64encode(b"s3cr3t").decode()
    assert done.stdout.splitlines() == ["hello s3cr3t", f"b64 {b64}"]
    assert done.stderr.splitlines() == ["progress line"]
    [call] = read_calls(record)
    assert call["argv"][0] == str(dagger_bin)
    assert call["argv"][1:4] == ["call", "-m", str(module)]
    assert call["function"] == "onGithubPushMain"
    assert call["cwd"] == str(tmp_path)
    assert call["env"]["MARK"] == "x"
    assert call["event_trigger"] == {"run_id": "r1", "vendor": "github"}
    assert call["secrets"] == {"ghPassword": "s3cr3t"}
    assert call["args"]["filter"] == "main"
    assert call["args"]["onChanges"] == "a.txt,b.txt"
    assert call["args"]["verbose"] == "true"
    assert "ghPassword" not in call["args"]
    assert call["child_pid"] is None


def test_secret_env_colon_form_and_unresolvable_secret(
    dagger_bin: Path, module: Path, tmp_path: Path
) -> None:
    base = ["call", "-m", str(module), "on-github-push-main", "--src", ".", "--event-trigger"]
    ok = run(dagger_bin, *base, "e.json", "--gh-password", "env:TOKEN", env={"TOKEN": "t0k"})
    assert ok.stdout.splitlines()[0] == "hello t0k"
    env = {k: v for k, v in os.environ.items() if k != "NOPE_VAR"}
    missing = subprocess.run(
        [str(dagger_bin), *base, "e.json", "--gh-password", "env://NOPE_VAR"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert "NOPE_VAR" in missing.stderr
    assert missing.stderr.startswith("Error: ")
    assert missing.stdout == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nope", "x"], "unknown flag: --nope"),
        (["--verbose=maybe"], "not a boolean"),
        (["--count", "seven"], "not an integer"),
    ],
)
def test_bad_flags_exit_1_without_recording(
    dagger_bin: Path, module: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    done = run(
        dagger_bin,
        "call",
        "-m",
        str(module),
        "on-github-push-main",
        "--src",
        ".",
        "--event-trigger",
        "e.json",
        *extra,
        env={"FAKE_DAGGER_RECORD_DIR": str(record)},
    )
    assert done.returncode == 1
    assert message in done.stderr
    assert read_calls(record) == []


def test_missing_required_flag_and_unknown_function(dagger_bin: Path, module: Path) -> None:
    missing = run(dagger_bin, "call", "-m", str(module), "on-github-push-main", "--src", ".")
    assert missing.returncode == 1
    assert 'required flag(s) "event-trigger" not set' in missing.stderr
    unknown = run(dagger_bin, "call", "-m", str(module), "onGithubPushMain", "--src", ".")
    assert unknown.returncode == 1
    assert 'unknown command "onGithubPushMain"' in unknown.stderr


def test_call_on_a_directory_without_module_fails(dagger_bin: Path, tmp_path: Path) -> None:
    done = run(dagger_bin, "call", "-m", str(tmp_path), "build", "--progress=plain")
    assert done.returncode == 1
    assert "dagger.json" in done.stderr


def test_override_by_env_lines_and_progress_equals_form(
    dagger_bin: Path, module: Path, tmp_path: Path
) -> None:
    override = {"output": [], "stderr": [], "exit": 0, "lines": 25000}
    done = run(
        dagger_bin,
        "call",
        "--progress=plain",
        "-m",
        str(module),
        "test-on-github-pull-request",
        "--src",
        ".",
        env={"FAKE_DAGGER_CALL_TEST_ON_GITHUB_PULL_REQUEST": json.dumps(override)},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 25000
    assert lines[0] == "line 1"
    assert lines[-1] == "line 25000"


def test_spawn_child_writes_the_grandchild_pid(
    dagger_bin: Path, module: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record"
    record.mkdir()
    done = run(
        dagger_bin,
        "call",
        "-m",
        str(module),
        "test-on-github-pull-request",
        "--src",
        ".",
        env={
            "FAKE_DAGGER_RECORD_DIR": str(record),
            "FAKE_DAGGER_CALL_TEST_ON_GITHUB_PULL_REQUEST": json.dumps({"spawn_child": True}),
        },
    )
    assert done.returncode == 0
    [call] = read_calls(record)
    child = call["child_pid"]
    assert isinstance(child, int)
    try:
        os.kill(child, 0)  # alive: it outlives its parent, as a container exec would
    finally:
        os.kill(child, signal.SIGKILL)


# -- session ------------------------------------------------------------------------------------


def _start_session(
    dagger: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [str(dagger), "session", "--label", "dagger.io/sdk.name:python"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    return proc, json.loads(first)


def _post(port: int, token: str | None, query: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/query",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{token}:".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_session_prints_params_checks_auth_and_ends_with_stdin(
    dagger_bin: Path, module: Path, tmp_path: Path
) -> None:
    log = tmp_path / "fake.log"
    proc, params = _start_session(dagger_bin, {"FAKE_DAGGER_LOG": str(log)})
    try:
        assert set(params) == {"port", "session_token"}
        port, token = int(params["port"]), str(params["session_token"])
        assert _post(port, None, "{ version }")[0] == 401
        assert _post(port, "wrong", "{ version }")[0] == 401
        status, body = _post(port, token, "{ version }")
        assert (status, body) == (200, {"data": {"version": "v0.21.8"}})
        query = (
            f'{{ moduleSource(refString: "{module}") {{ asModule {{ name objects {{ asObject '
            "{ name functions { name args { name defaultValue typeDef { kind optional "
            "asList { elementTypeDef { kind } } asObject { name } } } } } } } } }"
        )
        status, body = _post(port, token, query)
        assert status == 200
        module_data = body["data"]["moduleSource"]["asModule"]
        assert module_data["name"] == "ci"
        main = module_data["objects"][0]["asObject"]
        assert main["name"] == "Ci"
        args = {a["name"]: a for a in main["functions"][0]["args"]}
        assert args["src"]["defaultValue"] is None  # no default: null, as the engine answers
        assert args["src"]["typeDef"] == {
            "kind": "OBJECT_KIND",
            "optional": False,
            "asList": None,
            "asObject": {"name": "Directory"},
        }
        assert args["filter"]["defaultValue"] == '"main,dev"'
        assert args["onChanges"]["typeDef"]["kind"] == "LIST_KIND"
        assert args["onChanges"]["typeDef"]["asList"] == {"elementTypeDef": {"kind": "STRING_KIND"}}
        missing = (
            f'{{ moduleSource(refString: "{tmp_path / "nowhere"}") {{ asModule {{ name }} }} }}'
        )
        status, body = _post(port, token, missing)
        assert status == 200
        assert body["data"] is None
        assert "does not exist" in body["errors"][0]["message"]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.read() == ""
        assert proc.stderr.read() == ""
        proc.stdout.close()
        proc.stderr.close()
    assert count_sessions(log) == 1
    assert "session end" in log.read_text()


async def test_the_sdk_typed_api_introspects_through_node_ids(
    dagger_bin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sdk_log: Callable[[], TextIO],
) -> None:
    """The SDK's own typed calls (ids, then ``node(id:)``) work against the session."""
    import dagger

    mod = write_module(
        tmp_path / "m",
        "my-ci",
        [fn("build", arg("src", "Directory"), arg("tags", "[String]", default_json='["a", "b"]'))],
        objects=[{"name": "Helper", "functions": [fn("helperFn")]}],
    )
    monkeypatch.setenv("_EXPERIMENTAL_DAGGER_CLI_BIN", str(dagger_bin))
    log_output = sdk_log()
    config = dagger.Config(log_output=log_output, retry=None)
    async with dagger.Connection(config) as client:
        module = client.module_source(str(mod)).as_module()
        assert await module.name() == "my-ci"
        objects = [o.as_object() for o in await module.objects()]
        assert [await o.name() for o in objects] == ["MyCi", "Helper"]
        [build] = await objects[0].functions()
        assert await build.name() == "build"
        src, tags = await build.args()
        assert await src.name() == "src"
        assert await src.type_def().kind() == dagger.TypeDefKind.OBJECT_KIND
        with pytest.raises(dagger.InvalidQueryError):
            await src.default_value()  # null for no default, as with a real engine
        assert await tags.default_value() == '["a", "b"]'
        element = tags.type_def().as_list().element_type_def()
        assert await element.kind() == dagger.TypeDefKind.STRING_KIND


def test_schema_subset_matches_the_engine_schema() -> None:
    """Every type and field of schema.graphqls exists in the engine's schema, same types."""
    if not REAL_SCHEMA.exists():
        pytest.skip(f"the engine's schema is not beside this checkout ({REAL_SCHEMA})")
    from graphql import GraphQLEnumType, GraphQLInterfaceType, GraphQLObjectType, build_schema

    real = build_schema(REAL_SCHEMA.read_text())
    subset = build_schema((FAKE_DIR / "schema.graphqls").read_text())
    checked = 0
    for name, sub_type in subset.type_map.items():
        if name.startswith("__"):
            continue
        real_type = real.type_map[name]
        assert type(real_type) is type(sub_type), name
        if isinstance(sub_type, GraphQLObjectType | GraphQLInterfaceType):
            assert isinstance(real_type, GraphQLObjectType | GraphQLInterfaceType)
            for field_name, sub_field in sub_type.fields.items():
                real_field = real_type.fields[field_name]
                assert str(real_field.type) == str(sub_field.type), f"{name}.{field_name}"
                for arg_name, sub_arg in sub_field.args.items():
                    real_arg = real_field.args[arg_name]
                    assert str(real_arg.type) == str(sub_arg.type), f"{name}.{field_name}"
                    assert real_arg.default_value == sub_arg.default_value
                checked += 1
            assert {i.name for i in sub_type.interfaces} <= {i.name for i in real_type.interfaces}
        if isinstance(sub_type, GraphQLEnumType):
            assert isinstance(real_type, GraphQLEnumType)
            assert list(sub_type.values) == list(real_type.values)
    assert checked > 20


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("onGithubPushMain", "on-github-push-main"),
        ("testOnGithubPullRequest", "test-on-github-pull-request"),
        ("onChanges", "on-changes"),
        ("JSONData", "json-data"),
        ("build2Go", "build-2-go"),
    ],
)
def test_kebab_matches_strcase(name: str, expected: str) -> None:
    assert to_kebab(name) == expected


@given(st.from_regex(r"[a-z][A-Za-z0-9]{0,15}", fullmatch=True))
def test_fake_and_product_agree_on_kebab(name: str) -> None:
    assert to_kebab(name) == kebab(name)


def test_main_object_name() -> None:
    assert to_pascal("ci") == "Ci"
    assert to_pascal("my-module") == "MyModule"
    assert to_pascal("my_mod2x") == "MyMod2X"
