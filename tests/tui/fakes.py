"""Scripted services over a real store, for snapshots (fixed ids, fixed times) and for the
binding tests that only need to see which engine call an action makes.

:class:`ScriptedServices` implements :class:`~pocketci_tui.contract.CoreClient`, the contract
the real services implement, and :class:`ScriptedEngine` the engine's
:class:`~pocketci_tui.engine.dispatch.client.EngineClient`: mypy checks both, so a fake can
never offer the UI something the product lacks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pocketci_tui.config import Settings
from pocketci_tui.contract import (
    ClientNotice,
    CoreClient,
    CountsChanged,
    HeadSecrets,
    NotStarted,
    OutputTail,
    Rejection,
    RejectionSummary,
    StatusDelivery,
)
from pocketci_tui.core_feed import (
    StatusWatch,
    counts_of,
    delivery_of,
    read_stamped_tail,
    tell_delivery,
)
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.model import (
    Event,
    EventStatus,
    MatchResult,
    Notice,
    RepoSummary,
    Run,
    RunState,
    StoredEvent,
)
from pocketci_tui.paths import AppPaths
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import MemorySecretStore, SecretStore
from pocketci_tui.store import Store
from pocketci_tui.store.outbox import OutboxRow

from .harness import FIXED_NOW


@dataclass
class ScriptedEngine(EngineClient):
    """Answers like the engine, records every call, and publishes what tests tell it to.

    It implements :class:`EngineClient`, the same contract the real engine is checked against,
    so it offers the UI nothing the product lacks (mypy checks both).
    """

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    tails: dict[str, list[str]] = field(default_factory=dict)
    tail_times_of: dict[str, list[float]] = field(default_factory=dict)
    """When each scripted tail line arrived (seconds since the epoch), by run id."""
    queued: int = 0
    running: int = 0
    problem_list: list[Problem] = field(default_factory=list)
    loads: tuple[tuple[str, int, int, bool], ...] = ()
    preview_result: MatchResult | None = None
    subscribers: list[Callable[[Notice], None]] = field(default_factory=list)
    state_watchers: list[Callable[[], None]] = field(default_factory=list)
    shut_down: bool = False

    def subscribe(self, callback: Callable[[Notice], None]) -> Callable[[], None]:
        """Add a subscriber."""
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def publish(self, notice: Notice) -> None:
        """Send a notice to every subscriber."""
        for callback in list(self.subscribers):
            callback(notice)

    async def start(self) -> None:
        """Nothing to start."""

    async def shutdown(self) -> None:
        """Record the shutdown."""
        self.shut_down = True

    async def fire(self, event_id: int) -> None:
        """Record."""
        self.calls.append(("fire", event_id))

    async def rerun(self, run_id: str) -> None:
        """Record."""
        self.calls.append(("rerun", run_id))

    async def cancel(self, run_id: str) -> bool:
        """Record."""
        self.calls.append(("cancel", run_id))
        return True

    async def cancel_event(self, event_id: int) -> int:
        """Record."""
        self.calls.append(("cancel_event", event_id))
        return 1

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Record."""
        self.calls.append(("approve", event_id, sha))

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """Answer that the head commit asks for no secret."""
        return HeadSecrets()

    def tail(self, run_id: str) -> list[str]:
        """The scripted tail."""
        return list(self.tails.get(run_id, []))

    def tail_end(self, run_id: str) -> int | None:
        """Unknown: the scripted tail has no position (batches are appended as they come)."""
        return None

    def tail_times(self, run_id: str) -> list[float]:
        """The scripted arrival times of the tail's lines (none: not stamped)."""
        return list(self.tail_times_of.get(run_id, []))

    def counts(self) -> tuple[int, int]:
        """The scripted counts."""
        return self.queued, self.running

    def engine_loads(self) -> tuple[tuple[str, int, int, bool], ...]:
        """The scripted engine loads."""
        return self.loads

    def problems(self) -> list[Problem]:
        """The scripted problems."""
        return list(self.problem_list)

    def watch_state(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Add a watcher of the counts and problems (see :meth:`set_state`)."""
        self.state_watchers.append(callback)
        return lambda: self.state_watchers.remove(callback)

    def set_state(
        self,
        queued: int,
        running: int,
        problems: list[Problem] | None = None,
        loads: tuple[tuple[str, int, int, bool], ...] | None = None,
    ) -> None:
        """Change the counts (and problems and engine loads, if given) and tell the watchers,
        like the engine."""
        self.queued, self.running = queued, running
        if problems is not None:
            self.problem_list = list(problems)
        if loads is not None:
            self.loads = loads
        for callback in list(self.state_watchers):
            callback()

    async def preview(self, event_id: int) -> MatchResult | None:
        """The scripted preview (a read, not an action: not recorded in ``calls``)."""
        return self.preview_result


class ScriptedServices(CoreClient):
    """A real store plus the scripted engine and a memory secret store.

    Args:
        paths: Where the database and logs are.
        engine: The scripted engine (a new one by default).
        secrets: The secret store (a memory store holding the webhook secret by default).
        url: The URL :meth:`start` answers.
        settings: The configuration it says it runs with (the defaults by default; give the
            app's when they differ).
    """

    def __init__(
        self,
        paths: AppPaths,
        engine: ScriptedEngine | None = None,
        secrets: SecretStore | None = None,
        url: str = "http://127.0.0.1:8080",
        settings: Settings | None = None,
    ) -> None:
        self.paths = paths
        self.engine = engine or ScriptedEngine()
        self.secrets: SecretStore = secrets or MemorySecretStore(
            {"webhook-secret": "0f" * 32, "github-token": "ghp_example_token_value"}
        )
        self.settings = settings or Settings()
        self.store: Store | None = None
        self.url = url
        self.owner: str | None = None
        """Who owns the data folder (None: in process, as the real services)."""
        self.stopped = False
        self.webhook_problem = ""
        """What :meth:`webhook_secret_problem` answers (nothing wrong by default)."""
        self.applied: list[Settings] = []
        """The configurations given to :meth:`apply_settings`."""
        self.subscribers: list[Callable[[ClientNotice], None]] = []

    async def start(self) -> str:
        """Open the store."""
        self.store = await Store.open(self.paths.db_file)
        return self.url

    async def stop(self) -> None:
        """Close the store."""
        self.stopped = True
        await self.engine.shutdown()
        store, self.store = self.store, None
        if store is not None:
            await store.close()

    @property
    def started(self) -> bool:
        """True while the store is open."""
        return self.store is not None

    def _store(self) -> Store:
        if self.store is None:
            raise NotStarted("the engine is not running")
        return self.store

    def subscribe(self, callback: Callable[[ClientNotice], None]) -> Callable[[], None]:
        """Relay the scripted engine's notices, its counts and problems first."""
        self._store()
        watch = StatusWatch(self.engine, callback)
        unsubscribe_engine = self.engine.subscribe(watch.on_notice)
        self.subscribers.append(callback)

        def unsubscribe() -> None:
            unsubscribe_engine()
            self.subscribers.remove(callback)
            watch.close()

        return unsubscribe

    def tell_delivery(self, row: OutboxRow) -> None:
        """Tell the subscribers of a commit status row, as the real sender's watch does."""
        for callback in list(self.subscribers):
            tell_delivery(callback, row)

    def subscribe_refusals(
        self, callback: Callable[[RejectionSummary], None]
    ) -> Callable[[], None]:
        """Nothing is ever refused here."""
        return lambda: None

    async def events_page(
        self, *, limit: int, before_id: int | None = None, text: str = ""
    ) -> list[StoredEvent]:
        """From the real store."""
        return await self._store().list_events(limit=limit, before_id=before_id, text=text)

    async def event(self, event_id: int) -> StoredEvent | None:
        """From the real store."""
        return await self._store().get_event(event_id)

    async def runs(self, event_id: int) -> list[Run]:
        """From the real store."""
        return await self._store().list_runs(event_id)

    async def queue_order(self) -> list[str]:
        """From the real store."""
        return await self._store().queued_runs()

    async def repositories(self) -> list[RepoSummary]:
        """From the real store."""
        return await self._store().repositories()

    async def status_deliveries(self, run_ids: Sequence[str]) -> dict[str, StatusDelivery]:
        """From the real store's outbox."""
        rows = await self._store().run_statuses(run_ids)
        return {run_id: delivery_of(row) for run_id, row in rows.items()}

    async def counts(self) -> CountsChanged:
        """The scripted counts."""
        self._store()
        return counts_of(self.engine)

    async def output_tail(self, run: Run, lines: int) -> OutputTail:
        """The log file's end once finished (as the real services), else the scripted tail."""
        self._store()
        if run.state.finished and run.log_path:
            found = await asyncio.to_thread(
                read_stamped_tail, self.paths.logs_dir / run.log_path, lines
            )
            if found is not None:
                return OutputTail(tuple(found[0]), found[1], tuple(found[2]))
        return OutputTail(
            tuple(self.engine.tail(run.id)[-lines:]),
            self.engine.tail_end(run.id),
            tuple(self.engine.tail_times(run.id)[-lines:]),
        )

    async def preview(self, event_id: int) -> MatchResult | None:
        """The scripted preview."""
        return await self.engine.preview(event_id)

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """The scripted answer."""
        return await self.engine.head_secrets(event_id)

    async def refusals(self) -> tuple[list[Rejection], int]:
        """Nothing refused."""
        return [], 0

    async def webhook_secret_problem(self) -> str:
        """The scripted answer."""
        return self.webhook_problem

    async def fire(self, event_id: int) -> None:
        """Recorded by the engine."""
        self._store()
        await self.engine.fire(event_id)

    async def rerun(self, run_id: str) -> None:
        """Recorded by the engine."""
        self._store()
        await self.engine.rerun(run_id)

    async def cancel(self, run_id: str) -> bool:
        """Recorded by the engine."""
        self._store()
        return await self.engine.cancel(run_id)

    async def cancel_event(self, event_id: int) -> int:
        """Recorded by the engine."""
        self._store()
        return await self.engine.cancel_event(event_id)

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Recorded by the engine."""
        self._store()
        await self.engine.approve(event_id, sha)

    def apply_settings(self, settings: Settings) -> None:
        """Recorded."""
        self.settings = settings
        self.applied.append(settings)


def at(minutes_ago: float) -> datetime:
    """A time relative to the fixed clock."""
    return FIXED_NOW - timedelta(minutes=minutes_ago)


def push(
    delivery: str, repository: str, branch: str, sha: str, minutes_ago: float, title: str = ""
) -> Event:
    """A push event with fixed fields."""
    body = json.dumps(
        {"ref": f"refs/heads/{branch}", "after": sha, "repository": {"full_name": repository}}
    ).encode()
    return Event(
        vendor="github",
        event_type="push",
        filter=branch,
        repository=repository,
        ref=f"refs/heads/{branch}",
        sha=sha,
        base_ref="",
        base_sha="0" * 40,
        pr_number=None,
        is_fork=False,
        delivery_id=delivery,
        received_at=at(minutes_ago),
        body=body,
        title=title,
        event_name="push",
    )


def run(
    run_id: str,
    event_id: int,
    function: str,
    state: RunState,
    *,
    started: float | None = None,
    seconds: float | None = None,
    reason: str = "",
    exit_code: int | None = None,
) -> Run:
    """A run with fixed times (minutes ago started, seconds taken)."""
    started_at = at(started) if started is not None else None
    finished_at = (
        started_at + timedelta(seconds=seconds)
        if started_at is not None and seconds is not None
        else None
    )
    return Run(
        id=run_id,
        event_id=event_id,
        function=function,
        state=state,
        reason=reason,
        exit_code=exit_code,
        created_at=started_at,
        started_at=started_at,
        finished_at=finished_at,
        log_path=f"{event_id}/{run_id}.log" if state is not RunState.SKIPPED else "",
    )


BUILD_LOG = [
    "dagger call -m ci on-github-push-main --src . --event-trigger event.json",
    "▶ connect 0.2s",
    "▶ load module: ci 1.1s",
    "▶ Ci.onGithubPushMain(src: Directory, eventTrigger: File): Void",
    "  go build ./...",
    "  ok   acme/api/internal/store   0.412s",
    "  ok   acme/api/internal/http    0.233s",
    "build ok",
]

TEST_LOG = [
    "dagger call -m ci test-on-github-push-main --src . --event-trigger event.json",
    "▶ connect 0.2s",
    "▶ load module: ci 1.0s",
    "running 42 tests",
    "--- FAIL: TestLogin (0.03s)",
    "    login_test.go:41: expected 200, got 500",
    "FAIL acme/api/internal/http 0.233s",
    "Error: exit status 1",
]

RUNNING_LOG = [f"step {i:03d}: compiling package {i}" for i in range(1, 41)]


async def seed_history(store: Store, paths: AppPaths, engine: ScriptedEngine) -> dict[str, int]:
    """Store a small, fixed history: passed, failed, running, waiting and hostile events.

    Returns:
        Event ids by name.
    """
    ids: dict[str, int] = {}

    async def add(name: str, event: Event, status: EventStatus, detail: str = "") -> int:
        stored, _ = await store.record_event(event, status, detail)
        assert stored.event.id is not None
        ids[name] = stored.event.id
        return stored.event.id

    ping = Event(
        vendor="github",
        event_type="ping",
        filter="",
        repository="acme/api",
        ref="",
        sha="",
        base_ref="",
        base_sha="",
        pr_number=None,
        is_fork=False,
        delivery_id="d-ping",
        received_at=at(180),
        body=b"{}",
        event_name="ping",
    )
    await add("ping", ping, EventStatus.IGNORED, "ping: the webhook is set up")
    failed = await add(
        "failed",
        push("d-1", "acme/api", "main", "9f1c2e7d" + "0" * 32, 42, "Fix login"),
        EventStatus.DISPATCHED,
    )
    await add(
        "hostile",
        push("d-2", "acme/web", "$(touch /tmp/x)\x1b[31m[bold]x", "a1b2c3d4" + "0" * 32, 30),
        EventStatus.SKIPPED,
        "no function matched: branch [bold]$(touch /tmp/x)\x1b[2J",
    )
    fork = Event(
        vendor="github",
        event_type="pull_request",
        filter="opened",
        repository="acme/web",
        ref="refs/pull/17/head",
        sha="77aa0c1d" + "0" * 32,
        base_ref="main",
        base_sha="1" * 40,
        pr_number=17,
        is_fork=True,
        delivery_id="d-3",
        received_at=at(12),
        body=b"{}",
        title="Add dark mode",
        event_name="pull_request",
    )
    await add("waiting", fork, EventStatus.WAITING, "pull request from a fork: approve to build")
    running = await add(
        "running",
        push("d-4", "acme/api", "release/2.0", "c0ffee12" + "0" * 32, 1),
        EventStatus.DISPATCHED,
    )
    runs = [
        run("run-main-build", failed, "onGithubPushMain", RunState.PASSED, started=42, seconds=3.2),
        run(
            "run-main-test",
            failed,
            "testOnGithubPushMain",
            RunState.FAILED,
            started=42,
            seconds=7.9,
            reason="FAIL acme/api/internal/http 0.233s\nError: exit status 1",
            exit_code=1,
        ),
        run(
            "run-main-skip",
            failed,
            "deployOnGithubPushRelease",
            RunState.SKIPPED,
            reason="filter: main is not in release/**",
        ),
        run("run-rel-build", running, "onGithubPush", RunState.RUNNING, started=0.75),
        run("run-rel-lint", running, "lintOnGithubPush", RunState.QUEUED),
    ]
    await store.add_runs(runs)
    for name, lines in (("run-main-build", BUILD_LOG), ("run-main-test", TEST_LOG)):
        path = paths.logs_dir / f"{failed}" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine.tails["run-rel-build"] = RUNNING_LOG
    engine.queued, engine.running = 1, 1
    return ids


def stored_copy(stored: StoredEvent, **changes: Any) -> StoredEvent:
    """A changed copy of a stored event."""
    from dataclasses import replace

    return replace(stored, **changes)
