"""What every part of the engine shares: its state, notices, event status and helpers.

:class:`EngineBase` holds the engine's state (the queue of events to dispatch, the live runs,
the problems to show) and the small services the dispatch pipeline
(:mod:`~pocketci_tui.engine.dispatch.pipeline`) and run execution
(:mod:`~pocketci_tui.engine.dispatch.runs`) both use: publishing notices to subscribers, recording
an event's status, background tasks and finding the dagger CLI.
:class:`~pocketci_tui.engine.dispatch.dispatcher.Engine` builds on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketci_tui.config import Settings
from pocketci_tui.engine.dagger import Catalog
from pocketci_tui.engine.dagger import resolve_dagger_cli as _resolve_cli
from pocketci_tui.engine.dispatch.queue import DispatchQueue
from pocketci_tui.engine.git import Checkout, Workspace
from pocketci_tui.model import (
    EventStatus,
    EventUpdated,
    Notice,
    Run,
    StoredEvent,
    bounded,
)
from pocketci_tui.paths import AppPaths
from pocketci_tui.problems import GIT_MISSING, Problem, Problems
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Store

log = logging.getLogger(__name__)

TAIL_LINES = 2000
"""Lines of output kept in memory per run for the UI; the full log is on disk."""


class EngineError(Exception):
    """An engine action cannot be done; the message says why."""


Subscriber = Callable[[Notice], None]


@dataclass(slots=True)
class _EventWork:
    """What the runs of one dispatched event share: its checkout and inputs.

    ``refused_secrets`` are the ones ``pocketci.yaml`` asked for without a grant (a run that
    declares one gets nothing and fails with the reason); ``no_secrets`` marks an event the
    fork policy gives no secret of any kind, the Dagger Cloud token included.
    """

    stored: StoredEvent
    checkout: Checkout
    module_dir: Path
    changes: list[str] | None
    secrets: dict[str, str]
    missing_secrets: dict[str, str]
    refused_secrets: dict[str, str] = field(default_factory=dict)
    no_secrets: bool = False
    pending: int = 0


@dataclass(slots=True)
class _Live:
    """A run the engine is executing (or about to)."""

    run: Run
    task: asyncio.Task[None] | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    published: int = 0
    """Output lines published so far (the position after the last one)."""


class EngineBase:
    """The engine's state and the services its parts share.

    Args:
        settings: The user's configuration.
        paths: Where data, logs and work folders live.
        store: The durable store of events and runs.
        secrets: The secret store (clone tokens, ``from-keyring`` secrets, Dagger Cloud token).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        paths: AppPaths,
        store: Store,
        secrets: SecretStore,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self.store = store
        self.secrets = secrets
        self._subscribers: list[Subscriber] = []
        self._queue = DispatchQueue()
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._run_slots = asyncio.Semaphore(settings.concurrency)
        self._live: dict[str, _Live] = {}
        self._recent_tails: dict[str, deque[str]] = {}
        self._recent_ends: dict[str, int] = {}
        self.problems_found = Problems()
        """What is wrong (dagger or git missing, secret store down...): each raised and cleared
        by the step that knows."""
        self._cloud_token: str | None = None
        self._started = False
        self._stopping = False
        self.workspace = Workspace(paths.work_dir / "git", timeout=600.0)
        self.catalog = Catalog(
            paths.cache_dir / "catalog",
            dagger_cli=settings.dagger.cli,
            runner_host=settings.dagger.runner_host,
            log_path=paths.app_log,
        )

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every notice from now on; return a function that stops it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, notice: Notice) -> None:
        for callback in list(self._subscribers):
            try:
                callback(notice)
            except Exception:
                log.exception("a subscriber failed on %s", type(notice).__name__)

    # -- event status -------------------------------------------------------------------------

    def _progress(self, event_id: int, detail: str) -> None:
        """Publish a step of a dispatch without writing it.

        Steps are transient: a restart dispatches a RECEIVED event again from the start, so
        only outcomes are committed, and the first ``dagger call`` is not held up by a commit
        per step.
        """
        self._publish(EventUpdated(event_id, EventStatus.DISPATCHING, detail))

    async def _set_status(self, event_id: int, status: EventStatus, detail: str = "") -> None:
        detail = bounded(detail)  # it can quote what a repository holds
        await self.store.set_event_status(event_id, status, detail)
        self._publish(EventUpdated(event_id, status, detail))

    async def _stored(self, event_id: int) -> StoredEvent:
        stored = await self.store.get_event(event_id)
        if stored is None:
            raise EngineError(f"no stored event {event_id}")
        return stored

    # -- helpers --------------------------------------------------------------------------------

    def _dagger_cli(self) -> str:
        """The CLI for ``dagger call``: the one introspection used (it may have downloaded it)."""
        return (
            self.catalog.cli_used
            or _resolve_cli(self.settings.dagger.cli)
            or self.settings.dagger.cli
            or "dagger"
        )

    def _check_dagger(self) -> None:
        if _resolve_cli(self.settings.dagger.cli) is None:
            where = self.settings.dagger.cli or "dagger on PATH"
            self.problems_found.raise_problem(
                Problem(
                    key="dagger",
                    short="dagger not found",
                    detail=f"dagger CLI not found ({where}): no Dagger module can be loaded",
                    fix="install dagger or set dagger.cli in the config",
                )
            )

    def _check_git(self) -> None:
        if shutil.which("git") is None:
            self.problems_found.raise_problem(GIT_MISSING)

    async def _load_cloud_token(self) -> None:
        """Read the Dagger Cloud token (at start and before each dispatch, so a token set or
        fixed meanwhile is used at once), raising or clearing its problem."""
        name = self.settings.dagger.cloud_token
        if not name:
            return
        try:
            token = await self.secrets.get(name)
        except SecretStoreError as exc:
            self.problems_found.raise_problem(
                Problem(
                    key="cloud-token",
                    short="cloud token unreadable",
                    detail=f"the Dagger Cloud token {name!r} cannot be read: {exc}",
                    fix="check the secret store (pocketci-tui check); builds run without traces",
                )
            )
            return
        self._cloud_token = token
        if token is None:
            self.problems_found.raise_problem(
                Problem(
                    key="cloud-token",
                    short="cloud token missing",
                    detail=f"the Dagger Cloud token {name!r} is not in the secret store: "
                    "builds run without Dagger Cloud traces",
                    fix=f"run `pocketci-tui secrets set {name}`, or press s",
                )
            )
        else:
            self.problems_found.clear("cloud-token")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
