"""The owner's side of the control socket: its :class:`~pocketci_tui.contract.CoreClient` as
versioned JSON over HTTP on a Unix socket, and its notices on a websocket.

Every read and action of the contract is one request (``/v1/...``, see :data:`ROUTES`); values
are coded by :mod:`~pocketci_tui.control.wire`. An error is a non-2xx answer with
``{"error": {"kind", "message"}}`` (:data:`ERROR_KINDS`), so a client raises the same kind of
exception the in-process core would. Input is checked before it reaches the core: a body is
at most :data:`MAX_BODY` bytes and must be a JSON object, numbers and names are bounded, and
what does not fit is a 400, never a 500.

Notices go to each attached client on a websocket (``/v1/notices``), numbered by the
:class:`~pocketci_tui.control.hub.NoticeHub`: the client resumes after the last number it saw,
or is told to re-read the snapshot. Heartbeats both ways notice a dead peer; a client that does
not keep up (its queue fills, or one send takes :data:`SEND_TIMEOUT`) is closed with code
:data:`TOO_SLOW` and may come back. Only peers of our uid (or root) get in
(:mod:`~pocketci_tui.control.peers`); attaching and detaching are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from pocketci_tui.contract import ProblemsChanged
from pocketci_tui.control.answers import (
    MAX_ID,
    Refused,
    bad,
    bounded_tail,
    errors,
    event_id_of,
    json_body,
    query_int,
    reply,
    reply_off_loop,
    run_id_of,
    secret_name_of,
    short_text,
)
from pocketci_tui.control.hub import RING_BYTES, ClientTooSlow, HubClient, NoticeHub
from pocketci_tui.control.limits import (
    BUSY,
    MAX_CLIENT_FRAME,
    MAX_CLIENTS,
    MAX_CONNECTIONS,
    REQUEST_DEADLINE,
    ConnectionCount,
)
from pocketci_tui.control.location import make_socket_folder
from pocketci_tui.control.peers import GatedUnixSite, RefusalLog, peer_of
from pocketci_tui.control.wire import PROTOCOL_VERSION, decode, encode
from pocketci_tui.model import Run
from pocketci_tui.secrets import SecretStoreError, check_value

if TYPE_CHECKING:
    from pocketci_tui.contract import CoreClient
    from pocketci_tui.datalock import LockOwner
    from pocketci_tui.paths import AppPaths
    from pocketci_tui.secrets import SecretStore

__all__ = [
    "ERROR_KINDS",
    "MAX_BODY",
    "ROUTES",
    "TOO_SLOW",
    "ControlServer",
    "ControlServerError",
    "ReloadHook",
]

log = logging.getLogger("pocketci_tui.control")

MAX_BODY = 1024 * 1024
"""The largest request body accepted (bytes)."""

MAX_TAIL_LINES = 10_000
"""The most lines one output tail request returns."""

MAX_TAIL_BYTES = 16 * 1024 * 1024
"""The most characters of lines one output tail answer carries (10,000 lines of a log whose
lines are split at 64 KiB could be 640 MB)."""

MAX_PAGE = 1_000
"""The most events one page returns."""

MAX_RUN_IDS = 10_000
"""The most runs one status-deliveries request asks about."""

HEARTBEAT = 10.0
"""Seconds between two pings on a notices websocket (an unanswered ping closes it)."""

SEND_TIMEOUT = 10.0
"""Seconds one frame may take to reach a client before it is cut off as too slow."""

CLOSE_TIMEOUT = 2.0
"""Seconds a closing handshake may take before the connection is cut."""

TOO_SLOW = 4008
"""The websocket close code of a client cut off for not keeping up."""

ERROR_KINDS = (
    "not_started",
    "secret_store",
    "not_found",
    "bad_request",
    "conflict",
    BUSY,
    "internal",
)
"""What an error answer's ``kind`` may be."""

