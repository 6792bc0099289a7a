"""Real processes around one data folder: ``serve`` owning it, UIs attached to it in tmux.

A home whose repository's push runs a build that keeps printing (the stand-in ``dagger``), the
terminal UI started as a real ``pocketci-tui`` process in a detached tmux session of a tmux
server of its own, and a small recorder loaded into that UI process: it writes down every line
the Output pane is given (each time it is filled from a tail, then each batch joined to it),
so a test can compare what the UI received over the control socket with the run's log file,
line for line, and not only with what fits on the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import WEBHOOK_SECRET, set_secret_cli, write_serve_config
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit

from pocketci_tui.model import ZERO_SHA, RunOutput
from pocketci_tui.stamps import split

TMUX = shutil.which("tmux")
SIZE = (120, 40)

# The program the tmux pane runs: the real CLI, with the Output pane's writes recorded as JSON
# lines in $POCKETCI_TEST_RECORD ("show": the pane was filled anew, from a tail ending at
# "end"; "lines": lines written to it, in order; "reset": something else replaced it). What
# else the methods take (the lines' times...) is passed on as it is.
RECORDER = r"""
import json, os, sys

from pocketci_tui.tui.widgets.run_log import RunLog

record = open(os.environ["POCKETCI_TEST_RECORD"], "a", buffering=1, encoding="utf-8")
show, append, window, note = RunLog.show, RunLog.append, RunLog.show_window, RunLog.show_note


def put(entry):
    record.write(json.dumps(entry) + "\n")


def recorded_show(self, label, lines, end=None, *more, **options):
    lines = list(lines)
    put({"show": label, "end": end, "count": len(lines)})
    return show(self, label, lines, end, *more, **options)


def recorded_append(self, lines, *more, **options):
    if lines:
        put({"lines": list(lines)})
    return append(self, lines, *more, **options)


def recorded_window(self, *arguments, **options):
    put({"reset": "window"})
    return window(self, *arguments, **options)


def recorded_note(self, *arguments, **options):
    put({"reset": "note"})
    return note(self, *arguments, **options)


RunLog.show, RunLog.append = recorded_show, recorded_append
RunLog.show_window, RunLog.show_note = recorded_window, recorded_note

from pocketci_tui.cli import main

sys.exit(main(sys.argv[1:]))
"""


def stream_home(home: Path, tmp: Path, lines: int, pace: float) -> EngineKit:
    """A repository whose push to main runs one function that prints ``build starts``, then
    ``line 1`` .. ``line <lines>`` at ``pace`` lines a second; a config for it (listener on a
    free port) and the webhook secret stored, as ``serve`` and the UI read them."""
    call = {"output": ["build starts"], "lines": lines, "lines_per_second": pace}
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    kit = EngineKit(tmp, functions=[fn("onGithubPushMain", *base, call=call)])
    write_serve_config(
        home,
        repos=f"[{{name: {REPOSITORY}, clone-url: '{kit.remote.path}'}}]",
        extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    return kit


def push_body(kit: EngineKit, text: str) -> bytes:
    """A push to main of a new commit of ``kit``'s repository, titled ``text``."""
    before = kit.remote.rev("main")
    after = kit.remote.commit({"main.go": f"package main // {text}\n"}, branch="main")
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before if before else ZERO_SHA,
            "after": after,
            "deleted": False,
            "created": False,
            "repository": {"full_name": REPOSITORY, "default_branch": "main"},
            "head_commit": {"id": after, "message": text},
            "sender": {"login": "octocat"},
        }
    ).encode()


