"""The dispatch pipeline: from one stored event to its runs.

For each event a dispatch worker takes from the queue, the pipeline checks what the
configuration allows (repository, deletions, fork pull requests, ref and sha), checks the
repository out, reads its ``pocketci.yaml``, loads the module's catalog, matches its functions
against the event, stores one run per function and starts a task for each matched one
(:mod:`~pocketci_tui.engine.dispatch.runs`). Every step and outcome is published as a notice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace

from pocketci_tui.config import (
    ConfigError,
    RepoConfig,
    Settings,
    load_repo_spec,
    resolve_module_dir,
)
from pocketci_tui.engine.dagger import CatalogError, module_content_key
from pocketci_tui.engine.dispatch import secret_grants
from pocketci_tui.engine.dispatch.engine_base import _EventWork, _Live
from pocketci_tui.engine.dispatch.queue import DispatchRequest
from pocketci_tui.engine.dispatch.runs import RunExecution
from pocketci_tui.engine.dispatch.secret_grants import RunSecrets
from pocketci_tui.engine.git import (
    Checkout,
    GitError,
    Workspace,
    default_clone_url,
    validate_ref,
    validate_sha,
)
from pocketci_tui.engine.match import MAX_RUNS_PER_EVENT, RUN_CAP_REASON, match, paths_allow
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.forges.registry import forge_for
from pocketci_tui.model import (
    Decision,
    Event,
    EventMatched,
    EventStatus,
    FunctionCall,
    MatchInputs,
    MatchResult,
    Run,
    RunState,
    RunUpdated,
    StoredEvent,
    utcnow,
)
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import SecretStoreError

SECRET_RETRY_SECONDS = 30.0
"""How long an event that needs an unreachable secret store waits before trying again."""


_COMMIT_IN_PAYLOAD = frozenset({"push", "tag", "pull_request"})
"""Event types whose payload must name the commit; the others are resolved on the remote."""

log = logging.getLogger(__name__)

MAX_STORED_CHANGES = 20_000
"""Changed files kept for the fire picker's preview; an event with more has no preview."""

HELD = "held:"
"""How the detail of an event held for an unreachable secret store starts."""


