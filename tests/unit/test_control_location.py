"""Where the control socket goes: the user's runtime folder when it is private and ours, else
the data folder; never a path too long for a socket address; never a folder someone else owns
or can enter."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pocketci_tui.control.location import (
    MAX_SOCKET_PATH,
    SOCKET_NAME,
    SocketLocationError,
    check_private_folder,
    make_socket_folder,
    runtime_root,
    socket_candidates,
    socket_path,
)
from pocketci_tui.paths import AppPaths

OTHER_UID = 65534


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder with a short path (pytest's tmp_path can be too long for a socket address)."""
    path = Path(tempfile.mkdtemp(prefix="pcs-", dir="/tmp"))
    try:
        yield path
    finally:
        for sub in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir() if sub.is_dir() and not sub.is_symlink() else sub.unlink()
        path.rmdir()


def paths_in(base: Path, name: str = "data") -> AppPaths:
    return AppPaths(config_file=base / "config.yaml", data_dir=base / name)


def runtime_in(base: Path, monkeypatch: pytest.MonkeyPatch, mode: int = 0o700) -> Path:
    root = base / "rt"
    root.mkdir(mode=mode)
    root.chmod(mode)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(root))
    return root


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_runtime_folder_is_used_when_it_is_private_and_ours(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = runtime_in(short_tmp, monkeypatch)
    paths = paths_in(short_tmp, "my data folder")
    digest = hashlib.sha256(str(paths.data_dir.resolve()).encode()).hexdigest()[:10]

    path = socket_path(paths)

    assert path == root / "pocketci-tui" / f"my_data_folder-{digest}" / SOCKET_NAME
    assert socket_candidates(paths) == [path, paths.data_dir / "run" / SOCKET_NAME]
    folder = make_socket_folder(path)
    assert folder == path.parent
    assert mode_of(folder) == 0o700
    assert mode_of(folder.parent) == 0o700
    # Created private whatever the umask says.
    old = os.umask(0)
    try:
        other = paths_in(short_tmp, "second")
        assert mode_of(make_socket_folder(socket_path(other))) == 0o700
    finally:
        os.umask(old)
    # Another data folder gets another socket; the same folder named otherwise, the same.
    assert socket_path(other) != path
    (short_tmp / "link").symlink_to(paths.data_dir, target_is_directory=False)
    paths.data_dir.mkdir()
    assert socket_path(paths_in(short_tmp, "link")).parent.name.endswith(digest)


@pytest.mark.parametrize("problem", ["unset", "relative", "open", "not ours", "link", "missing"])
def test_without_a_private_runtime_folder_of_ours_the_data_folder_holds_it(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    root = runtime_in(short_tmp, monkeypatch)
    if problem == "unset":
        monkeypatch.delenv("XDG_RUNTIME_DIR")
    elif problem == "relative":
        monkeypatch.setenv("XDG_RUNTIME_DIR", "rt")
    elif problem == "open":
        root.chmod(0o755)
    elif problem == "not ours":
        os.chown(root, OTHER_UID, OTHER_UID)
    elif problem == "link":
        (short_tmp / "rt-link").symlink_to(root)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp / "rt-link"))
    else:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp / "nowhere"))
    paths = paths_in(short_tmp)

    assert runtime_root() is None
    assert socket_path(paths) == paths.data_dir / "run" / SOCKET_NAME
    folder = make_socket_folder(socket_path(paths))
    assert mode_of(folder) == 0o700
    assert not (root / "pocketci-tui").exists()


def test_a_runtime_path_too_long_for_a_socket_falls_back_to_the_data_folder(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = short_tmp / ("x" * 60) / ("y" * 30)
    deep.mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    paths = paths_in(short_tmp)
    assert runtime_root() == deep

    assert socket_candidates(paths) == [paths.data_dir / "run" / SOCKET_NAME]
    assert socket_path(paths) == paths.data_dir / "run" / SOCKET_NAME


def test_the_length_limit_is_the_kernels(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path of exactly the limit binds; one byte more is refused before any bind is tried."""
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    tail = len(f"/run/{SOCKET_NAME}")
    name = "d" * (MAX_SOCKET_PATH - len(str(short_tmp)) - 1 - tail)
    paths = paths_in(short_tmp, name)
    path = socket_path(paths)
    assert len(str(path)) == MAX_SOCKET_PATH
    make_socket_folder(path)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))

    longer = paths_in(short_tmp, name + "d")
    assert socket_candidates(longer) == []
    with pytest.raises(SocketLocationError, match="more than a Unix socket address holds"):
        socket_path(longer)
    (longer.data_dir / "run").mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as sock, pytest.raises(OSError, match="too long"):
        sock.bind(str(longer.data_dir / "run" / SOCKET_NAME))


def test_a_folder_open_to_others_is_refused_and_left_as_it_is(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    paths = paths_in(short_tmp)
    run = paths.data_dir / "run"
    run.mkdir(parents=True)
    run.chmod(0o755)

    with pytest.raises(SocketLocationError, match=r"open to other users \(mode 0755\).*chmod 700"):
        make_socket_folder(socket_path(paths))
    assert mode_of(run) == 0o755


def test_a_folder_of_another_user_is_refused(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = runtime_in(short_tmp, monkeypatch)
    paths = paths_in(short_tmp)
    path = socket_path(paths)
    path.parent.parent.mkdir(mode=0o700)
    path.parent.mkdir(mode=0o700)
    os.chown(path.parent, OTHER_UID, OTHER_UID)

    with pytest.raises(SocketLocationError, match=f"belongs to user id {OTHER_UID}"):
        make_socket_folder(path)
    with pytest.raises(SocketLocationError, match=f"belongs to user id {OTHER_UID}"):
        check_private_folder(path.parent)

    # The app's folder under the runtime folder counts too: a stranger's could swap ours.
    os.chown(path.parent, os.getuid(), os.getgid())
    os.chown(root / "pocketci-tui", OTHER_UID, OTHER_UID)
    with pytest.raises(SocketLocationError, match=f"{root / 'pocketci-tui'} belongs"):
        make_socket_folder(path)


def test_a_client_is_told_when_the_folder_is_missing_or_not_a_folder(short_tmp: Path) -> None:
    with pytest.raises(SocketLocationError, match="cannot be read"):
        check_private_folder(short_tmp / "missing")
    (short_tmp / "file").write_text("")
    with pytest.raises(SocketLocationError, match="is not a folder"):
        check_private_folder(short_tmp / "file")
    (short_tmp / "folder").mkdir(mode=0o700)
    (short_tmp / "alias").symlink_to(short_tmp / "folder")
    with pytest.raises(SocketLocationError, match="is not a folder"):
        check_private_folder(short_tmp / "alias")
    check_private_folder(short_tmp / "folder")
