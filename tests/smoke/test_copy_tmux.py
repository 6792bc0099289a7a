"""Copying through tmux with OSC 52, in a real terminal: the real UI runs at 80x24 in a detached
tmux session with ``set-clipboard on``, so what the UI copies becomes tmux's paste buffer, as it
would reach the clipboard of the machine the user types on over SSH."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apphome import write_home

from pocketci_tui import stamps
from pocketci_tui.model import Event, EventStatus, Run, RunState
from pocketci_tui.paths import HOME_ENV, AppPaths, resolve_paths
from pocketci_tui.store import Store

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (installed by .ci/run)")
TMUX_CMD = [TMUX or "tmux", "-L", f"pocketci-copy-{os.getpid()}", "-f", os.devnull]
"""tmux on a server of these tests' own, without the user's configuration."""

LOG = ["go test ./...", "ok   acme/api/internal/store 0.398s", "--- FAIL: TestLogin", "FAIL"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tmux(*args: str) -> str:
    done = subprocess.run([*TMUX_CMD, *args], capture_output=True, text=True, check=False)
    return done.stdout


def _wait(check: Callable[[], bool], what: str, session: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    screen = _tmux("capture-pane", "-p", "-t", session)
    raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")


def _seed(home: Path) -> tuple[Path, list[float]]:
    """One push with one passed run whose log is stamped as the engine writes it."""

    async def seed(paths: AppPaths) -> tuple[Path, list[float]]:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(paths.db_file)
        try:
            now = datetime.now(UTC)
            event = Event(
                vendor="github",
                event_type="push",
                filter="main",
                repository="acme/api",
                ref="refs/heads/main",
                sha="9f1c2e7d" + "0" * 32,
                base_ref="",
                base_sha="0" * 40,
                pr_number=None,
                is_fork=False,
                delivery_id="seeded-1",
                received_at=now - timedelta(minutes=3),
                body=b"{}",
                event_name="push",
            )
            stored, _ = await store.record_event(event, EventStatus.DISPATCHED)
            started = now - timedelta(minutes=2)
            run = Run(
                id="run-test",
                event_id=stored.event.id or 0,
                function="onGithubPushMain",
                state=RunState.PASSED,
                reason="",
                exit_code=0,
                created_at=started,
                started_at=started,
                finished_at=now - timedelta(minutes=1),
                log_path=f"{stored.event.id}/run-test.log",
            )
            await store.add_runs([run])
        finally:
            await store.close()
        log = paths.logs_dir / run.log_path
        log.parent.mkdir(parents=True, exist_ok=True)
        first = round(started.timestamp() * 1000)
        moments = [(first + 1500 * i) / 1000 for i in range(len(LOG))]
        log.write_text(
            "".join(
                stamps.stamp_lines([line], round(m * 1000))
                for line, m in zip(LOG, moments, strict=True)
            ),
            encoding="utf-8",
        )
        return log, moments

    old = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    try:
        return asyncio.run(seed(resolve_paths()))
    finally:
        if old is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = old


@contextlib.contextmanager
def _ui_in_tmux(home: Path) -> Iterator[str]:
    session = f"pocketci-copy-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            *TMUX_CMD,
            *("new-session", "-d", "-s", session, "-x", "80", "-y", "24"),
            *("env", "-u", "COLUMNS", "-u", "LINES", f"{HOME_ENV}={home}"),
            "TERM=xterm-256color",
            *(sys.executable, "-m", "pocketci_tui"),
        ],
        check=True,
    )
    _tmux("set", "-g", "set-clipboard", "on")
    try:
        yield session
    finally:
        _tmux("kill-server")


def _buffer() -> str:
    return _tmux("show-buffer")


def test_copies_reach_tmux_as_osc_52(tmp_path: Path) -> None:
    """At 80x24: the Output pane shows the run's stamped log (t: wall clock), y copies the
    line in focus, V k y two lines, Y the log's path; each becomes tmux's paste buffer."""
    home = tmp_path / "home"
    repos = "[{name: acme/api, clone-url: 'https://127.0.0.1:9/acme/api.git'}]"
    write_home(home, port=_free_port(), secret="copy-test-webhook-secret", repos=repos)
    log, moments = _seed(home)
    with _ui_in_tmux(home) as session:

        def screen() -> str:
            return _tmux("capture-pane", "-p", "-t", session)

        _wait(lambda: "FAIL" in screen(), "the run's output", session)
        _tmux("send-keys", "-t", session, "Tab", "Tab")  # Events → Functions → Output
        time.sleep(0.5)
        _tmux("send-keys", "-t", session, "y")
        _wait(lambda: _buffer() == "FAIL", "the last line in the paste buffer", session)
        _tmux("send-keys", "-t", session, "t")
        clock = datetime.fromtimestamp(moments[-1]).astimezone().strftime("%H:%M:%S")
        _wait(lambda: f"{clock} FAIL" in screen(), "the wall clock before the line", session)
        _tmux("send-keys", "-t", session, "V", "k", "y")
        first = datetime.fromtimestamp(moments[-2]).astimezone().strftime("%H:%M:%S")
        two = f"{first} --- FAIL: TestLogin\n{clock} FAIL"
        _wait(lambda: _buffer() == two, "two lines, as shown", session)
        assert "Copied 2 lines" in screen()  # the notification (wrapped in its toast)
        _tmux("send-keys", "-t", session, "Y")
        _wait(lambda: _buffer() == str(log), "the log's path", session)
