"""Shared fixtures. Every test runs with its own config, data and XDG folders under tmp_path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from githttp import TEST_TOKEN, GitHttpServer  # noqa: E402
from gitrepo import BareRepo  # noqa: E402

from pocketci_tui.config import RepoConfig, Settings  # noqa: E402
from pocketci_tui.engine.git import GitCommand, Workspace  # noqa: E402
from pocketci_tui.forges.registry import Registry  # noqa: E402
from pocketci_tui.intake import IntakeLimits, Listener, make_intake_app  # noqa: E402
from pocketci_tui.model import StoredEvent, webhook_path  # noqa: E402
from pocketci_tui.paths import AppPaths  # noqa: E402
from pocketci_tui.secrets import MemorySecretStore, SecretStore  # noqa: E402
from pocketci_tui.store import Store  # noqa: E402

WEBHOOK_SECRET = "test-webhook-secret-0123456789"
"""The webhook secret tests sign with (stored under the default name ``webhook-secret``)."""

PAYLOADS_DIR = TESTS_DIR / "fixtures" / "payloads"


@pytest.fixture(autouse=True)
def hermetic_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point POCKETCI_TUI_HOME and every XDG folder at tmp dirs, so nothing touches $HOME."""
    home = tmp_path / "pocketci-home"
    home.mkdir()
    monkeypatch.setenv("POCKETCI_TUI_HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", "xdg-config"),
        ("XDG_DATA_HOME", "xdg-data"),
        ("XDG_STATE_HOME", "xdg-state"),
        ("XDG_CACHE_HOME", "xdg-cache"),
        ("XDG_RUNTIME_DIR", "xdg-runtime"),
    ):
        path = tmp_path / sub
        path.mkdir(mode=0o700)
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return home


@pytest.fixture
def app_paths(hermetic_home: Path) -> AppPaths:
    """The paths of a test instance (config.yaml and data under POCKETCI_TUI_HOME)."""
    return AppPaths(config_file=hermetic_home / "config.yaml", data_dir=hermetic_home / "data")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store in a tmp folder, closed after the test."""
    s = await Store.open(tmp_path / "db" / "pocketci.db")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def memory_secrets() -> MemorySecretStore:
    """An in-memory secret store holding the test webhook secret."""
    return MemorySecretStore({"webhook-secret": WEBHOOK_SECRET})


@pytest.fixture
def payloads_dir() -> Path:
    """The folder of realistic GitHub payload fixtures."""
    return PAYLOADS_DIR


class RecordingSink:
    """An EventSink that remembers what it was told."""

    def __init__(self) -> None:
        self.submitted: list[tuple[StoredEvent, bool]] = []

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Remember the stored event."""
        self.submitted.append((stored, duplicate))


@dataclass
class RunningIntake:
    """An intake listener on a loopback port, with its store and sink."""

    url: str
    store: Store
    sink: RecordingSink
    listener: Listener
    secrets: SecretStore
    settings: Settings

    @property
    def hook_url(self) -> str:
        """The GitHub webhook URL."""
        return self.url + webhook_path("github")

    def hook_url_for(self, vendor: str) -> str:
        """The webhook URL of a forge."""
        return self.url + webhook_path(vendor)


IntakeFactory = Callable[..., Awaitable[RunningIntake]]


@pytest.fixture
async def intake_factory(tmp_path: Path) -> AsyncIterator[IntakeFactory]:
    """Start real intake listeners on 127.0.0.1 (port 0); all are stopped after the test.

    Keyword arguments: ``repos`` (names), ``secrets`` (a SecretStore), ``limits``
    (IntakeLimits), ``db`` (path), ``busy_timeout``, ``store`` (an open Store to reuse),
    ``settings`` (instead of ``repos``), ``forges`` (a Registry instead of the built-in one).
    """
    started: list[tuple[Listener, Store, bool]] = []

    async def start(
        *,
        repos: tuple[str, ...] = ("acme/api",),
        secrets: SecretStore | None = None,
        limits: IntakeLimits | None = None,
        db: Path | None = None,
        busy_timeout: float = 5.0,
        store: Store | None = None,
        settings: Settings | None = None,
        forges: Registry | None = None,
    ) -> RunningIntake:
        owns = store is None
        if store is None:
            store = await Store.open(
                db or tmp_path / f"intake{len(started)}" / "pocketci.db", busy_timeout=busy_timeout
            )
        if settings is None:
            settings = Settings(repos=tuple(RepoConfig(name=r) for r in repos))
        sink = RecordingSink()
        secret_store = secrets or MemorySecretStore({"webhook-secret": WEBHOOK_SECRET})
        app = make_intake_app(
            settings=settings,
            store=store,
            secrets=secret_store,
            sink=sink,
            limits=limits,
            forges=forges,
        )
        listener = Listener(app, "127.0.0.1", 0)
        url = await listener.start()
        started.append((listener, store, owns))
        return RunningIntake(url, store, sink, listener, secret_store, settings)

    yield start
    for listener, store, owns in reversed(started):
        await listener.stop()
        if owns:
            await store.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session for loopback requests."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=200), auto_decompress=False
    ) as session:
        yield session


