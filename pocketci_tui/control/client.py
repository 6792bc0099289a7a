"""The UI's contract across the control socket: a client attached to the data folder's owner.

:class:`SocketClient` is the remote :class:`~pocketci_tui.contract.CoreClient`: what the
in-process :class:`~pocketci_tui.services.Services` does with its own store and engine, it asks
of the process that owns the data folder (``pocketci-tui serve``, or another UI), over the
owner's control socket (:mod:`pocketci_tui.control.location`), in the protocol of
:mod:`pocketci_tui.control.wire`. Its :class:`~pocketci_tui.control.link.Link` attaches, follows
the owner's notices in order and attaches again after a lost link; the client keeps what the
notices say that a new subscriber must be told at once (the run counts, the problems, the
refusals), tells :class:`~pocketci_tui.contract.LinkChanged` as the link goes down and comes
back (with ``resync`` set when what the UI shows must be read again), feeds
:class:`~pocketci_tui.contract.SecretChanged` to its
:class:`~pocketci_tui.control.remote_secrets.RemoteSecretStore`, and takes the owner's new
settings from :class:`~pocketci_tui.contract.SettingsChanged` (whoever had it reload).

While the link is down every read and action raises
:class:`~pocketci_tui.contract.NotStarted` at once, and no request ever waits longer than its
deadline (10 s, an output tail 30 s): the UI says so instead of hanging.

:func:`find_owner` tells whether the data folder has an owner to attach to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from pocketci_tui.config import Settings
from pocketci_tui.contract import (
    ClientNotice,
    CoreClient,
    CountsChanged,
    HeadSecrets,
    LinkChanged,
    NotStarted,
    OutputTail,
    ProblemsChanged,
    Rejection,
    RejectionSummary,
    SecretChanged,
    SettingsChanged,
    StatusDelivery,
)
from pocketci_tui.datalock import lock_owner
from pocketci_tui.model import MatchResult, RepoSummary, Run, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import SecretStore, SecretStoreError

from . import wire
from .link import (
    BACKOFF,
    HEARTBEAT,
    SNAPSHOT_EVENTS,
    AttachError,
    Hello,
    Link,
    Snapshot,
    VersionMismatch,
    decode_answer,
)
from .location import check_private_folder, socket_candidates
from .remote_secrets import RemoteSecretStore
from .transport import DEFAULT_TIMEOUT, TAIL_TIMEOUT, RemoteError, Transport

__all__ = [
    "AttachError",
    "RemoteError",
    "RemoteSecretStore",
    "SocketClient",
    "VersionMismatch",
    "find_owner",
    "find_owner_blocking",
    "greet",
    "greet_blocking",
]

log = logging.getLogger("pocketci_tui.control.client")

T = TypeVar("T")

Subscriber = Callable[[ClientNotice], None]

OWNER_POLL = 0.2
"""Seconds between two looks for the socket of an owner that is still starting."""


def _field(data: Any, name: str, kind: type[T]) -> T:
    """One field of an answer object, of the given type."""
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RemoteError(f"the owner's answer has no {kind.__name__} {name!r}")
    return value


class SocketClient(CoreClient):
    """The remote :class:`~pocketci_tui.contract.CoreClient`: the owner's core, over its
    control socket.

    Args:
        path: The owner's control socket (:func:`find_owner`).
        timeout: Seconds a request may take.
        tail_timeout: Seconds an output tail may take.
        backoff: The first and the longest wait before trying again to attach, in seconds
            (each wait is jittered down by up to a half).
        heartbeat: Seconds between pings on the notices stream.
        snapshot_events: How many recent events a snapshot carries (:attr:`snapshot`).
    """

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tail_timeout: float = TAIL_TIMEOUT,
        backoff: tuple[float, float] = BACKOFF,
        heartbeat: float = HEARTBEAT,
        snapshot_events: int = SNAPSHOT_EVENTS,
    ) -> None:
        self.path = path
        self.url = ""
        self.settings = Settings()
        self.secrets: SecretStore | None = None
        self.owner: str | None = f"the owner of {path}"
        """Who owns the data folder (``pocketci-tui serve (pid 123)``), from its greeting."""
        self.snapshot: Snapshot | None = None
        """The latest snapshot read (at attach, and at each resync)."""
        self._transport = Transport(path, timeout=timeout)
        self._link = Link(
            self._transport,
            self,
            heartbeat=heartbeat,
            backoff=backoff,
            snapshot_events=snapshot_events,
        )
        self._remote_secrets = RemoteSecretStore(self.call)
        self._tail_timeout = tail_timeout
        self._started = False
        self._counts: CountsChanged | None = None
        self._problems: ProblemsChanged | None = None
        self._refusal: RejectionSummary | None = None
        self._subscribers: list[Subscriber] = []
        self._refusal_subscribers: list[Callable[[RejectionSummary], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- the connection ------------------------------------------------------------------------

    @property
    def hello(self) -> Hello | None:
        """The owner's latest greeting."""
        return self._link.hello

    @property
    def started(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop` (the link may be down
        meanwhile: :attr:`link_up` says)."""
        return self._started

    @property
    def link_up(self) -> bool:
        """True while the notices stream is open and reads and actions can be sent."""
        return self._started and self._link.up

    @property
    def last_seq(self) -> int:
        """The number of the last notice told (or of the last snapshot)."""
        return self._link.seq

    async def start(self) -> str:
        """Attach: greet the owner, read its snapshot, open the notices stream.

        Returns:
            The owner's listener base URL.

        Raises:
            VersionMismatch: The owner speaks another protocol version.
            AttachError: The owner cannot be reached or does not answer as one; the chain
                says why.
        """
        if self._started:
            return self.url
        try:
            await self._link.open()
        except BaseException:
            await self._transport.close()
            raise
        self._started = True
        self.owner = self._link.owner
        self.secrets = self._remote_secrets
        # Where the owner keeps them, for the UI; in the background, so that a slow keyring
        # of the owner's never delays attaching.
        self._spawn(self._learn_secret_store())
        log.info("attached to %s at %s", self.owner, self.path)
        return self.url

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task that :meth:`stop` cancels."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn_secret_store(self) -> None:
        with contextlib.suppress(SecretStoreError):
            await self._remote_secrets.refresh()

    async def stop(self) -> None:
        """Detach (idempotent): the owner and its builds carry on."""
        was_started, self._started = self._started, False
        await self._link.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._transport.close()
        self.url = ""
        if was_started:
            log.info("detached from %s", self.owner)

    # -- what the link tells (control.link.LinkEvents) ----------------------------------------

    def snapshot_read(self, snapshot: Snapshot) -> None:
        """Take the owner's URL, settings, counts, problems and refusals from a snapshot."""
        self.snapshot = snapshot
        self.url = snapshot.url
        self.settings = snapshot.settings
        self._counts = snapshot.counts
        self._problems = snapshot.problems
        if snapshot.refusals is not None and snapshot.refusals != self._refusal:
            self._refusal = snapshot.refusals
            self._tell_refusal(snapshot.refusals)

    def notice_read(self, notice: wire.WireNotice) -> None:
        """Keep what the client must know of a notice, and tell its subscribers."""
        if isinstance(notice, RejectionSummary):
            self._refusal = notice
            self._tell_refusal(notice)
            return
        if isinstance(notice, CountsChanged):
            if notice == self._counts:
                return  # each change is told once
            self._counts = notice
        elif isinstance(notice, ProblemsChanged):
            if notice == self._problems:
                return
            self._problems = notice
        elif isinstance(notice, SecretChanged):
            self._remote_secrets.changed(notice.name)
        elif isinstance(notice, SettingsChanged):
            self.settings = notice.settings  # what the owner runs with now
        self._publish(notice)

    def link_changed(self, change: LinkChanged) -> None:
        """Tell the subscribers; once up again, the counts and problems as they are too."""
        self.owner = change.owner
        self._publish(change)
        if change.up:
            for state in (self._counts, self._problems):
                if state is not None:
                    self._publish(state)

    def _publish(self, notice: ClientNotice) -> None:
        """Tell every subscriber, in order; a failing one is logged and skipped."""
        for callback in list(self._subscribers):
            try:
                callback(notice)
            except Exception:
                log.exception("a subscriber to the owner's notices failed")

    def _tell_refusal(self, summary: RejectionSummary) -> None:
        for callback in list(self._refusal_subscribers):
            try:
                callback(summary)
            except Exception:
                log.exception("a subscriber to the owner's refusals failed")

    # -- notices -------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Tell ``callback`` every notice from now on, the counts and problems at once."""
        if not self._started:
            raise NotStarted("not attached to an owner")
        self._subscribers.append(callback)
        for state in (self._counts, self._problems):
            if state is not None:
                callback(state)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def subscribe_refusals(
        self, callback: Callable[[RejectionSummary], None]
    ) -> Callable[[], None]:
        """Tell ``callback`` of the owner's listener refusals (the latest at once, if any)."""
        self._refusal_subscribers.append(callback)
        if self._refusal is not None:
            callback(self._refusal)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._refusal_subscribers.remove(callback)

        return unsubscribe

    # -- requests ------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        route: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the transport enforces it
    ) -> Any:
        """Send one request to the owner (see :meth:`Transport.call
        <pocketci_tui.control.transport.Transport.call>`).

        Raises:
            NotStarted: Not attached, or the link is down (at once, without trying).
        """
        if not self._started:
            raise NotStarted("not attached to an owner")
        if not self._link.up:
            raise NotStarted(f"the link to {self.owner} is down: {self._link.down}")
        return await self._transport.call(method, route, body=body, params=params, timeout=timeout)

    async def events_page(
        self, *, limit: int, before_id: int | None = None, text: str = ""
    ) -> list[StoredEvent]:
        """A page of the owner's stored events, newest first."""
        params = {"limit": str(limit)}
        if before_id is not None:
            params["before"] = str(before_id)
        if text:
            params["text"] = text
        result: list[StoredEvent] = decode_answer(
            list[StoredEvent], await self.call("GET", "/v1/events", params=params)
        )
        return result

    async def event(self, event_id: int) -> StoredEvent | None:
        """One stored event with its payload, or None."""
        data = await self.call("GET", f"/v1/events/{int(event_id)}")
        return None if data is None else decode_answer(StoredEvent, data)

    async def runs(self, event_id: int) -> list[Run]:
        """Every run of an event."""
        data = await self.call("GET", f"/v1/events/{int(event_id)}/runs")
        result: list[Run] = decode_answer(list[Run], data)
        return result

    async def queue_order(self) -> list[str]:
        """The queued runs, first to start first."""
        result: list[str] = decode_answer(list[str], await self.call("GET", "/v1/queue"))
        return result

    async def repositories(self) -> list[RepoSummary]:
        """How each repository stands."""
        data = await self.call("GET", "/v1/repositories")
        result: list[RepoSummary] = decode_answer(list[RepoSummary], data)
        return result

    async def status_deliveries(self, run_ids: Sequence[str]) -> dict[str, StatusDelivery]:
        """Whether each run's latest commit status reached the forge."""
        data = await self.call("POST", "/v1/status-deliveries", body={"run_ids": list(run_ids)})
        result: dict[str, StatusDelivery] = decode_answer(dict[str, StatusDelivery], data)
        return result

    async def counts(self) -> CountsChanged:
        """How many runs are queued and running now, as the owner says."""
        result: CountsChanged = decode_answer(CountsChanged, await self.call("GET", "/v1/counts"))
        return result

    async def output_tail(self, run: Run, lines: int) -> OutputTail:
        """The last lines of a run's output and where they end."""
        data = await self.call(
            "POST",
            "/v1/output-tail",
            body={"run": wire.encode(run), "lines": lines},
            timeout=self._tail_timeout,
        )
        result: OutputTail = decode_answer(OutputTail, data)
        return result

    async def preview(self, event_id: int) -> MatchResult | None:
        """What firing the event again would match."""
        data = await self.call("GET", f"/v1/events/{int(event_id)}/preview")
        return None if data is None else decode_answer(MatchResult, data)

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """The secrets a fork's head commit would get."""
        data = await self.call("GET", f"/v1/events/{int(event_id)}/head-secrets")
        result: HeadSecrets = decode_answer(HeadSecrets, data)
        return result

    async def refusals(self) -> tuple[list[Rejection], int]:
        """The owner's recent refusals, newest first, and how many in all."""
        data = await self.call("GET", "/v1/refusals")
        recent: list[Rejection] = decode_answer(list[Rejection], _field(data, "recent", list))
        return recent, _field(data, "total", int)

    async def webhook_secret_problem(self) -> str:
        """Why the owner cannot verify deliveries now, or ``""``."""
        return _field(await self.call("GET", "/v1/webhook-secret-problem"), "problem", str)

    # -- actions -------------------------------------------------------------------------------

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again."""
        await self.call("POST", f"/v1/events/{int(event_id)}/fire")

    async def rerun(self, run_id: str) -> None:
        """Run one function again."""
        await self.call("POST", f"/v1/runs/{quote(run_id, safe='')}/rerun")

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run; False when it was not active."""
        data = await self.call("POST", f"/v1/runs/{quote(run_id, safe='')}/cancel")
        return _field(data, "cancelled", bool)

    async def cancel_event(self, event_id: int) -> int:
        """Cancel an event's active runs; return how many."""
        return _field(
            await self.call("POST", f"/v1/events/{int(event_id)}/cancel"), "cancelled", int
        )

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Approve a fork's pull request at its head commit."""
        await self.call("POST", f"/v1/events/{int(event_id)}/approve", body={"sha": sha})

    def apply_settings(self, settings: Settings) -> None:
        """Have the owner re-read its own configuration (:meth:`reload_config`).

        An attached client never pushes its settings to the owner: the owner reads its
        config.yaml itself, so what it runs with is what its file says.
        """
        if not self._started:
            return
        self._spawn(self._reload_logged())

    async def _reload_logged(self) -> None:
        try:
            ok, message = await self.reload_config()
        except Exception as exc:
            log.warning("asking %s to reload its configuration failed: %s", self.owner, exc)
            return
        log.log(logging.INFO if ok else logging.WARNING, "%s: %s", self.owner, message)

    async def reload_config(self) -> tuple[bool, str]:
        """Have the owner re-read its config.yaml and apply it; then take its new settings.

        Returns:
            Whether it applied, and the owner's message about it.
        """
        data = await self.call("POST", "/v1/config/reload")
        ok, message = _field(data, "ok", bool), _field(data, "message", str)
        if ok:
            if not self._link.up:
                raise NotStarted(f"the link to {self.owner} is down: {self._link.down}")
            self.settings = (await self._link.read_snapshot(1)).settings
        return ok, message


# -- finding the owner ---------------------------------------------------------------------


async def find_owner(
    paths: AppPaths,
    *,
    timeout: float = 2.0,  # noqa: ASYNC109 - each socket's, not the whole search's
    wait: float = 0.0,
) -> Path | None:
    """The control socket of the process that owns the data folder, if one answers there.

    Someone owns the folder when its lock is held (:func:`pocketci_tui.datalock.lock_owner`);
    its socket is at one of :func:`~pocketci_tui.control.location.socket_candidates` (an
    owner started without a runtime folder, as a system service, binds a later one), the
    first that answers ``hello`` within ``timeout``. An owner of another protocol version
    still counts (attaching then says what is wrong).

    An owner opens its socket last, once its engine runs: with ``wait``, an owner that holds
    the lock but does not answer yet (``pocketci-tui`` started just after ``serve``) is looked
    for again until it does, for that many seconds.

    Args:
        paths: The data folder's paths.
        timeout: Seconds each socket has to answer.
        wait: Seconds to keep looking while the folder is owned but no socket answers.

    Returns:
        The socket to attach to, or None when nobody owns the folder, or its owner has no
        socket that answers (still starting after ``wait``, or a version without one).

    Raises:
        SocketLocationError: A socket is there, but in a folder that is not this user's
            alone (someone else could have put it there): the message says what to do.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        if await asyncio.to_thread(lock_owner, paths.lock_file) is None:
            return None
        for path in socket_candidates(paths):
            if not path.exists():
                continue
            check_private_folder(path.parent)
            if await _answers(path, timeout):
                return path
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(min(OWNER_POLL, max(0.0, deadline - loop.time())))


async def _answers(path: Path, timeout: float) -> bool:  # noqa: ASYNC109
    """True when ``path`` answers ``hello`` as a control socket within ``timeout``."""
    transport = Transport(path, timeout=timeout)
    try:
        data = await transport.call("GET", "/v1/hello")
    except (NotStarted, TimeoutError, RemoteError, ValueError, SecretStoreError) as exc:
        log.debug("%s does not answer: %s", path, exc)
        return False
    finally:
        await transport.close()
    return isinstance(data, dict) and "version" in data


def find_owner_blocking(paths: AppPaths, *, timeout: float = 2.0, wait: float = 0.0) -> Path | None:
    """:func:`find_owner` for code without a running event loop (the command line)."""
    return asyncio.run(find_owner(paths, timeout=timeout, wait=wait))


async def greet(path: Path, *, timeout: float = 2.0) -> Hello | None:  # noqa: ASYNC109
    """The greeting of the control socket at ``path``, or None when nothing answers there as
    one within ``timeout`` seconds (``check`` and ``attach --socket`` say who is there, and
    of which protocol version, before anything attaches).

    Args:
        path: The socket.
        timeout: Seconds it has to answer.

    Returns:
        Its greeting, whatever its protocol version, or None.
    """
    transport = Transport(path, timeout=timeout)
    try:
        data = await transport.call("GET", "/v1/hello")
    except (NotStarted, TimeoutError, RemoteError, ValueError, SecretStoreError) as exc:
        log.debug("%s does not answer: %s", path, exc)
        return None
    finally:
        await transport.close()
    if not isinstance(data, dict) or "version" not in data:
        return None
    try:
        hello: Hello = wire.decode(Hello, data)
    except wire.WireError:
        return None
    return hello


def greet_blocking(path: Path, *, timeout: float = 2.0) -> Hello | None:
    """:func:`greet` for code without a running event loop (the command line)."""
    return asyncio.run(greet(path, timeout=timeout))
