"""The checkout of one event's commit, and the files the event changed (SPEC 4.6).

A checkout is a real git repository laid out by hand: the ``config`` of a repository made once by
``git init`` on this filesystem, the mirror's packs hard-linked in (``objects/info/alternates``
when links are impossible), HEAD detached at the commit, and the files written by ``read-tree``.
The changed files come from the mirror alone (``diff-tree``, ``diff --merge-base`` or
``ls-tree``), worked out while the files are written and kept until they are asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketci_tui.engine.git.command import GitCommand, GitError
from pocketci_tui.engine.git.fetch import _Plan, _Remote
from pocketci_tui.engine.git.mirror import _rmtree, _write_default
from pocketci_tui.engine.git.refs import _short
from pocketci_tui.gitrefs import is_no_commit
from pocketci_tui.model import Event

__all__ = ["Checkout"]

_MAX_PENDING_CHANGES = 256
"""Changed-file lists kept for checkouts whose changed_files() has not been asked yet."""


@dataclass(frozen=True)
class Checkout:
    """A clean checkout of one commit.

    Attributes:
        path: The checkout directory, a git repository with HEAD detached at ``sha``.
        sha: The commit checked out (an annotated tag's commit, not the tag object).
        mirror: The bare mirror the checkout borrows its objects from.
        base: The commit the changed files are computed against, when it could be fetched
            (pull request base, or the push's ``before``); empty otherwise.
        default_ref: The remote's default branch (``refs/heads/main``) when it was looked up
            (new branches and tags only); empty otherwise.
        default_sha: The tip of that default branch, fetched into the mirror; empty otherwise.
    """

    path: Path
    sha: str
    mirror: Path
    base: str = ""
    default_ref: str = ""
    default_sha: str = ""


class _CheckoutOps:
    """Checkouts and their changed files, for :class:`~pocketci_tui.engine.git.workspace.Workspace`.

    They need the class they are mixed into to provide ``root``, ``git`` (the runner),
    ``_templates`` (a repository ``config`` per object format) and ``_changes`` (the changed
    files being worked out per checkout).
    """

    root: Path
    _templates: dict[str, bytes]
    _changes: dict[Path, tuple[tuple[str, ...], asyncio.Task[list[str] | None]]]

    if TYPE_CHECKING:

        @property
        def git(self) -> GitCommand: ...

    async def _repo_template(self, fmt: str) -> bytes:
        """The ``config`` of a fresh repository, made once by ``git init`` on this filesystem
        (so ``core.symlinks``, ``core.ignorecase``... fit it) and reused for every checkout."""
        config = self._templates.get(fmt)
        if config is None:
            probe = self.root / "home" / f"template-{fmt}"
            if not (probe / ".git" / "config").exists():
                tmp = probe.with_name(f".{probe.name}.{uuid.uuid4().hex[:8]}")
                await self.git.run(
                    ["init", "--quiet", "--template=", f"--object-format={fmt}", str(tmp)],
                    what="create a repository template",
                )
                with contextlib.suppress(OSError):
                    tmp.rename(probe)
                if tmp.exists():
                    await asyncio.to_thread(_rmtree, tmp)
            config = await asyncio.to_thread((probe / ".git" / "config").read_bytes)
            self._templates[fmt] = config
        return config

    async def _check_out(self, path: Path, sha: str) -> None:
        """Detach the laid-out repository's HEAD at ``sha`` and write its files."""
        (path / ".git" / "HEAD").write_text(sha + "\n")
        await self.git.run(
            ["read-tree", "--reset", "-u", sha],
            cwd=path,
            what=f"check out {_short(sha)}",
        )

    async def _diff(self, mirror: Path, old: str, new: str) -> list[str]:
        res = await self.git.run(
            ["diff-tree", "-r", "-z", "--name-only", "--no-renames", "--end-of-options", old, new],
            git_dir=mirror,
            what="compute changed files",
        )
        return sorted(set(_decode_paths(res.stdout)))

    async def _all_files(self, mirror: Path, sha: str) -> list[str]:
        res = await self.git.run(
            ["ls-tree", "-r", "-z", "--name-only", "--full-tree", sha],
            git_dir=mirror,
            what="list files",
        )
        return sorted(set(_decode_paths(res.stdout)))

    async def _diff_merge_base(self, mirror: Path, base: str, head: str) -> list[str]:
        res = await self.git.run(
            [
                "diff",
                "--no-ext-diff",
                "--no-textconv",
                "--name-only",
                "-z",
                "--no-renames",
                "--merge-base",
                "--end-of-options",
                base,
                head,
                "--",
            ],
            git_dir=mirror,
            check=False,
        )
        if res.ok:
            return sorted(set(_decode_paths(res.stdout)))
        if b"no merge base" in res.stderr:
            return await self._all_files(mirror, head)
        raise GitError("cannot compute the changed files against the merge base")

    def _settle(
        self,
        path: Path,
        mirror: Path,
        remote: _Remote,
        plan: _Plan,
        resolved: dict[str, str],
    ) -> Checkout:
        """The checkout of a fetched plan, once its ids are peeled to commits."""
        if plan.head not in resolved:
            raise GitError(f"commit {_short(plan.head)} is not on the remote {remote.display}")
        default_ref, default_sha = plan.default_ref, plan.default_sha
        if default_sha in resolved:
            _write_default(mirror, default_ref, default_sha)
        else:
            default_ref = default_sha = ""
        return Checkout(
            path=path,
            sha=resolved[plan.head],
            mirror=mirror,
            base=resolved.get(plan.compare, ""),
            default_ref=default_ref,
            default_sha=default_sha,
        )

    def _remember_changes(
        self, path: Path, key: tuple[str, ...], task: asyncio.Task[list[str] | None] | None
    ) -> None:
        if task is None:
            return
        while len(self._changes) >= _MAX_PENDING_CHANGES:
            _old_key, (_k, old) = next(iter(self._changes.items()))
            old.cancel()
            del self._changes[_old_key]
        self._changes[path] = (key, task)

    async def _changed_files(self, checkout: Checkout, event: Event) -> list[str] | None:
        mirror, head = checkout.mirror, checkout.sha
        kind = event.event_type
        try:
            if kind == "pull_request":
                if not checkout.base:
                    return None
                return await self._diff_merge_base(mirror, checkout.base, head)
            if kind not in ("push", "tag"):
                return None
            if not is_no_commit(event.base_sha):
                if not checkout.base:
                    return None
                return await self._diff(mirror, checkout.base, head)
            if kind == "tag":
                return await self._all_files(mirror, head)
            if not checkout.default_sha or checkout.default_ref == event.ref:
                return await self._all_files(mirror, head)
            return await self._diff_merge_base(mirror, checkout.default_sha, head)
        except GitError:
            return None


def _event_key(event: Event) -> tuple[str, ...]:
    """What the changed files of an event depend on, besides its checkout."""
    return (event.event_type, event.sha, event.base_sha, event.ref, event.base_ref)


def _decode_paths(out: bytes) -> list[str]:
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _write_repo(git_dir: Path, config: bytes, mirror: Path) -> None:
    """Lay out a minimal repository: git's own config and the mirror's objects (HEAD comes
    once the commit is known)."""
    (git_dir / "objects" / "info").mkdir(parents=True)
    (git_dir / "refs" / "heads").mkdir(parents=True)
    (git_dir / "refs" / "tags").mkdir()
    (git_dir / "config").write_bytes(config)
    try:
        _link_objects(mirror / "objects", git_dir / "objects")
    except OSError:
        # Another filesystem (or no hard links): borrow the mirror's objects instead. The
        # checkout then needs the mirror to stay where it is.
        (git_dir / "objects" / "info" / "alternates").write_text(str(mirror / "objects") + "\n")


def _link_objects(src: Path, dst: Path) -> None:
    """Hard-link the mirror's complete packs (and any loose objects) into a checkout.

    Packs never change once written, so sharing them by link is safe, costs no space, and
    leaves a checkout that works on its own (also inside a container, where the mirror's path
    means nothing).
    """
    pack_src = src / "pack"
    names = set(os.listdir(pack_src)) if pack_src.is_dir() else set()
    if names:
        (dst / "pack").mkdir(exist_ok=True)
    for name in sorted(names):
        if not name.endswith(".pack") or name.startswith("tmp_"):
            continue
        stem = name.removesuffix(".pack")
        if stem + ".idx" not in names:
            continue  # still being written by a concurrent fetch
        for ext in (".pack", ".rev", ".idx"):
            if stem + ext in names:
                os.link(pack_src / (stem + ext), dst / "pack" / (stem + ext))
    for entry in os.scandir(src):
        if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
            (dst / entry.name).mkdir(exist_ok=True)
            for obj in os.scandir(entry.path):
                if not obj.name.startswith("tmp_"):
                    os.link(obj.path, dst / entry.name / obj.name)
