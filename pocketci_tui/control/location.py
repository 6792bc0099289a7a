"""Where a data folder's control socket lives, and the checks that keep it private.

Whoever reaches the control socket can run builds, read output and change secrets, so it sits
in a folder only its user can enter (0700) and is itself 0600; the server also checks every
peer's credentials (:mod:`pocketci_tui.control.server`).

The folder is under the user's runtime folder (``$XDG_RUNTIME_DIR`` on Linux, cleaned at
logout, never on a network file system), named after the data folder it serves so that two
instances on two data folders never meet: ``<runtime>/pocketci-tui/<name>-<hash>/``, where
``name`` is the data folder's base name (20 characters at most) and ``hash`` the first 10 hex
digits of the SHA-256 of its resolved path. The runtime folder is used only when it exists, is
a folder of ours and no one else may enter it; else, or when the socket's path would be longer
than a Unix socket's address can hold (:data:`MAX_SOCKET_PATH`), the socket goes to
``<data folder>/run/``.

An owner started without a runtime folder (a system service) and a client started with one (an
SSH session) see different first choices, so a client looks at every candidate
(:func:`socket_candidates`) and the owner binds the first (:func:`socket_path`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys
import warnings
from pathlib import Path

from pocketci_tui.paths import AppPaths

__all__ = [
    "MAX_SOCKET_PATH",
    "SOCKET_NAME",
    "SocketLocationError",
    "check_private_folder",
    "make_socket_folder",
    "runtime_root",
    "socket_candidates",
    "socket_path",
]

SOCKET_NAME = "control.sock"
"""The socket's file name in its folder."""

MAX_SOCKET_PATH = 107
"""The longest socket path (bytes) a Unix socket address holds (``sun_path`` is 108 bytes with
its terminating NUL on Linux; 104 on the BSDs and macOS, where longer paths are refused by
``bind`` and told as such)."""

APP_FOLDER = "pocketci-tui"
"""The folder under the runtime folder that holds one folder per data folder."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class SocketLocationError(Exception):
    """The control socket has no safe place: its folder is open to others or someone else's,
    or every candidate path is too long. The message says which and what to do."""


def runtime_root() -> Path | None:
    """The user's runtime folder, when it is safe to put the socket's folder in; else None.

    On Linux (and the other XDG systems) only ``$XDG_RUNTIME_DIR``: without it, there is no
    per-user runtime folder we can trust, and the data folder is the better fallback than a
    folder under ``/tmp`` (cleaned on a timer, shared by every user). Elsewhere platformdirs'
    runtime folder. In every case it must exist, be a folder (not a link) owned by us, and be
    closed to group and others.
    """
    if sys.platform.startswith(("win", "darwin")):
        import platformdirs

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            candidate = platformdirs.user_runtime_dir()
    else:
        candidate = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if not candidate or not os.path.isabs(candidate):
        return None
    root = Path(candidate)
    try:
        st = root.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return root


def _folder_name(data_dir: Path) -> str:
    resolved = str(data_dir.resolve())
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    name = _UNSAFE.sub("_", data_dir.name)[:20] or "data"
    return f"{name}-{digest}"


def _fits(path: Path) -> bool:
    return len(os.fsencode(str(path))) <= MAX_SOCKET_PATH


def socket_candidates(paths: AppPaths) -> list[Path]:
    """Every place the data folder's socket may be, the owner's first choice first.

    Args:
        paths: The instance's paths (only the data folder counts).

    Returns:
        The runtime folder's socket (when that folder is usable and the path fits), then the
        data folder's; each only when its path fits in a socket address.
    """
    found: list[Path] = []
    root = runtime_root()
    if root is not None:
        runtime = root / APP_FOLDER / _folder_name(paths.data_dir) / SOCKET_NAME
        if _fits(runtime):
            found.append(runtime)
    fallback = paths.data_dir / "run" / SOCKET_NAME
    if _fits(fallback):
        found.append(fallback)
    return found


def socket_path(paths: AppPaths) -> Path:
    """Where the owner of ``paths.data_dir`` binds its control socket (nothing is created).

    Raises:
        SocketLocationError: Even the data folder's path is too long for a socket address.
    """
    found = socket_candidates(paths)
    if not found:
        fallback = paths.data_dir / "run" / SOCKET_NAME
        raise SocketLocationError(
            f"the control socket's path {fallback} is {len(os.fsencode(str(fallback)))} bytes "
            f"long, more than a Unix socket address holds ({MAX_SOCKET_PATH}), and there is no "
            "usable runtime folder ($XDG_RUNTIME_DIR) for a shorter one: give the data folder "
            "a shorter path (--data-dir or POCKETCI_TUI_HOME)"
        )
    return found[0]


def _refusal(folder: Path, st: os.stat_result) -> str | None:
    """Why ``folder`` cannot hold the socket, or None when it is a private folder of ours."""
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return f"{folder} is not a folder"
    if st.st_uid != os.getuid():
        return (
            f"{folder} belongs to user id {st.st_uid}, not to this user ({os.getuid()}): "
            "another user could replace the socket. Remove it, or use another data folder"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return (
            f"{folder} is open to other users (mode {mode:04o}): anyone who reaches the socket "
            f"could run builds and read secrets. Run `chmod 700 {folder}`"
        )
    return None


def check_private_folder(folder: Path) -> None:
    """Check that ``folder`` exists, is a folder of ours and only we may enter it.

    A client checks the socket's folder this way before it connects (and trusts what the
    socket says), the owner before it binds.

    Raises:
        SocketLocationError: It is missing, not a folder, someone else's or open to others.
    """
    try:
        st = folder.lstat()
    except OSError as exc:
        raise SocketLocationError(
            f"the control socket's folder {folder} cannot be read: {exc.strerror or exc}"
        ) from exc
    problem = _refusal(folder, st)
    if problem is not None:
        raise SocketLocationError(f"refusing the control socket's folder: {problem}")


def make_socket_folder(socket: Path) -> Path:
    """Create the socket's folder (and a missing parent of ours) with mode 0700, or check the
    one that exists: the owner calls it before binding.

    A folder that exists is never opened up or taken over: one that is open to others or
    someone else's is refused, and the user is told how to fix it.

    Args:
        socket: The socket's path (:func:`socket_path`).

    Returns:
        The folder.

    Raises:
        SocketLocationError: The folder cannot be created, or is not private and ours.
    """
    folder = socket.parent
    missing: list[Path] = []
    current = folder
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    for part in reversed(missing):
        try:
            part.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise SocketLocationError(
                f"cannot create the control socket's folder {part}: {exc.strerror or exc}"
            ) from exc
        with contextlib.suppress(OSError):
            part.chmod(0o700)
    root = runtime_root()
    if root is not None and folder.parent == root / APP_FOLDER:
        # <runtime>/pocketci-tui must be ours too: a stranger's folder there could swap ours.
        check_private_folder(folder.parent)
    check_private_folder(folder)
    return folder
