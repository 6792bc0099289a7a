"""A real engine in a box, for tests and benchmarks.

:class:`EngineKit` builds a bare git repository holding a ``pocketci.yaml`` and a fixture Dagger
module, puts the stand-in ``dagger`` on PATH, opens a real SQLite store and starts a real
:class:`~pocketci_tui.engine.dispatch.Engine` on it. Tests then store events, submit
them as intake would, and wait for what the engine publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from daggerstub import arg, fn, install_fake_dagger, read_calls, write_module
from gitrepo import BareRepo, pr_event, push_event

from pocketci_tui.config import DaggerSettings, RepoConfig, Settings
from pocketci_tui.engine.dispatch import SECRET_RETRY_SECONDS, Engine
from pocketci_tui.model import (
    ZERO_SHA,
    Event,
    EventStatus,
    Notice,
    Run,
    RunState,
    RunUpdated,
    StoredEvent,
    utcnow,
)
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.store import Store

REPOSITORY = "owner/repo"


def standard_functions(call: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """A module like the seed README's: push to main, two PR checks, a dispatcher."""
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    ok = dict(call or {"output": ["hello from dagger"], "exit": 0})
    return [
        fn("onGithubPushMain", *base, arg("ghPassword", "Secret", optional=True), call=ok),
        fn(
            "testOnGithubPullRequest",
            *base,
            arg("filter", "String", default="opened,synchronize,reopened"),
            arg("onChanges", "String", default="**/*.go,go.*"),
            arg("ghPassword", "Secret", optional=True),
            call=ok,
        ),
        fn(
            "lintOnGithubPullRequest",
            *base,
            arg("filter", "String", default="opened,synchronize"),
            call=ok,
        ),
        fn("dispatch", *base, arg("filter", "String"), arg("event", "String"), call=ok),
    ]


SHUTDOWN_TIMEOUT = 120.0
"""Seconds the engine may take to shut down at the end of a test."""


