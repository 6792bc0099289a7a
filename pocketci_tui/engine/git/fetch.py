"""Fetching exactly what one event names into a mirror, from the configured remote.

An event needs its commit and what its changed files are computed against: the pull request's
base (or the base branch's tip), the push's ``before``, or for a new branch the remote's default
branch (recorded in the mirror, and asked of the remote again only when that record does not
serve). Commits pinned by an earlier fetch need no network. Anything else is fetched by id in one
``git fetch``; a server that refuses unadvertised commits is asked for the refs that should hold
them instead (the event's ref, the forge's pull/merge request head ref, the base branch), one at a
time, and what arrives is pinned. Failures no other request could fix (a refused token, an
unreachable host) end the attempt at once, so a refused token is never sent twice.

The :class:`Fetcher` is the workspace's only way to the network: it checks the clone URL, makes
the :class:`Remote` (transport, credentials, deadline) and asks it for what an event needs.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from pocketci_tui.engine.git.command import (
    DEFAULT_USERNAME,
    FORBIDDEN_PROTOCOLS,
    Credentials,
    GitCommand,
    GitError,
    GitTimeoutError,
    deadline_left,
)
from pocketci_tui.engine.git.mirror import Mirror, fetched_ref, pin_ref
from pocketci_tui.engine.git.refs import CHANGE_REQUESTS, base_ref, check_clone_url
from pocketci_tui.gitrefs import is_commit_id, is_no_commit, validate_ref, validate_sha
from pocketci_tui.model import Event

__all__ = ["FetchPlan", "Fetcher", "Remote"]

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
class FetchPlan:
    """What one event needs from the mirror, once fetched.

    Attributes:
        head: The id of the event's commit.
        compare: The id its changed files are computed against ("" when none).
        default_ref: The remote's default branch, when it was looked up (new branches).
        default_sha: That branch's tip ("" when not looked up).
        wanted: Every id above, once.
        resolved: Their commits when they were peeled already (all pinned: a re-fired
            event); None after a fetch, for :meth:`Mirror.peel_present`.
    """

    head: str
    compare: str
    default_ref: str
    default_sha: str
    wanted: tuple[str, ...]
    resolved: dict[str, str] | None


class Fetcher:
    """Fetches from configured remotes into mirrors.

    Args:
        git: The hardened git command.
        timeout: Time limit, in seconds, for everything one checkout (or one look-up) does
            with the network.
        allowed_protocols: Transports a configured clone URL may use (``ext`` and ``fd``
            never are).
    """

    def __init__(
        self, git: GitCommand, *, timeout: float, allowed_protocols: Collection[str]
    ) -> None:
        self.git = git
        self.timeout = timeout
        self.allowed_protocols = frozenset(allowed_protocols) - FORBIDDEN_PROTOCOLS
        self._git_checked = False

    def check_clone_url(self, clone_url: str) -> str:
        """Validate a configured clone URL and return the transport it uses.

        Raises:
            GitInputError: Empty, option-like, or a transport that is not allowed.
        """
        return check_clone_url(clone_url, self.allowed_protocols)

    async def remote(
        self,
        clone_url: str,
        token: str | None,
        *,
        username: str = DEFAULT_USERNAME,
        change_refs: Sequence[str] = (),
    ) -> Remote:
        """The remote of one checkout or look-up; its deadline starts now.

        Args:
            clone_url: The configured clone URL (never a payload value).
            token: The clone token, or None.
            username: The basic-auth user the forge expects with a token over HTTP(S).
            change_refs: Where the forge keeps the head of the event's pull/merge request.

        Raises:
            GitInputError: The URL was refused (no git command ran).
            GitError: git is missing or too old, or the token cannot be used with the URL.
        """
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
        return Remote(self.git, clone_url, proto, creds, deadline, change_refs)

    async def commit_of(self, remote: Remote, refs: Sequence[str]) -> tuple[str, str]:
        """Ask a remote which commit the first of ``refs`` it has names (none: its default
        branch).

        Raises:
            GitError: The remote has none of the refs (or no default branch), names something
                that is not a commit id, or could not be asked.
        """
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

    async def fetch_for_event(self, mirror: Mirror, remote: Remote, event: Event) -> FetchPlan:
        """Fetch what the event needs into the mirror (its lock held by the caller).

        Returns:
            The ids, and their commits when they were looked up (re-fired events).
        """
        head = event.sha or await remote.resolve_ref(event.ref)
        compare = "" if is_no_commit(event.base_sha) else event.base_sha
        if event.event_type in CHANGE_REQUESTS and not compare and event.base_ref:
            # No base commit in the payload: the base branch's tip is the next best thing.
            compare = await remote.resolve_ref(base_ref(event), missing_ok=True)
        default_ref = default_sha = ""
        if event.event_type == "push" and not compare:
            # A new branch is compared with the default branch. A re-fired event whose commit
            # is mirrored reuses what the remote said last time; otherwise ask it.
            stored = mirror.read_default()
            if stored and await mirror.peel([head, stored[1]]) is not None:
                default_ref, default_sha = stored
            else:
                default_ref, default_sha = await remote.default_branch()
        wanted = list(dict.fromkeys(s for s in (head, compare, default_sha) if s))
        # Commits pinned by an earlier fetch are in the mirror, so a re-fired event needs no
        # network. Anything else is fetched without looking it up first: a new commit is the
        # usual case, and git itself skips the transfer when the objects turn out to be there.
        resolved = None
        if all(mirror.pinned(s) for s in wanted):
            resolved = await mirror.peel(wanted)
        if resolved is None:
            await self._fetch(mirror, remote, event, wanted)
        return FetchPlan(head, compare, default_ref, default_sha, tuple(wanted), resolved)

    async def _fetch(self, mirror: Mirror, remote: Remote, event: Event, shas: list[str]) -> None:
        """Fetch commits by id; fall back to refs when the server refuses ids."""
        try:
            await remote.fetch(mirror.path, [f"+{s}:{pin_ref(s)}" for s in shas])
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
        # Where the forge keeps a pull/merge request's head on the base repository (a fork's
        # commits included): refs/pull/<n>/head, GitLab's refs/merge-requests/<n>/head.
        refs.extend(remote.change_refs)
        if event.base_ref:
            refs.append(base_ref(event))
        if not refs:
            raise first_error
        await _fetch_each(mirror, remote, list(dict.fromkeys(refs)), first_error)
        # Pin what arrived, so it stays and later fetches negotiate from it.
        for sha, commit in (await mirror.peel_each(shas)).items():
            await mirror.pin(sha, commit)


async def _fetch_each(
    mirror: Mirror, remote: Remote, refs: list[str], first_error: GitError
) -> None:
    """Fetch each ref on its own (a missing request ref must not fail the others).

    Raises:
        GitError: None of them could be fetched (the last failure).
    """
    fetched_any = False
    last_error = first_error
    for ref in refs:
        try:
            await remote.fetch(mirror.path, [f"+{ref}:{fetched_ref(ref)}"])
            fetched_any = True
        except GitTimeoutError:
            raise
        except GitError as exc:
            last_error = exc
    if not fetched_any:
        raise last_error


class Remote:
    """The configured remote of one checkout, with its credentials and deadline.

    Every command puts ``--end-of-options`` before the URL and the refs, so even a value that
    bypassed validation is never read as an option.

    Args:
        git: The hardened git command.
        url: The configured clone URL.
        proto: Its transport (the only one its commands may use).
        creds: The token for it, or None.
        deadline: When (``time.monotonic()``) every command for this checkout must be done.
        change_refs: Where the remote keeps the head of the event's pull/merge request.
    """

    def __init__(
        self,
        git: GitCommand,
        url: str,
        proto: str,
        creds: Credentials | None,
        deadline: float,
        change_refs: Sequence[str] = (),
    ) -> None:
        self.git = git
        self.url = url
        self.proto = proto
        self.creds = creds
        self.deadline = deadline
        self.display = url
        self.change_refs = tuple(change_refs)
        """Where this remote keeps the head of the event's pull/merge request, if any."""

    async def fetch(self, mirror: Path, refspecs: list[str]) -> None:
        """Fetch refspecs into a (bare) repository."""
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
        """The remote's refs matching the patterns, as (value, name) rows."""
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
            if name == ref and is_commit_id(value):
                return value
        if missing_ok:
            return ""
        raise GitError(f"{ref} is not on the remote {self.display}")

    async def first_commit(self, refs: Sequence[str]) -> tuple[str, str]:
        """The first of ``refs`` the remote has, and the commit it names (tags peeled).

        One ``ls-remote`` asks for all of them; an annotated tag's own id is replaced by the
        commit it points at (the ``^{}`` line, listed only when asked for by name).

        Returns:
            (ref, commit id), or ("", "") when the remote has none of them.
        """
        found: dict[str, str] = {}
        patterns = [p for ref in refs for p in (ref, ref + "^{}")]
        for value, name in await self.ls_remote(*patterns):
            if is_commit_id(value):
                found[name] = value
        for ref in refs:
            sha = found.get(ref + "^{}") or found.get(ref)
            if sha:
                return ref, sha
        return "", ""

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
            elif right == "HEAD" and is_commit_id(left):
                sha = left
        return (ref, sha) if ref and sha else ("", "")
