"""The log pager in a real terminal: while it has the screen, the listener keeps answering.

Textual's pilot cannot suspend an app, so this runs the real UI in a detached tmux session with a
``$PAGER`` that holds the terminal until the test lets it go. While it does, GitHub's deliveries
must still be stored and acknowledged (a user reading a log must not make deliveries time out),
and afterwards the UI must come back. Under load too: with builds streaming and 200 deliveries
arriving while the pager holds the terminal for 30 s (the case that used to freeze the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apphome import write_home
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit
from signing import push_body

from pocketci_tui.forges.github import sign
from pocketci_tui.model import Event, EventStatus, Run, RunState
from pocketci_tui.paths import HOME_ENV, resolve_paths
from pocketci_tui.store import Store

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="needs tmux (installed by .ci/run)")
TMUX_CMD = [TMUX or "tmux", "-L", f"pocketci-tests-{os.getpid()}"]
"""tmux on a server of these tests' own (a test stops it to stall the terminal)."""

SECRET = "pager-test-webhook-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(
    check: Callable[[], bool], what: str, timeout: float = 20.0, *, session: str = ""
) -> None:
    """Wait until ``check()`` holds; on time-out, say what and show the session's screen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    shown = f"; the screen:\n{_screen(session)}" if session else ""
    raise AssertionError(f"timed out waiting for {what}{shown}")


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


def _holding_pager(work: Path) -> Path:
    """A ``$PAGER`` that marks that it has the terminal, then holds it until released."""
    pager = work / "pager.sh"
    pager.write_text(
        "#!/bin/sh\n"
        f"touch '{work}/paging'\n"
        "i=0\n"
        f"while [ ! -e '{work}/release' ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done\n",
        encoding="utf-8",
    )
    pager.chmod(0o755)
    return pager


@contextlib.contextmanager
def _ui_in_tmux(
    home: Path, work: Path, size: tuple[int, int] = (120, 40), pager: str = ""
) -> Iterator[str]:
    """Run the real UI over ``home`` in a detached tmux session; yield the session name.

    ``$PAGER`` is ``pager``, or by default one that holds the terminal until released.
    """
    pager = pager or str(_holding_pager(work))
    session = f"pocketci-pager-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            *TMUX_CMD,
            *("new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1])),
            # COLUMNS and LINES (set under pytest) would override the pane's real size.
            *("env", "-u", "COLUMNS", "-u", "LINES", f"{HOME_ENV}={home}", f"PAGER={pager}"),
            "TERM=xterm-256color",
            *(sys.executable, "-m", "pocketci_tui"),
        ],
        check=True,
    )
    try:
        yield session
    finally:
        (work / "release").touch()
        subprocess.run([*TMUX_CMD, "kill-session", "-t", session], check=False, capture_output=True)


@pytest.fixture
def pager_command() -> str:
    """The ``$PAGER`` of the ``ui`` fixture (empty: one that holds the terminal)."""
    return ""


@pytest.fixture
def ui(tmp_path: Path, pager_command: str) -> Iterator[tuple[str, str, Path]]:
    """The UI in tmux (120x40) over a seeded home; yields (session, base URL, work folder)."""
    home = tmp_path / "pager-home"
    port = _free_port()
    repos = "[{name: acme/api, clone-url: 'https://127.0.0.1:9/acme/api.git'}]"
    write_home(home, port=port, secret=SECRET, repos=repos)
    _seed(home)
    with _ui_in_tmux(home, tmp_path, pager=pager_command) as session:
        yield session, f"http://127.0.0.1:{port}", tmp_path


def _screen(session: str) -> str:
    done = subprocess.run(
        [*TMUX_CMD, "capture-pane", "-p", "-t", session],
        capture_output=True,
        text=True,
        check=False,
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
    # The seeded event and its run are selected at start, the log shown in the Output pane.
    _wait(lambda: "build ok" in _screen(session), "the UI with the seeded run's log")
    subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "p"], check=True)
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


@pytest.mark.parametrize("pager_command", ["/nonexistent/pager-program"])
def test_a_pager_that_cannot_start_gives_the_terminal_back(ui: tuple[str, str, Path]) -> None:
    """A pager that fails inside the suspension (here: not installed) must not leave the app
    suspended: the UI comes back, says why, and the process goes on answering (the failure
    used to skip the resume, and the next frames blocked the loop for good)."""
    session, base, _ = ui
    _wait(lambda: "build ok" in _screen(session), "the UI with the seeded run's log")
    subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "p"], check=True)
    _wait(lambda: "Pager not found" in _screen(session), "the UI to say so", session=session)
    status, _ = _post(base, push_body(repository="someone/else", n=8))
    assert status == 200
    _wait(lambda: "someone/else" in _screen(session), "the new event", session=session)
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as reply:
        assert reply.status == 200


# -- the pager held open while the process is busy -------------------------------------------

HOLD_SECONDS = 30.0
"""How long the pager keeps the terminal while builds print and deliveries arrive."""
DELIVERIES = 200
"""Signed deliveries sent while the pager has the terminal."""
BUILD_LINES = 14_000
BUILD_PACE = 250.0
"""The stand-in build prints this many lines at this many a second (about 56 s)."""
VISITOR = "visitor/site"
"""A repository not in the config: its deliveries are stored and shown, nothing runs."""


@dataclass
class Answer:
    """One request and how it went."""

    what: str
    seconds: float
    status: int | None
    error: str = ""


def _timed(what: str, request: urllib.request.Request | str, timeout: float) -> Answer:
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read()
            return Answer(what, time.monotonic() - began, reply.status)
    except Exception as exc:
        return Answer(what, time.monotonic() - began, None, f"{type(exc).__name__}: {exc}")


def _signed(base: str, repository: str, sha: str, n: int) -> urllib.request.Request:
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": f"{n + 1:040x}",
            "after": sha,
            "deleted": False,
            "repository": {"full_name": repository, "default_branch": "main"},
            "head_commit": {"id": sha, "message": f"change {n}"},
            "sender": {"login": "octocat"},
        }
    ).encode()
    return urllib.request.Request(
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


def _last_line_number(screen: str) -> int:
    numbers = [int(n) for n in re.findall(r"│line (\d+)\s", screen)]
    return max(numbers, default=0)


def _streaming_home(work: Path) -> tuple[Path, str, str]:
    """A home whose repository's push to main runs a long, steadily printing build.

    Returns:
        The home folder, the listener's base URL and the commit to push.
    """
    base_args = [arg("src", "Directory"), arg("eventTrigger", "File")]
    call = {"output": ["build starts"], "lines": BUILD_LINES, "lines_per_second": BUILD_PACE}
    kit = EngineKit(work / "kit", functions=[fn("onGithubPushMain", *base_args, call=call)])
    home = work / "home"
    port = _free_port()
    write_home(
        home,
        port=port,
        secret=SECRET,
        repos=f"[{{name: {REPOSITORY}, clone-url: '{kit.remote.path}'}}]",
        extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
    )
    return home, f"http://127.0.0.1:{port}", kit.remote.rev("main")


def _torn(screen: str, shown: str) -> str:
    """Why the screen is not the whole UI at 120x40 (its three panes, status bar and footer,
    nothing left of older frames), or ``""`` (``shown``: the end of the Events pane's bottom
    border)."""
    rows = screen.rstrip("\n").splitlines()
    bottoms = [i for i, row in enumerate(rows) if row.endswith(f"{shown} ─╯")]
    checks = {
        "40 rows": len(rows) == 40,
        "status bar": bool(rows) and rows[0].lstrip().startswith("pocketci"),
        "Events on top": len(rows) > 1 and rows[1].startswith("╭─ Events"),
        "one Events bottom": len(bottoms) == 1,
        "three tops": sum(row.count("╭─ ") for row in rows) == 3,
        "three bottoms": sum(row.count("╰─") for row in rows) == 3,
        "footer": bool(rows) and rows[-1].startswith("f Fire"),
        "width": all(len(row) <= 120 for row in rows),
    }
    if len(bottoms) == 1 and len(rows) == 40:
        bottom = bottoms[0]
        checks["Functions below"] = rows[bottom + 1].startswith("╭─ Functions")
        checks["Events sides"] = all(
            row.startswith("│") and row.endswith("│") for row in rows[2:bottom]
        )
        checks["lower sides"] = all(row.startswith("│") for row in rows[bottom + 2 : -2])
        checks["lower bottom"] = rows[-2].startswith("╰─")
    return ", ".join(name for name, ok in checks.items() if not ok)


def _assert_whole(screen: str, shown: str) -> None:
    """The screen is the whole UI at 120x40 (see :func:`_torn`)."""
    torn = _torn(screen, shown)
    assert not torn, f"torn ({torn}):\n{screen}"


def _filter_events(session: str, text: str) -> None:
    """Filter the Events pane (focused) on ``text``."""
    subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "/"], check=True)
    _wait(lambda: "Esc clears" in _screen(session), "the filter", session=session)
    subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "-l", text], check=True)
    subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "Enter"], check=True)
    _wait(lambda: "Esc clears" not in _screen(session), "the filter applied", session=session)


def _start_build(session: str, base: str, sha: str) -> None:
    """Wait for the UI and the listener, push, and wait for the build's output on screen."""
    _wait(lambda: "Events" in _screen(session), "the UI", timeout=60)
    _wait(lambda: _timed("up", f"{base}/healthz", 5).status == 200, "the listener", timeout=60)
    first = _timed("build 1", _signed(base, REPOSITORY, sha, 0), 10)
    assert first.status == 202, first
    _wait(lambda: _last_line_number(_screen(session)) > 200, "the build's output", 60)