class EventPipeline(RunExecution):
    """The part of the engine that dispatches one event (see :class:`EngineBase` for its state)."""

    async def _dispatch(
        self, event_id: int, only: frozenset[str] | None, parent_id: str | None
    ) -> None:
        stored = await self.store.get_event(event_id)
        if stored is None:
            return
        event = stored.event
        repo = self.settings.repo_for(event.vendor, event.repository)
        if repo is None:
            await self._set_status(
                event_id, EventStatus.IGNORED, f"{event.repository} is not in the config"
            )
            return
        if event.deleted:
            await self._set_status(event_id, EventStatus.IGNORED, "deleted: nothing to build")
            return
        fork_mode = self.settings.fork_pull_requests
        if event.is_fork:
            if fork_mode == "skip":
                await self._set_status(
                    event_id,
                    EventStatus.SKIPPED,
                    "fork pull request: not built (fork-pull-requests: skip)",
                )
                return
            if fork_mode == "approve" and stored.approved_sha != event.sha:
                why = "fork pull request: waiting for approval of " + event.sha[:12]
                if stored.approved_sha:
                    why += f" (approved {stored.approved_sha[:12]}, a newer commit came)"
                await self._set_status(event_id, EventStatus.WAITING, why)
                return
        try:
            if event.ref:
                validate_ref(event.ref)
            if event.sha or event.event_type in _COMMIT_IN_PAYLOAD:
                validate_sha(event.sha)
        except ValueError as exc:
            await self._set_status(event_id, EventStatus.ERROR, f"refused: {exc}")
            return

        self._progress(event_id, "checking out")
        token = None
        if repo.token:
            try:
                token = await self.secrets.get(repo.token)
            except SecretStoreError as exc:
                await self._hold(event_id, only, parent_id, exc)
                return
            self.problems_found.clear("secret-store")  # it answered
            if token is None:
                await self._set_status(
                    event_id,
                    EventStatus.ERROR,
                    f"the clone token {repo.token!r} is not in the secret store; "
                    f"run `pocketci-tui secrets set {repo.token}`",
                )
                return
        if not event.sha:
            # A release, a created branch or tag, or a repository-level event (issues...):
            # the remote says which commit it refers to.
            try:
                ref, sha = await self.workspace.resolve_commit(
                    _clone_url(self.settings, repo, event.repository),
                    token,
                    forge_for(event.vendor).commit_refs(event),
                    username=git_access(repo.vendor).username,
                )
            except (GitError, ValueError) as exc:
                await self._set_status(
                    event_id, EventStatus.ERROR, f"cannot tell which commit to build: {exc}"
                )
                return
            event = replace(event, ref=ref, sha=sha)
            stored = replace(stored, event=event)
            await self.store.set_event_commit(event_id, ref, sha)
            source = forge_for(event.vendor).commit_source(event)
            self._progress(event_id, f"checking out {ref} at {sha[:12]} ({source})")
        try:
            checkout = await _checkout(self.workspace, self.settings, repo, token, event)
        except (GitError, ValueError) as exc:
            self._check_git()
            await self._set_status(event_id, EventStatus.ERROR, f"checkout failed: {exc}")
            return
        self.problems_found.clear("git")
        keep = False
        try:
            keep = await self._match_and_start(stored, repo, checkout, only, parent_id, token)
        finally:
            if not keep:
                await self.workspace.remove(checkout)

    async def _hold(
        self, event_id: int, only: frozenset[str] | None, parent_id: str | None, exc: Exception
    ) -> None:
        """Hold an event whose secrets cannot be read, and try it again later."""
        self.problems_found.raise_problem(
            Problem(
                key="secret-store",
                short="secret store not answering",
                detail=f"the secret store did not answer ({exc}): events that need a secret are "
                f"held and tried again every {SECRET_RETRY_SECONDS:.0f}s",
                fix="unlock the keyring or check it with `pocketci-tui check`",
            )
        )
        await self._set_status(
            event_id,
            EventStatus.WAITING,
            f"{HELD} the secret store did not answer ({exc}); trying again in "
            f"{SECRET_RETRY_SECONDS:.0f}s",
        )

        async def retry() -> None:
            await asyncio.sleep(SECRET_RETRY_SECONDS)
            self._queue.put(DispatchRequest(event_id, only, parent_id))

        self._spawn(retry(), f"retry-{event_id}")

    async def _match_and_start(
        self,
        stored: StoredEvent,
        repo: RepoConfig,
        checkout: Checkout,
        only: frozenset[str] | None,
        parent_id: str | None,
        token: str | None,
    ) -> bool:
        """Match the checkout's module against the event and start the runs.

        Returns:
            True when runs were started (they remove the checkout when the last one ends).
        """
        event = stored.event
        event_id = stored.event.id
        assert event_id is not None
        try:
            spec = await asyncio.to_thread(load_repo_spec, checkout.path)
            module_dir = await asyncio.to_thread(
                resolve_module_dir, checkout.path, spec.module_path
            )
        except ConfigError as exc:
            await self._set_status(event_id, EventStatus.ERROR, str(exc))
            return False
        changes = await self.workspace.changed_files(checkout, event)
        try:
            # The patterns come from the repository: compile and apply them off the loop.
            allowed = not spec.paths or await asyncio.to_thread(paths_allow, spec.paths, changes)
        except ValueError as exc:
            await self._set_status(event_id, EventStatus.ERROR, f"pocketci.yaml: paths: {exc}")
            return False
        if not allowed:
            await self._set_status(
                event_id,
                EventStatus.SKIPPED,
                "no changed file matches the paths of pocketci.yaml",
            )
            return False
        self._progress(event_id, "loading the Dagger module")
        try:
            key = await module_content_key(checkout.path, module_dir, git=self.workspace.git)
            catalog = await self.catalog.load(module_dir, key)
        except CatalogError as exc:
            self.problems_found.raise_problem(
                Problem(
                    key="dagger",
                    short="dagger failed",
                    detail=f"dagger: {exc}",
                    fix="check the dagger CLI and engine with `pocketci-tui check`",
                )
            )
            await self._set_status(event_id, EventStatus.ERROR, f"module: {exc}")
            return False
        self.problems_found.clear("dagger")  # a module loaded: dagger works
        no_secrets = event.is_fork and self.settings.fork_pull_requests == "no-secrets"
        secret_names = () if no_secrets else spec.secret_names
        if only is None and (changes is None or len(changes) <= MAX_STORED_CHANGES):
            # Kept for the fire picker's preview; written in the background, so the first
            # `dagger call` does not wait for it.
            inputs = MatchInputs(
                key, tuple(secret_names), tuple(changes) if changes is not None else None
            )
            self._spawn(self._save_inputs(event_id, inputs), f"inputs-{event_id}")
        # The catalog's names and defaults come from the repository's module: off the loop.
        result = await asyncio.to_thread(match, catalog, event, changes, secret_names, only=only)
        if only is not None:
            result = MatchResult(
                result.tier, tuple(d for d in result.decisions if d.function in only)
            )
            if not result.calls:
                await self._refuse_rerun(stored, only, result, parent_id)
                return False
        self._publish(EventMatched(event_id, result))

        attempt = await self.store.max_attempt(event_id) + 1
        runs, calls = self._new_runs(event_id, result.decisions, attempt, parent_id)
        await self.store.add_runs(runs)
        for run in runs:
            self._publish(RunUpdated(run))
        if not calls:
            if result.decisions:
                detail = "no function matched (see the reasons of each)"
            else:
                detail = f"no function of the module {catalog.module_name!r} is a trigger"
            await self._set_status(event_id, EventStatus.SKIPPED, detail)
            return False

        given = RunSecrets()
        if not no_secrets:
            given = await secret_grants.resolve(spec, repo, self.secrets, os.environ)
            await self._load_cloud_token()  # set or fixed since the last event: used now
        work = _EventWork(
            stored=stored,
            checkout=checkout,
            module_dir=module_dir,
            changes=changes,
            secrets=given.values,
            missing_secrets=given.missing,
            refused_secrets=given.refused,
            no_secrets=no_secrets,
            pending=len(calls),
        )
        extra_mask = [token] if token else []
        detail = f"{len(calls)} of {len(runs)} functions matched"
        capped = sum(1 for d in result.decisions if d.reason.startswith(RUN_CAP_REASON))
        if capped:
            detail += (
                f"; {capped} more matched but were not run: at most {MAX_RUNS_PER_EVENT} "
                "runs per event"
            )
        if given.refused:
            detail += "; " + secret_grants.refused_detail(spec, given.refused)
        await self._set_status(
            event_id, EventStatus.DISPATCHED, _dispatched_detail(stored, only, detail)
        )
        for run, call in calls:
            live = _Live(run)
            self._live[run.id] = live
            live.task = asyncio.create_task(
                self._execute(live, call, work, extra_mask), name=f"run-{run.id}"
            )
        return True

    async def _save_inputs(self, event_id: int, inputs: MatchInputs) -> None:
        try:
            await self.store.save_match_inputs(event_id, inputs)
        except Exception:
            log.exception("cannot keep what event %s was matched against", event_id)

    async def preview(self, event_id: int) -> MatchResult | None:
        """What firing a stored event again would match, without running anything.

        The stored event is matched against the catalog its last dispatch loaded (from the
        catalog cache, never introspected), with the changed files and secret names of that
        dispatch: no checkout, no ``dagger``.

        Args:
            event_id: The stored event.

        Returns:
            The match result, or None when it cannot be told without running something (the
            event never reached matching, its repository is no longer configured, or the
            catalog left the cache).
        """
        stored = await self.store.get_event(event_id)
        if stored is None or stored.event.deleted:
            return None
        event = stored.event
        if self.settings.repo_for(event.vendor, event.repository) is None:
            return None
        inputs = await self.store.match_inputs(event_id)
        if inputs is None:
            return None
        catalog = await self.catalog.cached(inputs.module_key)
        if catalog is None:
            return None
        changes = list(inputs.changes) if inputs.changes is not None else None
        if changes is not None and len(changes) > 500:
            return await asyncio.to_thread(match, catalog, event, changes, inputs.secret_names)
        return match(catalog, event, changes, inputs.secret_names)

    async def _refuse_rerun(
        self,
        stored: StoredEvent,
        only: frozenset[str],
        result: MatchResult,
        parent_id: str | None,
    ) -> None:
        """Record a re-run of functions that no longer match as skipped runs, with the reason.

        The event keeps its status and detail: they say what its dispatch matched, and a
        refused re-run changes nothing of that.
        """
        event_id = stored.event.id
        assert event_id is not None
        reasons = {d.function: d.reason for d in result.decisions}
        attempt = await self.store.max_attempt(event_id) + 1
        now = utcnow()
        runs = [
            Run(
                id=uuid.uuid4().hex,
                event_id=event_id,
                function=function,
                state=RunState.SKIPPED,
                attempt=attempt,
                reason="re-run refused: "
                + reasons.get(function, "the module no longer has this function"),
                created_at=now,
                finished_at=now,
                parent_id=parent_id,
            )
            for function in sorted(only)
        ]
        await self.store.add_runs(runs)
        for run in runs:
            self._publish(RunUpdated(run))
        await self._set_status(event_id, stored.status, stored.detail)

    def _new_runs(
        self,
        event_id: int,
        decisions: Sequence[Decision],
        attempt: int,
        parent_id: str | None,
    ) -> tuple[list[Run], list[tuple[Run, FunctionCall]]]:
        now = utcnow()
        runs: list[Run] = []
        calls: list[tuple[Run, FunctionCall]] = []
        for decision in decisions:
            run_id = uuid.uuid4().hex
            args: tuple[tuple[str, str], ...] = ()
            if decision.call is not None:
                args = decision.call.args + tuple(("secret", s) for s in decision.call.secrets)
            run = Run(
                id=run_id,
                event_id=event_id,
                function=decision.function,
                state=RunState.QUEUED if decision.matched else RunState.SKIPPED,
                attempt=attempt,
                args=args,
                reason="" if decision.matched else decision.reason,
                created_at=now,
                log_path=f"{event_id}/{run_id}.log" if decision.matched else "",
                parent_id=parent_id,
            )
            runs.append(run)
            if decision.matched and decision.call is not None:
                calls.append((run, decision.call))
        return runs, calls