# -- git: served repositories, the git runner, a workspace ------------------------------------


@pytest.fixture
def served_repo(tmp_path: Path) -> BareRepo:
    """A bare repository (``repo.git``) in the folder ``git_server`` serves."""
    return BareRepo(tmp_path / "served" / "repo.git")


@pytest.fixture
def git_server(tmp_path: Path, served_repo: BareRepo) -> Iterator[GitHttpServer]:
    """``git http-backend`` on 127.0.0.1 serving ``served_repo`` with basic auth (TEST_TOKEN)."""
    with GitHttpServer(tmp_path / "served", password=TEST_TOKEN) as srv:
        yield srv


@pytest.fixture
def strict_repo(tmp_path: Path) -> BareRepo:
    """A bare repository (``repo.git``) that refuses to serve commits by id, only refs."""
    return BareRepo(tmp_path / "strict" / "repo.git", allow_any_sha=False)


@pytest.fixture
def strict_server(tmp_path: Path, strict_repo: BareRepo) -> Iterator[GitHttpServer]:
    """Serves ``strict_repo`` with basic auth (TEST_TOKEN), speaking protocol v0 only, so
    unadvertised commits are refused and clients must ask for refs."""
    with GitHttpServer(tmp_path / "strict", password=TEST_TOKEN, protocol_v2=False) as srv:
        yield srv


@pytest.fixture
def local_repo(tmp_path: Path) -> BareRepo:
    """A bare repository reached by its path (the ``file`` transport), not served."""
    return BareRepo(tmp_path / "local.git")


@pytest.fixture
def git_runner(tmp_path: Path) -> GitCommand:
    """The hardened git runner, with its private home in ``tmp_path / "home"``."""
    return GitCommand(tmp_path / "home")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A git workspace in ``tmp_path / "ws"`` with a 30 s network time limit."""
    return Workspace(tmp_path / "ws", timeout=30)


# -- a real `pocketci-tui serve` process ------------------------------------------------------


def write_serve_config(home: Path, repos: str = "[{name: acme/api}]", extra: str = "") -> Path:
    """Write a config.yaml for a `serve` subprocess: port 0, plaintext secrets, given repos."""
    config = home / "config.yaml"
    config.write_text(
        "listen: {host: 127.0.0.1, port: 0}\nsecrets: {backend: plaintext}\n"
        f"repos: {repos}\n{extra}"
    )
    return config


def set_secret_cli(name: str, value: str) -> None:
    """Store a secret through `pocketci-tui secrets set NAME --stdin` (the configured backend)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pocketci_tui", "secrets", "set", name, "--stdin"],
        input=value,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


class ServeProcess:
    """A `pocketci-tui serve` child process; its output is drained and kept in ``lines``."""

    def __init__(
        self, proc: asyncio.subprocess.Process, output: asyncio.StreamReader | None = None
    ) -> None:
        self.proc = proc
        self.output = output or proc.stdout
        self.lines: list[str] = []
        self.url = ""
        self._listening = asyncio.Event()
        self._drain = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.output is not None
        while True:
            raw = await self.output.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if " listening on " in line and not self.url:
                self.url = line.rsplit(" ", 1)[-1]
                self._listening.set()

    @property
    def hook_url(self) -> str:
        """The webhook URL of the running process."""
        return self.url + "/webhooks/github"

    @classmethod
    async def start(
        cls,
        *args: str,
        timeout: float = 60,
        prefix: tuple[str, ...] = (),
        journal: bool = False,
    ) -> ServeProcess:
        """Start `python -m pocketci_tui serve ARGS` and wait until it listens.

        ``prefix`` goes before the interpreter: a program that execs it, such as
        ``prlimit --nofile=1024:1024 --`` (the pid stays the server's). With ``journal``, its
        stdout is a pipe that ``$JOURNAL_STREAM`` names, as systemd does for a service that logs
        to the journal.
        """
        argv = (*prefix, sys.executable, "-m", "pocketci_tui", "serve", *args)
        output: asyncio.StreamReader | None = None
        if journal:
            read_end, write_end = os.pipe()
            info = os.fstat(write_end)
            env = {**os.environ, "JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=write_end,
                    stderr=write_end,
                    env=env,
                )
            finally:
                os.close(write_end)
            output = asyncio.StreamReader()
            await asyncio.get_running_loop().connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(output), os.fdopen(read_end, "rb")
            )
        else:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        serve = cls(proc, output)
        waiter = asyncio.create_task(serve._listening.wait())
        await asyncio.wait([waiter, serve._drain], timeout=timeout, return_when="FIRST_COMPLETED")
        if not serve.url:
            waiter.cancel()
            await serve.kill()
            raise AssertionError("serve did not start:\n" + "\n".join(serve.lines))
        return serve

    async def kill(self) -> None:
        """SIGKILL it and wait."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self._drain

    async def terminate(self, timeout: float = 60) -> int:
        """SIGTERM it and return its exit code."""
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            tail = "\n".join(self.lines[-40:])
            raise AssertionError(f"serve did not stop within {timeout} s:\n{tail}") from None
        await self._drain
        return code