@pytest.mark.timeout(300)
def test_pager_held_open_under_load_never_stops_the_process(tmp_path: Path) -> None:
    """The issue's reproduction, in a real terminal: a build streams, the user opens its log in
    the pager and keeps it open for 30 s while a second build starts and 200 signed deliveries
    arrive. The process must answer every delivery and /healthz throughout (it used to freeze
    for good within seconds: refreshes filled the stopped writer's queue and blocked the loop),
    and once the pager closes the screen must be whole and show what happened meanwhile."""
    home, base, sha = _streaming_home(tmp_path)
    with _ui_in_tmux(home, tmp_path) as session:
        # The build streams into the Output pane; open its full log in the pager.
        _start_build(session, base, sha)
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "p"], check=True)
        _wait(lambda: (tmp_path / "paging").exists(), "the pager to start")

        answers: list[Answer] = []
        health: list[Answer] = []
        done = threading.Event()

        def deliver() -> None:
            # The first delivery starts a second build while the pager has the terminal.
            answers.append(_timed("build 2", _signed(base, REPOSITORY, sha, 1), 10))
            pause = HOLD_SECONDS / DELIVERIES
            for n in range(2, DELIVERIES + 1):
                if answers[-1].status is None:
                    return  # the process stopped answering: no need to wait on each one
                answers.append(_timed(f"delivery {n}", _signed(base, VISITOR, sha, n), 10))
                time.sleep(pause)

        def probe() -> None:
            while not done.is_set():
                health.append(_timed("healthz", f"{base}/healthz", 5))
                time.sleep(0.25)

        began = time.monotonic()
        threads = [threading.Thread(target=deliver), threading.Thread(target=probe)]
        for thread in threads:
            thread.start()
        threads[0].join(HOLD_SECONDS + DELIVERIES * 10)
        time.sleep(max(0.0, HOLD_SECONDS - (time.monotonic() - began)))
        held = time.monotonic() - began
        assert "Events" not in _screen(session)  # the pager still has the terminal
        (tmp_path / "release").touch()
        done.set()
        threads[1].join(10)

        failed = [a for a in [*answers, *health] if a.status not in (200, 202)]
        assert not failed, f"{len(failed)} requests failed, the first ones: {failed[:3]}"
        assert len(answers) == DELIVERIES
        assert held >= HOLD_SECONDS
        slowest = max(answers, key=lambda a: a.seconds)
        assert slowest.seconds < 1.0, slowest
        assert max(a.seconds for a in health) < 1.0, max(health, key=lambda a: a.seconds)

        # The UI is back, whole, with the new events (the newest one selected).
        _wait(lambda: VISITOR in _screen(session), "the UI to come back with the new events")
        _wait(lambda: "200+ shown" in _screen(session), "the count of events")
        screen = _screen(session)
        _assert_whole(screen, "200+ shown")
        assert "2 running" in screen.splitlines()[0], screen
        assert "is not in the config" in screen, screen
        assert "paging" not in screen
        # The build that started while the pager had the terminal: its output was read all
        # along (thousands of lines by now).
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "/"], check=True)
        _wait(lambda: "Esc clears" in _screen(session), "the filter", session=session)
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "-l", REPOSITORY], check=True)
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "Enter"], check=True)
        _wait(
            lambda: _last_line_number(_screen(session)) > 2000,
            "the output printed while the pager had the terminal",
            session=session,
        )
        assert "Output · onGithubPushMain" in _screen(session)
        # And it goes on answering.
        assert _timed("after", f"{base}/healthz", 5).status == 200


