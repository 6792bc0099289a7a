"""The command line: options, exit codes, events, locate, check, and import hygiene."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from daggerstub import install_fake_dagger

from pocketci_tui import __version__
from pocketci_tui.cli import main
from pocketci_tui.logging_setup import safe_text
from pocketci_tui.model import Event, EventStatus, utcnow
from pocketci_tui.store import Store

CORE_MODULES = [
    "pocketci_tui",
    "pocketci_tui.model",
    "pocketci_tui.keys",
    "pocketci_tui.problems",
    "pocketci_tui.config",
    "pocketci_tui.config_reload",
    "pocketci_tui.datalock",
    "pocketci_tui.paths",
    "pocketci_tui.secrets",
    "pocketci_tui.store",
    "pocketci_tui.forges.github",
    "pocketci_tui.intake",
    "pocketci_tui.contract",
    "pocketci_tui.core_feed",
    "pocketci_tui.polling",
    "pocketci_tui.services",
    "pocketci_tui.control.wire",
    "pocketci_tui.control.location",
    "pocketci_tui.control.hub",
    "pocketci_tui.control.transport",
    "pocketci_tui.control.link",
    "pocketci_tui.control.remote_secrets",
    "pocketci_tui.control.client",
    "pocketci_tui.control.peers",
    "pocketci_tui.control.answers",
    "pocketci_tui.control.server",
    "pocketci_tui.launch",
    "pocketci_tui.startup",
    "pocketci_tui.start_errors",
    "pocketci_tui.stamps",
    "pocketci_tui.statuses.sender",
    "pocketci_tui.logging_setup",
    "pocketci_tui.engine.dispatch.dispatcher",
    "pocketci_tui.commands.serve",
    "pocketci_tui.commands.events",
    "pocketci_tui.commands.fire",
    "pocketci_tui.commands.check",
    "pocketci_tui.commands.locate",
    "pocketci_tui.commands.secrets",
]


def _imports(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return set(out.split())


def test_package_root_imports_neither_aiohttp_nor_textual() -> None:
    mods = _imports("pocketci_tui")
    assert "aiohttp" not in mods
    assert "textual" not in mods


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_modules_never_import_textual(module: str) -> None:
    mods = _imports(module)
    assert "textual" not in mods
    assert "rich" not in mods


def test_cli_module_imports_no_ui() -> None:
    mods = _imports("pocketci_tui.cli")
    assert "textual" not in mods
    assert "aiohttp" not in mods


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pocketci-tui {__version__}"


def test_version_via_module_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "--version"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"pocketci-tui {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{c}", "--data-dir", "{d}", "locate", "{what}"],
        ["locate", "{what}", "--config", "{c}", "--data-dir", "{d}"],
        ["--config", "{c}", "locate", "{what}", "--data-dir", "{d}"],
    ],
)
@pytest.mark.parametrize("what", ["config", "data", "db", "logs"])
def test_options_before_or_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], what: str
) -> None:
    c, d = tmp_path / "x" / "c.yaml", tmp_path / "data"
    args = [a.format(c=c, d=d, what=what) for a in argv]
    assert main(args) == 0
    expected = {"config": c, "data": d, "db": d / "pocketci.db", "logs": d / "logs"}[what]
    assert capsys.readouterr().out.strip() == str(expected)


def test_locate_uses_home_env(hermetic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["locate", "config"]) == 0
    assert capsys.readouterr().out.strip() == str(hermetic_home / "config.yaml")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["nonsense"],
        ["locate", "x"],
        ["--port", "99999", "serve"],
        ["events", "--limit"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_config_error_one_line_exit_2(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hermetic_home / "config.yaml").write_text("concurrency: lots\n")
    for argv in (["events"], ["serve"], ["fire", "1"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "concurrency" in err
        assert str(hermetic_home / "config.yaml") in err


def test_check_with_bad_config_exits_2(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hermetic_home / "config.yaml").write_text("listen: {port: -1}\n")
    assert main(["check"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("FAIL")
    assert "listen.port" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plaintext_config(home: Path, port: int, extra: str = "") -> None:
    (home / "config.yaml").write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\nsecrets: {{backend: plaintext}}\n"
        f"repos: [{{name: acme/api}}]\n{extra}"
    )


def _set_secret(home: Path, name: str, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "secrets", "set", name, "--stdin"],
        input=value,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_check_all_good(hermetic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _plaintext_config(hermetic_home, _free_port())
    _set_secret(hermetic_home, "webhook-secret", "a-long-webhook-secret")
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok    config" in out
    assert "webhook secret 'webhook-secret' is set" in out
    assert "ok    git" in out
    assert "ok    database" in out
    assert "is free" in out


def test_check_reports_missing_secret_and_busy_port(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        _plaintext_config(hermetic_home, busy.getsockname()[1])
        code = main(["check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  secrets" in out
    assert "pocketci-tui secrets set webhook-secret" in out
    assert "FAIL  port" in out


def test_check_checks_each_configured_forge_secret(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plaintext_config(
        hermetic_home,
        _free_port(),
        "forges: {gitea: {url: https://git.example.org, webhook-secret: gitea-webhook}}\n",
    )
    _set_secret(hermetic_home, "webhook-secret", "a-long-webhook-secret")
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  secrets        webhook secret of gitea 'gitea-webhook' is not set" in out
    assert "pocketci-tui secrets set gitea-webhook" in out
    _set_secret(hermetic_home, "gitea-webhook", "another-long-secret")
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "webhook secret of gitea 'gitea-webhook' is set" in out


def test_check_finds_a_gitlab_signing_token_that_cannot_verify(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mangled whsec_ paste is said by check, not first by a 503 to GitLab's deliveries."""
    _plaintext_config(
        hermetic_home,
        _free_port(),
        "forges: {gitlab: {url: https://gitlab.example.org, webhook-secret: gitlab-hook}}\n",
    )
    _set_secret(hermetic_home, "webhook-secret", "a-long-webhook-secret")
    _set_secret(hermetic_home, "gitlab-hook", "whsec_" + base64.b64encode(b"k" * 32).decode()[:-3])
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL  secrets        GitLab signing token 'gitlab-hook' cannot verify deliveries" in out
    assert "copy the signing token again" in out
    assert "pocketci-tui secrets set gitlab-hook" in out
    _set_secret(hermetic_home, "gitlab-hook", "whsec_" + base64.b64encode(b"k" * 32).decode())
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "signing token" not in out
    # A secret token (no whsec_ prefix) is anything GitLab was given.
    _set_secret(hermetic_home, "gitlab-hook", "whsec-like but a plain secret token")
    assert main(["check"]) == 0, capsys.readouterr().out


