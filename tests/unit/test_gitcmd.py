"""The hardened git runner: environment, options, credentials, timeouts and process groups."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from pocketci_tui.engine.git import Credentials, GitCommand, GitError, GitTimeoutError, Workspace
from pocketci_tui.engine.git.command import (
    credential_env_names,
    hardening_config,
    parse_git_version,
    url_protocol,
)


@pytest.mark.parametrize(
    ("url", "proto"),
    [
        ("https://github.com/o/r.git", "https"),
        ("HTTP://127.0.0.1:80/r.git", "http"),
        ("ssh://git@host/r.git", "ssh"),
        ("git+ssh://git@host/r.git", "ssh"),
        ("git@github.com:o/r.git", "ssh"),
        ("git://host/r.git", "git"),
        ("file:///srv/r.git", "file"),
        ("/srv/repos/r.git", "file"),
        ("./relative/r.git", "file"),
        ("ext::sh -c touch% /tmp/x", "ext"),
        ("fd::3", "fd"),
        ("custom::https://host/r", "custom"),
    ],
)
def test_url_protocol_names_the_transport_git_would_use(url: str, proto: str) -> None:
    assert url_protocol(url) == proto


def _config_pairs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]


def test_hardening_allows_only_the_given_protocols_and_never_ext() -> None:
    pairs = _config_pairs(hardening_config(["https", "ext"]))
    assert pairs[0] == "protocol.allow=never"
    assert "protocol.https.allow=always" in pairs
    # A later "never" wins over the requested "always".
    assert pairs.index("protocol.ext.allow=never") > pairs.index("protocol.ext.allow=always")
    for expected in (
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "http.followRedirects=false",
        "credential.helper=",
    ):
        assert expected in pairs


def test_environment_is_clean_and_private(
    tmp_path: Path, git_runner: GitCommand, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", "/somewhere/else")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='/evil'")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_should_not_leak_000000")
    env = git_runner.environment()
    assert "GIT_DIR" not in env
    assert "GIT_CONFIG_PARAMETERS" not in env
    assert "GITHUB_TOKEN" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["HOME"] == str(tmp_path / "home")
    assert Path(env["GIT_ASKPASS"]).is_file()
    assert credential_env_names()["password"] not in env


def test_credentials_go_to_the_environment_not_the_argv(git_runner: GitCommand) -> None:
    creds = Credentials.for_url("https://example.invalid:8443/o/r.git", "tok-SECRET-123456")
    argv = git_runner.argv(["fetch", "https://example.invalid:8443/o/r.git"], credentials=creds)
    assert not any("tok-SECRET-123456" in a for a in argv)
    assert git_runner.environment(creds)[credential_env_names()["password"]] == "tok-SECRET-123456"
    assert git_runner.environment(creds)[credential_env_names()["host"]] == "example.invalid:8443"
    helper_text = git_runner.helper.read_text()
    assert "tok-SECRET" not in helper_text
    assert "tok-SECRET" not in repr(creds)


def test_preemptive_credentials_are_an_origin_scoped_header_in_the_environment(
    git_runner: GitCommand,
) -> None:
    url = "https://example.invalid:8443/o/r.git"
    creds = Credentials.for_url(url, "tok-SECRET-123456", preemptive=True)
    argv = git_runner.argv(["fetch", url], credentials=creds)
    assert not any("tok-SECRET-123456" in a or creds.basic() in a for a in argv)
    # No credential helper: after a refused header git has nothing to send again.
    assert not any(a.startswith("credential.helper=!") for a in argv)
    env = git_runner.environment(creds)
    names = credential_env_names()
    assert names["password"] not in env
    assert names["username"] not in env
    assert env["GIT_CONFIG_COUNT"] == "2"
    pairs = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(2)}
    assert pairs == {
        "http.https://example.invalid:8443/.extraHeader": (
            "Authorization: Basic eC1hY2Nlc3MtdG9rZW46dG9rLVNFQ1JFVC0xMjM0NTY="
        ),
        "http.https://example.invalid:8443/.followRedirects": "false",
    }
    assert "tok-SECRET" not in repr(creds)


async def test_git_reads_the_preemptive_header_only_for_its_origin(git_runner: GitCommand) -> None:
    """git itself resolves the environment config to this origin, and to no other."""
    creds = Credentials.for_url("http://127.0.0.1:8080/r.git", "the-token-value", preemptive=True)
    expected = f"Authorization: Basic {creds.basic()}"
    for url, header in (
        ("http://127.0.0.1:8080/r.git", expected),
        ("http://127.0.0.1:8080/other/path.git", expected),
        ("http://127.0.0.2:8080/r.git", ""),
        ("http://127.0.0.1:8081/r.git", ""),
        ("https://127.0.0.1:8080/r.git", ""),
    ):
        res = await git_runner.run(
            ["config", "--get-urlmatch", "http.extraHeader", url], credentials=creds, check=False
        )
        assert res.stdout.decode().strip() == header, url
    # The origin's own followRedirects=false outranks a generic one set later on the command
    # line (git picks the most specific URL match), so no redirect can carry the header away.
    res = await git_runner.run(
        [
            "-c",
            "http.followRedirects=true",
            "config",
            "--get-urlmatch",
            "http.followRedirects",
            "http://127.0.0.1:8080/r.git",
        ],
        credentials=creds,
    )
    assert res.stdout.decode().strip() == "false"


async def _failure_echoing(git: GitCommand, repo: Path, echoed: str, creds: Credentials) -> str:
    """The message of a git command, given ``creds``, that fails and echoes ``echoed``."""
    await git.run(["init", "--quiet", str(repo)])  # creates the directory
    with pytest.raises(GitError) as info:
        # git echoes the unknown revision in its error message.
        await git.run(["log", "-1", echoed], cwd=repo, credentials=creds)
    return str(info.value)


async def test_failure_message_masks_the_basic_auth_form_of_the_token(
    tmp_path: Path, git_runner: GitCommand
) -> None:
    creds = Credentials.for_url("http://127.0.0.1:9/r.git", "very-secret-token-42", preemptive=True)
    message = await _failure_echoing(git_runner, tmp_path / "repo", creds.basic(), creds)
    assert creds.basic() not in message
    assert "***" in message


def test_user_names_with_colons_are_refused() -> None:
    with pytest.raises(GitError, match="colons"):
        Credentials.for_url("https://host/r.git", "token-value-1", username="a:b")


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("https://user:pw@host/r.git", "token-value-1"),
        ("ssh://host/r.git", "token-value-1"),
        ("https://host/r.git", "line\nbreak"),
        ("https://host/r.git", ""),
    ],
)
def test_credentials_refuse_unusable_input(url: str, token: str) -> None:
    with pytest.raises(GitError) as info:
        Credentials.for_url(url, token)
    assert token not in str(info.value) or not token


def _ask_helper(git: GitCommand, creds: Credentials, request: str) -> str:
    env = git.environment(creds)
    res = subprocess.run(
        ["sh", "-c", f"{git.helper} get"],
        input=request.encode(),
        capture_output=True,
        env=env,
        check=True,
    )
    return res.stdout.decode()


def test_credential_helper_answers_only_its_own_origin(git_runner: GitCommand) -> None:
    creds = Credentials.for_url("http://127.0.0.1:8080/r.git", "the-token-value")
    ok = _ask_helper(git_runner, creds, "protocol=http\nhost=127.0.0.1:8080\npath=r.git\n\n")
    assert ok == "username=x-access-token\npassword=the-token-value\n"
    for other in (
        "protocol=http\nhost=127.0.0.2:8080\n\n",
        "protocol=https\nhost=127.0.0.1:8080\n\n",
        "protocol=http\nhost=127.0.0.1:8081\n\n",
        "protocol=http\nhost=127.0.0.1\n\n",
    ):
        assert _ask_helper(git_runner, creds, other) == ""


def test_credential_helper_does_not_expand_shell_syntax_in_the_token(
    tmp_path: Path, git_runner: GitCommand
) -> None:
    token = "$(touch pwned)`touch pwned2`;'\"x"
    creds = Credentials.for_url("http://h/r.git", token)
    out = _ask_helper(git_runner, creds, "protocol=http\nhost=h\n\n")
    assert out == f"username=x-access-token\npassword={token}\n"
    assert not (tmp_path / "home" / "pwned").exists()
    assert not (tmp_path / "home" / "pwned2").exists()


async def test_run_returns_output(git_runner: GitCommand) -> None:
    res = await git_runner.run(["--version"])
    assert res.ok
    assert res.stdout.startswith(b"git version")


async def test_the_private_home_is_made_by_the_first_command_not_before(tmp_path: Path) -> None:
    """Setting up a workspace writes nothing (its folder may not be ours to write yet); the
    first git command makes the home private (0700) and writes the helpers into it."""
    home = tmp_path / "ws" / "home"
    git = GitCommand(home)
    Workspace(tmp_path / "ws")
    assert not (tmp_path / "ws").exists()
    await git.run(["--version"])
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert git.askpass.is_file()
    assert git.helper.parent == home / "bin"


async def test_failure_message_masks_the_token(tmp_path: Path, git_runner: GitCommand) -> None:
    token = "very-secret-token-42"
    creds = Credentials.for_url("http://127.0.0.1:9/r.git", token)
    message = await _failure_echoing(git_runner, tmp_path / "repo", token, creds)
    assert token not in message
    assert "***" in message


async def test_missing_executable_is_a_git_error(tmp_path: Path) -> None:
    git = GitCommand(tmp_path / "home", git=str(tmp_path / "no-such-git"))
    with pytest.raises(GitError, match="cannot start git"):
        await git.run(["--version"])


def _fake_git(tmp_path: Path) -> tuple[Path, Path]:
    """A stand-in git that records its process details, starts a child and hangs."""
    record = tmp_path / "record"
    script = tmp_path / "fake-git"
    script.write_text(
        "#!/bin/sh\n"
        f"sleep 60 & echo $! > {record}.child\n"
        f"cat > {record}.stdin\n"
        f"echo $$ > {record}.pid\n"
        "sleep 60\n"
    )
    script.chmod(0o755)
    return script, record


def _wait_for(path: Path) -> str:
    for _ in range(500):
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def _wait_for_bytes(path: Path) -> bytes:
    return path.read_bytes()


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int) -> bool:
    for _ in range(500):
        if not _alive(pid):
            return True
        time.sleep(0.01)
    return False


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    script, record = _fake_git(tmp_path)
    git = GitCommand(tmp_path / "home", git=str(script))
    with pytest.raises(GitTimeoutError, match="timed out"):
        await git.run(["fetch"], time_limit=1.0)
    pid = int(_wait_for(Path(f"{record}.pid")))
    child = int(_wait_for(Path(f"{record}.child")))
    assert _wait_dead(pid)
    assert _wait_dead(child)
    # stdin was closed: cat read nothing and ended at once.
    assert _wait_for_bytes(Path(f"{record}.stdin")) == b""


async def test_cancellation_kills_the_whole_process_group(tmp_path: Path) -> None:
    script, record = _fake_git(tmp_path)
    git = GitCommand(tmp_path / "home", git=str(script))
    task = asyncio.create_task(git.run(["fetch"], time_limit=60))
    pid = int(await asyncio.to_thread(_wait_for, Path(f"{record}.pid")))
    child = int(_wait_for(Path(f"{record}.child")))
    fields = _stat_fields(pid)
    # Own process group and session, and no controlling terminal (tty_nr 0).
    assert int(fields[2]) == pid
    assert int(fields[3]) == pid
    assert int(fields[4]) == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _wait_dead(pid)
    assert _wait_dead(child)


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("git version 2.39.5\n", (2, 39, 5)),
        ("git version 2.45.2.windows.1", (2, 45, 2)),
        ("git version 2.32", (2, 32)),
        ("something else", ()),
    ],
)
def test_parse_git_version(text: str, version: tuple[int, ...]) -> None:
    assert parse_git_version(text) == version


async def test_the_installed_git_is_accepted(tmp_path: Path) -> None:
    assert (await GitCommand(tmp_path / "home").check_version())[:2] >= (2, 32)


async def test_an_old_git_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "old-git"
    old.write_text("#!/bin/sh\necho 'git version 2.20.1'\n")
    old.chmod(0o755)
    with pytest.raises(GitError, match=r"2\.32 or newer is needed; found 2\.20\.1"):
        await GitCommand(tmp_path / "home", git=str(old)).check_version()