# -- a terminal that stops reading ------------------------------------------------------------

STALL_SECONDS = 10.0
"""How long the terminal takes no output."""
STALL_DELIVERIES = 40
"""Signed deliveries sent meanwhile."""


def _tmux_server_pid() -> int:
    done = subprocess.run(
        [*TMUX_CMD, "display-message", "-p", "#{pid}"], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.timeout(300)
def test_a_terminal_that_stops_reading_never_stops_the_process(tmp_path: Path) -> None:
    """A stalled SSH client stops reading the terminal: the tty's buffer fills and writes to
    it block. Here the tmux server itself is stopped (SIGSTOP) while a build streams, so
    nothing reads the UI's terminal for 10 s. Deliveries and /healthz must be answered
    throughout (Textual's writer thread blocked on the tty, its queue filled and the next frame
    blocked the event loop until the terminal read again); frames are dropped meanwhile, and
    once the terminal reads again the screen is repainted whole with the current state."""
    home, base, sha = _streaming_home(tmp_path)
    with _ui_in_tmux(home, tmp_path) as session:
        _start_build(session, base, sha)
        # Only the build's repository in the Events pane: the deliveries that arrive during
        # the stall do not take the selection, so the Output pane streams the build all along
        # and the UI keeps drawing frames for the terminal that does not read them.
        _filter_events(session, REPOSITORY)
        before = _last_line_number(_screen(session))
        _wait(
            lambda: _last_line_number(_screen(session)) > before + BUILD_PACE / 2,
            "the build's output under the filter",
            session=session,
        )
        before = _last_line_number(_screen(session))
        server = _tmux_server_pid()
        answers: list[Answer] = []
        health: list[Answer] = []
        os.kill(server, signal.SIGSTOP)
        try:
            began = time.monotonic()
            for n in range(1, STALL_DELIVERIES + 1):
                answers.append(_timed(f"delivery {n}", _signed(base, VISITOR, sha, n), 5))
                health.append(_timed("healthz", f"{base}/healthz", 5))
                if answers[-1].status is None or health[-1].status is None:
                    break  # the process stopped answering: no need to wait on each one
                time.sleep(STALL_SECONDS / STALL_DELIVERIES / 2)
            while time.monotonic() - began < STALL_SECONDS and health[-1].status is not None:
                health.append(_timed("healthz", f"{base}/healthz", 5))
                time.sleep(0.25)
        finally:
            os.kill(server, signal.SIGCONT)
        failed = [a for a in [*answers, *health] if a.status not in (200, 202)]
        assert not failed, f"{len(failed)} requests failed, the first ones: {failed[:3]}"
        assert len(answers) == STALL_DELIVERIES
        assert max(a.seconds for a in [*answers, *health]) < 1.0, max(
            [*answers, *health], key=lambda a: a.seconds
        )
        # The stall was real: the terminal took no output for a while and frames were dropped.
        app_log = home / "data" / "pocketci-tui.log"
        _wait(
            lambda: "the terminal did not take output" in app_log.read_text(errors="replace"),
            "the app log to say frames were dropped",
        )
        # The build's output was read all along.
        _wait(
            lambda: _last_line_number(_screen(session)) > before + STALL_SECONDS * BUILD_PACE / 2,
            "the output printed while the terminal was stalled",
            session=session,
        )
        # Whole again, with the current state: every delivery is there once the filter is
        # cleared, and the newest (at the top) says what it is.
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "/"], check=True)
        _wait(lambda: "esc Clear" in _screen(session), "the filter's field", session=session)
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "Escape"], check=True)
        shown = f"{STALL_DELIVERIES + 1} shown"
        _wait(lambda: shown in _screen(session), "the new events", session=session)
        subprocess.run([*TMUX_CMD, "send-keys", "-t", session, "g"], check=True)
        _wait(
            lambda: "is not in the config" in _screen(session),
            "the newest event's note",
            session=session,
        )
        screen = _screen(session)
        _assert_whole(screen, shown)
        assert VISITOR in screen
        assert _timed("after", f"{base}/healthz", 5).status == 200


