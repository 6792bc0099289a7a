"""The runner against real subprocesses: small stand-in CLIs written per test, and the shared
stand-in dagger (tests/fixtures/fake_dagger)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pocketci_tui import stamps
from pocketci_tui.engine.dagger.runner import (
    ENV_ALLOW,
    CallOutcome,
    CallRequest,
    DaggerEnv,
    Runner,
    join_list,
    secret_env_var,
)
from pocketci_tui.engine.proc import MAX_LINE
from pocketci_tui.model import Event, FunctionCall, RunState

SECRET = "s3cr3t-Value-0123456789abcdef"
OTHER_SECRET = "another-SECRET-9876543210zyxw"
CLOUD_TOKEN = "dag_cloud_token_ABCDEFGHIJKLMNOP"
PAYLOAD = {"ref": "refs/heads/main", "after": "a" * 40, "repository": {"full_name": "acme/api"}}


def make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "vendor": "github",
        "event_type": "push",
        "filter": "main",
        "repository": "acme/api",
        "ref": "refs/heads/main",
        "sha": "a" * 40,
        "base_ref": "",
        "base_sha": "b" * 40,
        "pr_number": None,
        "is_fork": False,
        "delivery_id": "delivery-1",
        "received_at": datetime(2026, 11, 27, 20, 0, 1, tzinfo=UTC),
        "body": json.dumps(PAYLOAD).encode(),
        "event_name": "push",
    }
    fields.update(overrides)
    return Event(**fields)


def script(path: Path, body: str) -> Path:
    """Write an executable Python script (shebang: this interpreter) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def proc_file(pid: int, name: str) -> bytes:
    """Read ``/proc/<pid>/<name>``."""
    return Path(f"/proc/{pid}/{name}").read_bytes()


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def exists(path: str) -> bool:
    return Path(path).exists()


async def wait_gone(pid: int) -> bool:
    for _ in range(250):
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


