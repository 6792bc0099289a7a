"""Helpers for tests with several real pocketci-tui processes on one data folder.

A home folder whose repository's ``dagger call`` keeps running (the stand-in sleeps), the UI
started as a real process under a pseudo-terminal, and read-only looks at the database, so a
test can check that a second process changed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import WEBHOOK_SECRET, set_secret_cli, write_serve_config
from enginekit import REPOSITORY, EngineKit, standard_functions

from pocketci_tui.model import ZERO_SHA

SLOW_CALL = {"output": ["working"], "sleep": 300, "spawn_child": True}
"""A ``dagger call`` that prints a line, starts a grandchild in its group and keeps running."""


def slow_home(home: Path, tmp: Path, call: dict[str, Any] | None = None) -> EngineKit:
    """A repository and a stand-in dagger whose calls keep running, and a config using them.

    The listener port is 0 (free); the running owner records its URL in the lock file.
    """
    kit = EngineKit(tmp, functions=standard_functions(call or SLOW_CALL))
    write_serve_config(
        home,
        repos=f"[{{name: {REPOSITORY}, clone-url: '{kit.remote.path}'}}]",
        extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    return kit


def push_payload(kit: EngineKit, text: str = "a change") -> bytes:
    """A push to main of a new commit of ``kit``'s repository."""
    before = kit.remote.rev("main")
    after = kit.remote.commit({"main.go": f"package main // {text}\n"}, branch="main")
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "deleted": False,
            "created": before == ZERO_SHA,
            "repository": {"full_name": REPOSITORY, "default_branch": "main"},
            "head_commit": {"id": after, "message": text},
            "sender": {"login": "octocat"},
        }
    ).encode()


def db_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Events and runs as stored, read through a read-only connection."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return {
            "events": conn.execute("SELECT id, status, detail FROM events ORDER BY id").fetchall(),
            "runs": conn.execute(
                "SELECT id, function, state, reason, finished_at FROM runs ORDER BY rowid"
            ).fetchall(),
        }
    finally:
        conn.close()


def run_states(db: Path) -> list[str]:
    """The state of every stored run, in creation order (empty when there is no database)."""
    if not db.exists():
        return []
    return [row[2] for row in db_rows(db)["runs"]]


async def until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait until ``check()`` is true, polling; fail saying ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pocketci_tui ARGS`` to its end (stdin closed)."""
    return subprocess.run(
        [sys.executable, "-m", "pocketci_tui", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def group_gone(pgid: int) -> bool:
    """True when no process is left in process group ``pgid`` (zombies count as left)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def kill_calls(kit: EngineKit) -> None:
    """Clean-up: SIGKILL the process group of every call the stand-in recorded."""
    for call in kit.calls():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(call["pid"]), signal.SIGKILL)


class PtyUI:
    """The real terminal UI (``python -m pocketci_tui``) in a pseudo-terminal of its own.

    What it draws is read continuously (so it never blocks on a full terminal) and kept in
    :attr:`screen`, as raw bytes.
    """

    def __init__(self, proc: subprocess.Popen[bytes], master: int) -> None:
        self.proc = proc
        self.master = master
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def start(cls, *args: str, columns: int = 120, rows: int = 40) -> PtyUI:
        """Start the UI with ARGS on a new pseudo-terminal of ``columns`` x ``rows``."""
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        proc = subprocess.Popen(
            [sys.executable, "-m", "pocketci_tui", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        return cls(proc, master)

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._output += data

    @property
    def screen(self) -> str:
        """Everything the process wrote to its terminal so far, decoded."""
        with self._lock:
            return self._output.decode("utf-8", "replace")

    def press(self, keys: bytes) -> None:
        """Type ``keys`` into the terminal."""
        os.write(self.master, keys)

    def wait(self, timeout: float = 60) -> int:
        """Wait for the process to end; return its exit code."""
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def quit(self, timeout: float = 60) -> int:
        """Quit like a user (ctrl+q, then ``y`` if it asks because builds run); kill it if it
        does not end in time. Returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.press(b"\x11")
                time.sleep(0.5)
                self.press(b"y")
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait(10)
        finally:
            with contextlib.suppress(OSError):
                os.close(self.master)
