"""Fetching what one event needs into the mirror.

An event needs its commit and what its changed files are computed against: the pull request's
base (or the base branch's tip), the push's ``before``, or for a new branch the remote's default
branch (recorded in the mirror, and asked of the remote again only when that record does not
serve). Commits pinned by an earlier fetch need no network. Anything else is fetched by id in one
``git fetch``; a server that refuses unadvertised commits is asked for the refs that should hold
them instead (the event's ref, the forge's pull/merge request head ref, the base branch), one at a
time, and what arrives is pinned. Failures no other request could fix (a refused token, an
unreachable host) end the attempt at once, so a refused token is never sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pocketci_tui.engine.git.command import (
    Credentials,
    GitCommand,
    GitError,
    GitTimeoutError,
    deadline_left,
)
from pocketci_tui.engine.git.mirror import (
    _PIN_PREFIX,
    _MirrorOps,
    _pinned,
    _read_default,
)
from pocketci_tui.gitrefs import is_commit_id, is_no_commit, validate_ref
from pocketci_tui.model import Event

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


class _FetchOps(_MirrorOps):
    """Fetching for an event, for :class:`~pocketci_tui.engine.git.workspace.Workspace`."""

    @staticmethod
    def _base_ref(event: Event) -> str:
        ref = event.base_ref
        if ref and not ref.startswith("refs/"):
            ref = "refs/heads/" + ref
        return ref

    async def _fetch_for_event(self, mirror: Path, remote: _Remote, event: Event) -> _Plan:
        """Fetch what the event needs into the mirror.

        Returns:
            The ids, and their commits when they were looked up (re-fired events); None
            there after a fetch, for :meth:`_resolve_fetched`.
        """
        head = event.sha or await remote.resolve_ref(event.ref)
        compare = "" if is_no_commit(event.base_sha) else event.base_sha
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
        # Where the forge keeps a pull/merge request's head on the base repository (a fork's
        # commits included): refs/pull/<n>/head, GitLab's refs/merge-requests/<n>/head.
        refs.extend(remote.change_refs)
        base_ref = self._base_ref(event)
        if base_ref:
            refs.append(base_ref)
        refspecs = [
            f"+{r}:{_PIN_PREFIX}remote/{r.removeprefix('refs/')}" for r in dict.fromkeys(refs)
        ]
        if not refspecs:
            raise first_error
        # Fetch each ref on its own; a missing request ref must not fail the others.
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


class _Remote:
    """The configured remote of one checkout, with its credentials and deadline."""

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
