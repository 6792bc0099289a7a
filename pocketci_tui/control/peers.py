"""Who is at the other end of a control connection, and the gate that turns strangers away.

The socket's folder and mode already keep other users out, but a folder can be opened up by
mistake (or the socket passed on); the kernel's word on each connection's peer
(``SO_PEERCRED``: its pid, uid and gid, as they were at ``connect``) is what the owner trusts.
:class:`GatedUnixSite` serves an aiohttp application on a bound Unix socket like
``web.UnixSite``, but every new connection meets :class:`PeerGate` first: a peer of another
uid (root excepted) is cut before aiohttp reads a byte of it, and told to the log at a bounded
rate, so a stranger can neither talk to the owner nor fill its disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from pocketci_tui.control.limits import ConnectionCount, busy_answer

__all__ = ["GatedUnixSite", "Peer", "PeerGate", "RefusalLog", "peer_of"]

log = logging.getLogger("pocketci_tui.control")

_UCRED = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class Peer:
    """The process at the other end of a Unix socket connection, as the kernel saw it."""

    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket | object | None) -> Peer | None:
    """The peer of a connected Unix socket (``SO_PEERCRED``), or None when it cannot be told
    (not a Unix socket, or a system without ``SO_PEERCRED``)."""
    option = getattr(socket, "SO_PEERCRED", None)
    getsockopt = getattr(sock, "getsockopt", None)
    if option is None or getsockopt is None:
        return None
    try:
        raw = getsockopt(socket.SOL_SOCKET, option, _UCRED.size)
    except OSError:
        return None
    pid, uid, gid = _UCRED.unpack(raw)
    return Peer(pid, uid, gid)


def allowed(peer: Peer | None) -> bool:
    """True for a peer of our own uid, or root (who can read our files anyway)."""
    return peer is not None and (peer.uid == os.getuid() or peer.uid == 0)


class RefusalLog:
    """Logs refused peers: the first of each interval, then how many more at the next one.

    Args:
        interval: Seconds between two lines.
        clock: The monotonic clock.
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._last = -interval
        self._more = 0
        self.count = 0
        """Connections refused since start."""

    def note(self, peer: Peer | None) -> None:
        """Count one refusal and log it unless a line was written within the interval."""
        self.count += 1
        now = self._clock()
        if now - self._last < self._interval:
            self._more += 1
            return
        who = f"pid {peer.pid} uid {peer.uid}" if peer is not None else "an unknown peer"
        more = f" ({self._more} more refused since the last line)" if self._more else ""
        log.warning(
            "refused a control connection from %s: only user id %d (and root) may attach%s",
            who,
            os.getuid(),
            more,
        )
        self._last = now
        self._more = 0


class PeerGate(asyncio.Protocol):
    """The protocol every control connection meets first: it checks the peer, then hands the
    connection to aiohttp's handler (created only then), or closes it.

    Args:
        make_handler: Creates aiohttp's protocol for an admitted connection.
        refusals: Where refusals are counted and logged.
        count: The connections open; one too many is answered ``503 busy`` and closed.
    """

    def __init__(
        self,
        make_handler: Callable[[], asyncio.Protocol],
        refusals: RefusalLog,
        count: ConnectionCount | None = None,
    ) -> None:
        self._make_handler = make_handler
        self._refusals = refusals
        self._count = count
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the peer, or cut the connection before anything is read."""
        peer = peer_of(transport.get_extra_info("socket"))
        if not allowed(peer):
            self._refusals.note(peer)
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            else:
                transport.close()
            return
        count = self._count
        if count is not None and not count.admit():
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(
                    busy_answer(
                        f"the owner has {count.limit} connections open already; "
                        "close an attached client (or a script) and try again"
                    )
                )
            transport.close()
            return
        self._inner = self._make_handler()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Pass to the handler."""
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Pass to the handler."""
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        """Pass to the handler."""
        if self._inner is not None:
            if self._count is not None:
                self._count.release()
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Pass to the handler (it waits for the peer to read before writing more)."""
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Pass to the handler."""
        if self._inner is not None:
            self._inner.resume_writing()


class GatedUnixSite(web.BaseSite):
    """Serve a runner's application on an already bound Unix socket, through :class:`PeerGate`.

    Args:
        runner: The application's runner (set up).
        sock: The bound, listening-ready Unix socket.
        refusals: Where refused peers are counted and logged.
        count: The connections open, and how many may be.
    """

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        refusals: RefusalLog,
        count: ConnectionCount | None = None,
    ) -> None:
        super().__init__(runner)
        self._sock = sock
        self._refusals = refusals
        self._count = count

    @property
    def name(self) -> str:
        """The socket's address, as aiohttp names its sites."""
        return f"unix:{self._sock.getsockname()}"

    async def start(self) -> None:
        """Start accepting connections."""
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: PeerGate(server, self._refusals, self._count),
            sock=self._sock,
            backlog=self._backlog,
        )