class Harness:
    """A module dir, a checkout, a work dir and a log path under tmp_path, plus collectors."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.checkout = tmp_path / "checkout"
        self.module = self.checkout / "ci"
        self.module.mkdir(parents=True)
        self.work = tmp_path / "work"
        self.log_path = tmp_path / "logs" / "run-1.log"
        self.batches: list[list[str]] = []
        self.times: list[float] = []
        self.started: list[tuple[str, int]] = []

    def request(
        self,
        call: FunctionCall | None = None,
        *,
        secrets: dict[str, str] | None = None,
        changes: list[str] | None = None,
        event: Event | None = None,
    ) -> CallRequest:
        return CallRequest(
            run_id="run-1",
            call=call or FunctionCall("onGithubPushMain"),
            event=event or make_event(),
            module_dir=self.module,
            checkout_dir=self.checkout,
            changes=changes,
            secrets=secrets or {},
            log_path=self.log_path,
        )

    def runner(self, cli: Path | str, **kwargs: Any) -> Runner:
        kwargs.setdefault("timeout", 30.0)
        kwargs.setdefault("kill_grace", 0.5)
        token = kwargs.pop("cloud_token", None)
        return Runner(DaggerEnv(cli=str(cli), cloud_token=token), work_dir=self.work, **kwargs)

    def on_lines(self, run_id: str, lines: list[str], times: list[float]) -> None:
        assert run_id == "run-1"
        assert len(times) == len(lines)
        self.batches.append(lines)
        self.times.extend(times)

    def on_started(self, run_id: str, pid: int) -> None:
        self.started.append((run_id, pid))

    async def run(self, runner: Runner, req: CallRequest) -> CallOutcome:
        return await runner.run(req, self.on_lines, self.on_started)

    @property
    def lines(self) -> list[str]:
        return [line for batch in self.batches for line in batch]

    @property
    def log_lines(self) -> list[str]:
        """The log's lines without their stamps (each line must have one).

        Split at ``\n`` only, as the engine writes and counts lines: ``str.splitlines`` also
        splits at characters such as U+0085 or U+2028, which a build's output may hold.
        """
        texts = []
        text = self.log_path.read_text(encoding="utf-8")
        for line in text.removesuffix("\n").split("\n"):
            when, text = stamps.split(line)
            assert when is not None, line
            texts.append(text)
        return texts


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- argv, environment, event file --------------------------------------------------------------


def test_argv_is_exactly_the_dagger_call_command_line(h: Harness) -> None:
    call = FunctionCall(
        "testOnGithubPullRequest",
        args=(
            ("filter", "opened"),
            ("event", "pull_request"),
            ("vendor", "github"),
            ("onChanges", "**/*.go"),
        ),
        secrets=("ghPassword", "npmToken"),
    )
    req = h.request(
        call,
        secrets={"ghPassword": SECRET, "npmToken": OTHER_SECRET},
        changes=["main.go", "docs/a,b.md", 'say "hi".txt'],
    )
    event_file = h.work / "event.json"
    argv = h.runner("/opt/dagger/bin/dagger").build_argv(req, event_file)
    assert argv == [
        "/opt/dagger/bin/dagger",
        "call",
        "--progress=plain",
        "-m",
        str(h.module.resolve()),
        "test-on-github-pull-request",
        "--src",
        str(h.checkout.resolve()),
        "--event-trigger",
        str(event_file.resolve()),
        "--filter",
        "opened",
        "--event",
        "pull_request",
        "--vendor",
        "github",
        "--on-changes",
        'main.go,"docs/a,b.md","say ""hi"".txt"',
        "--gh-password",
        "env://POCKETCI_SECRET_GH_PASSWORD",
        "--npm-token",
        "env://POCKETCI_SECRET_NPM_TOKEN",
    ]
    joined = "\0".join(argv)
    assert SECRET not in joined
    assert OTHER_SECRET not in joined


def test_argv_edge_values(h: Harness) -> None:
    call = FunctionCall(
        "dispatch",
        args=(("filter", "-rf"), ("event", ""), ("onChanges", "ignored when changes known")),
        secrets=("missingValue",),
    )
    argv = h.runner("").build_argv(h.request(call, changes=[]), Path("/e.json"))
    assert argv[0] == "dagger"
    assert argv[5] == "dispatch"
    assert argv[10:] == ["--filter=-rf", "--event=", "--on-changes="]
    # Unknown changes: the call's own onChanges value is passed as it is.
    call = FunctionCall("onGithub", args=(("onChanges", "a.go,b.go"),))
    argv = h.runner("dagger").build_argv(h.request(call, changes=None), Path("/e.json"))
    assert argv[-2:] == ["--on-changes", "a.go,b.go"]


def test_names_of_secret_variables_and_list_joining() -> None:
    assert secret_env_var("ghPassword") == "POCKETCI_SECRET_GH_PASSWORD"
    assert secret_env_var("awsKeyID") == "POCKETCI_SECRET_AWS_KEY_ID"
    assert secret_env_var("token2") == "POCKETCI_SECRET_TOKEN_2"
    assert join_list(["a", "b c", "d,e", 'f"g']) == 'a,b c,"d,e","f""g"'
    assert join_list([]) == ""


def test_env_is_allow_listed_and_carries_only_this_calls_secrets(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_parent_token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-parent")
    monkeypatch.setenv("DAGGER_CLOUD_TOKEN", "parent-cloud-token")
    monkeypatch.setenv("POCKETCI_SECRET_GH_PASSWORD", "stale parent value")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("SOME_RANDOM_APP_VAR", "x")
    call = FunctionCall("onGithubPushMain", secrets=("ghPassword",))
    req = h.request(call, secrets={"ghPassword": SECRET, "npmToken": OTHER_SECRET})
    runner = Runner(
        DaggerEnv("dagger", runner_host="tcp://engine:1234", cloud_token=CLOUD_TOKEN),
        work_dir=h.work,
        timeout=10,
    )
    env = runner.build_env(req, h.work / "event.json")
    assert env["DOCKER_HOST"] == "unix:///run/docker.sock"
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["PATH"] == os.environ["PATH"]
    assert env["HOME"] == os.environ["HOME"]
    for name in ("GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK", "SOME_RANDOM_APP_VAR"):
        assert name not in env
    assert env["POCKETCI_SECRET_GH_PASSWORD"] == SECRET
    assert "POCKETCI_SECRET_NPM_TOKEN" not in env
    assert OTHER_SECRET not in env.values()
    assert env["DAGGER_CLOUD_TOKEN"] == CLOUD_TOKEN
    assert env["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] == "tcp://engine:1234"
    assert env["CI"] == "pocketci"
    assert env["GITHUB_SHA"] == "a" * 40
    assert env["GITHUB_REF"] == "refs/heads/main"
    assert env["GITHUB_EVENT_NAME"] == "push"
    assert env["GITHUB_EVENT_PATH"] == str((h.work / "event.json").resolve())
    for name in ("DAGGER_NO_NAG", "DAGGER_NO_UPDATE_CHECK", "DO_NOT_TRACK", "NO_COLOR"):
        assert env[name] == "1"
    ours = {
        "CI",
        "GITHUB_SHA",
        "GITHUB_REF",
        "GITHUB_EVENT_NAME",
        "GITHUB_EVENT_PATH",
        "DAGGER_NO_NAG",
        "DAGGER_NO_UPDATE_CHECK",
        "DO_NOT_TRACK",
        "NO_COLOR",
        "DAGGER_CLOUD_TOKEN",
        "POCKETCI_SECRET_GH_PASSWORD",
    }
    assert all(k in ENV_ALLOW or k.startswith("LC_") or k in ours for k in env)


def test_env_from_base_env_drops_credential_names(h: Harness) -> None:
    runner = Runner(
        DaggerEnv("dagger"),
        work_dir=h.work,
        timeout=10,
        base_env={"PATH": "/x/bin", "CUSTOM": "kept", "MY_API_KEY": "k", "GITLAB_TOKEN": "t"},
    )
    event = make_event(event_type="tag", event_name="push", ref="refs/tags/v1")
    env = runner.build_env(h.request(event=event), Path("/e.json"))
    assert env["PATH"] == "/x/bin"
    assert env["CUSTOM"] == "kept"
    assert "MY_API_KEY" not in env
    assert "GITLAB_TOKEN" not in env
    assert "DAGGER_CLOUD_TOKEN" not in env
    assert "_EXPERIMENTAL_DAGGER_RUNNER_HOST" not in env
    assert env["GITHUB_EVENT_NAME"] == "push"
    assert env["GITHUB_REF"] == "refs/tags/v1"


SPY = """
import json, os, stat, sys, time
args = sys.argv[1:]
event_file = args[args.index("--event-trigger") + 1]
info = {
    "argv": args,
    "cwd": os.getcwd(),
    "cwd_entries": os.listdir("."),
    "event_mode": stat.S_IMODE(os.stat(event_file).st_mode),
    "event": json.load(open(event_file)),
    "event_path_env": os.environ.get("GITHUB_EVENT_PATH"),
    "stdin": sys.stdin.read(),
}
print(json.dumps(info), flush=True)
go = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go")
while not os.path.exists(go):
    time.sleep(0.01)
