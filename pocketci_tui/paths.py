"""Where pocketci-tui keeps its configuration and data, and how it keeps them private.

Defaults come from platformdirs. ``POCKETCI_TUI_HOME`` puts both under one folder
(``config.yaml`` at its top, data beside it), and ``--config`` / ``--data-dir`` override either.

Everything pocketci-tui creates is private to its user: the database holds raw payloads of
private repositories, the mirrors their full source. The command line runs with the umask
:data:`PRIVATE_UMASK` (inherited by git), and the top folders are created with mode 0700
whatever the umask. Folders that already exist are never changed: ``check`` reports the ones
open to other users (:func:`open_to_others`).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "pocketci-tui"
HOME_ENV = "POCKETCI_TUI_HOME"
PRIVATE_UMASK = 0o077
"""The umask pocketci-tui runs with: new files 0600, new folders 0700."""


@dataclass(frozen=True, slots=True)
class AppPaths:
    """The resolved locations of one pocketci-tui instance.

    Attributes:
        config_file: The user configuration (``config.yaml``); it may not exist yet.
        data_dir: The root of everything pocketci-tui writes.
    """

    config_file: Path
    data_dir: Path

    @property
    def config_dir(self) -> Path:
        """The folder holding the config file (and the secrets index or encrypted file)."""
        return self.config_file.parent

    @property
    def db_file(self) -> Path:
        """The SQLite database of events and runs."""
        return self.data_dir / "pocketci.db"

    @property
    def logs_dir(self) -> Path:
        """Run logs, one file per run."""
        return self.data_dir / "logs"

    @property
    def work_dir(self) -> Path:
        """Mirrors, checkouts and per-run scratch space."""
        return self.data_dir / "work"

    @property
    def cache_dir(self) -> Path:
        """Caches that can be rebuilt (the Dagger module catalog)."""
        return self.data_dir / "cache"

    @property
    def lock_file(self) -> Path:
        """Held by the one process that owns this data folder (see :mod:`pocketci_tui.datalock`)."""
        return self.data_dir / "pocketci.lock"

    @property
    def app_log(self) -> Path:
        """The app's own log (errors, warnings, the SDK's output)."""
        return self.data_dir / "pocketci-tui.log"


def resolve_paths(config: Path | None = None, data_dir: Path | None = None) -> AppPaths:
    """Resolve the config file and data folder from options, environment and defaults.

    Args:
        config: ``--config``, if given.
        data_dir: ``--data-dir``, if given.

    Returns:
        The resolved paths, absolute.
    """
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        base = Path(home).expanduser()
        default_config = base / "config.yaml"
        default_data = base / "data"
    else:
        default_config = platformdirs.user_config_path(APP_NAME) / "config.yaml"
        default_data = platformdirs.user_data_path(APP_NAME)
    return AppPaths(
        config_file=(config or default_config).expanduser().absolute(),
        data_dir=(data_dir or default_data).expanduser().absolute(),
    )


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the enclosed code with :data:`PRIVATE_UMASK`, then put the old umask back.

    The umask is per process: threads and children started meanwhile (git) inherit it.
    """
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700, whatever the umask.

    Folders that exist already are left as they are (``check`` reports one open to others).

    Args:
        path: The folder.

    Returns:
        ``path``.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        folder.chmod(0o700)
    return path


def create_private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist (an existing one is kept).

    Args:
        path: The file; its folder must exist.

    Returns:
        ``path``.
    """
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    return path


def open_to_others(path: Path) -> int | None:
    """Return the permission bits of ``path`` when group or others have any access to it.

    Args:
        path: A file or folder (symbolic links are not followed).

    Returns:
        The mode (``0o755``), or None when it is private or absent.
    """
    try:
        st = path.lstat()
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    return mode if mode & 0o077 and not stat.S_ISLNK(st.st_mode) else None


def exposed_paths(paths: AppPaths) -> list[tuple[Path, str, int]]:
    """List pocketci-tui's folders and files that other users can open; change nothing.

    The config and data folders, logs, work and cache folders, each repository mirror and
    checkout folder, the database with its WAL and shared-memory files, the app log and the
    secret-store files. Bounded: at most 200 mirrors and 200 checkout folders are looked at.

    Args:
        paths: The instance's paths.

    Returns:
        ``(path, what it holds, mode)`` for each one open to group or others.
    """
    from pocketci_tui.secrets.base import ENCRYPTED_FILE, INDEX_FILE, PLAINTEXT_FILE

    folders = [
        (paths.config_dir, "the config folder (secret-store files)"),
        (paths.data_dir, "the data folder"),
        (paths.logs_dir, "run logs"),
        (paths.work_dir, "mirrors and checkouts (your repositories' source)"),
        (paths.cache_dir, "caches"),
    ]
    git_root = paths.work_dir / "git"
    for sub, what in (("mirrors", "a repository mirror"), ("checkouts", "checkouts")):
        base = git_root / sub
        if base.is_dir():
            folders.append((base, f"{sub} of your repositories"))
            with contextlib.suppress(OSError):
                folders += [(m, what) for m in sorted(base.iterdir())[:200]]
    db = paths.db_file
    files = [
        (db, "the database (raw payloads of your repositories)"),
        (db.with_name(db.name + "-wal"), "the database's write-ahead log"),
        (db.with_name(db.name + "-shm"), "the database's shared memory file"),
        (paths.app_log, "the app log"),
        (paths.config_dir / ENCRYPTED_FILE, "the encrypted secrets file"),
        (paths.config_dir / PLAINTEXT_FILE, "the plaintext secrets file"),
        (paths.config_dir / INDEX_FILE, "the index of secret names"),
    ]
    found: list[tuple[Path, str, int]] = []
    for path, what in folders + files:
        mode = open_to_others(path)
        if mode is not None:
            found.append((path, what, mode))
    return found


def exposure_fix(path: Path) -> str:
    """The command that makes ``path`` private (recursively for a folder)."""
    return f"chmod -R go-rwx {path}" if path.is_dir() else f"chmod 600 {path}"
