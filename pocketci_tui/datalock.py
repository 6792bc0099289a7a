"""One owner per data folder: an exclusive lock taken before anything reads or changes state.

The UI and ``serve`` both run an engine on the data folder's database: they recover interrupted
runs, resume the queue and apply retention. Two of them on one folder would mark each other's
live runs interrupted and run every event twice, so the first to start takes an exclusive
``flock`` on ``pocketci.lock`` in the data folder (``AppPaths.lock_file``) and holds it until
it exits. The kernel drops the lock when the process ends, however it ends (``kill -9``
included), so a crash never leaves a stale lock behind. The file itself records who holds it
(pid, UI or serve, since when, and the listener's URL once known), so a second process can say
whom it met.

Commands that only read (``events``, ``check``, ``locate``) never take the lock; ``check`` only
looks whether someone holds it (:func:`lock_owner`), with a shared lock held for an instant. An
owner that starts during such a look waits for it instead of giving up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pocketci_tui.paths import make_private_dir

MAX_RECORD = 4096
"""The most bytes of the lock file's record that are read."""

Mode = Literal["ui", "serve"]
"""What owns a data folder: the terminal UI or ``pocketci-tui serve``."""

MODES: dict[str, str] = {"ui": "the pocketci-tui terminal UI", "serve": "pocketci-tui serve"}
"""What each owner mode is called in messages (the mode read back from a lock file is text)."""


@dataclass(frozen=True, slots=True)
class LockOwner:
    """The process that holds a data folder's lock, as its record says.

    Attributes:
        pid: Its process id (0 when the record could not be read).
        mode: ``ui`` or ``serve``.
        started_at: When it took the lock (ISO 8601, UTC).
        url: Its listener's base URL, once it listens.
    """

    pid: int
    mode: str = ""
    started_at: str = ""
    url: str = ""

    def describe(self) -> str:
        """Say who it is: ``pocketci-tui serve (pid 123, listening on http://...)``."""
        if self.pid <= 0:
            return "another pocketci-tui process"
        what = MODES.get(self.mode, "another pocketci-tui process")
        details = [f"pid {self.pid}"]
        if self.started_at:
            details.append(f"since {self.started_at[:19].replace('T', ' ')} UTC")
        if self.url:
            details.append(f"listening on {self.url}")
        return f"{what} ({', '.join(details)})"

    def to_json(self) -> str:
        """The record written into the lock file."""
        return json.dumps(
            {"pid": self.pid, "mode": self.mode, "started_at": self.started_at, "url": self.url}
        )

    @classmethod
    def from_json(cls, text: str) -> LockOwner | None:
        """Parse a record; None when it is empty or not one."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        pid = data.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        return cls(
            pid=pid,
            mode=str(data.get("mode") or "")[:20],
            started_at=str(data.get("started_at") or "")[:40],
            url=str(data.get("url") or "")[:200],
        )


class DataFolderBusy(Exception):
    """Another process owns the data folder; the message names it and says what to do.

    Attributes:
        owner: The owner as its record says (pid 0 when it could not be read).
        data_dir: The folder.
    """

    def __init__(self, data_dir: Path, owner: LockOwner) -> None:
        self.owner = owner
        self.data_dir = data_dir
        super().__init__(
            f"the data folder {data_dir} is in use by {owner.describe()}; only one pocketci-tui "
            "may run an engine on it. Stop that one first, or give this one another folder "
            "(--data-dir or POCKETCI_TUI_HOME). `pocketci-tui events`, `check` and `fire` work "
            "beside it."
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_record(fd: int) -> LockOwner | None:
    try:
        raw = os.pread(fd, MAX_RECORD, 0)
    except OSError:
        return None
    return LockOwner.from_json(raw.decode("utf-8", "replace"))


def _owner_of(fd: int, patience: float = 1.0) -> LockOwner:
    """Read the owner's record; a new owner writes it just after locking, so wait a little for a
    record that names a live process."""
    deadline = time.monotonic() + patience
    while True:
        owner = _read_record(fd)
        if owner is not None and _pid_alive(owner.pid):
            return owner
        if time.monotonic() >= deadline:
            return owner or LockOwner(0)
        time.sleep(0.02)


def _held_exclusively(fd: int) -> bool:
    """True when an owner holds the lock; False when only someone's shared look does."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


class DataLock:
    """The exclusive lock on one data folder, held by its owner. Take it with :meth:`acquire`.

    Args:
        path: The lock file.
        fd: Its descriptor, holding the lock (not inherited by child processes).
        owner: The record written into it.
    """

    def __init__(self, path: Path, fd: int, owner: LockOwner) -> None:
        self.path = path
        self.owner = owner
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, mode: Mode, *, patience: float = 2.0) -> DataLock:
        """Take the data folder's lock, creating the folder and the lock file if needed.

        Blocking (file system calls and short sleeps): call it before the event loop runs or
        in a thread.

        Args:
            path: The lock file (``AppPaths.lock_file``), in the data folder.
            mode: What takes it: ``ui`` or ``serve``.
            patience: Seconds to wait while only a quick look (``check``) holds the lock.

        Returns:
            The held lock.

        Raises:
            DataFolderBusy: Another process owns the folder.
            OSError: The folder or the lock file cannot be created.
        """
        data_dir = make_private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + patience
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if _held_exclusively(fd) or time.monotonic() >= deadline:
                        raise DataFolderBusy(data_dir, _owner_of(fd)) from None
                    time.sleep(0.02)
            owner = LockOwner(
                pid=os.getpid(),
                mode=mode,
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            lock = cls(path, fd, owner)
            lock._write()
        except BaseException:
            os.close(fd)
            raise
        return lock

    @property
    def held(self) -> bool:
        """True until :meth:`release`."""
        return self._fd is not None

    def _write(self) -> None:
        if self._fd is None:
            return
        data = self.owner.to_json().encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def note_url(self, url: str) -> None:
        """Record the listener's base URL (``check`` and ``fire`` read it)."""
        self.owner = replace(self.owner, url=url)
        with contextlib.suppress(OSError):
            self._write()

    def release(self) -> None:
        """Give the folder up (idempotent). The record is cleared first."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> DataLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_owner(path: Path) -> LockOwner | None:
    """Return who owns the data folder, or None when nobody does. Changes nothing.

    Args:
        path: The lock file (``AppPaths.lock_file``); it may not exist.

    Returns:
        The owner (pid 0 when its record cannot be read), or None.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _owner_of(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
