"""The poller: checks the branches and tags of the repositories that say ``poll:``.

For a server no webhook reaches. Each polled repository has its own task: it lists the
remote's branches and tags with ``git ls-remote`` (the engine's hardened git, with the
repository's clone URL and token exactly as a fetch uses them; the output and the time are
bounded), compares them with the refs its last poll stored, and stores each change as the
event a webhook would have given, through the same store and engine as a delivery
(:mod:`pocketci_tui.polling.changes`). Nothing here blocks the event loop: git runs as a child
process, the store on its own threads.

* **Spread.** The first poll of each repository comes at a random point of its interval and
  every wait varies by :attr:`PollTiming.jitter`, so many repositories never poll in step.
* **First poll.** A repository never polled before has its refs recorded and nothing run:
  what was there before polling started is not news.
* **Restarts.** The known refs are in the store, replaced in the same transaction as the
  events of a poll, so a restart neither repeats a change nor loses one made while down.
* **Floods.** At most :attr:`PollTiming.max_changes` changes of one poll become events
  (branches first); the rest are recorded as seen, not run, and said as a warning.
* **Failures** back off exponentially (with jitter, up to :attr:`PollTiming.max_backoff`) and
  show as a problem on the repository until a poll succeeds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Protocol

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.engine.git import GitCommand, GitError, default_clone_url
from pocketci_tui.engine.git.fetch import Fetcher, Remote
from pocketci_tui.forges import Registry, default_registry
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.logging_setup import safe_text
from pocketci_tui.model import StoredEvent, utcnow
from pocketci_tui.polling.changes import (
    ListingError,
    RefChange,
    diff_refs,
    parse_listing,
    polled_change,
)
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Store, StoreError

__all__ = [
    "ALLOWED_PROTOCOLS",
    "MAX_LISTING_BYTES",
    "PollError",
    "PollTiming",
    "Poller",
    "ProblemBoard",
    "StoredSink",
    "polled_repos",
    "problem_key",
]

log = logging.getLogger("pocketci_tui.polling")

MAX_LISTING_BYTES = 8 * 1024 * 1024
"""The most bytes of ``git ls-remote`` output read (about 80,000 refs)."""

PARSE_IN_THREAD = 64 * 1024
"""Listings larger than this (about 700 refs) are read in a worker thread, off the loop."""

ALLOWED_PROTOCOLS = ("https", "http", "ssh", "file")
"""Transports a polled clone URL may use: those the workspace fetches with."""

SECRET_TIMEOUT = 10.0
"""Seconds the secret store gets to hand over a clone token."""


class StoredSink(Protocol):
    """Where stored events go: the engine (the same sink the intake hands deliveries to)."""

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Take a stored event; never waits for a build."""
        ...


class ProblemBoard(Protocol):
    """Where the poller shows and clears a repository's problem (the engine's live state)."""

    def raise_problem(self, problem: Problem) -> None:
        """Record a problem, replacing an earlier one with the same key."""
        ...

    def clear_problems(self, *keys: str) -> None:
        """Forget the problems with these keys."""
        ...


class PollError(Exception):
    """A poll failed; the message says why and never holds a secret."""


@dataclass(frozen=True, slots=True)
class PollTiming:
    """How often and how long the poller works.

    Attributes:
        interval: Seconds between polls of every repository, instead of its ``poll``: a
            seam for tests and benchmarks, which need shorter intervals than the config's
            minimum. None uses each repository's own.
        timeout: Seconds one ``git ls-remote`` may take.
        max_backoff: The longest wait after failures.
        jitter: How much each wait varies, as a fraction of it (0.1: ±10%).
        concurrency: Polls running at once, across repositories.
        max_changes: The most changes one poll turns into events; the rest are recorded as
            seen and not run (a mass import of tags must not queue a build for each).
    """

    interval: float | None = None
    timeout: float = 60.0
    max_backoff: float = 30 * 60.0
    jitter: float = 0.1
    concurrency: int = 8
    max_changes: int = 100


def polled_repos(settings: Settings) -> list[RepoConfig]:
    """The configured repositories that are polled."""
    return [repo for repo in settings.repos if repo.poll > 0]


def problem_key(repo: RepoConfig) -> str:
    """The key of a repository's polling problem."""
    return f"poll:{repo.vendor}:{repo.name.lower()}"


