"""Serve the intake application on a TCP port, on the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
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


class ListenerError(Exception):
    """The listener could not start (port in use, address not available...)."""


class Listener:
    """Runs an aiohttp application with ``AppRunner`` and a ``TCPSite``.

    Besides the body deadline of the handler, it closes connections that have not sent a
    complete request head within ``header_timeout`` seconds (slow-header clients), without
    disturbing the others.

    Args:
        app: The application (usually from ``make_intake_app``).
        host: The address to bind.
        port: The port; 0 picks a free one.
        header_timeout: Seconds a connection has to start each request; defaults to the
            application's limits.
    """

    def __init__(
        self, app: web.Application, host: str, port: int, *, header_timeout: float | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        limits = app.get(keys.LIMITS)
        if header_timeout is None:
            header_timeout = limits.header_timeout if limits is not None else 30.0
        self.header_timeout = header_timeout
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._deadlines: dict[RequestHandler, float] = {}
        self._busy: set[RequestHandler] = set()
        self._seen: dict[RequestHandler, int] = {}
        self._sweeper: asyncio.Task[None] | None = None
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
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise ListenerError(
                    f"port {self.port} on {self.host} is already in use; "
                    f"stop the other program or choose another port (--port)"
                ) from exc
            raise ListenerError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._runner = runner
        self._site = site
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.port = site.port
        self.url = f"http://{host}:{self.port}"
        self._sweeper = asyncio.create_task(self._sweep(), name="pocketci-intake-sweeper")
        return self.url

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
        self._site = None
        self._deadlines.clear()
        self._busy.clear()
        self._seen.clear()
