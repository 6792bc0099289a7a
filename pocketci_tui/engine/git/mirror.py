"""The mirror of a repository, and its upkeep.

Each configured repository has one bare mirror (``mirrors/<key>.git``) that its events are
fetched into and its checkouts take their objects from. This module creates the mirror, peels
ids to commits in it, reads and writes the remote's default branch recorded in it, and keeps it
compact: every fetch adds a pack and a pin (``refs/pocketci/commits/<id>``, which keeps the commit
and lets the next fetch negotiate from it), so once there are too many, a background task holding
the mirror's lock rolls the packs up geometrically and keeps only the newest pins (no commit is
dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pocketci_tui.engine.git.command import GitCommand, GitError
from pocketci_tui.gitrefs import is_commit_id, validate_ref, validate_sha
from pocketci_tui.model import Event

_PIN_PREFIX = "refs/pocketci/"
_DEFAULT_FILE = "pocketci-default-branch"


_MAX_PACKS = 16
"""Packs a mirror may hold before they are rolled up (each fetch adds one)."""
_MAX_PINS = 256
_KEEP_PINS = 128
"""Pins a mirror may hold, and how many of the newest stay when there are more."""


class _MirrorOps:
    """The mirror operations of :class:`~pocketci_tui.engine.git.workspace.Workspace`.

    They need the class they are mixed into to provide ``git`` (the runner) and ``_upkeep``
    (the running upkeep task of each mirror).
    """

    _upkeep: dict[str, asyncio.Task[None]]

    if TYPE_CHECKING:

        @property
        def git(self) -> GitCommand: ...

    async def _ensure_mirror(self, mirror: Path, event: Event) -> None:
        if (mirror / "HEAD").exists():
            return
        mirror.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = mirror.with_name(f".{mirror.name}.{uuid.uuid4().hex[:8]}.tmp")
        fmt = "sha256" if len(event.sha or event.base_sha) == 64 else "sha1"
        await self.git.run(
            ["init", "--quiet", "--bare", "--template=", f"--object-format={fmt}", str(tmp)],
            what="create the mirror",
        )
        try:
            tmp.rename(mirror)
        except OSError:
            await asyncio.to_thread(_rmtree, tmp)
            if not (mirror / "HEAD").exists():
                raise GitError(f"cannot create the mirror {mirror}") from None

    async def _resolve(self, mirror: Path, shas: Sequence[str]) -> dict[str, str] | None:
        """Peel object ids to commits in one git call; None when any of them is missing."""
        wanted = list(dict.fromkeys(s for s in shas if s))
        if not wanted:
            return {}
        # The ids were validated as hex, so none of them can read as an option.
        res = await self.git.run(
            ["rev-parse", "--quiet", *(f"{s}^{{commit}}" for s in wanted)],
            git_dir=mirror,
            check=False,
        )
        out = res.stdout.decode().split()
        if not res.ok or len(out) != len(wanted) or not all(is_commit_id(o) for o in out):
            return None
        return dict(zip(wanted, out, strict=True))

    async def _resolve_each(self, mirror: Path, shas: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for sha in shas:
            one = await self._resolve(mirror, [sha])
            if one:
                found.update(one)
        return found

    def _schedule_upkeep(self, mirror: Path, lock: asyncio.Lock) -> None:
        """Keep the mirror compact, after the event that made it grow has its checkout."""
        if _upkeep_due(mirror) and str(mirror) not in self._upkeep:
            task = asyncio.create_task(self._keep_compact(mirror, lock), name="mirror-upkeep")
            self._upkeep[str(mirror)] = task
            task.add_done_callback(lambda _t: self._upkeep.pop(str(mirror), None))
            task.add_done_callback(_retrieve)

    async def _keep_compact(self, mirror: Path, lock: asyncio.Lock) -> None:
        """Bound the mirror's packs and pins, which every later git command would pay for.

        Every fetch adds a pack and a pin. Hundreds of them make each fetch, peel and
        checkout slower (a fetch reads every ref; a checkout links every pack), so: the packs
        are rolled up geometrically (a few packs whose sizes at least double; no object is
        dropped), and only the newest pins are kept (an older commit stays in the mirror, and a
        re-fired event that needs it is served from there without a transfer).
        """
        async with lock:
            packs, pins = await asyncio.to_thread(_mirror_counts, mirror)
            if packs > _MAX_PACKS:
                await self.git.run(
                    ["repack", "-d", "-q", "--geometric=2"],
                    git_dir=mirror,
                    what="repack the mirror",
                    check=False,
                )
            if pins > _MAX_PINS:
                await asyncio.to_thread(_drop_old_pins, mirror, _KEEP_PINS)


def _mirror_counts(mirror: Path) -> tuple[int, int]:
    """(packs, pins) of a mirror."""
    try:
        packs = sum(1 for n in os.listdir(mirror / "objects" / "pack") if n.endswith(".pack"))
    except OSError:
        packs = 0
    try:
        pins = len(os.listdir(mirror / _PIN_PREFIX / "commits"))
    except OSError:
        pins = 0
    return packs, pins


def _upkeep_due(mirror: Path) -> bool:
    packs, pins = _mirror_counts(mirror)
    return packs > _MAX_PACKS or pins > _MAX_PINS


def _drop_old_pins(mirror: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest pins (loose ref files; the mirror never packs refs).

    The commits stay in the mirror; they are only no longer advertised as "have" in every
    fetch nor read by every command that lists refs.
    """
    pins = mirror / _PIN_PREFIX / "commits"
    entries = [e for e in os.scandir(pins) if e.is_file(follow_symlinks=False)]
    entries.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns, reverse=True)
    for entry in entries[keep:]:
        if is_commit_id(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _pinned(mirror: Path, sha: str) -> bool:
    """Whether an earlier fetch pinned this (validated, hex) id in the mirror."""
    return os.path.isfile(mirror / _PIN_PREFIX / "commits" / sha)


def _retrieve(task: asyncio.Task[list[str] | None]) -> None:
    """Mark a background task's outcome as seen, so an unawaited failure is not logged."""
    if not task.cancelled():
        task.exception()


def _read_default(mirror: Path) -> tuple[str, str] | None:
    """The default branch (ref, sha) the remote named last time, if recorded."""
    try:
        ref, sha = (mirror / _DEFAULT_FILE).read_text().split()
        validate_ref(ref)
        validate_sha(sha)
    except (OSError, ValueError):
        return None
    return ref, sha


def _write_default(mirror: Path, ref: str, sha: str) -> None:
    tmp = mirror / f".{_DEFAULT_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(f"{ref} {sha}\n")
    tmp.replace(mirror / _DEFAULT_FILE)


def _rmtree(path: Path) -> None:
    def onerror(func: object, p: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)