def wait_until(
    check: Callable[[], bool], what: str, timeout: float = 60.0, show: Callable[[], str] = str
) -> None:
    """Poll ``check()`` until it holds; on time-out fail saying ``what`` (and ``show()``)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            extra = show()
            raise AssertionError(f"timed out waiting for {what}" + (f":\n{extra}" if extra else ""))
        time.sleep(0.1)


class Tmux:
    """A tmux server of its own (so a test can kill it, and every session, at the end)."""

    def __init__(self) -> None:
        assert TMUX is not None
        self.argv = [TMUX, "-L", f"pocketci-attach-{os.getpid()}-{uuid.uuid4().hex[:6]}"]
        self.sessions: list[str] = []

    def run(self, *argv: str, check: bool = True) -> str:
        """Run a tmux command on this server; return its output."""
        done = subprocess.run(
            [*self.argv, *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=check,
        )
        return done.stdout

    def start(self, argv: Sequence[str], env: dict[str, str], size: tuple[int, int] = SIZE) -> str:
        """Start ``argv`` with ``env`` (on top of this process's) in a new detached session of
        ``size``; return the session's name. The pane's process is ``argv`` itself."""
        session = f"ui-{len(self.sessions)}-{uuid.uuid4().hex[:6]}"
        assigned = [f"{k}={v}" for k, v in env.items()]
        self.run(
            *("new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1])),
            # COLUMNS and LINES (set under pytest) would override the pane's real size.
            *("env", "-u", "COLUMNS", "-u", "LINES", "TERM=xterm-256color", *assigned),
            *argv,
        )
        self.run("set-option", "-t", session, "remain-on-exit", "on")
        self.sessions.append(session)
        return session

    def screen(self, session: str) -> str:
        """What the session's pane shows now."""
        return self.run("capture-pane", "-p", "-t", session, check=False)

    def press(self, session: str, *keys: str) -> None:
        """Type keys (tmux key names) into the session."""
        self.run("send-keys", "-t", session, *keys)

    def pid(self, session: str) -> int:
        """The pid of the pane's process."""
        return int(self.run("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])

    def dead(self, session: str) -> bool:
        """True when the pane's process has ended."""
        out = self.run("list-panes", "-t", session, "-F", "#{pane_dead}", check=False)
        return out.strip() == "1"

    def wait_screen(
        self, session: str, check: Callable[[str], bool], what: str, timeout: float = 90.0
    ) -> str:
        """Wait until ``check(screen)`` holds; return that screen (the screen on failure)."""
        shown = [""]

        def holds() -> bool:
            shown[0] = self.screen(session)
            return check(shown[0])

        wait_until(holds, what, timeout, lambda: shown[0])
        return shown[0]

    def close(self) -> None:
        """Kill the server and with it every session's process."""
        for session in self.sessions:
            with contextlib.suppress(ValueError, subprocess.CalledProcessError, ProcessLookupError):
                os.kill(self.pid(session), signal.SIGKILL)
        self.run("kill-server", check=False)


@dataclass
class AttachedUI:
    """One real UI process in a tmux session, its Output pane's writes recorded."""

    tmux: Tmux
    session: str
    record: Path
    home: Path

    @classmethod
    def start(cls, tmux: Tmux, home: Path, work: Path, *args: str) -> AttachedUI:
        """Start ``pocketci-tui ARGS`` over ``home`` in a session of ``tmux``.

        The environment's XDG folders and ``HOME`` are passed on, so the UI finds the same
        runtime folder (and so the same control socket) as ``serve`` started from this process.
        """
        work.mkdir(parents=True, exist_ok=True)
        script = work / "recorded_ui.py"
        script.write_text(RECORDER, encoding="utf-8")
        record = work / f"record-{uuid.uuid4().hex[:6]}.jsonl"
        env = {k: v for k, v in os.environ.items() if k.startswith("XDG_")}
        env.update(
            POCKETCI_TUI_HOME=str(home),
            HOME=os.environ["HOME"],
            POCKETCI_TEST_RECORD=str(record),
            PATH=os.environ["PATH"],
        )
        session = tmux.start([sys.executable, str(script), *args], env)
        return cls(tmux, session, record, home)

    @property
    def screen(self) -> str:
        """What the UI shows now."""
        return self.tmux.screen(self.session)

    def wait(self, check: Callable[[str], bool], what: str, timeout: float = 90.0) -> str:
        """Wait until the screen satisfies ``check``; return it (blocks: not in a loop)."""
        return self.tmux.wait_screen(self.session, check, what, timeout)

    async def until(self, check: Callable[[str], bool], what: str, timeout: float = 90.0) -> str:
        """Wait until the screen satisfies ``check`` without blocking the event loop (an
        in-process client keeps reading meanwhile); return that screen."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen
            if check(shown):
                return shown
            if self.tmux.dead(self.session):
                raise AssertionError(f"the UI ended while waiting for {what}; the screen:\n{shown}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{shown}")
            await asyncio.sleep(0.2)

    def press(self, *keys: str) -> None:
        """Type keys (tmux key names)."""
        self.tmux.press(self.session, *keys)

    @property
    def pid(self) -> int:
        """The UI process's pid."""
        return self.tmux.pid(self.session)

    def segments(self) -> list[Segment]:
        """What the Output pane was given, as recorded so far."""
        return read_segments(self.record)


_LINE = re.compile(r"│line (\d+)\s")


def last_line_number(screen: str) -> int:
    """The highest ``line N`` of the stand-in build shown in the Output pane (0: none)."""
    return max((int(n) for n in _LINE.findall(screen)), default=0)


@dataclass
class Segment:
    """What the Output pane showed of one run, from the moment it was filled from a tail.

    Attributes:
        label: The run as the pane's border names it.
        end: Where the tail it was filled with ends in the run's output (None: unknown).
        tail: How many lines that tail had.
        lines: The tail's lines, then every line joined after them, in order.
    """

    label: str
    end: int | None
    tail: int
    lines: list[str] = field(default_factory=list)

    @property
    def start(self) -> int | None:
        """The position of the first line in the run's output, when known."""
        return None if self.end is None else self.end - self.tail

    @property
    def joined(self) -> int:
        """How many lines came after the tail, as live batches."""
        return len(self.lines) - self.tail


def read_segments(record: Path) -> list[Segment]:
    """The recorder's file as segments (one per time the pane was filled with a run's tail)."""
    segments: list[Segment] = []
    current: Segment | None = None
    if not record.exists():
        return segments
    for raw in record.read_text(encoding="utf-8").splitlines():
        entry: dict[str, Any] = json.loads(raw)
        if "show" in entry:
            current = Segment(entry["show"], entry["end"], entry["count"])
            segments.append(current)
        elif "reset" in entry:
            current = None
        elif current is not None:
            current.lines.extend(entry["lines"])
    return segments


def join_problem(lines: Sequence[str], start: int, log: Sequence[str]) -> str:
    """Why ``lines``, said to begin at line ``start`` (0-based) of ``log``, are not exactly
    the log's lines from there (a line missing, repeated or different), or ``""``."""
    expected = list(log[start : start + len(lines)])
    if list(lines) == expected:
        return ""
    at = next(
        (i for i, (a, b) in enumerate(zip(lines, expected, strict=False)) if a != b),
        min(len(lines), len(expected)),
    )
    got = list(lines[max(0, at - 2) : at + 3])
    want = expected[max(0, at - 2) : at + 3]
    return (
        f"line {start + at} of the log differs: received {got!r}, the log has {want!r} "
        f"({len(lines)} received from line {start}, the log has {len(log)})"
    )


def log_lines(path: Path) -> list[str]:
    """A run's log file, one entry a line, without the time each line arrived (the stamp the
    file keeps before it, which is not part of the output)."""
    return [split(line)[1] for line in path.read_text(encoding="utf-8").splitlines()]


def rss_kb(pid: int) -> int:
    """The process's resident memory (kB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def tmux_server() -> Iterator[Tmux]:
    """A tmux server of its own, killed (with every UI in it) at the end."""
    tmux = Tmux()
    try:
        yield tmux
    finally:
        tmux.close()


class OutputJoin:
    """A run's output as a client joins it: a tail, then every live batch after it by position,
    the way the Output pane does; a batch that starts after the shown end is a gap, noted.

    Subscribe :meth:`on_notice` before reading the tail: batches that arrive first are kept
    and joined once :meth:`from_tail` is given the tail.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.lines: list[str] | None = None
        self.start = 0
        self.end = 0
        self.batches = 0
        self.gaps: list[tuple[int, int]] = []
        self.unplaced = 0
        self._pending: list[RunOutput] = []

    def on_notice(self, notice: object) -> None:
        """Take a notice from a client's subscription (others are ignored)."""
        if not isinstance(notice, RunOutput) or notice.run_id != self.run_id:
            return
        if self.lines is None:
            self._pending.append(notice)
        else:
            self._add(notice)

    def from_tail(self, lines: Sequence[str], end: int | None) -> None:
        """Start from a tail (its lines and where they end), then join what was kept."""
        assert end is not None, "the tail does not say where it ends"
        self.lines = list(lines)
        self.end = end
        self.start = end - len(self.lines)
        pending, self._pending = self._pending, []
        for notice in pending:
            self._add(notice)

    def _add(self, notice: RunOutput) -> None:
        assert self.lines is not None
        if notice.end is None:
            self.unplaced += 1
            return
        new = notice.end - self.end
        if new <= 0:
            return
        if new > len(notice.lines):
            self.gaps.append((self.end, notice.end - len(notice.lines)))
        self.lines.extend(notice.lines[-new:])
        self.end = notice.end
        self.batches += 1
