"""A real pocketci instance for UI tests: store, engine, intake listener, the stand-in dagger
and a git repository to clone, plus helpers that post signed deliveries to the listener."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from daggerstub import arg, fn, install_fake_dagger, write_module
from gitrepo import BareRepo
from signing import Reply, send_signed

from pocketci_tui.config import DaggerSettings, RepoConfig, Settings
from pocketci_tui.model import ZERO_SHA, RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import MemorySecretStore, SecretStore
from pocketci_tui.services import Services

WEBHOOK_SECRET = "ui-test-webhook-secret-0123456789"
FIXED_NOW = datetime(2026, 11, 27, 14, 30, 0, tzinfo=UTC)
"""The clock snapshot tests run with."""


def fixed_clock() -> datetime:
    """The frozen clock of snapshot tests."""
    return FIXED_NOW


class LocalServices(Services):
    """The real services, sharing introspection results between tests through a seed folder.

    Args:
        settings: The configuration.
        paths: Where data lives.
        secrets: The secret store.
        catalog_seed: A folder of cached catalogs (same stand-in CLI, same module).
    """

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        secrets: SecretStore,
        catalog_seed: Path | None = None,
    ) -> None:
        super().__init__(settings, paths, secrets=secrets)
        self.catalog_seed = catalog_seed

    async def start(self, *, host: str | None = None, port: int | None = None) -> str:
        """Seed the catalog cache, then start as usual."""
        if self.catalog_seed is not None:
            await asyncio.to_thread(_copy_json, self.catalog_seed, self.paths.cache_dir / "catalog")
        return await super().start(host=host, port=port)

    async def stop(self) -> None:
        """Stop as usual, then keep new catalogs for the next tests."""
        await super().stop()
        if self.catalog_seed is not None:
            await asyncio.to_thread(_copy_json, self.paths.cache_dir / "catalog", self.catalog_seed)


def _copy_json(source: Path, target: Path) -> None:
    """Copy cached catalogs (``*.json``) between folders, so tests share introspection."""
    if not source.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    for item in source.glob("*.json"):
        if not (target / item.name).exists():
            shutil.copyfile(item, target / item.name)


FLAKY_EXIT = "~/flaky-exit"
"""``onGithubPushFlaky`` fails until this file holds ``0`` (see :func:`make_flaky_pass`)."""


def make_flaky_pass() -> None:
    """From now on, ``onGithubPushFlaky`` passes (the stand-in reads the file at each call)."""
    Path(os.path.expanduser(FLAKY_EXIT)).write_text("0\n", encoding="utf-8")


def _args(filter_default: str) -> tuple[dict[str, Any], ...]:
    return (
        arg("src", "Directory"),
        arg("eventTrigger", "File"),
        arg("filter", "String", optional=True, default=filter_default),
    )


FUNCTIONS = [
    fn(
        "onGithubPushMain",
        *_args("main"),
        call={"output": ["building acme/api", "compiling 12 packages", "build ok"], "exit": 0},
    ),
    fn(
        "testOnGithubPushMain",
        *_args("main"),
        call={
            "output": ["running 42 tests", "FAIL test_login: expected 200, got 500"],
            "exit": 1,
        },
    ),
    fn(
        "onGithubPushSlow",
        *_args("slow"),
        call={"output": ["working on it..."], "sleep": 120, "spawn_child": True},
    ),
    fn("onGithubPushFlood", *_args("flood"), call={"lines": 200_000, "exit": 0}),
    fn(
        "onGithubPushFlaky",
        *_args("flaky"),
        call={"output": ["flaky test"], "exit": 1, "exit_file": FLAKY_EXIT},
    ),
    fn(
        "onGithubPushMixed",
        *_args("mixed"),
        call={"output": ["long job"], "sleep": 120, "spawn_child": True},
    ),
    fn("checkOnGithubPushMixed", *_args("mixed"), call={"output": ["check failed"], "exit": 3}),
    fn("onGithubPush", *_args("release/**"), call={"output": ["release"], "exit": 0}),
    fn("onGithubPullRequest", *_args(""), call={"output": ["pr checks ok"], "exit": 0}),
]

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"


@dataclass
class Rig:
    """A configured instance with a repository and the stand-in dagger.

    Attributes:
        settings: The configuration (listener on an ephemeral port).
        paths: Config and data folders.
        secrets: The memory secret store holding the webhook secret.
        repo: The bare repository the engine clones.
        shas: Commit id per branch pushed so far.
    """

    settings: Settings
    paths: AppPaths
    secrets: MemorySecretStore
    repo: BareRepo
    shas: dict[str, str] = field(default_factory=dict)
    services: LocalServices | None = None
    catalog_seed: Path | None = None

    def make_services(self) -> LocalServices:
        """Fresh services for one app."""
        self.services = LocalServices(self.settings, self.paths, self.secrets, self.catalog_seed)
        return self.services

    def commit(self, branch: str) -> str:
        """Push a commit to ``branch`` (the module is the same everywhere)."""
        sha = self.repo.commit({"README.md": f"{branch} {uuid.uuid4()}\n"}, branch=branch)
        self.shas[branch] = sha
        return sha

    async def post_push(
        self,
        branch: str,
        *,
        title: str = "",
        repository: str = "acme/api",
        secret: str = WEBHOOK_SECRET,
    ) -> Reply:
        """Commit to ``branch`` and post a push delivery signed with ``secret`` to the running
        listener."""
        assert self.services is not None
        assert self.services.url
        before = self.shas.get(branch) or self.shas.get("main") or ZERO_SHA
        sha = await asyncio.to_thread(self.commit, branch)
        payload = {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": sha,
            "created": before == ZERO_SHA,
            "deleted": False,
            "forced": False,
            "repository": {
                "full_name": repository,
                "name": repository.split("/")[1],
                "owner": {"login": repository.split("/")[0]},
                "clone_url": f"https://github.com/{repository}.git",
                "default_branch": "main",
            },
            "head_commit": {"id": sha, "message": title or f"change on {branch}"},
            "commits": [{"id": sha, "added": [], "removed": [], "modified": ["README.md"]}],
            "sender": {"login": "octocat"},
        }
        body = json.dumps(payload).encode()
        async with aiohttp.ClientSession() as session:
            return await send_signed(
                session,
                f"{self.services.url}/webhooks/github",
                secret,
                body,
                event="push",
            )

    async def post_fork_pr(
        self, number: int = 42, files: Mapping[str, str | bytes | None] | None = None
    ) -> Reply:
        """Post a signed ``pull_request`` from a fork whose head is a real commit.

        ``files`` are changed by the head commit (by default only README.md).
        """
        assert self.services is not None
        if files is None:
            head = await asyncio.to_thread(self.commit, f"fork-{number}")
        else:
            head = await asyncio.to_thread(self.repo.commit, dict(files), branch=f"fork-{number}")
        await asyncio.to_thread(self.repo.git, "update-ref", f"refs/pull/{number}/head", head)
        payload = json.loads((PAYLOADS / "pull_request_synchronize_fork.json").read_text())
        payload["number"] = number
        payload["pull_request"]["number"] = number
        payload["pull_request"]["head"]["sha"] = head
        payload["pull_request"]["base"]["sha"] = self.shas["main"]
        payload["after"] = head
        body = json.dumps(payload).encode()
        async with aiohttp.ClientSession() as session:
            return await send_signed(
                session,
                f"{self.services.url}/webhooks/github",
                WEBHOOK_SECRET,
                body,
                event="pull_request",
            )


def make_rig(tmp_path: Path, bin_dir: Path | None = None, catalog_seed: Path | None = None) -> Rig:
    """Build a rig under ``tmp_path``: repository with pocketci.yaml and a module, dagger.

    Args:
        tmp_path: The test's folder.
        bin_dir: A folder holding the stand-in ``dagger`` (installed here when None).
        catalog_seed: A folder of cached catalogs shared between tests (same CLI, same module).
    """
    bin_dir = bin_dir or install_fake_dagger(tmp_path)
    repo = BareRepo(tmp_path / "remote" / "api.git")
    work = tmp_path / "module-src"
    write_module(work / "ci", "ci", functions=FUNCTIONS)
    files = {
        "pocketci.yaml": "module-path: ./ci\n",
        "ci/dagger.json": (work / "ci" / "dagger.json").read_text(),
        "ci/pocketci-fake.json": (work / "ci" / "pocketci-fake.json").read_text(),
        "README.md": "hello\n",
    }
    home = Path(os.environ.get("POCKETCI_TUI_HOME", tmp_path / "home"))
    paths = AppPaths(config_file=home / "config.yaml", data_dir=home / "data")
    settings = Settings(
        host="127.0.0.1",
        port=0,
        webhook_secret="webhook-secret",
        concurrency=2,
        repos=(RepoConfig(name="acme/api", clone_url=f"file://{repo.path}"),),
        dagger=DaggerSettings(cli=str(bin_dir / "dagger")),
    )
    rig = Rig(
        settings=settings,
        paths=paths,
        secrets=MemorySecretStore({"webhook-secret": WEBHOOK_SECRET}),
        repo=repo,
        catalog_seed=catalog_seed,
    )
    rig.shas["main"] = repo.commit(files, branch="main")
    return rig


async def wait_for(
    condition: Callable[[], bool],
    pilot: Any,
    limit: float = 30.0,
    step: float = 0.05,
    *,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Let the app run until ``condition()`` holds (fails the test after ``limit`` seconds).

    ``explain`` describes the state when the time is up (see :func:`describe`), so that a rare
    timeout says where things stood.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            detail = f"\n{await explain()}" if explain is not None else ""
            raise AssertionError(f"condition not reached in time{detail}")
        await pilot.pause(step)


async def describe(rig: Rig) -> str:
    """The stored events and runs of a rig's services, and where every task is waiting."""
    lines: list[str] = []
    store = rig.services.store if rig.services is not None else None
    if store is not None:
        for stored in await store.list_events(limit=5):
            event = stored.event
            lines.append(
                f"event {event.id} {event.event_type}/{event.filter}: "
                f"{stored.status.value} {stored.detail}"
            )
            for run in await store.list_runs(event.id or 0):
                lines.append(f"  run {run.function}: {run.state.value} {run.reason[:120]!r}")
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        if task.get_name().startswith("message pump"):
            continue  # one per widget, always waiting for messages
        where = " <- ".join(
            f"{frame.f_code.co_name}:{frame.f_lineno}" for frame in task.get_stack(limit=4)
        )
        lines.append(f"task {task.get_name()}: {where}")
    return "\n".join(lines)


def finished(state: RunState) -> bool:
    """True for a final state."""
    return state.finished


def dagger_call_groups(cli: str) -> set[int]:
    """Process groups of the running ``dagger call`` processes of the stand-in at ``cli``."""
    groups: set[int] = set()
    needle = cli.encode() + b"\0call\0"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            if needle in cmdline:
                groups.add(os.getpgid(int(entry)))
        except (OSError, ProcessLookupError):
            continue
    return groups


def live_in_groups(groups: set[int]) -> list[int]:
    """Pids (not zombies) still alive in any of ``groups``."""
    alive: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in groups:
            alive.append(int(entry))
    return alive