ReloadHook = Callable[[], Awaitable[tuple[bool, str]]]
"""Re-reads the owner's config.yaml and applies it; answers whether the file loaded, and what
the reload did in one line."""

ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/v1/hello"),
    ("GET", "/v1/snapshot"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{id}"),
    ("GET", "/v1/events/{id}/runs"),
    ("GET", "/v1/events/{id}/preview"),
    ("GET", "/v1/events/{id}/head-secrets"),
    ("POST", "/v1/events/{id}/fire"),
    ("POST", "/v1/events/{id}/cancel"),
    ("POST", "/v1/events/{id}/approve"),
    ("POST", "/v1/runs/{id}/rerun"),
    ("POST", "/v1/runs/{id}/cancel"),
    ("POST", "/v1/output-tail"),
    ("GET", "/v1/queue"),
    ("GET", "/v1/repositories"),
    ("POST", "/v1/status-deliveries"),
    ("GET", "/v1/counts"),
    ("GET", "/v1/refusals"),
    ("GET", "/v1/webhook-secret-problem"),
    ("POST", "/v1/config/reload"),
    ("GET", "/v1/secrets"),
    ("GET", "/v1/secrets/{name}"),
    ("PUT", "/v1/secrets/{name}"),
    ("DELETE", "/v1/secrets/{name}"),
    ("GET", "/v1/notices"),
)
"""Every route the server answers, as (method, path)."""


class ControlServerError(Exception):
    """The control socket could not be opened; the message says why and what to do."""