def backoff(interval: float, failures: int, cap: float) -> float:
    """The wait after ``failures`` failures in a row: the interval doubled each time, capped
    (never shorter than the interval)."""
    return float(max(interval, min(cap, interval * 2.0 ** min(failures, 30))))


class Poller:
    """Polls the repositories that say ``poll:`` and stores what changed.

    Args:
        settings: The configuration; :meth:`use` replaces it.
        store: Where changes and known refs are stored.
        secrets: Holds the clone tokens.
        sink: Told about every stored change (the engine).
        problems: Where a repository's polling problem is shown.
        git: The hardened git command.
        timing: Intervals, time limits and backoff.
        forges: The forges (the built-in ones if None).
        rng: Randomness for the jitter.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        secrets: SecretStore,
        sink: StoredSink,
        problems: ProblemBoard,
        git: GitCommand,
        timing: PollTiming | None = None,
        forges: Registry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.secrets = secrets
        self.sink = sink
        self.problems = problems
        self.timing = timing or PollTiming()
        self.forges = forges or default_registry()
        self.fetcher = Fetcher(
            git, timeout=self.timing.timeout, allowed_protocols=ALLOWED_PROTOCOLS
        )
        self._rng = rng or random.Random()
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max(1, self.timing.concurrency))
        self.polls = 0
        """Polls started (for benchmarks and tests)."""
        self.completed = 0
        """Polls that succeeded: what they saw is stored."""
        self.failures = 0
        """Polls that failed."""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start polling every repository that says ``poll:``."""
        self._sync()

    def use(self, settings: Settings) -> None:
        """Use a reloaded configuration: newly polled repositories start, dropped ones stop
        after their current wait."""
        self.settings = settings
        self._sync()

    async def stop(self) -> None:
        """Stop every poll (a running ``git`` is killed) and wait for them."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> int:
        """How many repositories are being polled."""
        return sum(1 for task in self._tasks.values() if not task.done())

    def _sync(self) -> None:
        for repo in polled_repos(self.settings):
            key = (repo.vendor, repo.name.lower())
            task = self._tasks.get(key)
            if task is None or task.done():
                self._tasks[key] = asyncio.create_task(
                    self._loop(key), name=f"poll-{repo.vendor}-{repo.name}"
                )

    def _repo(self, key: tuple[str, str]) -> RepoConfig | None:
        for repo in polled_repos(self.settings):
            if (repo.vendor, repo.name.lower()) == key:
                return repo
        return None

    def _interval(self, repo: RepoConfig) -> float:
        return self.timing.interval if self.timing.interval is not None else repo.poll

    def _jittered(self, seconds: float) -> float:
        spread = self.timing.jitter
        return seconds * self._rng.uniform(1 - spread, 1 + spread)

    # -- the loop of one repository -------------------------------------------------------------

    async def _loop(self, key: tuple[str, str]) -> None:
        repo = self._repo(key)
        if repo is None:
            return
        delay = self._rng.uniform(0, self._interval(repo))  # spread the first polls
        failures = 0
        while True:
            await asyncio.sleep(delay)
            repo = self._repo(key)
            if repo is None:  # no longer polled (a reload)
                self.problems.clear_problems(f"poll:{key[0]}:{key[1]}")
                self._tasks.pop(key, None)
                return
            interval = self._interval(repo)
            try:
                async with self._slots:
                    await self.poll_once(repo)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.failures += 1
                delay = self._jittered(backoff(interval, failures, self.timing.max_backoff))
                self._failed(repo, exc, failures, delay)
                continue
            self.completed += 1
            if failures:
                log.info("polling %s works again", repo.name)
                self.problems.clear_problems(problem_key(repo))
                failures = 0
            delay = self._jittered(interval)

    def _failed(self, repo: RepoConfig, exc: Exception, failures: int, delay: float) -> None:
        expected = (PollError, GitError, ListingError, StoreError, SecretStoreError, ValueError)
        reason = str(exc) if isinstance(exc, expected) else f"internal error: {exc!r}"
        if not isinstance(exc, expected):
            log.exception("polling %s failed", repo.name)
        elif failures == 1:
            log.warning("polling %s failed: %s", repo.name, safe_text(reason, 500))
        self.problems.raise_problem(
            Problem(
                key=problem_key(repo),
                short=f"polling {repo.name} fails",
                detail=(
                    f"cannot poll {repo.name} ({repo.vendor}), {failures} time(s) in a row: "
                    f"{safe_text(reason, 500)}; next try in {_seconds(delay)}"
                ),
                fix="check the repository's clone-url and token, and that the forge is "
                "reachable from here",
            )
        )

    # -- one poll -------------------------------------------------------------------------------

    async def poll_once(self, repo: RepoConfig) -> list[tuple[StoredEvent, bool]]:
        """Poll one repository now: list its refs, store what changed, hand it on.

        Returns:
            The stored events of the changes (none on a first poll), and whether each was
            reported before (a webhook, an earlier poll).

        Raises:
            PollError: The token cannot be read.
            GitError: The remote could not be listed.
            ListingError: The remote has too many refs.
            StoreError: Nothing could be stored.
            ValueError: No clone URL can be made for the repository.
        """
        self.polls += 1
        forge = self.forges[repo.vendor]
        seen = await self.list_refs(repo)
        known = await self.store.polls.known_refs(repo.vendor, repo.name)
        if known is None:
            await self.store.polls.record(repo.vendor, repo.name, seen)
            log.info(
                "first poll of %s: %d branch(es) and tag(s) recorded, nothing run",
                repo.name,
                len(seen),
            )
            return []
        changes = diff_refs(known, seen)
        if not changes:
            return []
        self._note_flood(repo, changes[self.timing.max_changes :])
        changes = changes[: self.timing.max_changes]
        now = utcnow()
        polled = [polled_change(forge, repo.name, change, now) for change in changes]
        results = await self.store.polls.record(repo.vendor, repo.name, seen, polled)
        for stored, duplicate in results:
            try:
                await self.sink.submit(stored, duplicate)
            except Exception:  # stored: a restart dispatches it
                log.exception("the engine failed to take polled event %s", stored.event.id)
        return results

    def _note_flood(self, repo: RepoConfig, skipped: list[RefChange]) -> None:
        """Say which changes of a poll were recorded as seen without running them; the warning
        stays until a later poll has changes again, all of them run."""
        key = f"{problem_key(repo)}:skipped"
        if not skipped:
            self.problems.clear_problems(key)
            return
        shown = ", ".join(safe_text(c.ref, 80) for c in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        detail = (
            f"{len(skipped)} change(s) of {repo.name} seen in one poll were recorded without "
            f"running them (more than {self.timing.max_changes} at once): {shown}{more}"
        )
        log.warning("%s", detail)
        self.problems.raise_problem(
            Problem(
                key=key,
                short=f"{repo.name}: changes not run",
                detail=detail,
                fix="push to a branch again (or re-create a tag) to run it",
                warning=True,
            )
        )

    async def list_refs(self, repo: RepoConfig) -> dict[str, str]:
        """The remote's branches and tags, ``{ref: id}``, as one ``git ls-remote`` lists them.

        Raises:
            PollError, GitError, ListingError, ValueError: See :meth:`poll_once`.
        """
        url = repo.clone_url or default_clone_url(
            repo.vendor, repo.name, self.settings.forge_url(repo.vendor)
        )
        token = await self._token(repo)
        remote = await self.fetcher.remote(url, token, username=git_access(repo.vendor).username)
        result = await _ls_remote(remote, self.timing.timeout)
        if len(result) <= PARSE_IN_THREAD:
            return parse_listing(result)
        return await asyncio.to_thread(parse_listing, result)

    async def _token(self, repo: RepoConfig) -> str | None:
        if not repo.token:
            return None
        try:
            token = await asyncio.wait_for(self.secrets.get(repo.token), SECRET_TIMEOUT)
        except TimeoutError:
            raise PollError("the secret store did not answer for the clone token") from None
        if not token:
            raise PollError(
                f"the clone token {repo.token!r} is not set: run "
                f"`pocketci-tui secrets set {repo.token}`"
            )
        return token


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"


async def _ls_remote(remote: Remote, time_limit: float) -> str:
    """One bounded ``git ls-remote`` of the branches and tags (not peeled: a tag's own id,
    which is what forges report as a tag push's ``after``)."""
    result = await remote.git.run(
        ["ls-remote", "--heads", "--tags", "--refs", "--end-of-options", remote.url],
        protocols=[remote.proto],
        credentials=remote.creds,
        time_limit=time_limit,
        what=f"list refs of {remote.display}",
        max_output=MAX_LISTING_BYTES,
    )
    return result.stdout.decode("utf-8", "replace")
