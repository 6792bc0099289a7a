"""Private folders and files: what pocketci-tui creates is its user's alone (R9)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pocketci_tui.paths import (
    PRIVATE_UMASK,
    create_private_file,
    make_private_dir,
    open_to_others,
    private_umask,
)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask, so any mode left to it would show."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_private_dir_creates_every_missing_folder_0700(
    tmp_path: Path, open_umask: None
) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert make_private_dir(target) == target
    for folder in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert _mode(folder) == 0o700, folder
    make_private_dir(target)  # again: nothing to do


def test_make_private_dir_leaves_an_existing_folder_alone(tmp_path: Path, open_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    make_private_dir(shared / "data")
    assert _mode(shared) == 0o755  # never changed silently: check reports it
    assert _mode(shared / "data") == 0o700
    assert open_to_others(shared) == 0o755
    assert open_to_others(shared / "data") is None
    assert open_to_others(tmp_path / "absent") is None


def test_create_private_file_is_0600_and_keeps_an_existing_file(
    tmp_path: Path, open_umask: None
) -> None:
    path = create_private_file(tmp_path / "pocketci.db")
    assert _mode(path) == 0o600
    path.write_text("kept")
    path.chmod(0o640)
    create_private_file(path)
    assert path.read_text() == "kept"
    assert open_to_others(path) == 0o640


def test_private_umask_applies_and_restores(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with private_umask():
            (tmp_path / "f").write_text("x")
            (tmp_path / "d").mkdir()
            assert os.umask(PRIVATE_UMASK) == PRIVATE_UMASK
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)
    assert _mode(tmp_path / "f") == 0o600
    assert _mode(tmp_path / "d") == 0o700
