"""The git workspace: one mirror per repository, one clean checkout per event.

Layout under the workspace root::

    home/                       private HOME of every git process, with the helper programs
    mirrors/<key>.git           a bare repository per configured repository (fetched into)
    checkouts/<key>/<id>/       a checkout per event: a real git repository whose object packs
                                are hard links to the mirror's (``objects/info/alternates`` when
                                links are impossible), HEAD detached at the event's commit

``<key>`` comes from the configured repository id, never from the payload: a sanitized name plus a
hash, so ``..`` or ``/`` cannot lead outside the root.

The mirror is cloned once (``git init --bare`` + fetch) and then only fetched into, and only for
the commits an event needs: the event's commit, plus what its changed files are computed against
(the pull request's base, the push's ``before``, or the default branch for a new branch). Commits
are fetched by id first (GitHub allows it); a server that refuses is asked for the refs instead
(the event's ref, the forge's pull/merge request head ref, the base branch) and the commit must
then be among what came back. Fetched commits are pinned under ``refs/pocketci/`` so they survive
and so the next fetch negotiates from them. A commit already in the mirror (a re-fired event)
needs no network.

One event on the hot path (warm mirror, a push with a ``before``) costs one ``git fetch`` of all
its ids (over smart HTTP: the capability advertisement and one fetch request, with the token
sent from the first one), then a ``rev-parse`` to peel them while the checkout's repository is
laid out, then ``read-tree`` while the changed files are worked out on the mirror. After that, a
background task keeps the mirror compact (geometric repack, only the newest pins), since every
fetch adds a pack and a pin that each later command would otherwise pay for.

Every payload value is validated before any git command sees it (:func:`validate_ref`,
:func:`validate_sha`), and the commands put ``--end-of-options`` before them anyway.

This module holds the public API; the work is split by job into :mod:`.workspace_refs` (checking
payload values, naming directories), :mod:`.workspace_mirror` (the mirror and its upkeep: pins,
repacks, the recorded default branch), :mod:`.workspace_fetch` (fetching for an event, with the
fallback to refs) and :mod:`.workspace_checkout` (laying out a checkout, and its changed files).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from pocketci_tui.engine.git.checkout import (
    Checkout,
    _CheckoutOps,
    _event_key,
    _write_repo,
)
from pocketci_tui.engine.git.command import (
    DEFAULT_USERNAME,
    FORBIDDEN_PROTOCOLS,
    Credentials,
    GitCommand,
    GitError,
    GitTimeoutError,
    url_protocol,
)
from pocketci_tui.engine.git.fetch import _FetchOps, _Remote
from pocketci_tui.engine.git.mirror import _retrieve, _rmtree
from pocketci_tui.engine.git.refs import (
    GitInputError,
    _short,
    default_clone_url,
    repo_dir_name,
)
from pocketci_tui.gitrefs import is_no_commit, validate_ref, validate_sha
from pocketci_tui.model import Event

__all__ = [
    "Checkout",
    "GitError",
    "GitInputError",
    "GitTimeoutError",
    "Workspace",
    "_Remote",
    "default_clone_url",
    "repo_dir_name",
    "validate_ref",
    "validate_sha",
]


class Workspace(_CheckoutOps, _FetchOps):
    """Mirrors and checkouts under one root directory.

    Args:
        root: The workspace directory (created if missing).
        timeout: Time limit, in seconds, for everything one :meth:`checkout` does with the
            network (all its git commands together).
        allowed_protocols: Transports a configured clone URL may use. ``ext`` and ``fd`` are
            never allowed. Each git command allows exactly the transport of its clone URL.
        git: The git executable.
    """

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 300.0,
        allowed_protocols: Sequence[str] = ("https", "http", "ssh", "file"),
        git: str = "git",
    ) -> None:
        self.root = Path(root).absolute()
        self.timeout = timeout
        self.allowed_protocols = frozenset(allowed_protocols) - FORBIDDEN_PROTOCOLS
        self._git_exe = git
        self._git: GitCommand | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._templates: dict[str, bytes] = {}
        self._changes: dict[Path, tuple[tuple[str, ...], asyncio.Task[list[str] | None]]] = {}
        self._upkeep: dict[str, asyncio.Task[None]] = {}
        self._git_checked = False

    # -- paths -------------------------------------------------------------------------------

    @property
    def git(self) -> GitCommand:
        """The git runner (created, with its private home, on first use)."""
        if self._git is None:
            home = self.root / "home"
            home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._git = GitCommand(home, timeout=self.timeout, git=self._git_exe)
        return self._git

    def mirror_path(self, repo_key: str) -> Path:
        """Where the mirror of a configured repository lives."""
        return self.root / "mirrors" / f"{repo_dir_name(repo_key)}.git"

    def checkouts_dir(self, repo_key: str) -> Path:
        """The directory holding the checkouts of a configured repository."""
        return self.root / "checkouts" / repo_dir_name(repo_key)

    # -- validation --------------------------------------------------------------------------

    def check_clone_url(self, clone_url: str) -> str:
        """Validate a configured clone URL and return the transport it uses.

        Raises:
            GitInputError: Empty, option-like, or a transport that is not allowed.
        """
        if not clone_url or clone_url.startswith("-"):
            raise GitInputError(f"unusable clone URL {clone_url!r}")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in clone_url):
            raise GitInputError("the clone URL contains control characters")
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@", clone_url):
            raise GitInputError(
                "the clone URL contains a password; keep tokens in the secret store"
            )
        proto = url_protocol(clone_url)
        if proto in FORBIDDEN_PROTOCOLS or proto not in self.allowed_protocols:
            raise GitInputError(f"clone URL transport {proto!r} is not allowed")
        return proto

    @staticmethod
    def _check_event(event: Event) -> None:
        try:
            if event.deleted:
                raise ValueError("a deletion has no commit to check out")
            if event.ref:
                validate_ref(event.ref)
            if event.sha:
                validate_sha(event.sha)
            elif not event.ref:
                raise ValueError("the event names neither a commit nor a ref")
            if not is_no_commit(event.base_sha):
                validate_sha(event.base_sha)
            if event.base_ref:
                validate_ref(Workspace._base_ref(event))
            if event.pr_number is not None and event.pr_number <= 0:
                raise ValueError(f"bad pull request number {event.pr_number!r}")
        except ValueError as exc:
            raise GitInputError(f"refusing event: {exc}") from None

    # -- the public operations ---------------------------------------------------------------

    async def checkout(
        self,
        repo_key: str,
        clone_url: str,
        token: str | None,
        event: Event,
        *,
        username: str = DEFAULT_USERNAME,
        change_refs: Sequence[str] = (),
    ) -> Checkout:
        """Bring the event's commit into the repository's mirror and check it out.

        Args:
            repo_key: The configured repository id (decides the directories).
            clone_url: The configured clone URL (never a payload value).
            token: The clone token, or None for public repositories and ssh.
            event: The event; its ref and commit ids are validated first.
            username: The basic-auth user the forge expects with a token over HTTP(S).
            change_refs: Where the forge keeps the head of the event's pull/merge request on
                this remote (``refs/pull/7/head``, ``refs/merge-requests/7/head``); asked for
                when the server refuses commit ids.

        Returns:
            The checkout.

        Raises:
            GitInputError: A payload value or the URL was refused (no git command ran).
            GitTimeoutError: The remote did not answer within the time limit.
            GitError: Fetching or checking out failed (the message never holds the token).
        """
        self._check_event(event)
        proto = self.check_clone_url(clone_url)
        if not self._git_checked:
            await self.git.check_version()
            self._git_checked = True
        creds = (
            Credentials.for_url(clone_url, token, username, preemptive=True)
            if token and proto in ("http", "https")
            else None
        )
        deadline = time.monotonic() + self.timeout
        mirror = self.mirror_path(repo_key)
        remote = _Remote(self.git, clone_url, proto, creds, deadline, change_refs)
        lock = self._locks.setdefault(str(mirror), asyncio.Lock())
        changes: asyncio.Task[list[str] | None] | None = None
        layout: asyncio.Future[None] | None = None
        path = Path()
        try:
            async with lock:
                await self._ensure_mirror(mirror, event)
                plan = await self._fetch_for_event(mirror, remote, event)
                path = self._new_checkout_path(repo_key, plan.head, event)
                fmt = "sha256" if len(plan.head) == 64 else "sha1"
                config = await self._repo_template(fmt)
                # The new checkout's repository (its packs are links to the mirror's) is laid
                # out while git peels what was fetched; under the lock, so that no repack of
                # the mirror removes a pack while it is being linked.
                layout = asyncio.ensure_future(
                    asyncio.to_thread(_write_repo, path / ".git", config, mirror)
                )
                if plan.resolved is None:
                    resolving = self._resolve_fetched(mirror, plan.wanted)
                    resolved, _ = await asyncio.gather(resolving, layout)
                else:
                    resolved = plan.resolved
                    await layout
            checkout = self._settle(path, mirror, remote, plan, resolved)
            # The changed files come from the mirror alone: work them out while the files
            # are written, for the changed_files() call that follows.
            changes = asyncio.create_task(
                self._changed_files(checkout, event), name=f"changed-files-{path.name}"
            )
            changes.add_done_callback(_retrieve)
            await self._check_out(path, checkout.sha)
        except BaseException:
            if changes is not None:
                changes.cancel()
            if layout is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(layout)  # never remove what a thread still writes
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(_rmtree, path)
            raise
        self._remember_changes(path, _event_key(event), changes)
        self._schedule_upkeep(mirror, lock)
        return checkout

    async def resolve_commit(
        self,
        clone_url: str,
        token: str | None,
        refs: Sequence[str],
        *,
        username: str = DEFAULT_USERNAME,
    ) -> tuple[str, str]:
        """Ask the configured remote which commit an event without a commit id refers to.

        Used for events whose payload names a ref but no commit (a release whose target is a
        branch, a ``create`` event) or nothing at all (``issues`` and other repository-level
        events). Only the configured clone URL is asked, through the same hardened git runner
        as fetches; the refs are validated first.

        Args:
            clone_url: The configured clone URL (never a payload value).
            token: The clone token, or None.
            refs: Full refs to try in order; empty for the remote's default branch.
            username: The basic-auth user the forge expects with a token over HTTP(S).

        Returns:
            (ref, commit id) of the first ref the remote has, or of its default branch.

        Raises:
            GitInputError: A ref or the URL was refused (no git command ran).
            GitError: The remote has none of the refs (or no default branch), or could not be
                asked.
        """
        for ref in refs:
            try:
                validate_ref(ref)
            except ValueError as exc:
                raise GitInputError(f"refusing event: {exc}") from None
        proto = self.check_clone_url(clone_url)
        if not self._git_checked:
            await self.git.check_version()
            self._git_checked = True
        creds = (
            Credentials.for_url(clone_url, token, username, preemptive=True)
            if token and proto in ("http", "https")
            else None
        )
        remote = _Remote(self.git, clone_url, proto, creds, time.monotonic() + self.timeout)
        if refs:
            ref, sha = await remote.first_commit(refs)
            if not sha:
                raise GitError(f"{' or '.join(refs)} is not on the remote {remote.display}")
        else:
            ref, sha = await remote.default_branch()
            if not sha:
                raise GitError(f"the remote {remote.display} has no default branch")
        try:
            validate_sha(sha)
        except ValueError as exc:
            raise GitError(f"{ref or 'HEAD'} on {remote.display}: {exc}") from None
        return ref, sha

    async def changed_files(self, checkout: Checkout, event: Event) -> list[str] | None:
        """The files an event changed (SPEC 4.6), or None when that cannot be computed.

        * pull request: the head against its merge base with the base (three-dot);
        * push with a ``before``: the tree of ``before`` against the tree of the new commit
          (two-dot; after a force push this is what differs between the old and new tip);
        * new branch: against the merge base with the default branch; the commit's own files
          when there is no common history or the branch is the default branch;
        * new tag: every file of the tagged commit; a moved tag: like a push;
        * anything else (releases, unknown events), or a ``before``/base that could not be
          fetched: None, meaning "treat every file as changed".

        Renames count both paths (old and new); names are returned exactly, odd bytes included.

        Args:
            checkout: What :meth:`checkout` returned for this event.
            event: The same event.

        Returns:
            Sorted, de-duplicated paths relative to the repository root, or None.
        """
        pending = self._changes.pop(checkout.path, None)
        if pending is not None:
            key, task = pending
            if key == _event_key(event) and not task.cancelled():
                return await task
            task.cancel()
        return await self._changed_files(checkout, event)

    async def remove(self, checkout: Checkout) -> None:
        """Delete a checkout directory (the mirror stays)."""
        pending = self._changes.pop(Path(checkout.path), None)
        if pending is not None:
            pending[1].cancel()
        await asyncio.to_thread(self._remove_sync, Path(checkout.path))

    def _remove_sync(self, path: Path) -> None:
        checkouts = (self.root / "checkouts").resolve()
        if not path.resolve().is_relative_to(checkouts) or path.resolve() == checkouts:
            raise GitInputError(f"not a checkout of this workspace: {path}")
        _rmtree(path)

    async def prune(self, keep: int) -> int:
        """Remove all but the ``keep`` newest checkouts of every repository.

        Args:
            keep: How many checkouts to keep per repository (0 removes all).

        Returns:
            How many checkouts were removed.
        """
        return await asyncio.to_thread(self._prune_sync, max(0, keep))

    # -- internals ---------------------------------------------------------------------------

    def _prune_sync(self, keep: int) -> int:
        base = self.root / "checkouts"
        removed = 0
        if not base.is_dir():
            return 0
        for repo_dir in base.iterdir():
            if not repo_dir.is_dir() or repo_dir.is_symlink():
                continue
            entries = [p for p in repo_dir.iterdir() if p.is_dir() and not p.is_symlink()]
            entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
            for old in entries[keep:]:
                _rmtree(old)
                removed += 1
        return removed

    def _new_checkout_path(self, repo_key: str, sha: str, event: Event) -> Path:
        label = f"{event.id}-" if event.id is not None else ""
        return self.checkouts_dir(repo_key) / f"{label}{_short(sha)}-{uuid.uuid4().hex[:8]}"
