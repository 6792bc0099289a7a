"""The dispatch pipeline: from one stored event to its runs.

For each request a dispatch worker takes from the queue, the pipeline checks what the
configuration allows (:mod:`~pocketci_tui.engine.dispatch.admission`), checks the
repository out, reads its ``pocketci.yaml``, loads the module's catalog, matches its functions
against the event, stores one run per function and hands each matched one to the run executor
(:mod:`~pocketci_tui.engine.dispatch.executor`). Every step and outcome is published as a notice.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pocketci_tui.config import (
    ConfigError,
    RepoConfig,
    RepoSpec,
    Settings,
    load_repo_specs,
    resolve_module_dir,
)
from pocketci_tui.engine.dagger import Catalog, CatalogError, module_content_key
from pocketci_tui.engine.dispatch import secret_grants
from pocketci_tui.engine.dispatch.admission import Refusal, admit
from pocketci_tui.engine.dispatch.executor import EventWork, PendingRuns, RunExecutor
from pocketci_tui.engine.dispatch.live import LiveState
from pocketci_tui.engine.dispatch.notices import EventStatuses, Publish, Spawn
from pocketci_tui.engine.dispatch.queue import DispatchRequest
from pocketci_tui.engine.dispatch.recovery import HELD
from pocketci_tui.engine.dispatch.repos import check_out, clone_url, git_auth
from pocketci_tui.engine.dispatch.runs import (
    cap_runs,
    dispatched_detail,
    matched_detail,
    new_runs,
    refused_reruns,
)
from pocketci_tui.engine.dispatch.secret_grants import RunSecrets
from pocketci_tui.engine.git import Checkout, GitError, Workspace
from pocketci_tui.engine.match import match, paths_allow
from pocketci_tui.forges.registry import forge_for
from pocketci_tui.model import (
    EventMatched,
    EventStatus,
    FunctionCall,
    MatchInputs,
    MatchResult,
    ModuleCatalog,
    Run,
    RunUpdated,
    StoredEvent,
)
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Store

SECRET_RETRY_SECONDS = 30.0
"""How long an event that needs an unreachable secret store waits before trying again."""

log = logging.getLogger(__name__)

MAX_STORED_CHANGES = 20_000
"""Changed files kept for the fire picker's preview; an event with more has no preview."""