"""


async def test_child_sees_its_env_argv_and_event_file_while_running(h: Harness) -> None:
    cli = script(h.tmp / "bin" / "dagger", SPY)
    call = FunctionCall("onGithubPushMain", args=(("filter", "main"),), secrets=("ghPassword",))
    req = h.request(
        call,
        secrets={"ghPassword": SECRET, "npmToken": OTHER_SECRET},
        changes=["a.go", "b/c.go"],
    )
    runner = h.runner(cli)
    task = asyncio.create_task(h.run(runner, req))
    for _ in range(500):
        if h.lines:
            break
        await asyncio.sleep(0.01)
    assert h.started
    pid = h.started[0][1]
    environ = proc_file(pid, "environ").split(b"\0")
    cmdline = proc_file(pid, "cmdline")
    (h.tmp / "bin" / "go").touch()
    outcome = await task

    assert outcome.state is RunState.PASSED
    assert outcome.exit_code == 0
    assert outcome.reason == ""
    assert f"POCKETCI_SECRET_GH_PASSWORD={SECRET}".encode() in environ
    assert not any(e.startswith(b"POCKETCI_SECRET_NPM_TOKEN") for e in environ)
    assert OTHER_SECRET.encode() not in b"\0".join(environ)
    assert SECRET.encode() not in cmdline
    assert b"env://POCKETCI_SECRET_GH_PASSWORD" in cmdline

    info = json.loads(h.lines[0])
    assert info["argv"] == list(outcome.argv[1:])
    assert info["stdin"] == ""
    assert info["cwd_entries"] == []
    assert Path(info["cwd"]).is_relative_to(h.work)
    assert not Path(info["cwd"]).is_relative_to(h.checkout)
    assert info["event_mode"] == 0o600
    event_path = outcome.argv[outcome.argv.index("--event-trigger") + 1]
    assert info["event_path_env"] == event_path
    assert info["event"] == {
        "vendor": "github",
        "event_type": "push",
        "filter": "main",
        "repo_name": "acme/api",
        "repository_name": "acme/api",
        "ref": "refs/heads/main",
        "sha": "a" * 40,
        "commit_source": "payload",
        "base_ref": "",
        "base_sha": "b" * 40,
        "changes": ["a.go", "b/c.go"],
        "delivery_id": "delivery-1",
        "run_id": "run-1",
        "spec": "",
        "received_at": "2026-11-27T20:00:01Z",
        "payload": PAYLOAD,
    }
    # The event file and the whole per-call directory are gone afterwards.
    assert not exists(event_path)
    assert not exists(info["cwd"])
    assert list(h.work.iterdir()) == []


def test_event_trigger_marks_unknown_changes_as_null(h: Harness) -> None:
    trigger = h.runner("dagger").event_trigger(h.request(changes=None))
    assert trigger["changes"] is None
    assert trigger["run_id"] == "run-1"
    assert json.loads(json.dumps(trigger)) == trigger


# -- output ------------------------------------------------------------------------------------

NOISY = f"""
import sys, time
out, err = sys.stdout, sys.stderr
out.write("\\x1b[32mgreen\\x1b[0m start\\n"); out.flush()
err.write("\\x1b]0;title\\x07progress on stderr\\n"); err.flush()
out.write("token {SECRET} here\\n"); out.flush()
err.write("cloud {CLOUD_TOKEN}\\n"); err.flush()
out.write("other {OTHER_SECRET} extra\\n"); out.flush()
out.write("bar 10%\\rbar 100%\\n"); out.flush()
out.write("{SECRET[:10]}"); out.flush()
time.sleep(0.2)
out.write("{SECRET[10:]} split across writes\\n"); out.flush()
err.write("last words\\n"); err.flush()
sys.exit(3)
"""


async def test_output_is_streamed_in_order_stripped_and_masked(h: Harness) -> None:
    cli = script(h.tmp / "bin" / "dagger", NOISY)
    runner = h.runner(cli, cloud_token=CLOUD_TOKEN, extra_mask=[OTHER_SECRET])
    call = FunctionCall("onGithubPushMain", secrets=("ghPassword",))
    outcome = await h.run(runner, h.request(call, secrets={"ghPassword": SECRET}))
    expected = [
        "green start",
        "progress on stderr",
        "token *** here",
        "cloud ***",
        "other *** extra",
        "bar 100%",
        "*** split across writes",
        "last words",
    ]
    assert h.lines == expected
    assert h.log_lines == expected
    assert stat.S_IMODE(h.log_path.stat().st_mode) == 0o600
    assert outcome.state is RunState.FAILED
    assert outcome.exit_code == 3
    assert outcome.reason.startswith("exit code 3: ")
    assert outcome.reason.endswith("bar 100%\n*** split across writes\nlast words")
    for text in (outcome.reason, h.log_path.read_text(), *h.lines):
        assert SECRET not in text
        assert CLOUD_TOKEN not in text
        assert OTHER_SECRET not in text


async def test_each_line_is_stamped_in_the_log_as_in_the_batches(h: Harness) -> None:
    """Every log line starts with the UTC time its chunk arrived, the same moment the live
    batches carry, so the file and the live stream show the same stamps."""
    cli = script(h.tmp / "bin" / "dagger", NOISY)
    runner = h.runner(cli, cloud_token=CLOUD_TOKEN, extra_mask=[OTHER_SECRET])
    call = FunctionCall("onGithubPushMain", secrets=("ghPassword",))
    before = stamps.now_ms()
    await h.run(runner, h.request(call, secrets={"ghPassword": SECRET}))
    after = stamps.now_ms()
    raw = h.log_path.read_text(encoding="utf-8").splitlines()
    assert len(raw) == len(h.times) == 8
    for line, moment in zip(raw, h.times, strict=True):
        assert before / 1000 <= moment <= after / 1000
        assert line.startswith(stamps.format_stamp(round(moment * 1000)))
        assert stamps.STAMP_RE.match(line.encode())
    assert stamps.split_lines(raw, after)[1] == h.times
    assert SECRET not in h.log_path.read_text(encoding="utf-8")


async def test_many_lines_arrive_in_batches_and_complete(h: Harness) -> None:
    cli = script(
        h.tmp / "bin" / "dagger",
        """
        import sys
        sys.stdout.write("".join(f"line {i}\\n" for i in range(50_000)))
        """,
    )
    outcome = await h.run(h.runner(cli), h.request())
    assert outcome.state is RunState.PASSED
    assert h.lines == [f"line {i}" for i in range(50_000)]
    assert len(h.log_lines) == 50_000
    assert len(h.batches) < 1000
    assert all(h.batches)


async def test_huge_lines_and_binary_junk_do_not_break_the_run(h: Harness) -> None:
    cli = script(
        h.tmp / "bin" / "dagger",
        """
        import os, sys
        b = sys.stdout.buffer
        b.write(b"z" * 300_000 + b"\\n")
        b.write(os.urandom(100_000))
        b.write(b"\\n\\x00\\xff\\xfe\\x1b[31m\\x1b]8;;x\\x07end\\n")
        b.write(b"no final newline")
        """,
    )
    outcome = await h.run(h.runner(cli), h.request())
    assert outcome.state is RunState.PASSED
    lines = h.lines
    assert "".join(lines[:5]) == "z" * 300_000
    assert all(len(line) <= MAX_LINE for line in lines)
    assert lines[-2:] == ["\ufffd\ufffdend", "no final newline"]
    assert h.log_lines[-1] == "no final newline"
    for line in lines:
        assert not any(ord(c) < 32 and c != "\t" for c in line)


async def test_exit_codes_map_to_states(h: Harness) -> None:
    ok = script(h.tmp / "bin" / "ok", "print('fine')\n")
    outcome = await h.run(h.runner(ok), h.request())
    assert (outcome.state, outcome.exit_code, outcome.reason) == (RunState.PASSED, 0, "")
    assert outcome.started_at <= outcome.finished_at

    quiet = script(h.tmp / "bin" / "quiet", "import sys\nprint()\nsys.exit(1)\n")
    outcome = await h.run(h.runner(quiet), h.request())
    assert (outcome.state, outcome.exit_code, outcome.reason) == (RunState.FAILED, 1, "exit code 1")

    many = script(
        h.tmp / "bin" / "many",
        "import sys\nfor i in range(30): print(f'out {i}'); print()\nsys.exit(2)\n",
    )
    outcome = await h.run(h.runner(many), h.request())
    assert outcome.exit_code == 2
    assert outcome.reason == "exit code 2: out 25\nout 26\nout 27\nout 28\nout 29"

    killed = script(
        h.tmp / "bin" / "killed",
        "import os, signal\nprint('bye', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n",
    )
    outcome = await h.run(h.runner(killed), h.request())
    assert outcome.state is RunState.FAILED
    assert outcome.exit_code == -9
    assert outcome.reason == "killed by signal SIGKILL: bye"


# -- stopping process trees --------------------------------------------------------------------

TREE = """
import signal, subprocess, sys, time
grandchild = subprocess.Popen(
    [sys.executable, "-c",
     "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
     "print('gc ready', flush=True); time.sleep(300)"],
    stdout=subprocess.PIPE, text=True)
