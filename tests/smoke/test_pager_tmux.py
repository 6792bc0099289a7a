"""The log pager in a real terminal: while it has the screen, the listener keeps answering.

Textual's pilot cannot suspend an app, so this runs the real UI in a detached tmux session with a
``$PAGER`` that holds the terminal until the test lets it go. While it does, GitHub's deliveries
must still be stored and acknowledged (a user reading a log must not make deliveries time out),
and afterwards the UI must come back.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apphome import write_home
from signing import push_body

from pocketci_tui.forges.github import sign
from pocketci_tui.model import Event, EventStatus, Run, RunState
from pocketci_tui.paths import HOME_ENV, resolve_paths
from pocketci_tui.store import Store

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (installed by .ci/run)")

SECRET = "pager-test-webhook-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _seed(home: Path) -> None:
    """One stored push event with one finished run and its log file."""

    async def seed() -> None:
        paths = resolve_paths()
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
                title="Fix login",
            )
            stored, _ = await store.record_event(event, EventStatus.DISPATCHED)
            event_id = stored.event.id
            run = Run(
                id="run-build",
                event_id=event_id or 0,
                function="onGithubPushMain",
                state=RunState.PASSED,
                reason="",
                exit_code=0,
                created_at=now - timedelta(minutes=2),
                started_at=now - timedelta(minutes=2),
                finished_at=now - timedelta(minutes=1),
                log_path=f"{event_id}/run-build.log",
            )
            await store.add_runs([run])
            log = paths.logs_dir / f"{event_id}" / "run-build.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("build ok\n", encoding="utf-8")
        finally:
            await store.close()

    old = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    try:
        asyncio.run(seed())
    finally:
        if old is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = old


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """The UI in tmux (120x40) over a seeded home; yields (session, base URL, work folder)."""
    assert TMUX is not None
    home = tmp_path / "pager-home"
    port = _free_port()
    repos = "[{name: acme/api, clone-url: 'https://127.0.0.1:9/acme/api.git'}]"
    write_home(home, port=port, secret=SECRET, repos=repos)
    _seed(home)
    # The pager marks that it has the terminal, then holds it until the test releases it.
    pager = tmp_path / "pager.sh"
    pager.write_text(
        "#!/bin/sh\n"
        f"touch '{tmp_path}/paging'\n"
        "i=0\n"
        f"while [ ! -e '{tmp_path}/release' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n",
        encoding="utf-8",
    )
    pager.chmod(0o755)
    session = f"pocketci-pager-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            *(TMUX, "new-session", "-d", "-s", session, "-x", "120", "-y", "40"),
            *("env", f"{HOME_ENV}={home}", f"PAGER={pager}", "TERM=xterm-256color"),
            *(sys.executable, "-m", "pocketci_tui"),
        ],
        check=True,
    )
    try:
        yield session, f"http://127.0.0.1:{port}", tmp_path
    finally:
        (tmp_path / "release").touch()
        subprocess.run([TMUX, "kill-session", "-t", session], check=False, capture_output=True)


def _screen(session: str) -> str:
    assert TMUX is not None
    done = subprocess.run(
        [TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False
    )
    return done.stdout


def _post(base: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{base}/webhooks/github",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(SECRET, body),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, reply.read()


def test_deliveries_are_stored_while_the_pager_has_the_terminal(
    ui: tuple[str, str, Path],
) -> None:
    session, base, work = ui
    assert TMUX is not None
    # The seeded event and its run are selected at start, the log shown in the Output pane.
    _wait(lambda: "build ok" in _screen(session), "the UI with the seeded run's log")
    subprocess.run([TMUX, "send-keys", "-t", session, "p"], check=True)
    _wait(lambda: (work / "paging").exists(), "the pager to start")
    _wait(lambda: "Events" not in _screen(session), "the UI to give the terminal to the pager")

    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
        assert reply.status == 200
    status, text = _post(base, push_body(repository="someone/else", n=7))
    assert status == 200  # stored, and ignored: that repository is not configured
    assert b'"status": "ignored"' in text
    assert "Events" not in _screen(session)  # the pager still has the terminal

    (work / "release").touch()
    # The UI comes back, and shows the delivery that came while the pager had the screen.
    _wait(lambda: "someone/else" in _screen(session), "the UI to come back with the new event")
    assert "acme/api" in _screen(session)
