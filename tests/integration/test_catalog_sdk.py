"""The catalog introspects fixture modules through the dagger-io SDK and the stand-in session."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from daggerstub import (
    arg,
    count_requests,
    count_sessions,
    engine_listeners,
    fn,
    install_fake_dagger,
    write_module,
)

from pocketci_tui.engine.dagger.catalog import Catalog, CatalogError
from pocketci_tui.model import ArgSpec


@pytest.fixture
def fake_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "fake-dagger.log"
    monkeypatch.setenv("FAKE_DAGGER_LOG", str(log))
    return log


@pytest.fixture
def cli(tmp_path: Path) -> str:
    return str(install_fake_dagger(tmp_path) / "dagger")


def make_catalog(tmp_path: Path, cli: str, **kwargs: object) -> Catalog:
    return Catalog(tmp_path / "cache", dagger_cli=cli, timeout=60.0, **kwargs)  # type: ignore[arg-type]


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
                arg("filter", default_json='"main,dev"'),
                description="Build on pushes to main",
            ),
            fn(
                "onChanges",
                arg("src", "Directory"),
                arg("onChanges", "[String]", default_json='["src/**", "go.mod"]'),
                arg("ghPassword", "Secret", optional=True),
                arg("retries", "Int", optional=True, default_json="3"),
                arg("dryRun", "Boolean", optional=True),
            ),
        ],
        objects=[
            {"name": "Helper", "functions": [fn("helperOnly", arg("x"))]},
            {"name": "Other", "functions": []},
        ],
    )


async def test_loads_the_main_objects_functions_with_types_and_defaults(
    tmp_path: Path, cli: str, module: Path, fake_log: Path
) -> None:
    catalog = await make_catalog(tmp_path, cli).load(module, "key-1")
    assert catalog.module_name == "ci"
    assert [f.name for f in catalog.functions] == ["onGithubPushMain", "onChanges"]
    push, changes = catalog.functions
    assert push.description == "Build on pushes to main"
    assert push.args == (
        ArgSpec("src", "Directory", optional=False, default_json=None),
        ArgSpec("eventTrigger", "File", optional=False, default_json=None),
        ArgSpec("filter", "String", optional=False, default_json='"main,dev"'),
    )
    assert push.arg("filter") is not None
    assert push.arg("filter").default == "main,dev"  # type: ignore[union-attr]
    assert push.arg("src").required  # type: ignore[union-attr]
    on_changes = changes.arg("onChanges")
    assert on_changes is not None
    assert on_changes.type_name == "[String]"
    assert on_changes.default == ["src/**", "go.mod"]
    assert not on_changes.required
    assert changes.arg("ghPassword") == ArgSpec("ghPassword", "Secret", True, None)
    assert changes.arg("retries") == ArgSpec("retries", "Int", True, "3")
    assert changes.arg("dryRun") == ArgSpec("dryRun", "Boolean", True, None)
    # One session, and one round trip for the module besides the SDK's schema fetch.
    assert count_sessions(fake_log) == 1
    assert count_requests(fake_log) == 2


async def test_the_main_object_is_found_by_name_not_position(
    tmp_path: Path, cli: str, fake_log: Path
) -> None:
    mod = write_module(
        tmp_path / "m",
        "my-pipeline",
        [fn("dispatch", arg("src", "Directory"))],
        objects=[{"name": "Builder", "functions": [fn("build")]}],
        extra_config={},
    )
    fake = mod / "pocketci-fake.json"
    fake.write_text(fake.read_text().replace('"objects"', '"main_last": true, "objects"'))
    catalog = await make_catalog(tmp_path, cli).load(mod, "k")
    assert catalog.module_name == "my-pipeline"
    assert [f.name for f in catalog.functions] == ["dispatch"]


async def test_a_module_that_fails_to_load_gives_a_clear_error(
    tmp_path: Path, cli: str, fake_log: Path
) -> None:
    broken = write_module(
        tmp_path / "broken", "ci", [], load_error="go build: main.go:3: syntax error"
    )
    catalog = make_catalog(tmp_path, cli)
    with pytest.raises(CatalogError, match=r"failed to load: go build: main.go:3: syntax error"):
        await catalog.load(broken, "k")
    not_a_module = tmp_path / "plain"
    not_a_module.mkdir()
    with pytest.raises(CatalogError, match=r"dagger\.json"):
        await catalog.load(not_a_module, "k2")
    # Failures are not cached: a fixed module loads under the same key.
    write_module(tmp_path / "broken", "ci", [fn("build")])
    assert [f.name for f in (await catalog.load(broken, "k")).functions] == ["build"]


async def test_cache_hits_start_no_session_even_in_a_new_instance(
    tmp_path: Path, cli: str, module: Path, fake_log: Path
) -> None:
    first = make_catalog(tmp_path, cli)
    loaded = await first.load(module, "key-A")
    assert count_sessions(fake_log) == 1
    assert await first.load(module, "key-A") == loaded
    assert count_sessions(fake_log) == 1
    second = make_catalog(tmp_path, cli)  # as after a restart: same cache dir
    assert await second.load(module, "key-A") == loaded
    assert second.sessions_started == 0
    assert count_sessions(fake_log) == 1
    await second.load(module, "key-B")  # new content: loaded again
    assert count_sessions(fake_log) == 2


async def test_concurrent_loads_of_one_module_share_one_session(
    tmp_path: Path, cli: str, module: Path, fake_log: Path
) -> None:
    catalog = make_catalog(tmp_path, cli)
    results = await asyncio.gather(*(catalog.load(module, "same") for _ in range(4)))
    assert all(r == results[0] for r in results)
    assert count_sessions(fake_log) == 1


async def test_a_corrupt_cache_file_is_ignored(
    tmp_path: Path, cli: str, module: Path, fake_log: Path
) -> None:
    await make_catalog(tmp_path, cli).load(module, "k")
    [cache_file] = (tmp_path / "cache").glob("*.json")
    cache_file.write_text("{not json")
    again = await make_catalog(tmp_path, cli).load(module, "k")
    assert again.module_name == "ci"
    assert count_sessions(fake_log) == 2


async def test_the_session_gets_cli_and_runner_host_without_touching_os_environ(
    tmp_path: Path, cli: str, module: Path, fake_log: Path
) -> None:
    before = dict(os.environ)
    async with engine_listeners(1) as (engine,):
        await make_catalog(tmp_path, cli, runner_host=engine.host).load(module, "k")
    text = await asyncio.to_thread(fake_log.read_text)
    assert f"session env _EXPERIMENTAL_DAGGER_CLI_BIN={cli}\n" in text
    assert f"session env _EXPERIMENTAL_DAGGER_RUNNER_HOST={engine.host}\n" in text
    assert dict(os.environ) == before


async def test_the_cli_is_found_on_path_when_none_is_configured(
    tmp_path: Path, cli: str, module: Path, fake_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(cli).parent}{os.pathsep}{os.environ['PATH']}")
    catalog = make_catalog(tmp_path, "")
    assert (await catalog.load(module, "k")).module_name == "ci"
    assert catalog.cli_used == cli


async def test_a_missing_configured_cli_is_reported(tmp_path: Path, module: Path) -> None:
    catalog = make_catalog(tmp_path, str(tmp_path / "no" / "dagger"))
    with pytest.raises(CatalogError, match=r"configured dagger CLI .* not found"):
        await catalog.load(module, "k")
    assert catalog.sessions_started == 0


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


async def test_a_session_that_dies_reports_its_stderr(tmp_path: Path, module: Path) -> None:
    bad = _script(
        tmp_path / "dagger-bad",
        "import sys\nsys.stderr.write('failed to start engine: no container runtime\\n')\n"
        "sys.exit(1)\n",
    )
    catalog = make_catalog(tmp_path, bad, log_path=tmp_path / "app.log")
    with pytest.raises(CatalogError, match=r"code 1.*no container runtime"):
        await catalog.load(module, "k")
    app_log = await asyncio.to_thread((tmp_path / "app.log").read_text)
    assert "no container runtime" in app_log


async def test_invalid_connection_parameters_are_reported(tmp_path: Path, module: Path) -> None:
    bad = _script(
        tmp_path / "dagger-odd",
        'import sys, time\nprint(\'{"port": 1, "session_token": "x", "extra": 1}\', '
        "flush=True)\nsys.stdin.read()\n",
    )
    with pytest.raises(CatalogError, match="invalid connection parameters"):
        await make_catalog(tmp_path, bad).load(module, "k")


async def test_a_hanging_session_times_out_and_is_killed(tmp_path: Path, module: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = _script(
        tmp_path / "dagger-hang",
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n",
    )
    catalog = Catalog(tmp_path / "cache", dagger_cli=hang, timeout=1.0)
    with pytest.raises(CatalogError, match="took longer than 1s"):
        await catalog.load(module, "k")
    pid = int(await asyncio.to_thread(pid_file.read_text))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_an_over_long_first_line_is_reported(tmp_path: Path, module: Path) -> None:
    chatty = _script(
        tmp_path / "dagger-chatty",
        "import sys\nsys.stdout.write('x' * 200000)\nsys.stdout.flush()\nsys.stdin.read()\n",
    )
    with pytest.raises(CatalogError, match="over-long first line"):
        await make_catalog(tmp_path, chatty).load(module, "k")


async def test_a_cli_that_cannot_be_executed_is_reported(tmp_path: Path, module: Path) -> None:
    broken = tmp_path / "dagger-broken"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    with pytest.raises(CatalogError, match="cannot start `dagger session`"):
        await make_catalog(tmp_path, str(broken)).load(module, "k")