def test_check_lists_grants_and_warns_about_own_entries(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hermetic_home / "config.yaml").write_text(
        f"listen: {{host: 127.0.0.1, port: {_free_port()}}}\nsecrets: {{backend: plaintext}}\n"
        "repos:\n"
        "  - {name: acme/api, token: api-token, secrets: [gh-password], env: [GITHUB_TOKEN]}\n"
        "  - {name: acme/web, secrets: [webhook-secret, api-token]}\n"
        "  - {name: acme/docs}\n"
    )
    _set_secret(hermetic_home, "webhook-secret", "a-long-webhook-secret")
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert (
        "ok    grants         acme/api: secret-store entries gh-password; "
        "environment variables GITHUB_TOKEN" in lines
    )
    assert "ok    grants         acme/docs: no secrets (its pocketci.yaml gets none)" in lines
    warnings = [line for line in lines if line.startswith("WARN  grants")]
    assert len(warnings) == 2
    assert "'webhook-secret', the webhook secret" in warnings[0]
    assert "'api-token', the clone token of acme/api" in warnings[1]
    # A granted entry that is not in the store is said so.
    assert "WARN  secrets        secret granted to acme/api 'gh-password' is not set" in lines


def test_check_flags_folders_open_to_others_and_changes_nothing(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plaintext_config(hermetic_home, _free_port())
    _set_secret(hermetic_home, "webhook-secret", "a-long-webhook-secret")
    data = hermetic_home / "data"
    logs = data / "logs"
    logs.mkdir(parents=True)
    data.chmod(0o755)
    logs.chmod(0o750)
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    flagged = [line for line in lines if line.startswith("WARN  permissions")]
    assert any(f"{data} (the data folder) is open to other users: 0755" in f for f in flagged)
    assert any(f"{logs} (run logs) is open to other users: 0750" in f for f in flagged)
    assert f"fix: chmod -R go-rwx {data}" in out
    # Reported, not fixed: the modes are as they were.
    assert stat.S_IMODE(data.stat().st_mode) == 0o755
    assert stat.S_IMODE(logs.stat().st_mode) == 0o750

    data.chmod(0o700)
    logs.chmod(0o700)
    hermetic_home.chmod(0o700)
    main(["check"])
    out = capsys.readouterr().out
    assert "ok    permissions    the config and data folders are private to you" in out, out


def test_check_finds_dagger(
    hermetic_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "dagger"
    fake.write_text("#!/bin/sh\necho 'dagger v0.21.11 (fake) linux/amd64'\n")
    fake.chmod(0o755)
    _plaintext_config(hermetic_home, _free_port(), f"dagger: {{cli: {fake}}}\n")
    main(["check"])
    assert (
        f"ok    dagger         dagger v0.21.11 (fake) linux/amd64 ({fake})"
        in capsys.readouterr().out
    )


def _store_events(db: Path, events: list[Event]) -> None:
    async def go() -> None:
        store = await Store.open(db)
        for e in events:
            await store.record_event(e, EventStatus.RECEIVED)
        await store.close()

    asyncio.run(go())


def _event(n: int, **kw: object) -> Event:
    base: dict[str, object] = {
        "vendor": "github",
        "event_type": "push",
        "filter": "main",
        "repository": "acme/api",
        "ref": "refs/heads/main",
        "sha": f"{n:040x}",
        "base_ref": "",
        "base_sha": "",
        "pr_number": None,
        "is_fork": False,
        "delivery_id": f"d{n}",
        "received_at": utcnow(),
        "body": b"{}",
        "event_name": "push",
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def test_events_json_and_limit(hermetic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    _store_events(hermetic_home / "data" / "pocketci.db", [_event(i) for i in range(5)])
    assert main(["events", "--json", "--limit", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["delivery_id"] for r in rows] == ["d4", "d3", "d2"]
    keys = {
        "id",
        "delivery_id",
        "vendor",
        "event_type",
        "filter",
        "repository",
        "ref",
        "sha",
        "status",
        "detail",
        "received_at",
    }
    assert keys <= set(rows[0])
    assert rows[0]["status"] == "received"


def test_events_table_escapes_control_characters(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "\x1b]0;owned\x07\x1b[2J[bold]x[/bold]"
    _store_events(hermetic_home / "data" / "pocketci.db", [_event(1, filter=evil)])
    assert main(["events"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out
    assert "[bold]" in out  # literal text, no markup processing
    assert out.splitlines()[0].split()[:3] == ["ID", "RECEIVED", "EVENT"]


def test_events_limit_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "--limit", "0"]) == 2


def test_safe_text() -> None:
    assert safe_text("a\x1b[31mb\r\nc\u202ed") == "a\\x1b[31mb\\x0d\\x0ac\\u202ed"
    assert safe_text("x" * 10, limit=5) == "xxxx…"


def test_fire_argument_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["fire"]) == 2
    assert main(["fire", "1", "--file", str(tmp_path / "p.json"), "--event", "push"]) == 2
    assert main(["fire", "--file", str(tmp_path / "p.json")]) == 2


def test_fire_unknown_event_id(hermetic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _plaintext_config(hermetic_home, _free_port())
    assert main(["fire", "42"]) == 2
    assert "no stored event with id 42" in capsys.readouterr().err


def test_fire_without_secret_or_listener(
    hermetic_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    _plaintext_config(hermetic_home, port)
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    assert main(["fire", "--file", str(payload), "--event", "push"]) == 2
    assert "is not set" in capsys.readouterr().err
    _set_secret(hermetic_home, "webhook-secret", "a-long-webhook-secret")
    assert main(["fire", "--file", str(payload), "--event", "push"]) == 1
    assert f"cannot reach http://127.0.0.1:{port}/webhooks/github" in capsys.readouterr().err


def test_no_subcommand_without_ui_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pocketci_tui.tui.app", None)
    monkeypatch.setitem(sys.modules, "pocketci_tui.tui.run", None)
    assert main([]) == 2
    assert "use `pocketci-tui serve`" in capsys.readouterr().err


def test_check_shows_a_yaml_syntax_error_on_one_line_with_a_yaml_fix(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10: `\\x0a`, `<unicode string>` and "correct the key named above" for bad YAML."""
    config = hermetic_home / "config.yaml"
    config.write_text("listen:\n  host: 127.0.0.1\n port: 8080\n")
    assert main(["check"]) == 2
    out = capsys.readouterr().out
    first, fix = out.rstrip("\n").split("\n")
    assert first.startswith(f"FAIL  config         {config}, line 3, column 2: not valid YAML:")
    assert "\\x0a" not in out
    assert "<unicode string>" not in out
    assert "key named above" not in fix
    assert "fix: correct the YAML at that line" in fix


def test_events_and_check_create_nothing_in_the_data_folder(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They run beside an owner: they only read, and a fresh home stays without a database."""
    _plaintext_config(hermetic_home, _free_port())
    assert main(["events"]) == 0
    assert "no events stored yet" in capsys.readouterr().out
    main(["check"])
    assert "(not created yet: the first start creates it)" in capsys.readouterr().out
    assert not (hermetic_home / "data").exists()


def test_help_names_the_home_variable(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10: --help did not mention POCKETCI_TUI_HOME."""
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "POCKETCI_TUI_HOME" in out
    assert "config.yaml" in out
    assert "pocketci-tui locate" in out


def test_fire_example_needs_a_configured_repository(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (hermetic_home / "config.yaml").write_text("secrets: {backend: plaintext}\n")
    assert main(["fire", "--example", "push"]) == 2
    err = capsys.readouterr().err
    assert "no repository in" in err
    assert "repos:" in err
    _plaintext_config(hermetic_home, _free_port())
    assert main(["fire", "--example", "push", "--repo", "other/repo"]) == 2
    assert "other/repo is not in the config (configured: acme/api)" in capsys.readouterr().err
    assert main(["fire", "1", "--example", "push"]) == 2
    assert main(["fire", "1", "--print"]) == 2


def test_fire_example_says_it_builds_a_github_push(
    hermetic_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Gitea or GitLab repository gets no GitHub payload it could not match: it is told how
    to send its own forge's instead."""
    (hermetic_home / "config.yaml").write_text(
        "secrets: {backend: plaintext}\n"
        "forges: {gitea: {url: https://git.example.org}}\n"
        "repos: [{name: me/app, vendor: gitea}, {name: team/sub/api, vendor: gitlab}]\n"
    )
    assert main(["fire", "--example", "push", "--print"]) == 2
    err = capsys.readouterr().err
    assert "builds a GitHub push, and me/app is on gitea" in err
    assert "fire --file PAYLOAD.json --event push --vendor gitea" in err
    assert main(["fire", "--example", "push", "--repo", "team/sub/api", "--print"]) == 2
    err = capsys.readouterr().err
    assert "team/sub/api is on gitlab" in err
    assert "--event 'Push Hook' --vendor gitlab" in err


def test_check_probes_each_engine(
    hermetic_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A tcp:// engine is probed with a connection; a kube-pod:// one (reached only through
    the CLI) with ``dagger core version``, which fails as the real CLI does on a missing pod."""
    pods = tmp_path / "pods"
    (pods / "dagger").mkdir(parents=True)
    env = {"FAKE_DAGGER_KUBE_PODS": str(pods), "FAKE_DAGGER_CONNECT_RETRY": "0.01"}
    bin_dir = install_fake_dagger(tmp_path, env)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with socket.socket() as up, socket.socket() as gone:
        up.bind(("127.0.0.1", 0))
        up.listen()
        gone.bind(("127.0.0.1", 0))
        down_port = gone.getsockname()[1]
        engines = (
            "dagger:\n  engines:\n"
            f"    - {{name: up, runner-host: 'tcp://127.0.0.1:{up.getsockname()[1]}'}}\n"
            f"    - {{name: down, runner-host: 'tcp://127.0.0.1:{down_port}'}}\n"
            "    - {name: k8s, runner-host: 'kube-pod://dagger-engine-0?namespace=dagger'}\n"
        )
        _plaintext_config(hermetic_home, _free_port(), engines)
        main(["check"])
        out = capsys.readouterr().out
        # The pod comes up, its engine listening where `up` does.
        (pods / "dagger" / "dagger-engine-0").write_text(f"tcp://127.0.0.1:{up.getsockname()[1]}")
        main(["check"])
        again = capsys.readouterr().out
    assert "ok    engine up" in out
    assert "answers, 2 slots" in out
    assert "WARN  engine down" in out
    assert "cannot be reached" in out
    assert "WARN  engine k8s" in out
    assert 'pods "dagger-engine-0" not found' in out
    assert "not probed" not in out
    assert "kube-pod://dagger-engine-0?namespace=dagger answers, 2 slots" in again


def test_check_probes_a_single_runner_host_and_not_the_engine_on_this_machine(
    hermetic_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A single ``runner-host`` is a pool of one that ``check`` probes like any engine, with
    the reason it is down and what becomes of the builds; without one, the engine is the one
    the CLI would start, and probing it would start it, so ``check`` leaves it alone."""
    bin_dir = install_fake_dagger(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with socket.socket() as gone:
        gone.bind(("127.0.0.1", 0))
        host = f"tcp://127.0.0.1:{gone.getsockname()[1]}"
        _plaintext_config(hermetic_home, _free_port(), f"dagger:\n  runner-host: '{host}'\n")
        main(["check"])
        down = capsys.readouterr().out
    with socket.socket() as up:
        up.bind(("127.0.0.1", 0))
        up.listen()
        host = f"tcp://127.0.0.1:{up.getsockname()[1]}"
        _plaintext_config(hermetic_home, _free_port(), f"dagger:\n  runner-host: '{host}'\n")
        main(["check"])
        answers = capsys.readouterr().out
    _plaintext_config(hermetic_home, _free_port(), "")
    main(["check"])
    local = capsys.readouterr().out
    assert "WARN  engine local" in down
    assert "connection refused" in down
    assert "builds wait in line until it answers" in down
    assert "fix: start the engine, or check the network and dagger.runner-host" in down
    assert "ok    engine local" in answers
    assert f"{host} answers, 2 slots" in answers
    assert "engine local" not in local
