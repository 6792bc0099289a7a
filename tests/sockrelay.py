"""A Unix socket that forwards every connection to another, and breaks them on request.

It stands between an attached client and the owner's control socket, as the link would: both
ends stay real (the client's aiohttp, the owner's server), and a test cuts the link
(:meth:`SocketRelay.cut`), takes it away (:meth:`SocketRelay.close`, as an owner that went away
but may come back) or freezes it (:attr:`SocketRelay.frozen`: bytes are swallowed, as with an
owner that stopped answering), or lets requests through but breaks the notices stream
(:attr:`SocketRelay.refuse_streams`), without stopping the owner.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path


class SocketRelay:
    """Forwards connections to ``front`` on to ``back``.

    Args:
        front: Where the relay listens.
        back: The socket it forwards to.
    """

    def __init__(self, front: Path, back: Path) -> None:
        self.front = front
        self.back = back
        self.frozen = False
        """While true, bytes in either direction are swallowed (nothing is answered)."""
        self.refuse_streams = False
        """While true, a connection asking for a websocket is broken at once (requests pass)."""
        self.connections = 0
        """How many connections were accepted."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on :attr:`front` (again)."""
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.front))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            back_reader, back_writer = await asyncio.open_unix_connection(str(self.back))
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(back_writer)
        pipes = [
            asyncio.create_task(self._pipe(reader, back_writer, requests=True)),
            asyncio.create_task(self._pipe(back_reader, writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._tasks.discard(pipe)
            for end in (writer, back_writer):
                end.transport.abort()
                self._writers.discard(end)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: bool = False
    ) -> None:
        while data := await reader.read(65536):
            if self.frozen:
                continue
            if requests and self.refuse_streams and b"upgrade: websocket" in data.lower():
                return  # the connection is broken, both ways
            writer.write(data)
            await writer.drain()

    def cut(self) -> None:
        """Break every open connection, both ways (new ones are still accepted)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        """Stop listening (the socket file goes) and break every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        if server is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await server.wait_closed()
        self.front.unlink(missing_ok=True)
