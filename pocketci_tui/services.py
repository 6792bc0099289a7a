"""The running parts of one pocketci-tui instance: store, secret store, engine and listener.

Both ``pocketci-tui serve`` and the terminal UI start them through :class:`Services`, so they
share one wiring. The data folder's lock comes first (:mod:`pocketci_tui.datalock`: one owner per
folder, so a second instance changes nothing), then the listening sockets are bound (a port in
use fails before any state is touched), then the store opens (and fails loudly on a read-only or
broken database), the engine stops what a crash left running and resumes queued work, and the
listener starts serving last, so no delivery is accepted before the parts that must take it are
up. The poller (:mod:`pocketci_tui.polling`) starts with the engine, for the repositories that
say ``poll:``. :meth:`Services.stop` undoes it in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from pocketci_tui.config import Settings
from pocketci_tui.contract import (
    ClientNotice,
    NotStarted,
    SettingsChanged,
)
from pocketci_tui.core_feed import (
    StatusWatch,
    tell_delivery,
)
from pocketci_tui.datalock import DataFolderBusy, DataLock, Mode
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.intake.rejections import RejectionLog
from pocketci_tui.launch import open_secrets
from pocketci_tui.local_client import LocalClient
from pocketci_tui.model import StoredEvent, webhook_path
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import SecretStore, SecretStoreError
from pocketci_tui.store import Store, StoreError

if TYPE_CHECKING:
    from aiohttp import web

    from pocketci_tui.control.server import ControlServer, ReloadHook
    from pocketci_tui.intake import IntakeLimits, Listener
    from pocketci_tui.polling import Poller, PollTiming, ProblemBoard
    from pocketci_tui.problems import Problem
    from pocketci_tui.statuses.routing import SettingsRouter
    from pocketci_tui.statuses.sender import StatusSender

log = logging.getLogger("pocketci_tui.services")

RETENTION_INTERVAL = 3600.0
"""Seconds between two retention passes while running."""

STATUS_STOP_GRACE = 5.0
"""Seconds the commit status sender gets at a stop to deliver the runs' last states."""

ENGINE_STOP_TIMEOUT = 20.0
"""Seconds the engine gets to stop its runs before the store is closed anyway."""