def _dispatched_detail(stored: StoredEvent, only: frozenset[str] | None, matched: str) -> str:
    """The detail of a dispatched event: what its dispatch matched.

    A re-run of some functions keeps the detail of the dispatch it re-runs ("3 of 5 functions
    matched"), so the match result is never replaced by the re-run's own, smaller one.

    Args:
        stored: The event as it was when this dispatch began.
        only: The functions re-run, or None for a full dispatch.
        matched: What this dispatch matched ("1 of 1 functions matched").
    """
    if only is None:
        return matched
    if stored.status is EventStatus.DISPATCHED and stored.detail:
        return stored.detail
    return "re-run of " + ", ".join(sorted(only))


def _repo_key(repo: RepoConfig, repository: str) -> str:
    """The workspace key of a repository: its own name (config globs can cover several)."""
    return f"{repo.vendor}/{repository.lower()}"


def _clone_url(settings: Settings, repo: RepoConfig, repository: str) -> str:
    """Where a repository is fetched from: its ``clone-url``, else derived from its forge.

    Never a URL from the payload: only the event's repository name, which the configured
    repository matched, is used, with the forge's base URL from the config.
    """
    if repo.clone_url:
        return repo.clone_url
    return default_clone_url(repo.vendor, repository, _forge_url(settings, repo.vendor))


def _forge_url(settings: Settings, vendor: str) -> str:
    """The base URL configured for a forge (``forges.<vendor>.url``), or its public host."""
    return settings.forge_url(vendor)


async def _checkout(
    workspace: Workspace, settings: Settings, repo: RepoConfig, token: str | None, event: Event
) -> Checkout:
    """Check an event's commit out, fetched the way its forge serves git.

    The forge decides the user sent with the token and where a pull/merge request's head is
    kept on the base repository (a fork's commits included).
    """
    access = git_access(repo.vendor)
    return await workspace.checkout(
        _repo_key(repo, event.repository),
        _clone_url(settings, repo, event.repository),
        token,
        event,
        username=access.username,
        change_refs=access.change_refs(event.pr_number),
    )
