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
(the event's ref, ``refs/pull/<n>/head``, the base branch) and the commit must then be among
what came back. Fetched commits are pinned under ``refs/pocketci/`` so they survive and so the next
fetch negotiates from them. A commit already in the mirror (a re-fired event) needs no network.

One event on the hot path (warm mirror, a push with a ``before``) costs one ``git fetch`` of all
its ids (over smart HTTP: the capability advertisement and one fetch request, with the token
sent from the first one), then a ``rev-parse`` to peel them while the checkout's repository is
laid out, then ``read-tree`` while the changed files are worked out on the mirror. After that, a
background task keeps the mirror compact (geometric repack, only the newest pins), since every
fetch adds a pack and a pin that each later command would otherwise pay for.

Every payload value is validated before any git command sees it (:func:`validate_ref`,
:func:`validate_sha`), and the commands put ``--end-of-options`` before them anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pocketci_tui.engine.gitcmd import (
    FORBIDDEN_PROTOCOLS,
    Credentials,
    GitCommand,
    GitError,
    GitTimeoutError,
    deadline_left,
    url_protocol,
)
from pocketci_tui.model import Event

__all__ = [
    "Checkout",
    "GitError",
    "GitInputError",
    "GitTimeoutError",
    "Workspace",
    "default_clone_url",
    "repo_dir_name",
    "validate_ref",
    "validate_sha",
]

_SHA_RE = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_GITHUB_OWNER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\Z")
_GITHUB_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
_PIN_PREFIX = "refs/pocketci/"
_HOPELESS = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "not allowed",
    "Could not resolve host",
    "Failed to connect",
    "Connection refused",
    "does not appear to be a git repository",
)
"""Fetch failures that asking for refs instead of commit ids cannot fix."""


def _hopeless(exc: GitError) -> bool:
    """Whether no other request to the remote can succeed (and none should be made)."""
    return any(sign in str(exc) for sign in _HOPELESS)


@dataclass(frozen=True)
class _Plan:
    """What one event needs from the mirror, once fetched."""

    head: str
    compare: str
    default_ref: str
    default_sha: str
    wanted: tuple[str, ...]
    resolved: dict[str, str] | None


class GitInputError(GitError, ValueError):
    """A value (ref, sha, URL) was refused before any git command ran."""


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


def validate_sha(sha: str) -> None:
    """Check a commit id from a payload.

    Args:
        sha: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.

    Raises:
        ValueError: Not such a string, or all zeros (the "no commit" marker of deletions).
    """
    if not isinstance(sha, str) or not _SHA_RE.match(sha):
        raise ValueError(f"not a commit id: {sha!r}")
    if sha.strip("0") == "":
        raise ValueError("the all-zeros commit id names no commit")


def _is_zero_or_empty(sha: str) -> bool:
    return not sha or (set(sha) == {"0"} and len(sha) in (40, 64))


def validate_ref(ref: str) -> None:
    """Check a full ref name from a payload, more strictly than ``git check-ref-format``.

    Accepted refs start with ``refs/`` and follow git's rules; on top of them, no component may
    start with ``-`` (it would read as an option), and the length is capped. Shell
    metacharacters (``$``, ``;``, ``|``, quotes, backticks) are allowed because git allows them
    in branch names and no shell ever sees a ref.

    Args:
        ref: A full ref name, e.g. ``refs/heads/main``.

    Raises:
        ValueError: With the reason.
    """
    if not isinstance(ref, str) or not ref:
        raise ValueError("empty ref")
    if len(ref) > 255:
        raise ValueError("ref longer than 255 characters")
    if not ref.startswith("refs/"):
        raise ValueError(f"ref does not start with refs/: {ref!r}")
    if _REF_FORBIDDEN.search(ref):
        raise ValueError(f"ref contains a space, control or forbidden character: {ref!r}")
    if ".." in ref or "@{" in ref or ref == "@":
        raise ValueError(f"ref contains '..' or '@{{': {ref!r}")
    if ref.endswith(("/", ".")) or "//" in ref:
        raise ValueError(f"ref has an empty component or ends with '.': {ref!r}")
    for part in ref.split("/"):
        if part.startswith((".", "-")):
            raise ValueError(f"ref component starts with '.' or '-': {ref!r}")
        if part.endswith(".lock"):
            raise ValueError(f"ref component ends with '.lock': {ref!r}")
    if len(ref.split("/")) < 3:
        raise ValueError(f"ref has no name below its namespace: {ref!r}")