grandchild.stdout.readline()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("grandchild", grandchild.pid, flush=True)
time.sleep(300)
"""


def grandchild_pid(lines: list[str]) -> int:
    return int(next(line for line in lines if line.startswith("grandchild")).split()[1])


async def test_timeout_kills_the_whole_tree(h: Harness) -> None:
    cli = script(h.tmp / "bin" / "dagger", TREE)
    outcome = await h.run(h.runner(cli, timeout=1.0, kill_grace=0.3), h.request())
    assert outcome.state is RunState.FAILED
    assert outcome.exit_code is None
    assert outcome.reason.startswith("timed out after 1s")
    pid = h.started[0][1]
    gpid = grandchild_pid(h.lines)
    assert await wait_gone(pid)
    assert await wait_gone(gpid)
    assert h.log_lines[-1].startswith("grandchild")
    assert list(h.work.iterdir()) == []


async def test_cancel_kills_the_tree_flushes_the_log_and_reraises(h: Harness) -> None:
    cli = script(h.tmp / "bin" / "dagger", TREE)
    task = asyncio.create_task(h.run(h.runner(cli, kill_grace=0.3), h.request()))
    for _ in range(500):
        if any(line.startswith("grandchild") for line in h.lines):
            break
        await asyncio.sleep(0.01)
    gpid = grandchild_pid(h.lines)
    pid = h.started[0][1]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(pid)
    assert await wait_gone(gpid)
    assert h.log_lines[-1] == f"grandchild {gpid}"
    assert list(h.work.iterdir()) == []


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.005, 0.02, 0.05])
async def test_cancel_at_any_moment_leaves_nothing_behind(h: Harness, delay: float) -> None:
    pid_file = h.tmp / "pid"
    cli = script(
        h.tmp / "bin" / "dagger",
        f"""
        import os, time
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(300)
        """,
    )
    task = asyncio.create_task(h.run(h.runner(cli, kill_grace=0.3), h.request()))
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not h.work.exists() or list(h.work.iterdir()) == []
    if h.started:
        assert await wait_gone(h.started[0][1])
    await asyncio.sleep(0.3)  # a child that was about to start would have written its pid
    pid = read_pid(pid_file)
    if pid is not None:
        assert await wait_gone(pid)


async def test_a_leftover_holding_the_pipe_is_swept_when_the_call_exits(h: Harness) -> None:
    cli = script(
        h.tmp / "bin" / "dagger",
        """
        import subprocess, sys
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        print("leftover", p.pid, flush=True)
        """,
    )
    outcome = await h.run(h.runner(cli, kill_grace=0.3), h.request())
    assert outcome.state is RunState.PASSED
    assert await wait_gone(int(h.lines[0].split()[1]))


# -- a CLI that cannot start -----------------------------------------------------------------


async def test_missing_cli_is_a_clean_failure(h: Harness) -> None:
    missing = h.tmp / "no" / "dagger"
    outcome = await h.run(h.runner(missing), h.request())
    assert outcome.state is RunState.FAILED
    assert outcome.exit_code is None
    assert str(missing) in outcome.reason
    assert "dagger.cli" in outcome.reason
    assert not h.started
    assert list(h.work.iterdir()) == []


async def test_cli_that_is_not_executable_is_a_clean_failure(h: Harness) -> None:
    plain = h.tmp / "dagger"
    plain.write_text("not a program")
    outcome = await h.run(h.runner(plain), h.request())
    assert outcome.state is RunState.FAILED
    assert "not executable" in outcome.reason
    assert "dagger.cli" in outcome.reason


# -- with the shared stand-in dagger --------------------------------------------------------------


def fake_module(h: Harness, call: dict[str, Any]) -> None:
    from daggerstub import arg, fn, write_module

    write_module(
        h.module,
        "ci",
        functions=[
            fn(
                "onGithubPushMain",
                arg("src", "Directory"),
                arg("eventTrigger", "File"),
                arg("filter", "String", default="main,dev"),
                arg("onChanges", "[String]", default="**/*.go"),
                arg("ghPassword", "Secret"),
                call=call,
            )
        ],
    )


async def test_fake_dagger_receives_the_call_as_specified(h: Harness) -> None:
    from daggerstub import install_fake_dagger, read_calls

    bin_dir = install_fake_dagger(h.tmp)
    record_dir = h.tmp / "calls"
    record_dir.mkdir()
    fake_module(
        h,
        {
            "output": ["result {secret:ghPassword}", "b64 {secret_b64:ghPassword}"],
            "stderr": ["1   : [0.1s] | progress"],
            "exit": 0,
        },
    )
    runner = h.runner(
        bin_dir / "dagger",
        base_env={"PATH": os.defpath, "FAKE_DAGGER_RECORD_DIR": str(record_dir)},
    )
    call = FunctionCall(
        "onGithubPushMain",
        args=(("filter", "main"), ("onChanges", "**/*.go")),
        secrets=("ghPassword",),
    )
    req = h.request(call, secrets={"ghPassword": SECRET}, changes=["x.go", "y,z.go"])
    outcome = await h.run(runner, req)

    assert outcome.state is RunState.PASSED, outcome.reason
    assert h.lines == ["result ***", "b64 ***", "1   : [0.1s] | progress"]
    assert h.log_lines == h.lines
    [record] = read_calls(record_dir)
    assert record["pid"] == h.started[0][1]
    assert record["argv"][1:] == list(outcome.argv[1:])
    assert record["function"] == "onGithubPushMain"
    assert record["args"]["filter"] == "main"
    assert record["args"]["onChanges"] == 'x.go,"y,z.go"'
    assert record["secrets"] == {"ghPassword": SECRET}
    assert record["env"]["POCKETCI_SECRET_GH_PASSWORD"] == SECRET
    assert record["env"]["CI"] == "pocketci"
    assert record["event_trigger"]["run_id"] == "run-1"
    assert record["event_trigger"]["changes"] == ["x.go", "y,z.go"]
    assert record["event_trigger"]["payload"] == PAYLOAD
    assert Path(record["cwd"]).is_relative_to(h.work)
    assert SECRET not in " ".join(record["argv"])


async def test_fake_dagger_failure_and_cancel_of_its_child(h: Harness) -> None:
    from daggerstub import install_fake_dagger, read_calls

    bin_dir = install_fake_dagger(h.tmp)
    record_dir = h.tmp / "calls"
    record_dir.mkdir()
    fake_module(h, {"stderr": ["Error: tests failed"], "exit": 3})
    base = {"PATH": os.defpath, "FAKE_DAGGER_RECORD_DIR": str(record_dir)}
    call = FunctionCall("onGithubPushMain", secrets=("ghPassword",))
    req = h.request(call, secrets={"ghPassword": SECRET})

    outcome = await h.run(h.runner(bin_dir / "dagger", base_env=base), req)
    assert (outcome.state, outcome.exit_code) == (RunState.FAILED, 3)
    assert outcome.reason == "exit code 3: Error: tests failed"

    base["FAKE_DAGGER_CALL_ON_GITHUB_PUSH_MAIN"] = json.dumps(
        {"spawn_child": True, "output": ["working"], "sleep": 60}
    )
    task = asyncio.create_task(
        h.run(h.runner(bin_dir / "dagger", base_env=base, kill_grace=0.3), req)
    )
    for _ in range(500):
        if "working" in h.lines:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = read_calls(record_dir)[-1]
    assert record["child_pid"] is not None
    assert await wait_gone(record["pid"])
    assert await wait_gone(record["child_pid"])