class EngineKit:
    """A repository, a stand-in dagger, a store and an engine under one tmp folder.

    Args:
        tmp: A fresh folder.
        functions: The fixture module's functions (default :func:`standard_functions`).
        spec: The repository's ``pocketci.yaml`` as a mapping (None: the file is absent).
        secrets: Initial secret-store values.
        dagger_env: Environment the stand-in dagger sets for itself (behaviour overrides that
            must not live in the repository, such as output holding secret values).
        grant_secrets: Secret-store entries the repository is granted (``repos[].secrets``).
        grant_env: Environment variables the repository is granted (``repos[].env``).
        secret_retry_seconds: How long the engine holds an event for an unreachable secret
            store before trying it again.
        settings: Changes to the default test settings.
    """

    def __init__(
        self,
        tmp: Path,
        *,
        functions: list[dict[str, Any]] | None = None,
        spec: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        dagger_env: Mapping[str, str] | None = None,
        grant_secrets: Sequence[str] = (),
        grant_env: Sequence[str] = (),
        secret_retry_seconds: float = SECRET_RETRY_SECONDS,
        **settings: Any,
    ) -> None:
        self.tmp = tmp
        self.bin_dir = install_fake_dagger(tmp)
        self.record_dir = tmp / "calls"
        self.record_dir.mkdir()
        # The runner hands `dagger call` an allow-listed environment, so the stand-in learns
        # where to record from its own wrapper rather than from the app's environment.
        wrapper = self.bin_dir / "dagger"
        lines = wrapper.read_text().splitlines(keepends=True)
        own_env = {"FAKE_DAGGER_RECORD_DIR": str(self.record_dir), **(dagger_env or {})}
        lines.insert(1, f"import os; os.environ.update({own_env!r})\n")
        wrapper.write_text("".join(lines))
        self.remote = BareRepo(tmp / "remote.git")
        module_src = write_module(tmp / "module-src", "ci", functions or standard_functions())
        files: dict[str, str | bytes | None] = {
            "ci/dagger.json": (module_src / "dagger.json").read_text(),
            "ci/pocketci-fake.json": (module_src / "pocketci-fake.json").read_text(),
            "main.go": "package main\n",
            "README.md": "hello\n",
        }
        if spec is not None:
            files["pocketci.yaml"] = yaml.safe_dump(dict(spec))
        self.main_sha = self.remote.commit(files, branch="main", message="first")
        self.paths = AppPaths(config_file=tmp / "config.yaml", data_dir=tmp / "data")
        self.settings = Settings(
            repos=(
                RepoConfig(
                    name=REPOSITORY,
                    clone_url=str(self.remote.path),
                    token="",
                    secrets=tuple(grant_secrets),
                    env=tuple(grant_env),
                ),
            ),
            dagger=DaggerSettings(cli=str(self.bin_dir / "dagger")),
            timeout=60.0,
        )
        if settings:
            self.settings = replace(self.settings, **settings)
        self.secrets = MemorySecretStore(dict(secrets or {}))
        self.secret_retry_seconds = secret_retry_seconds
        self.notices: list[Notice] = []
        self._changed = asyncio.Event()
        self.store: Store
        self.engine: Engine

    async def __aenter__(self) -> EngineKit:
        self.store = await Store.open(self.paths.db_file)
        self.engine = Engine(
            settings=self.settings,
            paths=self.paths,
            store=self.store,
            secrets=self.secrets,
            secret_retry_seconds=self.secret_retry_seconds,
        )
        self.engine.subscribe(self._on_notice)
        await self.engine.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Bounded, so that a shutdown that hangs fails the test instead of the whole run.
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            await self.engine.shutdown()
        await self.store.close()

    def _on_notice(self, notice: Notice) -> None:
        self.notices.append(notice)
        self._changed.set()

    # -- events ---------------------------------------------------------------------------------

    def push(self, files: Mapping[str, str | None], branch: str = "main", **kw: Any) -> Event:
        """Commit to the remote and return the push event GitHub would send."""
        before = self.remote.rev(branch) if self.remote.has(f"refs/heads/{branch}") else ZERO_SHA
        after = self.remote.commit(dict(files), branch=branch)
        return push_event(
            f"refs/heads/{branch}",
            after,
            before,
            repository=REPOSITORY,
            delivery_id=kw.pop("delivery_id", f"d-{after[:8]}"),
            body=json.dumps({"ref": f"refs/heads/{branch}", "after": after}).encode(),
            received_at=utcnow(),
            **kw,
        )

    def pull_request(
        self, files: Mapping[str, str | None], *, action: str = "opened", fork: bool = False
    ) -> Event:
        """Commit a PR branch on the remote and return the pull_request event."""
        base = self.remote.rev("main")
        head = self.remote.commit(dict(files), branch="feature")
        event = pr_event(
            7,
            head,
            base,
            repository=REPOSITORY,
            is_fork=fork,
            delivery_id=f"pr-{head[:8]}-{action}",
            body=json.dumps({"action": action, "number": 7}).encode(),
            received_at=utcnow(),
        )
        return replace(event, filter=action)

    async def deliver(self, event: Event) -> StoredEvent:
        """Store an event as intake does and hand it to the engine."""
        stored, duplicate = await self.store.record_event(event, EventStatus.RECEIVED)
        await self.engine.submit(stored, duplicate)
        return stored

    # -- waiting --------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until ``predicate()`` holds, re-checking after every notice."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

    async def wait_status(
        self, event_id: int, *statuses: EventStatus, timeout: float = 30.0
    ) -> StoredEvent:
        """Wait until the stored event reaches one of ``statuses``."""
        async with asyncio.timeout(timeout):
            while True:
                stored = await self.store.get_event(event_id)
                assert stored is not None
                if stored.status in statuses:
                    return stored
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.5)

    async def wait_runs_finished(
        self, event_id: int, count: int | None = None, timeout: float = 30.0
    ) -> list[Run]:
        """Wait until the event has runs (``count`` of them if given) and all are finished."""
        async with asyncio.timeout(timeout):
            while True:
                runs = await self.store.list_runs(event_id)
                finished = runs and all(r.state.finished for r in runs)
                if finished and (count is None or len(runs) >= count):
                    return runs
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.5)

    def run_states(self, run_id: str) -> list[RunState]:
        """The states a run went through, as published."""
        return [
            n.run.state for n in self.notices if isinstance(n, RunUpdated) and n.run.id == run_id
        ]

    def calls(self) -> list[dict[str, Any]]:
        """The ``dagger call`` invocations the stand-in recorded."""
        return read_calls(self.record_dir)


def function_names(runs: Sequence[Run], state: RunState | None = None) -> set[str]:
    """The function names of ``runs`` (in ``state`` if given)."""
    return {r.function for r in runs if state is None or r.state is state}