def default_clone_url(vendor: str, repository: str) -> str:
    """The clone URL of a repository on a forge that has a well-known host.

    Args:
        vendor: The forge (``github``).
        repository: ``owner/name``, checked against the forge's naming rules.

    Returns:
        ``https://github.com/owner/name.git`` for GitHub.

    Raises:
        ValueError: Unknown forge, or a name the forge would not allow.
    """
    if vendor != "github":
        raise ValueError(f"no default clone URL for {vendor!r}; configure clone_url")
    owner, sep, name = repository.partition("/")
    if not sep or not _GITHUB_OWNER_RE.match(owner) or not _GITHUB_NAME_RE.match(name):
        raise ValueError(f"not a GitHub owner/name: {repository!r}")
    if name in (".", "..") or name.lower().endswith(".git"):
        raise ValueError(f"not a GitHub repository name: {repository!r}")
    return f"https://github.com/{owner}/{name}.git"


def repo_dir_name(repo_key: str) -> str:
    """Map a configured repository id to a directory name that stays where it is put.

    Args:
        repo_key: Any string (``owner/name``, ``../../x``...).

    Returns:
        A sanitized prefix (letters, digits, ``-``, ``_``, ``.``; never leading ``.``) plus a
        hash of the whole key, so distinct keys never share a directory.
    """
    digest = hashlib.sha256(repo_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", repo_key).strip("._-")[:48]
    return f"{name}-{digest}" if name else digest


def _decode_paths(out: bytes) -> list[str]:
    return [os.fsdecode(p) for p in out.split(b"\0") if p]


def _short(sha: str) -> str:
    return sha[:12]


class Workspace:
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
    def _base_ref(event: Event) -> str:
        ref = event.base_ref
        if ref and not ref.startswith("refs/"):
            ref = "refs/heads/" + ref
        return ref

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
            if not _is_zero_or_empty(event.base_sha):
                validate_sha(event.base_sha)
            if event.base_ref:
                validate_ref(Workspace._base_ref(event))
            if event.pr_number is not None and event.pr_number <= 0:
                raise ValueError(f"bad pull request number {event.pr_number!r}")
        except ValueError as exc:
            raise GitInputError(f"refusing event: {exc}") from None

    # -- the public operations ---------------------------------------------------------------

    async def checkout(
        self, repo_key: str, clone_url: str, token: str | None, event: Event
    ) -> Checkout:
        """Bring the event's commit into the repository's mirror and check it out.

        Args:
            repo_key: The configured repository id (decides the directories).
            clone_url: The configured clone URL (never a payload value).
            token: The clone token, or None for public repositories and ssh.
            event: The event; its ref and commit ids are validated first.

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
            Credentials.for_url(clone_url, token, preemptive=True)
            if token and proto in ("http", "https")
            else None
        )
        deadline = time.monotonic() + self.timeout
        mirror = self.mirror_path(repo_key)
        remote = _Remote(self.git, clone_url, proto, creds, deadline)
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
            if not _is_zero_or_empty(event.base_sha):
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

    async def _ensure_mirror(self, mirror: Path, event: Event) -> None:
        if (mirror / "HEAD").exists():
            return
        mirror.parent.mkdir(parents=True, exist_ok=True)
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
        if not res.ok or len(out) != len(wanted) or not all(_SHA_RE.match(o) for o in out):
            return None
        return dict(zip(wanted, out, strict=True))

    async def _resolve_each(self, mirror: Path, shas: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for sha in shas:
            one = await self._resolve(mirror, [sha])
            if one:
                found.update(one)
        return found

    async def _fetch_for_event(self, mirror: Path, remote: _Remote, event: Event) -> _Plan:
        """Fetch what the event needs into the mirror.

        Returns:
            The ids, and their commits when they were looked up (re-fired events); None
            there after a fetch, for :meth:`_resolve_fetched`.
        """
        head = event.sha or await remote.resolve_ref(event.ref)
        compare = "" if _is_zero_or_empty(event.base_sha) else event.base_sha
        if event.event_type == "pull_request" and not compare and event.base_ref:
            # No base commit in the payload: the base branch's tip is the next best thing.
            compare = await remote.resolve_ref(self._base_ref(event), missing_ok=True)
        default_ref = default_sha = ""
        if event.event_type == "push" and not compare:
            # A new branch is compared with the default branch. A re-fired event whose commit
            # is mirrored reuses what the remote said last time; otherwise ask it.
            stored = _read_default(mirror)
            if stored and await self._resolve(mirror, [head, stored[1]]) is not None:
                default_ref, default_sha = stored
            else:
                default_ref, default_sha = await remote.default_branch()
        wanted = list(dict.fromkeys(s for s in (head, compare, default_sha) if s))
        # Commits pinned by an earlier fetch are in the mirror, so a re-fired event needs no
        # network. Anything else is fetched without looking it up first: a new commit is the
        # usual case, and git itself skips the transfer when the objects turn out to be there.
        resolved = None
        if all(_pinned(mirror, s) for s in wanted):
            resolved = await self._resolve(mirror, wanted)
        if resolved is None:
            await self._fetch(mirror, remote, event, wanted)
        return _Plan(head, compare, default_ref, default_sha, tuple(wanted), resolved)

    async def _resolve_fetched(self, mirror: Path, wanted: Sequence[str]) -> dict[str, str]:
        """Peel fetched ids to commits; those that did not arrive are left out."""
        resolved = await self._resolve(mirror, wanted)
        if resolved is None:
            resolved = await self._resolve_each(mirror, wanted)
        return resolved

    async def _fetch(
        self,
        mirror: Path,
        remote: _Remote,
        event: Event,
        shas: list[str],
    ) -> None:
        """Fetch commits by id; fall back to refs when the server refuses ids."""
        try:
            await remote.fetch(mirror, [f"+{s}:{_PIN_PREFIX}commits/{s}" for s in shas])
            return
        except GitTimeoutError:
            raise
        except GitError as exc:
            first_error = exc
        if _hopeless(first_error):
            raise first_error
        # The server may refuse unadvertised commits: ask for the refs that should hold them.
        refs: list[str] = []
        if event.ref:
            refs.append(event.ref)
        if event.pr_number is not None:
            refs.append(f"refs/pull/{event.pr_number}/head")
        base_ref = self._base_ref(event)
        if base_ref:
            refs.append(base_ref)
        refspecs = [
            f"+{r}:{_PIN_PREFIX}remote/{r.removeprefix('refs/')}" for r in dict.fromkeys(refs)
        ]
        if not refspecs:
            raise first_error
        # Fetch each ref on its own; a missing refs/pull/... must not fail the others.
        fetched_any = False
        last_error: GitError = first_error
        for spec in refspecs:
            try:
                await remote.fetch(mirror, [spec])
                fetched_any = True
            except GitTimeoutError:
                raise
            except GitError as exc:
                last_error = exc
        if not fetched_any:
            raise last_error
        # Pin what arrived, so it stays and later fetches negotiate from it.
        for sha, commit in (await self._resolve_each(mirror, shas)).items():
            await self.git.run(
                ["update-ref", "--no-deref", f"{_PIN_PREFIX}commits/{sha}", commit],
                git_dir=mirror,
                check=False,
            )

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

    def _new_checkout_path(self, repo_key: str, sha: str, event: Event) -> Path:
        label = f"{event.id}-" if event.id is not None else ""
        return self.checkouts_dir(repo_key) / f"{label}{_short(sha)}-{uuid.uuid4().hex[:8]}"

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


class _Remote:
    """The configured remote of one checkout, with its credentials and deadline."""

    def __init__(
        self,
        git: GitCommand,
        url: str,
        proto: str,
        creds: Credentials | None,
        deadline: float,
    ) -> None:
        self.git = git
        self.url = url
        self.proto = proto
        self.creds = creds
        self.deadline = deadline
        self.display = url

    async def fetch(self, mirror: Path, refspecs: list[str]) -> None:
        await self.git.run(
            [
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
                "--no-auto-gc",
                "--no-show-forced-updates",
                "--end-of-options",
                self.url,
                *refspecs,
            ],
            git_dir=mirror,
            protocols=[self.proto],
            credentials=self.creds,
            time_limit=deadline_left(self.deadline),
            what=f"fetch from {self.display}",
        )

    async def ls_remote(self, *patterns: str, symref: bool = False) -> list[tuple[str, str]]:
        args = ["ls-remote"]
        if symref:
            args.append("--symref")
        res = await self.git.run(
            [*args, "--end-of-options", self.url, *patterns],
            protocols=[self.proto],
            credentials=self.creds,
            time_limit=deadline_left(self.deadline),
            what=f"list refs of {self.display}",
        )
        rows = []
        for line in res.stdout.decode("utf-8", "replace").splitlines():
            left, _, right = line.partition("\t")
            rows.append((left, right))
        return rows

    async def resolve_ref(self, ref: str, *, missing_ok: bool = False) -> str:
        """The object id a remote ref points at ("" if missing and ``missing_ok``)."""
        for value, name in await self.ls_remote(ref):
            if name == ref and _SHA_RE.match(value):
                return value
        if missing_ok:
            return ""
        raise GitError(f"{ref} is not on the remote {self.display}")

    async def default_branch(self) -> tuple[str, str]:
        """The remote's default branch (ref, sha), or ("", "") when it has none."""
        try:
            rows = await self.ls_remote("HEAD", symref=True)
        except GitTimeoutError:
            raise
        except GitError as exc:
            if _hopeless(exc):
                # A refused token must not be sent again by the fetch that would follow.
                raise
            return "", ""
        ref = sha = ""
        for left, right in rows:
            if left.startswith("ref: ") and right == "HEAD":
                candidate = left.removeprefix("ref: ")
                try:
                    validate_ref(candidate)
                except ValueError:
                    continue
                ref = candidate
            elif right == "HEAD" and _SHA_RE.match(left):
                sha = left
        return (ref, sha) if ref and sha else ("", "")


_DEFAULT_FILE = "pocketci-default-branch"
_MAX_PENDING_CHANGES = 256
"""Changed-file lists kept for checkouts whose changed_files() has not been asked yet."""


_MAX_PACKS = 16
"""Packs a mirror may hold before they are rolled up (each fetch adds one)."""
_MAX_PINS = 256
_KEEP_PINS = 128
"""Pins a mirror may hold, and how many of the newest stay when there are more."""


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
        if _SHA_RE.match(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _pinned(mirror: Path, sha: str) -> bool:
    """Whether an earlier fetch pinned this (validated, hex) id in the mirror."""
    return os.path.isfile(mirror / _PIN_PREFIX / "commits" / sha)


def _event_key(event: Event) -> tuple[str, ...]:
    """What the changed files of an event depend on, besides its checkout."""
    return (event.event_type, event.sha, event.base_sha, event.ref, event.base_ref)


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
