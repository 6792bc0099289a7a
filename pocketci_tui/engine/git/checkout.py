"""Disposable checkouts of events' commits, and the files each event changed (SPEC 4.6).

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

from pocketci_tui.engine.git.command import GitCommand, GitError
from pocketci_tui.engine.git.fetch import FetchPlan
from pocketci_tui.engine.git.mirror import Mirror, remove_tree
from pocketci_tui.engine.git.refs import CHANGE_REQUESTS, GitInputError, repo_dir_name, short_id
from pocketci_tui.gitrefs import is_no_commit
from pocketci_tui.model import Event

__all__ = ["Checkout", "Checkouts"]

MAX_PENDING_CHANGES = 256
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


class Checkouts:
    """The checkouts of a workspace: one directory per repository, one checkout per event.

    Args:
        root: The directory holding them (``checkouts/``; created on first use).
        git: The hardened git command.
    """

    def __init__(self, root: Path, git: GitCommand) -> None:
        self.root = root
        self.git = git
        self._templates: dict[str, bytes] = {}
        self._changes: dict[Path, tuple[tuple[str, ...], asyncio.Task[list[str] | None]]] = {}

    @property
    def pending_changes(self) -> int:
        """How many changed-file lists were worked out and not asked for yet."""
        return len(self._changes)

    def dir_for(self, repo_key: str) -> Path:
        """The directory holding the checkouts of a configured repository."""
        return self.root / repo_dir_name(repo_key)

    async def lay_out(
        self, repo_key: str, mirror: Mirror, plan: FetchPlan, event: Event, display: str
    ) -> Checkout:
        """Make the checkout's repository (no files yet) while the mirror peels the plan.

        Called with the mirror's lock held, so that no repack of the mirror removes a pack
        while it is being linked. What was laid out is removed again when this fails.

        Args:
            repo_key: The configured repository id.
            mirror: The mirror the plan was fetched into.
            plan: What was fetched for the event.
            event: The event.
            display: How the remote is named in messages.

        Raises:
            GitError: The event's commit did not arrive, or git failed.
        """
        path = self._new_path(repo_key, plan.head, event)
        config = await self._template("sha256" if len(plan.head) == 64 else "sha1")
        layout = asyncio.ensure_future(
            asyncio.to_thread(_write_repo, path / ".git", config, mirror.path)
        )
        try:
            if plan.resolved is None:
                resolved, _ = await asyncio.gather(mirror.peel_present(plan.wanted), layout)
            else:
                resolved = plan.resolved
                await layout
            return _settle(path, mirror, display, plan, resolved)
        except BaseException:
            await _discard(path, layout)
            raise

    async def check_out(self, checkout: Checkout, event: Event) -> None:
        """Write the files of a laid-out checkout; meanwhile, work out its changed files.

        The checkout is removed again when this fails.
        """
        path = checkout.path
        # The changed files come from the mirror alone: work them out while the files are
        # written, for the changed_files() call that follows.
        changes = asyncio.create_task(
            self._changed_files(checkout, event), name=f"changed-files-{path.name}"
        )
        changes.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            (path / ".git" / "HEAD").write_text(checkout.sha + "\n")
            await self.git.run(
                ["read-tree", "--reset", "-u", checkout.sha],
                cwd=path,
                what=f"check out {short_id(checkout.sha)}",
            )
        except BaseException:
            changes.cancel()
            await _discard(path, None)
            raise
        self._remember_changes(path, _event_key(event), changes)

    async def changed_files(self, checkout: Checkout, event: Event) -> list[str] | None:
        """The files an event changed (see :meth:`Workspace.changed_files`)."""
        pending = self._changes.pop(checkout.path, None)
        if pending is not None:
            key, task = pending
            if key == _event_key(event) and not task.cancelled():
                return await task
            task.cancel()
        return await self._changed_files(checkout, event)

    async def remove(self, checkout: Checkout) -> None:
        """Delete a checkout directory (the mirror stays).

        Raises:
            GitInputError: The path is not a checkout of these checkouts.
        """
        pending = self._changes.pop(Path(checkout.path), None)
        if pending is not None:
            pending[1].cancel()
        await asyncio.to_thread(self._remove_sync, Path(checkout.path))

    async def prune(self, keep: int) -> int:
        """Remove all but the ``keep`` newest checkouts of every repository.

        Returns:
            How many checkouts were removed.
        """
        return await asyncio.to_thread(self._prune_sync, max(0, keep))

    # -- internals ---------------------------------------------------------------------------

    def _new_path(self, repo_key: str, sha: str, event: Event) -> Path:
        label = f"{event.id}-" if event.id is not None else ""
        return self.dir_for(repo_key) / f"{label}{short_id(sha)}-{uuid.uuid4().hex[:8]}"

    def _remove_sync(self, path: Path) -> None:
        checkouts = self.root.resolve()
        if not path.resolve().is_relative_to(checkouts) or path.resolve() == checkouts:
            raise GitInputError(f"not a checkout of this workspace: {path}")
        remove_tree(path)

    def _prune_sync(self, keep: int) -> int:
        removed = 0
        if not self.root.is_dir():
            return 0
        for repo_dir in self.root.iterdir():
            if not repo_dir.is_dir() or repo_dir.is_symlink():
                continue
            entries = [p for p in repo_dir.iterdir() if p.is_dir() and not p.is_symlink()]
            entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
            for old in entries[keep:]:
                remove_tree(old)
                removed += 1
        return removed

    async def _template(self, fmt: str) -> bytes:
        """The ``config`` of a fresh repository, made once by ``git init`` on this filesystem
        (so ``core.symlinks``, ``core.ignorecase``... fit it) and reused for every checkout."""
        config = self._templates.get(fmt)
        if config is None:
            probe = self.git.home / f"template-{fmt}"
            if not (probe / ".git" / "config").exists():
                tmp = probe.with_name(f".{probe.name}.{uuid.uuid4().hex[:8]}")
                await self.git.run(
                    ["init", "--quiet", "--template=", f"--object-format={fmt}", str(tmp)],
                    what="create a repository template",
                )
                with contextlib.suppress(OSError):
                    tmp.rename(probe)
                if tmp.exists():
                    await asyncio.to_thread(remove_tree, tmp)
            config = await asyncio.to_thread((probe / ".git" / "config").read_bytes)
            self._templates[fmt] = config
        return config

    def _remember_changes(
        self, path: Path, key: tuple[str, ...], task: asyncio.Task[list[str] | None]
    ) -> None:
        while len(self._changes) >= MAX_PENDING_CHANGES:
            _old_key, (_k, old) = next(iter(self._changes.items()))
            old.cancel()
            del self._changes[_old_key]
        self._changes[path] = (key, task)

    async def _changed_files(self, checkout: Checkout, event: Event) -> list[str] | None:
        mirror, head = checkout.mirror, checkout.sha
        kind = event.event_type
        try:
            if kind in CHANGE_REQUESTS:
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
    path: Path, mirror: Mirror, display: str, plan: FetchPlan, resolved: dict[str, str]
) -> Checkout:
    """The checkout of a fetched plan, once its ids are peeled to commits."""
    if plan.head not in resolved:
        raise GitError(f"commit {short_id(plan.head)} is not on the remote {display}")
    default_ref, default_sha = plan.default_ref, plan.default_sha
    if default_sha in resolved:
        mirror.write_default(default_ref, default_sha)
    else:
        default_ref = default_sha = ""
    return Checkout(
        path=path,
        sha=resolved[plan.head],
        mirror=mirror.path,
        base=resolved.get(plan.compare, ""),
        default_ref=default_ref,
        default_sha=default_sha,
    )


async def _discard(path: Path, layout: asyncio.Future[None] | None) -> None:
    """Remove a checkout that failed, once no thread writes into it any more."""
    if layout is not None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(layout)  # never remove what a thread still writes
    with contextlib.suppress(OSError):
        await asyncio.to_thread(remove_tree, path)


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