class _Halt(Exception):
    """A step ended the dispatch; the status to record (None: the step recorded it)."""

    def __init__(self, status: EventStatus | None = None, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Module:
    """The Dagger module a checkout holds, as loaded for matching."""

    spec: RepoSpec
    module_dir: Path
    changes: list[str] | None
    catalog: ModuleCatalog
    key: str


class EventPipeline:
    """Dispatches one stored event at a time (several workers share one pipeline).

    Args:
        settings: Gives the configuration in force (it may be replaced on a reload).
        store: The durable store of events and runs.
        secrets: The secret store (clone tokens, ``from-keyring`` secrets).
        workspace: Mirrors and checkouts.
        catalog: Loads a module's functions.
        live: Where problems found on the way are raised and cleared.
        executor: Runs what matched.
        statuses: Records the event's status.
        publish: Reaches the subscribers.
        spawn: Runs background work (saves, retries).
        requeue: Queues a request again (an event held for the secret store).
        retry_seconds: How long a held event waits before it is tried again.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        store: Store,
        secrets: SecretStore,
        workspace: Workspace,
        catalog: Catalog,
        live: LiveState,
        executor: RunExecutor,
        statuses: EventStatuses,
        publish: Publish,
        spawn: Spawn,
        requeue: Callable[[DispatchRequest], None],
        retry_seconds: float = SECRET_RETRY_SECONDS,
    ) -> None:
        self._settings = settings
        self._store = store
        self._secrets = secrets
        self._workspace = workspace
        self._catalog = catalog
        self._live = live
        self._executor = executor
        self._statuses = statuses
        self._publish = publish
        self._spawn = spawn
        self._requeue = requeue
        self._retry_seconds = retry_seconds

    async def dispatch(self, request: DispatchRequest) -> None:
        """Take one request from admission to started runs (or to the reason there are none)."""
        stored = await self._store.get_event(request.event_id)
        if stored is None:
            return
        try:
            await self._dispatch(stored, request)
        except _Halt as halt:
            await self._record(request.event_id, halt)

    async def _dispatch(self, stored: StoredEvent, request: DispatchRequest) -> None:
        event = stored.event
        repo = admit(stored, self._settings())
        if isinstance(repo, Refusal):
            raise _Halt(repo.status, repo.detail)
        self._statuses.progress(request.event_id, "checking out")
        token = await self._clone_token(request, repo)
        if not event.sha:
            stored = await self._pin_commit(request.event_id, stored, repo, token)
        checkout = await self._checkout(stored, repo, token)
        keep = False
        try:
            keep = await self._match_and_start(stored, repo, checkout, request, token)
        except _Halt as halt:
            await self._record(request.event_id, halt)  # before the checkout goes
        finally:
            if not keep:
                await self._workspace.remove(checkout)

    async def _record(self, event_id: int, halt: _Halt) -> None:
        if halt.status is not None:
            await self._statuses.set(event_id, halt.status, halt.detail)

    # -- before the checkout --------------------------------------------------------------------

    async def _clone_token(self, request: DispatchRequest, repo: RepoConfig) -> str | None:
        """The repository's clone token; an unreachable secret store holds the event."""
        if not repo.token:
            return None
        try:
            token = await self._secrets.get(repo.token)
        except SecretStoreError as exc:
            await self._hold(request, exc)
            raise _Halt from exc
        self._live.clear_problems("secret-store")  # it answered
        if token is None:
            raise _Halt(
                EventStatus.ERROR,
                f"the clone token {repo.token!r} is not in the secret store; "
                f"run `pocketci-tui secrets set {repo.token}`",
            )
        return token

    async def _hold(self, request: DispatchRequest, exc: Exception) -> None:
        """Hold an event whose secrets cannot be read, and try it again later."""
        wait = self._retry_seconds
        self._live.raise_problem(
            Problem(
                key="secret-store",
                short="secret store not answering",
                detail=f"the secret store did not answer ({exc}): events that need a secret are "
                f"held and tried again every {wait:.0f}s",
                fix="unlock the keyring or check it with `pocketci-tui check`",
            )
        )
        await self._statuses.set(
            request.event_id,
            EventStatus.WAITING,
            f"{HELD} the secret store did not answer ({exc}); trying again in {wait:.0f}s",
        )

        async def retry() -> None:
            await asyncio.sleep(wait)
            self._requeue(request)

        self._spawn(retry(), f"retry-{request.event_id}")

    async def _pin_commit(
        self, event_id: int, stored: StoredEvent, repo: RepoConfig, token: str | None
    ) -> StoredEvent:
        """Ask the remote which commit an event without one refers to, and keep it.

        A release, a created branch or tag, or a repository-level event (issues...) names no
        commit of its own.
        """
        event = stored.event
        try:
            secret, user = git_auth(repo, token)
            ref, sha = await self._workspace.resolve_commit(
                clone_url(self._settings(), repo, event.repository),
                secret,
                forge_for(event.vendor).commit_refs(event),
                username=user,
            )
        except (GitError, ValueError) as exc:
            raise _Halt(EventStatus.ERROR, f"cannot tell which commit to build: {exc}") from exc
        event = replace(event, ref=ref, sha=sha)
        await self._store.set_event_commit(event_id, ref, sha)
        source = forge_for(event.vendor).commit_source(event)
        self._statuses.progress(event_id, f"checking out {ref} at {sha[:12]} ({source})")
        return replace(stored, event=event)

    async def _checkout(self, stored: StoredEvent, repo: RepoConfig, token: str | None) -> Checkout:
        event = stored.event
        try:
            checkout = await check_out(self._workspace, self._settings(), repo, token, event)
        except (GitError, ValueError) as exc:
            self._live.check_git()
            raise _Halt(EventStatus.ERROR, f"checkout failed: {exc}") from exc
        self._live.clear_problems("git")
        return checkout

    # -- from the checkout to the runs ----------------------------------------------------------

    async def _match_and_start(
        self,
        stored: StoredEvent,
        repo: RepoConfig,
        checkout: Checkout,
        request: DispatchRequest,
        token: str | None,
    ) -> bool:
        """Match the checkout's modules (one per spec) against the event and start the runs.

        Returns:
            True when runs were started (they remove the checkout when the last one ends).
        """
        event = stored.event
        event_id = request.event_id
        modules = await self._load_modules(stored, checkout)
        if request.spec is not None:  # a re-run of one spec's function
            modules = [m for m in modules if m.spec.name == request.spec]
        no_secrets = event.is_fork and self._settings().fork_pull_requests == "no-secrets"
        results = cap_runs(
            [
                await self._match(
                    stored, request, m, self._secret_names(m, no_secrets), len(modules)
                )
                for m in modules
            ]
        )
        combined = MatchResult(
            next((r.tier for r in results if r.tier is not None), None),
            tuple(d for r in results for d in r.decisions),
        )
        if request.only is not None and not combined.calls:
            await self._refuse_rerun(stored, request.only, combined, request.parent_id)
            return False
        self._publish(EventMatched(event_id, combined))

        attempt = await self._store.max_attempt(event_id) + 1
        runs: list[Run] = []
        calls: list[tuple[Run, FunctionCall, _Module]] = []
        for module, result in zip(modules, results, strict=True):
            spec_runs, spec_calls = new_runs(
                event_id, result.decisions, attempt, request.parent_id, module.spec.name
            )
            runs += spec_runs
            calls += [(run, call, module) for run, call in spec_calls]
        await self._store.add_runs(runs)
        for run in runs:
            self._publish(RunUpdated(run))
        if not calls:
            if combined.decisions:
                detail = "no function matched (see the reasons of each)"
            else:
                names = ", ".join(repr(m.catalog.module_name) for m in modules)
                detail = f"no function of the module {names} is a trigger"
            raise _Halt(EventStatus.SKIPPED, detail)

        if not no_secrets:
            await self._executor.load_cloud_token()  # set or fixed since the last event
        pending = PendingRuns(len(calls))
        works: dict[str, EventWork] = {}
        detail = matched_detail(len(calls), len(runs), combined)
        for module in modules:
            given = RunSecrets()
            if not no_secrets:
                # Each spec's functions get its own secrets, never another spec's.
                given = await secret_grants.resolve(module.spec, repo, self._secrets, os.environ)
            works[module.spec.name] = EventWork(
                stored=stored,
                checkout=checkout,
                module_dir=module.module_dir,
                changes=module.changes,
                secrets=given.values,
                missing_secrets=given.missing,
                refused_secrets=given.refused,
                no_secrets=no_secrets,
                extra_mask=(token,) if token else (),
                pending=pending,
            )
            if given.refused:
                detail += "; " + secret_grants.refused_detail(module.spec, given.refused)
        await self._statuses.set(
            event_id, EventStatus.DISPATCHED, dispatched_detail(stored, request.only, detail)
        )
        for run, call, module in calls:
            self._executor.start(run, call, works[module.spec.name])
        return True

    def _secret_names(self, module: _Module, no_secrets: bool) -> frozenset[str]:
        return frozenset() if no_secrets else module.spec.secret_names

    async def _load_modules(self, stored: StoredEvent, checkout: Checkout) -> list[_Module]:
        """Read ``pocketci.yaml``, apply each spec's ``paths`` and load the catalogs of the
        specs whose paths the changes match."""
        try:
            specs = await asyncio.to_thread(load_repo_specs, checkout.path)
            dirs = [
                await asyncio.to_thread(resolve_module_dir, checkout.path, spec.module_path)
                for spec in specs
            ]
        except ConfigError as exc:
            raise _Halt(EventStatus.ERROR, str(exc)) from exc
        changes = await self._workspace.changed_files(checkout, stored.event)
        modules: list[_Module] = []
        for spec, module_dir in zip(specs, dirs, strict=True):
            where = f"pocketci.yaml: specs: {spec.name}: " if spec.name else "pocketci.yaml: "
            try:
                # The patterns come from the repository: compile and apply them off the loop.
                allowed = not spec.paths or await asyncio.to_thread(
                    paths_allow, spec.paths, changes
                )
            except ValueError as exc:
                raise _Halt(EventStatus.ERROR, f"{where}paths: {exc}") from exc
            if allowed:
                modules.append(await self._load_module(stored, checkout, spec, module_dir, changes))
        if not modules:
            which = "of any spec in" if len(specs) > 1 else "of"
            raise _Halt(
                EventStatus.SKIPPED, f"no changed file matches the paths {which} pocketci.yaml"
            )
        return modules

    async def _load_module(
        self,
        stored: StoredEvent,
        checkout: Checkout,
        spec: RepoSpec,
        module_dir: Path,
        changes: list[str] | None,
    ) -> _Module:
        """Load the catalog of one spec's module."""
        event_id = stored.event.id
        assert event_id is not None
        self._statuses.progress(
            event_id, f"loading the Dagger module{f' of {spec.name}' if spec.name else ''}"
        )
        try:
            key = await module_content_key(checkout.path, module_dir, git=self._workspace.git)
            catalog = await self._catalog.cached(key)
            if catalog is None:
                # A session needs an engine: wait for one rather than for the CLI's retries.
                await self._executor.health.until_one_up(
                    lambda why: self._statuses.progress(event_id, why)
                )
                catalog = await self._catalog.load(module_dir, key)
        except CatalogError as exc:
            self._live.raise_problem(
                Problem(
                    key="dagger",
                    short="dagger failed",
                    detail=f"dagger: {exc}",
                    fix="check the dagger CLI and engine with `pocketci-tui check`",
                )
            )
            label = f"module of {spec.name}" if spec.name else "module"
            raise _Halt(EventStatus.ERROR, f"{label}: {exc}") from exc
        self._live.clear_problems("dagger")  # a module loaded: dagger works
        return _Module(spec, module_dir, changes, catalog, key)

    async def _match(
        self,
        stored: StoredEvent,
        request: DispatchRequest,
        module: _Module,
        secret_names: frozenset[str],
        modules: int,
    ) -> MatchResult:
        """Match one spec's module against the event (a re-run keeps only its functions)."""
        event_id = request.event_id
        only, changes = request.only, module.changes
        fits = changes is None or len(changes) <= MAX_STORED_CHANGES
        if only is None and modules == 1 and fits:
            # Kept for the fire picker's preview (of a single-spec repository); written in the
            # background, so the first `dagger call` does not wait for it.
            inputs = MatchInputs(
                module.key, tuple(secret_names), tuple(changes) if changes is not None else None
            )
            self._spawn(self._save_inputs(event_id, inputs), f"inputs-{event_id}")
        # The catalog's names and defaults come from the repository's module: off the loop.
        result = await asyncio.to_thread(
            match, module.catalog, stored.event, changes, secret_names, only=only
        )
        if only is None:
            return result
        return MatchResult(result.tier, tuple(d for d in result.decisions if d.function in only))

    async def _save_inputs(self, event_id: int, inputs: MatchInputs) -> None:
        try:
            await self._store.save_match_inputs(event_id, inputs)
        except Exception:
            log.exception("cannot keep what event %s was matched against", event_id)

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
        attempt = await self._store.max_attempt(event_id) + 1
        runs = refused_reruns(event_id, only, result.decisions, attempt, parent_id)
        await self._store.add_runs(runs)
        for run in runs:
            self._publish(RunUpdated(run))
        await self._statuses.set(event_id, stored.status, stored.detail)
