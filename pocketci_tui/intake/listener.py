"""Serve the intake application on a TCP port, on the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from pocketci_tui.intake import keys

log = logging.getLogger("pocketci_tui.intake")

# The sweeper learns from each connection's own state whether a request is in progress and how
# many it has served, instead of a middleware in every request's path. With an aiohttp that
# lacks these attributes, a middleware tracks requests instead.
_CAN_PEEK = all(
    name in getattr(RequestHandler, "__slots__", ())
    for name in ("_request_in_progress", "_request_count")
)


BACKLOG = 64
"""How many connections one wake-up of the loop may accept (asyncio's accept batch)."""

ACCEPT_QUEUE = 1024
"""The kernel's queue of connections waiting to be accepted (capped by ``somaxconn``)."""

FD_RESERVE = 128
"""Descriptors kept for everything but connections (database, logs, git and dagger pipes)."""

ACCEPT_ERROR_INTERVAL = 60.0
"""Seconds between two log lines about failing accepts (out of descriptors...)."""


class ListenerError(Exception):
    """The listener could not start (port in use, address not available...)."""


def raise_open_files_limit() -> tuple[int, int]:
    """Raise this process's soft limit of open files to its hard limit (call it at start).

    The soft limit is often 1,024, far below the hard one; every connection holds a descriptor.

    Returns:
        The soft and hard limits now in force (``RLIM_INFINITY`` as -1).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open files limit from %d to %d: %s", soft, target, exc)
    return soft, hard


def connection_cap() -> int:
    """How many connections the listener keeps at once: the open files limit, less a reserve.

    The reserve covers the rest of the process and the connections a burst has accepted
    before the ones over the cap are closed: asyncio accepts a batch (:data:`BACKLOG`) per
    wake-up, sees them in the next one, and their sockets close in the one after, so up to
    three batches are open beyond the cap. Running out anyway stops accepting for a second.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    return max(16, soft - FD_RESERVE - 3 * BACKLOG)


class AcceptErrorFilter(logging.Filter):
    """Lets one line about failing accepts through per interval, without its traceback.

    When the process runs out of descriptors, asyncio logs ``socket.accept() out of system
    resource`` with a traceback for every attempt (28 MB of log in 25 s under a flood of idle
    connections). The first line of an interval passes (with how many were held back since the
    last one), the others are dropped.

    Args:
        interval: Seconds between two lines.
    """

    MESSAGES = ("socket.accept() out of system resource",)

    def __init__(self, interval: float = ACCEPT_ERROR_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._last = -interval
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass, reworded, the first accept error of an interval; drop the rest."""
        message = str(record.msg)
        if not message.startswith(self.MESSAGES):
            return True
        now = time.monotonic()
        if now - self._last < self.interval:
            self.dropped += 1
            return False
        self._last = now
        exc = record.exc_info[1] if record.exc_info else None
        held = f"; {self.dropped} more since the last line" if self.dropped else ""
        record.msg = (
            f"cannot accept connections: {exc or message} (the open files limit is reached; "
            f"logged once per {self.interval:.0f} s{held})"
        )
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        self.dropped = 0
        return True


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address of ``host`` at ``port``, before anything else starts.

    Binding first lets a process find out that the port is taken before it asks for a
    passphrase or touches its data; connections that arrive meanwhile wait in the backlog
    until :meth:`Listener.start` serves the sockets.

    Args:
        host: The address (or name) to bind.
        port: The port; 0 picks a free one (the same one on every address).

    Returns:
        Listening, non-blocking sockets (at least one); the caller closes them when it does
        not hand them to a :class:`Listener`.

    Raises:
        ListenerError: The address cannot be bound (for example the port is in use).
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenerError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    socks: list[socket.socket] = []
    seen: set[tuple[int, str]] = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, str(addr[0])) in seen:
                continue
            seen.add((family, str(addr[0])))
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(socks) > 1:
                addr = (addr[0], socks[0].getsockname()[1], *addr[2:])
            sock.bind(addr)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in socks:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenerError(
                f"port {port} on {host} is already in use; "
                f"stop the other program or choose another port (--port)"
            ) from exc
        raise ListenerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    if not socks:
        raise ListenerError(f"cannot listen on {host}:{port}: no address")
    return socks


class Listener:
    """Runs an aiohttp application with ``AppRunner`` on sockets bound by :func:`bind_sockets`.

    Besides the body deadline of the handler, it closes connections that have not sent a
    complete request head within ``header_timeout`` seconds (slow-header clients), without
    disturbing the others.

    Args:
        app: The application (usually from ``make_intake_app``).
        host: The address to bind.
        port: The port; 0 picks a free one.
        header_timeout: Seconds a connection has to start each request; defaults to the
            application's limits.
        max_connections: The most connections kept at once; past it, the oldest idle one is
            closed for each new one. None: :func:`connection_cap` at start.
        sockets: Sockets already bound by :func:`bind_sockets` to serve (they are closed
            with the listener); None binds ``host`` and ``port`` at start.
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        header_timeout: float | None = None,
        max_connections: int | None = None,
        sockets: list[socket.socket] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._sockets = sockets
        limits = app.get(keys.LIMITS)
        if header_timeout is None:
            header_timeout = limits.header_timeout if limits is not None else 30.0
        self.header_timeout = header_timeout
        self._runner: web.AppRunner | None = None
        self._deadlines: dict[RequestHandler, float] = {}
        self._busy: set[RequestHandler] = set()
        self._seen: dict[RequestHandler, int] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._accept_filter: AcceptErrorFilter | None = None
        self.max_connections = max_connections
        self.evicted = 0
        """Connections closed to make room for newer ones."""
        self.url = ""
        if not _CAN_PEEK:  # pragma: no cover - depends on the aiohttp version
            app.middlewares.append(self._track_requests)

    @web.middleware
    async def _track_requests(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        proto = request.protocol
        if not isinstance(proto, RequestHandler):
            return await handler(request)
        self._busy.add(proto)
        try:
            return await handler(request)
        finally:
            self._busy.discard(proto)
            self._deadlines[proto] = time.monotonic() + self.header_timeout

    async def start(self) -> str:
        """Bind and start serving.

        Returns:
            The base URL (``http://127.0.0.1:PORT``), with the real port when 0 was asked.

        Raises:
            ListenerError: The address cannot be bound (for example the port is in use).
        """
        runner = web.AppRunner(
            self.app,
            access_log=None,
            auto_decompress=False,
            handle_signals=False,
            shutdown_timeout=10.0,
            # After an early reply (413, 408) read the rest of the body for at most 1 s.
            lingering_time=1.0,
        )
        sockets, self._sockets = self._sockets, None
        if sockets is None:
            sockets = bind_sockets(self.host, self.port)
        await runner.setup()
        if self.max_connections is None:
            self.max_connections = connection_cap()
        server = runner.server
        assert server is not None
        self._cap_connections(server, self.max_connections)
        try:
            for sock in sockets:
                await web.SockSite(runner, sock, backlog=BACKLOG).start()
                # asyncio accepts up to BACKLOG connections per wake-up (the descriptor reserve
                # covers them) and sets the kernel's queue to the same; a longer queue keeps a
                # burst of connections from dropping a real delivery's SYN (a 1 s retry).
                sock.listen(ACCEPT_QUEUE)
        except OSError as exc:
            await runner.cleanup()
            for sock in sockets:
                sock.close()
            raise ListenerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._runner = runner
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.port = int(sockets[0].getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        self._sweeper = asyncio.create_task(self._sweep(), name="pocketci-intake-sweeper")
        self._accept_filter = AcceptErrorFilter()
        logging.getLogger("asyncio").addFilter(self._accept_filter)
        return self.url

    def _cap_connections(self, server: web.Server, cap: int) -> None:
        """Close the oldest idle connection whenever a new one would pass ``cap``.

        Idle connections cost a stranger nothing and the process a descriptor each; once the
        descriptors run out, nothing is accepted any more (real deliveries time out). Each new
        connection over the cap closes the oldest idle one (no request in progress), or the
        new one itself when every older one is busy.
        """
        made = server.connection_made
        # Past the cap, close down to a little under it, so that a burst of new connections
        # does not look through every connection for each one.
        slack = max(1, cap // 16)

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            if len(server.connections) <= cap:  # closed ones are counted until they are gone
                return
            live = [proto for proto in server.connections if proto.transport is not None]
            if len(live) <= cap:
                return
            over = len(live) - cap + slack
            for proto in live:  # oldest first
                if over <= 0:
                    break
                if proto is handler:
                    continue
                if _CAN_PEEK and proto._request_in_progress:
                    continue
                proto.force_close()
                self.evicted += 1
                over -= 1
            if over > 0:
                handler.force_close()
                self.evicted += 1

        server.connection_made = connection_made  # type: ignore[method-assign]

    async def _sweep(self) -> None:
        interval = max(0.05, min(1.0, self.header_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            runner = self._runner
            server = runner.server if runner is not None else None
            if server is None:
                continue
            now = time.monotonic()
            live = set(server.connections)
            for proto in list(self._deadlines):
                if proto not in live:
                    del self._deadlines[proto]
                    self._seen.pop(proto, None)
            for proto in live:
                if _CAN_PEEK:
                    count = proto._request_count
                    if proto._request_in_progress or self._seen.get(proto, 0) != count:
                        # Busy now, or served a request since the last look: the deadline
                        # counts from the end of that request at the earliest.
                        self._seen[proto] = count
                        self._deadlines[proto] = now + self.header_timeout + interval
                        continue
                elif proto in self._busy:
                    continue
                deadline = self._deadlines.setdefault(proto, now + self.header_timeout)
                if now > deadline:
                    log.warning("closing a connection that sent no request in time")
                    proto.force_close()
                    self._deadlines.pop(proto, None)
                    self._seen.pop(proto, None)

    async def stop(self) -> None:
        """Close the socket, finish the requests in flight and release everything."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._accept_filter is not None:
            logging.getLogger("asyncio").removeFilter(self._accept_filter)
            self._accept_filter = None
        for sock in self._sockets or ():
            sock.close()
        self._sockets = None
        self._deadlines.clear()
        self._busy.clear()
        self._seen.clear()
