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

Every payload value is validated before any git command sees it (:func:`.refs.check_event`,
by the rules of :mod:`pocketci_tui.gitrefs` the intake applies too), and the commands put
``--end-of-options`` before them anyway.

The workspace is made of parts, each owning its own state and given what it needs when it is
made: a :class:`~.mirror.Mirror` per repository (the bare mirror, its lock and its upkeep), one
:class:`~.fetch.Fetcher` (the only way to the network: clone URL checks, credentials, deadlines,
fetching what an event names) and one :class:`~.checkout.Checkouts` (laying out checkouts,
writing their files, their changed files, removing and pruning them). :class:`Workspace` wires
them and keeps the API its callers use; :mod:`.refs` checks the payload values first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from pocketci_tui.engine.git.checkout import Checkout, Checkouts
from pocketci_tui.engine.git.command import DEFAULT_USERNAME, GitCommand
from pocketci_tui.engine.git.fetch import Fetcher
from pocketci_tui.engine.git.mirror import Mirror, MirrorLimits
from pocketci_tui.engine.git.refs import check_event, check_refs, repo_dir_name
from pocketci_tui.model import Event

__all__ = ["Workspace"]


class Workspace:
    """Mirrors and checkouts under one root directory.

    Args:
        root: The workspace directory (created when first needed).
        timeout: Time limit, in seconds, for everything one :meth:`checkout` does with the
            network (all its git commands together).
        allowed_protocols: Transports a configured clone URL may use. ``ext`` and ``fd`` are
            never allowed. Each git command allows exactly the transport of its clone URL.
        git: The git executable.
        mirror_limits: When a mirror's upkeep compacts it.
    """

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 300.0,
        allowed_protocols: Sequence[str] = ("https", "http", "ssh", "file"),
        git: str = "git",
        mirror_limits: MirrorLimits | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.timeout = timeout
        self.git = GitCommand(self.root / "home", timeout=timeout, git=git)
        """The hardened git command every part runs git with."""
        self.fetcher = Fetcher(self.git, timeout=timeout, allowed_protocols=allowed_protocols)
        """Talks to the configured remotes."""
        self.checkouts = Checkouts(self.root / "checkouts", self.git)
        """The checkouts, and the changed files of their events."""
        self.mirror_limits = mirror_limits or MirrorLimits()
        self._mirrors: dict[Path, Mirror] = {}

    @property
    def allowed_protocols(self) -> frozenset[str]:
        """The transports a configured clone URL may use."""
        return self.fetcher.allowed_protocols

    def mirror(self, repo_key: str) -> Mirror:
        """The mirror of a configured repository (the same object for every event)."""
        path = self.mirror_path(repo_key)
        mirror = self._mirrors.get(path)
        if mirror is None:
            mirror = self._mirrors[path] = Mirror(path, self.git, self.mirror_limits)
        return mirror

    def mirror_path(self, repo_key: str) -> Path:
        """Where the mirror of a configured repository lives."""
        return self.root / "mirrors" / f"{repo_dir_name(repo_key)}.git"

    def checkouts_dir(self, repo_key: str) -> Path:
        """The directory holding the checkouts of a configured repository."""
        return self.checkouts.dir_for(repo_key)

    def check_clone_url(self, clone_url: str) -> str:
        """Validate a configured clone URL and return the transport it uses.

        Raises:
            GitInputError: Empty, option-like, or a transport that is not allowed.
        """
        return self.fetcher.check_clone_url(clone_url)

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
        check_event(event)
        remote = await self.fetcher.remote(
            clone_url, token, username=username, change_refs=change_refs
        )
        mirror = self.mirror(repo_key)
        async with mirror.lock:
            await mirror.ensure("sha256" if len(event.sha or event.base_sha) == 64 else "sha1")
            plan = await self.fetcher.fetch_for_event(mirror, remote, event)
            # The checkout's repository (its packs are links to the mirror's) is laid out
            # while git peels what was fetched.
            checkout = await self.checkouts.lay_out(repo_key, mirror, plan, event, remote.display)
        await self.checkouts.check_out(checkout, event)
        mirror.schedule_upkeep()
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
        check_refs(refs)
        remote = await self.fetcher.remote(clone_url, token, username=username)
        return await self.fetcher.commit_of(remote, refs)

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
        return await self.checkouts.changed_files(checkout, event)

    async def remove(self, checkout: Checkout) -> None:
        """Delete a checkout directory (the mirror stays)."""
        await self.checkouts.remove(checkout)

    async def prune(self, keep: int) -> int:
        """Remove all but the ``keep`` newest checkouts of every repository.

        Args:
            keep: How many checkouts to keep per repository (0 removes all).

        Returns:
            How many checkouts were removed.
        """
        return await self.checkouts.prune(keep)

    async def upkeep_done(self) -> None:
        """Wait until the upkeep running on any mirror has ended (its failure is not raised).

        The upkeep starts on its own after a checkout that made a mirror grow; this is for
        whoever needs the mirrors settled (a shutdown, a test, a benchmark).
        """
        await asyncio.gather(*(mirror.upkeep_done() for mirror in list(self._mirrors.values())))
