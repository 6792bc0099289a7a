"""How much one peer of the control socket may take of the owner.

A peer of our own uid is trusted to act (it can fire, cancel, read secrets), but not to be
well behaved: a stuck script, a client of a newer version gone wrong, a loop that connects
without end. None of them may hold the owner's memory, file descriptors or handlers for long.
So connections are counted (:class:`ConnectionCount`): beyond :data:`MAX_CONNECTIONS` a new
one is answered ``503 busy`` at once and closed, without being read; a request must arrive
whole within :data:`REQUEST_DEADLINE` (a client that opens the socket and sends half a request
is closed then), and its body within :data:`BODY_DEADLINE`. The number of clients following the
notices is bounded apart (:data:`MAX_CLIENTS`), since each holds a queue.
"""

from __future__ import annotations

import json

__all__ = [
    "BODY_DEADLINE",
    "BUSY",
    "MAX_CLIENTS",
    "MAX_CLIENT_FRAME",
    "MAX_CONNECTIONS",
    "REQUEST_DEADLINE",
    "ConnectionCount",
    "busy_answer",
]

MAX_CONNECTIONS = 128
"""The most connections open at once (each attached client holds one for its notices and
one or two for its requests)."""

MAX_CLIENTS = 64
"""The most clients following the notices at once."""

REQUEST_DEADLINE = 30.0
"""Seconds a connection may stay without a whole request (the first, or the next on a kept
connection) before it is closed; longer than a client keeps an idle connection (15 s), so a
client never reuses one the owner is closing."""

BODY_DEADLINE = 10.0
"""Seconds a request's body may take to arrive."""

MAX_CLIENT_FRAME = 4096
"""The largest websocket frame a client may send: it sends only pings, pongs and its close."""

BUSY = "busy"
"""The error kind of a connection or stream refused because too many are open."""


def busy_answer(message: str) -> bytes:
    """A whole HTTP answer ``503`` with a ``busy`` error, written before anything is read."""
    body = json.dumps({"error": {"kind": BUSY, "message": message}}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionCount:
    """The connections open on the socket, and whether one more may be.

    Args:
        limit: The most open at once.
    """

    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        self.limit = limit
        self.open = 0
        """Connections open now."""
        self.refused = 0
        """Connections refused as one too many since start."""

    def admit(self) -> bool:
        """Count one more connection if there is room; False (and counted as refused) if not."""
        if self.open >= self.limit:
            self.refused += 1
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """One admitted connection closed."""
        self.open = max(0, self.open - 1)