class ControlServer:
    """Serves one :class:`~pocketci_tui.contract.CoreClient` on a Unix socket.

    Args:
        client: The in-process core (started).
        path: Where the socket goes (:func:`~pocketci_tui.control.location.socket_path`).
        owner: The data folder lock's record: who this process is, since when.
        paths: The instance's paths (the data folder and config file, told in ``hello``).
        reload: Re-reads config.yaml for ``POST /v1/config/reload``; None when the owner
            cannot (the answer says so).
        heartbeat: Seconds between two pings on a notices websocket (:data:`HEARTBEAT`).
        send_timeout: Seconds one frame may take to reach a client (:data:`SEND_TIMEOUT`).
        max_clients: The most clients following the notices at once (the next is refused
            ``503 busy``); see :mod:`~pocketci_tui.control.limits` for this and the next two.
        max_connections: The most connections open at once.
        request_deadline: Seconds a connection may stay without a whole request.
        ring_bytes: The most bytes of notices kept for clients that resume
            (:data:`~pocketci_tui.control.hub.RING_BYTES`).
    """

    def __init__(
        self,
        client: CoreClient,
        *,
        path: Path,
        owner: LockOwner,
        paths: AppPaths,
        reload: ReloadHook | None = None,
        heartbeat: float = HEARTBEAT,
        send_timeout: float = SEND_TIMEOUT,
        max_clients: int = MAX_CLIENTS,
        max_connections: int = MAX_CONNECTIONS,
        request_deadline: float = REQUEST_DEADLINE,
        ring_bytes: int = RING_BYTES,
    ) -> None:
        self.client = client
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.path = path
        self.owner = owner
        self.paths = paths
        self.reload = reload
        self.hub = NoticeHub(ring_bytes=ring_bytes)
        self.refusals = RefusalLog()
        """Connections refused for their peer's uid."""
        self.max_clients = max_clients
        self.connections = ConnectionCount(max_connections)
        """The connections open, and how many were refused as one too many."""
        self.request_deadline = request_deadline
        self._runner: web.AppRunner | None = None
        self._inode: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the socket (removing a dead owner's), subscribe to the core and serve.

        Raises:
            ControlServerError: The folder is not private, or the socket cannot be bound.
            SocketLocationError: The folder is someone else's or open to others.
        """
        sock = await asyncio.to_thread(self._bind)
        try:
            app = web.Application(client_max_size=MAX_BODY, middlewares=[errors])
            self._add_routes(app)
            self._runner = web.AppRunner(
                app,
                handle_signals=False,
                access_log=None,
                shutdown_timeout=CLOSE_TIMEOUT + 1.0,
                # aiohttp closes a connection that has no whole request by then (also one that
                # sent half a request and waits), and an idle kept one.
                keepalive_timeout=self.request_deadline,
            )
            await self._runner.setup()
            await GatedUnixSite(self._runner, sock, self.refusals, self.connections).start()
            self.hub.start(self.client)
        except BaseException:
            sock.close()
            await self.stop()
            raise
        log.info("control socket at %s", self.path)

    def _bind(self) -> socket.socket:
        """Create the folder, remove a stale socket and bind a new one, mode 0600 (blocking)."""
        make_socket_folder(self.path)
        try:
            st = self.path.lstat()
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise ControlServerError(
                    f"{self.path} is in the way of the control socket and is not a socket: "
                    "remove it"
                )
            # We hold the data folder's lock: a socket here is a dead owner's.
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            self._inode = self.path.lstat().st_ino
            sock.listen(64)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise ControlServerError(
                f"cannot open the control socket {self.path}: {exc.strerror or exc}"
            ) from exc
        return sock

    async def stop(self) -> None:
        """Close every client, stop serving and remove the socket (idempotent)."""
        self.hub.stop()  # each client's sender closes its websocket (cut if it does not read)
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await runner.cleanup()
            except Exception:
                log.exception("stopping the control socket failed")
        inode, self._inode = self._inode, None
        if inode is not None:
            with contextlib.suppress(OSError):
                if self.path.lstat().st_ino == inode:
                    self.path.unlink()

    # -- routes ---------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "/v1/hello": self._hello,
            "/v1/snapshot": self._snapshot,
            "/v1/events": self._events,
            "/v1/events/{id}": self._event,
            "/v1/events/{id}/runs": self._runs,
            "/v1/events/{id}/preview": self._preview,
            "/v1/events/{id}/head-secrets": self._head_secrets,
            "/v1/events/{id}/fire": self._fire,
            "/v1/events/{id}/cancel": self._cancel_event,
            "/v1/events/{id}/approve": self._approve,
            "/v1/runs/{id}/rerun": self._rerun,
            "/v1/runs/{id}/cancel": self._cancel_run,
            "/v1/output-tail": self._output_tail,
            "/v1/queue": self._queue,
            "/v1/repositories": self._repositories,
            "/v1/status-deliveries": self._status_deliveries,
            "/v1/counts": self._counts,
            "/v1/refusals": self._refusals,
            "/v1/webhook-secret-problem": self._webhook_secret_problem,
            "/v1/config/reload": self._reload,
            "/v1/secrets": self._secret_names,
            "/v1/notices": self._notices,
        }
        secret: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "GET": self._secret_get,
            "PUT": self._secret_set,
            "DELETE": self._secret_delete,
        }
        for method, route in ROUTES:
            handler = secret[method] if route == "/v1/secrets/{name}" else handlers[route]
            app.router.add_route(method, route, handler)

    async def _hello(self, request: web.Request) -> web.Response:
        return reply(
            {
                "version": PROTOCOL_VERSION,
                "instance": self.hub.instance,
                "seq": self.hub.seq,
                "pid": self.owner.pid or os.getpid(),
                "mode": self.owner.mode,
                "data_dir": str(self.paths.data_dir),
                "url": self.client.url,
                "started_at": self.owner.started_at,
                "config_file": str(self.paths.config_file),
            }
        )

    async def _snapshot(self, request: web.Request) -> web.Response:
        limit = query_int(request, "limit", 100, 1, MAX_PAGE)
        event = query_int(request, "event", None, 1, MAX_ID)
        # Numbered before reading: replaying from here can only repeat what the reads show.
        seq, instance = self.hub.seq, self.hub.instance
        problems = self.hub.problems or ProblemsChanged(())
        refusals = self.hub.refusals
        assert limit is not None
        events = await self.client.events_page(limit=limit)
        runs = await self.client.runs(event) if event is not None else []
        counts = await self.client.counts()
        return reply(
            {
                "instance": instance,
                "seq": seq,
                "url": self.client.url,
                "events": encode(events),
                "runs": encode(runs),
                "counts": encode(counts),
                "problems": encode(problems),
                "refusals": encode(refusals),
                "settings": encode(self.client.settings),
            }
        )

    async def _events(self, request: web.Request) -> web.Response:
        limit = query_int(request, "limit", 100, 1, MAX_PAGE)
        before = query_int(request, "before", None, 1, MAX_ID)
        text = short_text(request.query.get("text", ""), "text")
        assert limit is not None
        return reply(
            encode(await self.client.events_page(limit=limit, before_id=before, text=text))
        )

    async def _event(self, request: web.Request) -> web.Response:
        return await reply_off_loop(await self.client.event(event_id_of(request)))

    async def _runs(self, request: web.Request) -> web.Response:
        return reply(encode(await self.client.runs(event_id_of(request))))

    async def _preview(self, request: web.Request) -> web.Response:
        return reply(encode(await self.client.preview(event_id_of(request))))

    async def _head_secrets(self, request: web.Request) -> web.Response:
        return reply(encode(await self.client.head_secrets(event_id_of(request))))

    async def _fire(self, request: web.Request) -> web.Response:
        await self.client.fire(event_id_of(request))
        return reply({"ok": True})

    async def _cancel_event(self, request: web.Request) -> web.Response:
        return reply({"cancelled": await self.client.cancel_event(event_id_of(request))})

    async def _approve(self, request: web.Request) -> web.Response:
        event_id = event_id_of(request)
        sha = (await json_body(request)).get("sha")
        if sha is not None:
            sha = short_text(sha, "sha")
        await self.client.approve(event_id, sha)
        return reply({"ok": True})

    async def _rerun(self, request: web.Request) -> web.Response:
        await self.client.rerun(run_id_of(request))
        return reply({"ok": True})

    async def _cancel_run(self, request: web.Request) -> web.Response:
        return reply({"cancelled": await self.client.cancel(run_id_of(request))})

    async def _output_tail(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        run = decode(Run, body.get("run"))
        if not 1 <= run.event_id <= MAX_ID:
            raise bad(f"the run's event id must be between 1 and {MAX_ID}")
        lines = body.get("lines")
        if not isinstance(lines, int) or isinstance(lines, bool) or lines < 0:
            raise bad("lines must be a whole number, 0 or more")
        # The run as stored, not as sent: its log file is found from the owner's own record.
        stored = next((r for r in await self.client.runs(run.event_id) if r.id == run.id), None)
        if stored is None:
            raise Refused(404, "not_found", f"no run {run.id[:80]} of event {run.event_id}")
        tail = await self.client.output_tail(stored, min(lines, MAX_TAIL_LINES))
        return await reply_off_loop(bounded_tail(tail, MAX_TAIL_BYTES))

    async def _queue(self, request: web.Request) -> web.Response:
        return reply(await self.client.queue_order())

    async def _repositories(self, request: web.Request) -> web.Response:
        return reply(encode(await self.client.repositories()))

    async def _status_deliveries(self, request: web.Request) -> web.Response:
        run_ids = (await json_body(request)).get("run_ids")
        if not isinstance(run_ids, list) or len(run_ids) > MAX_RUN_IDS:
            raise bad(f"run_ids must be a list of at most {MAX_RUN_IDS} run ids")
        ids = [short_text(run_id, "a run id") for run_id in run_ids]
        return reply(encode(await self.client.status_deliveries(ids)))

    async def _counts(self, request: web.Request) -> web.Response:
        return reply(encode(await self.client.counts()))

    async def _refusals(self, request: web.Request) -> web.Response:
        recent, total = await self.client.refusals()
        return reply({"recent": encode(recent), "total": total})

    async def _webhook_secret_problem(self, request: web.Request) -> web.Response:
        return reply({"problem": await self.client.webhook_secret_problem()})

    async def _reload(self, request: web.Request) -> web.Response:
        if self.reload is None:
            return reply({"ok": False, "message": "this pocketci-tui cannot reload its config"})
        ok, message = await self.reload()
        return reply({"ok": ok, "message": message})

    # -- secrets --------------------------------------------------------------------------------

    def _store(self) -> SecretStore:
        store = self.client.secrets
        if store is None:
            raise SecretStoreError("the secret store is not open")
        return store

    async def _secret_names(self, request: web.Request) -> web.Response:
        store = self._store()
        names = await store.names()
        return reply({"backend": store.backend_name, "warning": store.warning, "names": names})

    async def _secret_get(self, request: web.Request) -> web.Response:
        name = secret_name_of(request)
        value = await self._store().get(name)
        peer = peer_of(request.transport.get_extra_info("socket") if request.transport else None)
        log.info(
            "the secret %s was read through the control socket by pid %s",
            name,
            peer.pid if peer is not None else "?",
        )
        return reply({"value": value})

    async def _secret_set(self, request: web.Request) -> web.Response:
        name = secret_name_of(request)
        value = (await json_body(request)).get("value")
        if not isinstance(value, str):
            raise bad("value must be text")
        check_value(value, allow_short=True)
        await self._store().set(name, value)
        return reply({"ok": True})

    async def _secret_delete(self, request: web.Request) -> web.Response:
        await self._store().delete(secret_name_of(request))
        return reply({"ok": True})

    # -- notices --------------------------------------------------------------------------------

    async def _notices(self, request: web.Request) -> web.StreamResponse:
        after = query_int(request, "after", None, 0, MAX_ID)
        instance = request.query.get("instance") or None
        if instance is not None:
            instance = short_text(instance, "instance")
        if self.hub.clients >= self.max_clients:
            raise Refused(
                503,
                BUSY,
                f"{self.max_clients} clients follow this owner's notices already: "
                "detach one and try again",
            )
        peer = peer_of(request.transport.get_extra_info("socket") if request.transport else None)
        ws = web.WebSocketResponse(
            heartbeat=self.heartbeat, compress=False, max_msg_size=MAX_CLIENT_FRAME
        )
        await ws.prepare(request)
        client, resync = self.hub.open(after, instance)
        pid = peer.pid if peer is not None else 0
        log.info("attached: pid %d uid %d", pid, peer.uid if peer is not None else -1)
        sender = asyncio.create_task(
            self._send(ws, request.transport, client, resync), name="pocketci-control-send"
        )
        try:
            async for msg in ws:  # the client's acknowledgements: read, so pings are answered
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.hub.close(client)
            reason = await self._ended(sender) or _why_closed(ws)
            log.info("detached: pid %d (%s)", pid, reason)
        return ws

    @staticmethod
    async def _ended(sender: asyncio.Task[str]) -> str:
        """Wait (briefly) for the sender to end; why it ended it, or ``""``."""
        done, _ = await asyncio.wait({sender}, timeout=3.0)
        if not done:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            return ""
        if sender.cancelled():
            return ""
        exc = sender.exception()
        if exc is not None:
            log.warning("sending notices to a client failed: %r", exc)
            return f"failed: {exc!r}"[:200]
        return sender.result()

    async def _send(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        client: HubClient,
        resync: dict[str, Any] | None,
    ) -> str:
        """Send the client its frames until it is closed; return why it ended."""
        try:
            if resync is not None:
                await asyncio.wait_for(ws.send_str(json.dumps(resync)), self.send_timeout)
            while True:
                frames = await client.take()
                if not frames:
                    if ws.closed:
                        return ""
                    await _close(ws, transport, 1001, b"the owner is stopping")
                    return "the owner is stopping"
                for frame in frames:
                    await asyncio.wait_for(ws.send_str(frame), self.send_timeout)
        except (ClientTooSlow, TimeoutError):
            await _close(ws, transport, TOO_SLOW, b"too slow")
            return "too slow: it did not keep up with the notices"
        except (ConnectionError, RuntimeError) as exc:
            return f"connection lost ({exc})"


async def _close(
    ws: web.WebSocketResponse, transport: asyncio.Transport | None, code: int, why: bytes
) -> None:
    """Close a notices websocket, telling the client why if it still reads; one that does not
    read (its socket full) cannot even be told, and its connection is cut instead: a closing
    transport would wait forever for its buffer to drain."""
    closed = False
    try:
        closed = await asyncio.wait_for(ws.close(code=code, message=why), CLOSE_TIMEOUT)
    except asyncio.CancelledError:
        # aiohttp cancels a close whose handshake the reading side ended; only a
        # cancellation of this task itself goes on.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception:
        closed = False  # cut below, whatever failed
    if not closed and transport is not None:
        transport.abort()


def _why_closed(ws: web.WebSocketResponse) -> str:
    """Why a notices websocket ended, as far as its state tells."""
    if isinstance(ws.exception(), (TimeoutError, asyncio.TimeoutError)):
        return "no answer to the heartbeat"
    if ws.close_code not in (None, 1000, 1001):
        return f"connection lost (code {ws.close_code})"
    return "closed by the client"