class EngineLike(EngineClient, Protocol):
    """What :class:`Services` needs of the engine (``engine.dispatcher.Engine``): what it
    relays to the UI (:class:`EngineClient`), plus its lifecycle and the intake's sink."""

    async def start(self) -> None:
        """Resume queued work and start dispatching."""
        ...

    async def shutdown(self) -> None:
        """Stop dispatching and cancel running calls."""
        ...

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Take a stored delivery (the intake's EventSink)."""
        ...

    settings: Settings
    """The configuration each new event is dispatched with (replaced on a reload)."""

    @property
    def live(self) -> ProblemBoard:
        """Where the engine's problems are kept; the poller adds its own there."""
        ...


EngineFactory = Callable[..., EngineLike]
"""Builds the engine from ``settings=, paths=, store=, secrets=`` keyword arguments."""


class ServicesError(Exception):
    """A part could not start; the message says which and why."""


def default_engine_factory(**kwargs: Any) -> EngineLike:
    """Build the real engine (imported here, so importing this module stays light)."""
    from pocketci_tui.engine.dispatch import Engine

    engine: EngineLike = Engine(**kwargs)
    return engine


class Services(LocalClient):
    """Owns the store, secret store, engine and listener of one running instance.

    It is also the in-process :class:`~pocketci_tui.contract.CoreClient`: the UI's reads and
    actions go to the store and engine it owns.

    Args:
        settings: The user configuration.
        paths: Where the database, logs and work folders are.
        secrets: A secret store to use; None opens the configured one at start.
        engine_factory: Builds the engine; the real dispatcher by default.
        limits: Intake limits (``intake.IntakeLimits``); None for the defaults.
        busy_timeout: Seconds a database write waits for another writer.
        passphrase: The encrypted secrets file's passphrase, if that backend is used.
        lock: The data folder's lock, already held by the process (kept at stop); None takes
            it at start and releases it at stop.
        mode: What this process is (``ui`` or ``serve``), recorded in the lock it takes.
        sockets: Listening sockets already bound (:func:`pocketci_tui.intake.bind_sockets`);
            None binds the configured address at start.
        poll_timing: How the poller times its polls (``polling.PollTiming``); None for the
            defaults (each repository's own ``poll``).
    """

    def __init__(
        self,
        settings: Settings,
        paths: AppPaths,
        *,
        secrets: SecretStore | None = None,
        engine_factory: EngineFactory | None = None,
        limits: IntakeLimits | None = None,
        busy_timeout: float = 5.0,
        passphrase: str | None = None,
        lock: DataLock | None = None,
        mode: Mode = "serve",
        sockets: list[socket.socket] | None = None,
        poll_timing: PollTiming | None = None,
    ) -> None:
        self.settings = settings
        self.paths = paths
        self._engine_factory = engine_factory or default_engine_factory
        self._limits = limits
        self._busy_timeout = busy_timeout
        self._passphrase = passphrase
        self.store: Store | None = None
        self.secrets: SecretStore | None = secrets
        self.engine: EngineLike | None = None
        self.listener: Listener | None = None
        self.url = ""
        self.owner: str | None = None
        """Always None: this process owns the data folder (see ``CoreClient.owner``)."""
        self._retention: asyncio.Task[None] | None = None
        self.rejections = RejectionLog()
        """Requests the listener refused: subscribe to be told (the UI's status bar)."""
        self.lock = lock
        """The data folder's lock while started (or as given)."""
        self._own_lock = False
        self._mode = mode
        self._sockets = sockets
        self._intake_app: web.Application | None = None
        self._router: SettingsRouter | None = None
        self.statuses: StatusSender | None = None
        """The commit status sender while started (its problems are the user's too)."""
        self._poll_timing = poll_timing
        self.poller: Poller | None = None
        """Polls the repositories that say ``poll:`` (while started)."""
        self.control: ControlServer | None = None
        """The control socket other processes attach to (while started, when it opened)."""
        self.reload_config: ReloadHook | None = None
        """Re-reads config.yaml for a client attached to the control socket (``serve`` and the
        UI set it once their reloader runs); None: the client is told this one cannot."""
        self._control_problem: Problem | None = None
        self._settings_watchers: list[Callable[[ClientNotice], None]] = []

    @property
    def webhook_url(self) -> str:
        """The URL the forge should post to (empty before start)."""
        return f"{self.url}{webhook_path('github')}" if self.url else ""

    async def start(self, *, host: str | None = None, port: int | None = None) -> str:
        """Open the store and secrets, start the engine, then the listener.

        Args:
            host: Overrides ``listen.host``.
            port: Overrides ``listen.port`` (0 picks a free port).

        Returns:
            The listener's base URL.

        Raises:
            ServicesError: A part could not start (data folder owned by another process,
                port, database, secret store...).
        """
        from pocketci_tui.intake import Listener, ListenerError, bind_sockets, make_intake_app
        from pocketci_tui.intake.listener import raise_open_files_limit

        if host is not None or port is not None:
            self.settings = replace(
                self.settings,
                host=host if host is not None else self.settings.host,
                port=port if port is not None else self.settings.port,
            )
        # Every connection holds a descriptor: use all the process may have (the listener
        # keeps its connections below it).
        raise_open_files_limit()
        try:
            if self.lock is None:
                try:
                    self.lock = await asyncio.to_thread(
                        DataLock.acquire, self.paths.lock_file, self._mode
                    )
                except OSError as exc:
                    raise ServicesError(
                        f"cannot lock the data folder {self.paths.data_dir}: {exc.strerror or exc}"
                    ) from exc
                self._own_lock = True
            if self._sockets is None:
                self._sockets = await asyncio.to_thread(
                    bind_sockets, self.settings.host, self.settings.port
                )
            self.store = await Store.open(self.paths.db_file, busy_timeout=self._busy_timeout)
            if self.secrets is None:
                self.secrets = await open_secrets(
                    self.settings, self.paths, passphrase=self._passphrase
                )
            await self._start_statuses(self.store, self.secrets)
            self.engine = self._engine_factory(
                settings=self.settings, paths=self.paths, store=self.store, secrets=self.secrets
            )
            if self.statuses is not None:
                self.engine.subscribe(self.statuses.wake)
            await self.engine.start()
            self._start_poller(self.store, self.secrets, self.engine)
            app = make_intake_app(
                settings=self.settings,
                store=self.store,
                secrets=self.secrets,
                sink=self.engine,
                limits=self._limits,
                rejections=self.rejections,
            )
            self._intake_app = app
            sockets, self._sockets = self._sockets, None
            self.listener = Listener(app, self.settings.host, self.settings.port, sockets=sockets)
            self.url = await self.listener.start()
            await asyncio.to_thread(self.lock.note_url, self.url)
            await self._start_control(self.lock)
        except (DataFolderBusy, StoreError, SecretStoreError, ListenerError) as exc:
            await self.stop()
            raise ServicesError(str(exc)) from exc
        except BaseException:
            await self.stop()
            raise
        self._retention = asyncio.create_task(self._retain(), name="pocketci-retention")
        return self.url

    async def _start_statuses(self, store: Store, secrets: SecretStore) -> None:
        """Queue commit statuses with run states from now on, and start delivering them.

        Started before the engine, so the states its recovery stores are reported too, and
        the statuses a stop left undelivered go out first.
        """
        from pocketci_tui.statuses.routing import SettingsRouter
        from pocketci_tui.statuses.sender import StatusSender

        self._router = SettingsRouter(self.settings)
        store.status_router = self._router
        self.statuses = StatusSender(store, secrets, self.settings)
        await self.statuses.start()

    async def _start_control(self, lock: DataLock) -> None:
        """Open the control socket, last, once everything it serves runs.

        A socket that cannot be opened (a folder open to others, a path too long) is a
        problem shown like the others, not a failed start: builds go on, only attaching to
        this process is impossible.
        """
        from pocketci_tui.control.hub import RING_BYTES, UI_RING_BYTES
        from pocketci_tui.control.location import SocketLocationError, socket_path
        from pocketci_tui.control.server import ControlServer, ControlServerError
        from pocketci_tui.problems import Problem

        self._control_problem = None
        try:
            server = ControlServer(
                self,
                path=socket_path(self.paths),
                owner=lock.owner,
                paths=self.paths,
                reload=self._reload_for_clients,
                # An owner that is a UI keeps less for resuming clients: it is the UI's memory.
                ring_bytes=UI_RING_BYTES if self._mode == "ui" else RING_BYTES,
            )
            await server.start()
        except (SocketLocationError, ControlServerError, OSError) as exc:
            self._control_problem = Problem(
                "control-socket",
                "no control socket",
                f"the control socket could not be opened, so no UI can attach to this process "
                f"(everything else runs): {exc}",
                "fix what the message says, then restart pocketci-tui",
                warning=True,
            )
            log.warning("%s", self._control_problem.detail)
            return
        self.control = server

    async def _reload_for_clients(self) -> tuple[bool, str]:
        hook = self.reload_config
        if hook is None:
            return False, "this pocketci-tui does not reload its configuration on request"
        return await hook()

    def _start_poller(self, store: Store, secrets: SecretStore, engine: EngineLike) -> None:
        from pocketci_tui.engine.git import GitCommand
        from pocketci_tui.polling import Poller

        self.poller = Poller(
            settings=self.settings,
            store=store,
            secrets=secrets,
            sink=engine,
            problems=engine.live,
            git=GitCommand(self.paths.work_dir / "git" / "home"),
            timing=self._poll_timing,
        )
        self.poller.start()

    async def _retain(self) -> None:
        while True:
            store = self.store
            if store is None:
                return
            try:
                removed = await store.apply_retention(
                    max_events=self.settings.retention_events,
                    max_days=self.settings.retention_days,
                    logs_dir=self.paths.logs_dir,
                )
                if removed:
                    log.info("retention removed %d old event(s)", removed)
            except StoreError as exc:
                log.warning("retention failed: %s", exc)
            await asyncio.sleep(RETENTION_INTERVAL)

    def apply_settings(self, settings: Settings) -> None:
        """Use a reloaded configuration from now on (see :mod:`pocketci_tui.config_reload`).

        The engine and the intake read it for each new event (repositories, grants, fork
        handling, timeout, retention); what they were built with (address, secret store,
        concurrency, Dagger CLI) is not changed here.
        """
        from pocketci_tui.intake import keys

        self.settings = settings
        if self.engine is not None:
            self.engine.settings = settings
        if self._router is not None:
            self._router.settings = settings
        if self.statuses is not None:
            self.statuses.settings = settings
        if self.poller is not None:
            self.poller.use(settings)
        app = self._intake_app
        if app is not None:
            app[keys.REPOS].use(settings)
        for callback in list(self._settings_watchers):  # every subscriber, attached ones too
            try:
                callback(SettingsChanged(settings))
            except Exception:
                log.exception("a subscriber failed on new settings")

    async def webhook_secret_problem(self) -> str:
        """Return why deliveries cannot be verified now (secret missing...), or ``""``."""
        if self.secrets is None:
            return "the secret store is not open"
        for name, whose in self.settings.webhook_secrets_in_use().items():
            try:
                value = await asyncio.wait_for(self.secrets.get(name), 10)
            except (SecretStoreError, TimeoutError) as exc:
                return f"the secret store cannot be read: {exc or 'timed out'}"
            if not value:
                refused = f"the deliveries of {whose}" if whose else "every delivery"
                return (
                    f"the webhook secret {name!r} is not set: {refused} will be refused with "
                    f"503 until you run `pocketci-tui secrets set {name}`"
                )
        return ""

    # -- the UI's contract (pocketci_tui.contract.CoreClient) ---------------------------------

    @property
    def started(self) -> bool:
        """True while the store and engine run (between a successful start and stop)."""
        return self.engine is not None and self.store is not None

    def _running(self) -> tuple[Store, EngineLike]:
        if self.store is None or self.engine is None:
            raise NotStarted("the engine is not running")
        return self.store, self.engine

    def subscribe(self, callback: Callable[[ClientNotice], None]) -> Callable[[], None]:
        """Relay the engine's notices, and its counts and problems when they change."""
        _, engine = self._running()
        statuses = self.statuses
        watch = StatusWatch(
            engine,
            callback,
            more_problems=self._status_problems,
            watch_more=statuses.watch_problems if statuses is not None else None,
        )
        unsubscribe_engine = engine.subscribe(watch.on_notice)
        self._settings_watchers.append(callback)
        unwatch_deliveries = (
            statuses.watch_deliveries(lambda row: tell_delivery(callback, row))
            if statuses is not None
            else None
        )

        def unsubscribe() -> None:
            unsubscribe_engine()
            with contextlib.suppress(ValueError):
                self._settings_watchers.remove(callback)
            if unwatch_deliveries is not None:
                unwatch_deliveries()
            watch.close()

        return unsubscribe

    def _status_problems(self) -> list[Problem]:
        """The repositories whose commit statuses the forge refused, and a control socket
        that could not be opened."""
        found = self.statuses.problems() if self.statuses is not None else []
        if self._control_problem is not None:
            found = [*found, self._control_problem]
        return found

    async def stop(self) -> None:
        """Close the control socket (attached clients are told), stop the listener (no new
        deliveries), then the engine, then close the store."""
        control, self.control = self.control, None
        if control is not None:
            try:
                await control.stop()
            except Exception:
                log.exception("stopping the control socket failed")
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
            self._retention = None
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                await listener.stop()
            except Exception:
                log.exception("stopping the listener failed")
        poller, self.poller = self.poller, None
        if poller is not None:
            await poller.stop()
        engine, self.engine = self.engine, None
        if engine is not None:
            stopping = asyncio.ensure_future(engine.shutdown())
            try:
                done, _ = await asyncio.wait({stopping}, timeout=ENGINE_STOP_TIMEOUT)
                if not done:
                    log.error(
                        "the engine did not stop within %.0f s; closing anyway. Still waiting: %s",
                        ENGINE_STOP_TIMEOUT,
                        _pending_tasks(exclude=stopping),
                    )
                    stopping.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await stopping
                else:
                    stopping.result()
            except Exception:
                log.exception("stopping the engine failed")
        statuses, self.statuses = self.statuses, None
        if statuses is not None:
            await statuses.stop(grace=STATUS_STOP_GRACE)
        store, self.store = self.store, None
        if store is not None:
            await store.close()
        for sock in self._sockets or ():
            sock.close()
        self._sockets = None
        if self._own_lock and self.lock is not None:
            self.lock.release()
            self.lock = None
            self._own_lock = False
        self.url = ""


def _pending_tasks(exclude: asyncio.Future[Any] | None = None) -> str:
    """Describe the tasks still pending (name and innermost frame), for a stuck shutdown."""
    parts: list[str] = []
    current = asyncio.current_task()
    for task in asyncio.all_tasks():
        if task is current or task is exclude or task.done():
            continue
        frames = task.get_stack()
        where = ""
        if frames:
            code = frames[-1].f_code
            where = (
                f" at {code.co_filename.rsplit('/', 1)[-1]}:{frames[-1].f_lineno} {code.co_name}"
            )
        parts.append(f"{task.get_name()}{where}")
    return "; ".join(parts[:20]) or "nothing"
