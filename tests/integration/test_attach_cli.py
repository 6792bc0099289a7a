"""The command line around the control socket, as real processes: ``locate socket``, what
``check`` says of the owner and its socket, and ``attach`` with nothing there."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ownerkit import cli

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def short_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder with a short path (a pytest folder can be too long for a
    socket address), as ``$XDG_RUNTIME_DIR``."""
    folder = Path(tempfile.mkdtemp(prefix="pcrt-", dir="/tmp"))
    folder.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _folder_name(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return f"{data_dir.name[:20]}-{digest}"


def test_locate_socket_prints_the_runtime_folders_socket(
    hermetic_home: Path, short_runtime: Path
) -> None:
    done = cli("locate", "socket")
    assert done.returncode == 0, done.stderr
    data = hermetic_home / "data"
    expected = short_runtime / "pocketci-tui" / _folder_name(data) / "control.sock"
    assert done.stdout.strip() == str(expected)
    assert not expected.parent.exists(), "locate created the socket's folder"

    other = cli("locate", "socket", "--data-dir", str(hermetic_home / "elsewhere"))
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() != done.stdout.strip()  # one socket per data folder


def test_locate_socket_without_a_runtime_folder_is_under_the_data_folder(
    hermetic_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    done = cli("locate", "socket")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(hermetic_home / "data" / "run" / "control.sock")


def test_locate_socket_with_a_runtime_folder_open_to_others_is_under_the_data_folder(
    hermetic_home: Path, short_runtime: Path
) -> None:
    short_runtime.chmod(0o755)
    done = cli("locate", "socket")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(hermetic_home / "data" / "run" / "control.sock")


def test_check_without_an_owner_says_where_the_socket_would_be(
    hermetic_home: Path, short_runtime: Path
) -> None:
    located = cli("locate", "socket").stdout.strip()
    done = cli("check")
    lines = [line for line in done.stdout.splitlines() if line.split()[1:2] == ["socket"]]
    assert lines == [
        f"ok    socket         {located} (nothing runs: an owner started now serves it there)"
    ], done.stdout
    data = hermetic_home / "data"
    assert f"ok    owner          nothing runs on {data} now\n" in done.stdout


def test_help_names_the_socket(hermetic_home: Path) -> None:
    done = cli("locate", "--help")
    assert done.returncode == 0
    assert "socket" in done.stdout
    assert "control socket" in " ".join(done.stdout.split())
    assert os.environ.get("POCKETCI_TUI_HOME") == str(hermetic_home)
