"""The data folder's lock: one owner, a record naming it, looks that change nothing."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pocketci_tui.config import Settings
from pocketci_tui.datalock import DataFolderBusy, DataLock, LockOwner, lock_owner
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.services import Services, ServicesError


def test_a_second_acquire_is_refused_naming_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pocketci.lock"
    with DataLock.acquire(path, "serve") as lock:
        assert lock.held
        assert (path.parent.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o600)
        with pytest.raises(DataFolderBusy) as refused:
            DataLock.acquire(path, "ui", patience=0.2)
        assert refused.value.owner.pid == os.getpid()
        assert refused.value.owner.mode == "serve"
        assert f"pocketci-tui serve (pid {os.getpid()}" in str(refused.value)
        assert str(path.parent) in str(refused.value)
    assert not lock.held
    DataLock.acquire(path, "ui").release()


def test_lock_owner_reports_the_holder_and_its_url(tmp_path: Path) -> None:
    path = tmp_path / "pocketci.lock"
    assert lock_owner(path) is None
    assert not path.exists(), "looking must not create the lock file"
    lock = DataLock.acquire(path, "ui")
    lock.note_url("http://127.0.0.1:8080")
    found = lock_owner(path)
    assert found is not None
    assert (found.pid, found.mode, found.url) == (os.getpid(), "ui", "http://127.0.0.1:8080")
    assert "the pocketci-tui terminal UI" in found.describe()
    lock.release()
    assert lock_owner(path) is None
    assert path.read_text() == "", "a released lock keeps no owner record"


def test_a_look_does_not_make_a_starting_owner_fail(tmp_path: Path) -> None:
    """``check`` looks with a shared lock held for an instant; an owner starting meanwhile waits
    for the look instead of reporting the folder busy."""
    path = tmp_path / "pocketci.lock"
    path.touch()
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    with pytest.raises(DataFolderBusy):
        DataLock.acquire(path, "serve", patience=0.1)
    threading.Timer(0.3, os.close, (fd,)).start()
    DataLock.acquire(path, "serve", patience=30.0).release()


def test_the_lock_is_not_inherited_and_ends_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "pocketci.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from pocketci_tui.datalock import DataLock\n"
            f"lock = DataLock.acquire(Path({str(path)!r}), 'serve')\n"
            "import subprocess\n"
            # A child started by the owner must not keep the lock after the owner dies.
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
            "start_new_session=True, close_fds=False)\n"
            "print('locked', child.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        word, child = holder.stdout.readline().split()
        assert word == "locked"
        found = lock_owner(path)
        assert found is not None
        assert found.pid == holder.pid
        holder.kill()
        holder.wait()
        assert lock_owner(path) is None
        DataLock.acquire(path, "ui").release()
        os.kill(int(child), signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", '{"pid": "1"}', '{"pid": true}', '{"pid": -4}', '{"mode": "ui"}'],
)
def test_a_bad_record_is_no_owner(text: str) -> None:
    assert LockOwner.from_json(text) is None
    assert LockOwner(0).describe() == "another pocketci-tui process"


async def test_services_on_an_owned_folder_fail_before_touching_anything(
    app_paths: AppPaths,
) -> None:
    """Embedded services take the lock first: on a folder another process owns, they fail with
    the owner's name before the port, the database or the secret store is touched."""
    with DataLock.acquire(app_paths.lock_file, "ui"):
        services = Services(Settings(port=0), app_paths, secrets=MemorySecretStore({}))
        with pytest.raises(ServicesError, match=f"terminal UI \\(pid {os.getpid()}"):
            await services.start()
    assert not app_paths.db_file.exists()
    assert services.lock is None
    url = await services.start()
    try:
        found = lock_owner(app_paths.lock_file)
        assert found is not None
        assert (found.mode, found.url) == ("serve", url)
    finally:
        await services.stop()
    assert lock_owner(app_paths.lock_file) is None
