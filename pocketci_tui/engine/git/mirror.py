"""The mirror of one repository, and its upkeep.

Each configured repository has one bare mirror (``mirrors/<key>.git``) that its events are
fetched into and its checkouts take their objects from. A :class:`Mirror` creates it, peels ids
to commits in it, pins what was fetched, reads and writes the remote's default branch recorded
in it, and keeps it compact: every fetch adds a pack and a pin (``refs/pocketci/commits/<id>``,
which keeps the commit and lets the next fetch negotiate from it), so once there are too many,
a background task holding the mirror's lock rolls the packs up geometrically and keeps only the
newest pins (no commit is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pocketci_tui.engine.git.command import GitCommand, GitError
from pocketci_tui.gitrefs import is_commit_id, validate_ref, validate_sha

__all__ = ["Mirror", "MirrorLimits", "fetched_ref", "pin_ref", "remove_tree"]

_PIN_PREFIX = "refs/pocketci/"
_DEFAULT_FILE = "pocketci-default-branch"


@dataclass(frozen=True, slots=True)
class MirrorLimits:
    """How large a mirror may grow before its upkeep compacts it.

    Attributes:
        max_packs: Packs a mirror may hold before they are rolled up (each fetch adds one).
        max_pins: Pins a mirror may hold before the oldest are dropped.
        keep_pins: How many of the newest pins stay when they are.
    """

    max_packs: int = 16
    max_pins: int = 256
    keep_pins: int = 128


def pin_ref(sha: str) -> str:
    """The ref that pins a fetched commit (a validated id) in a mirror."""
    return f"{_PIN_PREFIX}commits/{sha}"


def fetched_ref(ref: str) -> str:
    """Where a remote ref fetched by name (a validated ref) is kept in a mirror."""
    return f"{_PIN_PREFIX}remote/{ref.removeprefix('refs/')}"


class Mirror:
    """The bare mirror of one configured repository.

    Everything that writes to the mirror (a fetch, laying out a checkout from its packs, the
    upkeep) holds :attr:`lock`, so no repack removes a pack while it is being linked.

    Args:
        path: The mirror's directory (``mirrors/<key>.git``; created on first use).
        git: The hardened git command.
        limits: When the upkeep compacts the mirror.
    """

    def __init__(self, path: Path, git: GitCommand, limits: MirrorLimits | None = None) -> None:
        self.path = path
        self.git = git
        self.limits = limits or MirrorLimits()
        self.lock = asyncio.Lock()
        self._upkeep: asyncio.Task[None] | None = None

    async def ensure(self, object_format: str) -> None:
        """Create the (empty, bare) mirror unless it exists.

        Args:
            object_format: ``sha1`` or ``sha256``, the repository's object format.
        """
        mirror = self.path
        if (mirror / "HEAD").exists():
            return
        mirror.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = mirror.with_name(f".{mirror.name}.{uuid.uuid4().hex[:8]}.tmp")
        await self.git.run(
            [
                "init",
                "--quiet",
                "--bare",
                "--template=",
                f"--object-format={object_format}",
                str(tmp),
            ],
            what="create the mirror",
        )
        try:
            tmp.rename(mirror)
        except OSError:
            await asyncio.to_thread(remove_tree, tmp)
            if not (mirror / "HEAD").exists():
                raise GitError(f"cannot create the mirror {mirror}") from None

    async def peel(self, shas: Sequence[str]) -> dict[str, str] | None:
        """Peel object ids to commits in one git call; None when any of them is missing."""
        wanted = list(dict.fromkeys(s for s in shas if s))
        if not wanted:
            return {}
        # The ids were validated as hex, so none of them can read as an option.
        res = await self.git.run(
            ["rev-parse", "--quiet", *(f"{s}^{{commit}}" for s in wanted)],
            git_dir=self.path,
            check=False,
        )
        out = res.stdout.decode().split()
        if not res.ok or len(out) != len(wanted) or not all(is_commit_id(o) for o in out):
            return None
        return dict(zip(wanted, out, strict=True))

    async def peel_each(self, shas: Sequence[str]) -> dict[str, str]:
        """Peel ids one by one; those missing from the mirror are left out."""
        found: dict[str, str] = {}
        for sha in shas:
            one = await self.peel([sha])
            if one:
                found.update(one)
        return found

    async def peel_present(self, shas: Sequence[str]) -> dict[str, str]:
        """Peel ids to commits, in one git call when all are present; missing ones left out."""
        resolved = await self.peel(shas)
        if resolved is None:
            resolved = await self.peel_each(shas)
        return resolved

    def pinned(self, sha: str) -> bool:
        """Whether an earlier fetch pinned this (validated, hex) id in the mirror."""
        return os.path.isfile(self.path / pin_ref(sha))

    async def pin(self, sha: str, commit: str) -> None:
        """Pin a commit that arrived by a ref, so it stays and later fetches negotiate from it."""
        await self.git.run(
            ["update-ref", "--no-deref", pin_ref(sha), commit],
            git_dir=self.path,
            check=False,
        )

    def read_default(self) -> tuple[str, str] | None:
        """The default branch (ref, sha) the remote named last time, if recorded."""
        try:
            ref, sha = (self.path / _DEFAULT_FILE).read_text().split()
            validate_ref(ref)
            validate_sha(sha)
        except (OSError, ValueError):
            return None
        return ref, sha

    def write_default(self, ref: str, sha: str) -> None:
        """Record the remote's default branch, for the next new branch's changed files."""
        tmp = self.path / f".{_DEFAULT_FILE}.{uuid.uuid4().hex[:8]}"
        tmp.write_text(f"{ref} {sha}\n")
        tmp.replace(self.path / _DEFAULT_FILE)

    # -- upkeep ------------------------------------------------------------------------------

    def schedule_upkeep(self) -> None:
        """Keep the mirror compact, after the event that made it grow has its checkout."""
        if self._upkeep is None and _upkeep_due(self.path, self.limits):
            task = asyncio.create_task(self._keep_compact(), name="mirror-upkeep")
            self._upkeep = task
            task.add_done_callback(self._upkeep_ended)

    async def upkeep_done(self) -> None:
        """Wait until a running upkeep has ended (its failure, if any, is not raised)."""
        task = self._upkeep
        if task is not None:
            await asyncio.wait([task])

    def _upkeep_ended(self, task: asyncio.Task[None]) -> None:
        if self._upkeep is task:
            self._upkeep = None
        if not task.cancelled():
            task.exception()  # seen: an unawaited failure is not logged

    async def _keep_compact(self) -> None:
        """Bound the mirror's packs and pins, which every later git command would pay for.

        Every fetch adds a pack and a pin. Hundreds of them make each fetch, peel and
        checkout slower (a fetch reads every ref; a checkout links every pack), so: the packs
        are rolled up geometrically (a few packs whose sizes at least double; no object is
        dropped), and only the newest pins are kept (an older commit stays in the mirror, and a
        re-fired event that needs it is served from there without a transfer).
        """
        async with self.lock:
            packs, pins = await asyncio.to_thread(_mirror_counts, self.path)
            if packs > self.limits.max_packs:
                await self.git.run(
                    ["repack", "-d", "-q", "--geometric=2"],
                    git_dir=self.path,
                    what="repack the mirror",
                    check=False,
                )
            if pins > self.limits.max_pins:
                await asyncio.to_thread(_drop_old_pins, self.path, self.limits.keep_pins)


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


def _upkeep_due(mirror: Path, limits: MirrorLimits) -> bool:
    packs, pins = _mirror_counts(mirror)
    return packs > limits.max_packs or pins > limits.max_pins


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


def remove_tree(path: Path) -> None:
    """Remove a directory tree of the workspace, read-only parts included (a link: the link)."""

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