RESIZES = 100
"""Window size changes in the storm."""


@pytest.mark.timeout(300)
def test_a_resize_storm_never_stops_the_process(tmp_path: Path) -> None:
    """A window dragged around sends a storm of size changes, each one a new layout and a full
    repaint: deliveries and /healthz are answered throughout, and the screen ends whole at the
    final size."""
    home, base, sha = _streaming_home(tmp_path)
    with _ui_in_tmux(home, tmp_path) as session:
        _start_build(session, base, sha)
        answers: list[Answer] = []
        done = threading.Event()

        def deliver() -> None:
            n = 0
            while not done.is_set():
                n += 1
                answers.append(_timed(f"delivery {n}", _signed(base, VISITOR, sha, n), 5))
                answers.append(_timed("healthz", f"{base}/healthz", 5))
                time.sleep(0.05)

        thread = threading.Thread(target=deliver)
        thread.start()
        try:
            for n in range(RESIZES):
                width, height = (80, 24) if n % 2 else (100 + n % 40, 30 + n % 10)
                size = ("-x", str(width), "-y", str(height))
                subprocess.run([*TMUX_CMD, "resize-window", "-t", session, *size], check=True)
                time.sleep(0.02)
            subprocess.run(
                [*TMUX_CMD, "resize-window", "-t", session, "-x", "120", "-y", "40"], check=True
            )
        finally:
            done.set()
            thread.join(30)
        failed = [a for a in answers if a.status not in (200, 202)]
        assert not failed, f"{len(failed)} requests failed, the first ones: {failed[:3]}"
        assert max(a.seconds for a in answers) < 1.0, max(answers, key=lambda a: a.seconds)
        deliveries = sum(a.what.startswith("delivery") for a in answers)
        shown = f"{deliveries + 1} shown"
        # The last size wins: the screen settles whole at 120x40 (a frame of an older size
        # may still be on its way when the storm ends).
        _wait(
            lambda: not _torn(_screen(session), shown),
            "the whole screen at the final size with the new events",
            session=session,
        )
