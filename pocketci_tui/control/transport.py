"""Requests to the owner's control socket: one call, one answer, within a time limit.

The attached client (:mod:`pocketci_tui.control.client`) and its secret store make every read
and action through :class:`Transport`. A call never hangs: each has a deadline covering the
connection, the request and the whole answer. The owner's refusals come back as the
exceptions the in-process core would raise, by the error ``kind`` of the protocol:

=============== ===============================================================
``not_started`` :class:`~pocketci_tui.contract.NotStarted`
``secret_store`` :class:`~pocketci_tui.secrets.SecretStoreError`
``not_found``   :class:`ValueError`
``bad_request`` :class:`ValueError`
``conflict``    :class:`ValueError` (an approval at a head commit that moved on...)
``busy``        :class:`OwnerBusy` (too many connections or clients: try again later)
``internal``    :class:`RemoteError`, as does any kind this version does not know
=============== ===============================================================

A socket that cannot be reached (the owner went away) is :class:`NotStarted` too: what the
user can do about it is the same, wait for the owner or start one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from pocketci_tui.contract import NotStarted
from pocketci_tui.secrets import SecretStoreError

BASE = "http://pocketci-tui"
"""The base URL of every request: the host is a name only, the connector dials the socket."""

DEFAULT_TIMEOUT = 10.0
"""Seconds a request may take (the connection, the request and the whole answer)."""

TAIL_TIMEOUT = 30.0
"""Seconds an output tail may take: it may be read from a long log file."""

MAX_ERROR_TEXT = 2000
"""The most characters of an error message kept from an answer (the rest is cut)."""


class RemoteError(Exception):
    """The owner failed to answer a request (an internal error, or an answer this client
    cannot read); the message says which and why."""


class Unreachable(NotStarted):
    """The owner's socket cannot be reached (nothing listens there, or the connection broke).

    Args:
        path: The socket.
        reason: Why, in a few words (``connection refused``).
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot reach the owner at {path}: {reason}")
        self.path = path
        self.reason = reason


class OwnerBusy(NotStarted):
    """The owner refused one more connection or notices stream: too many are open. The
    message is the owner's (how many, what to do)."""


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (the OS's own when it has one)."""
    error = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(exc) or type(exc).__name__


def error_for(kind: str, message: str) -> Exception:
    """The exception the protocol's error ``kind`` stands for, carrying ``message``.

    Args:
        kind: The ``error.kind`` of an answer (``not_started``, ``bad_request``...).
        message: The owner's message.

    Returns:
        The exception to raise (never raised here).
    """
    if kind == "not_started":
        return NotStarted(message)
    if kind == "busy":
        return OwnerBusy(message or "the owner has too many clients attached")
    if kind == "secret_store":
        return SecretStoreError(message)
    if kind in ("not_found", "bad_request", "conflict"):
        return ValueError(message)
    return RemoteError(message or f"the owner failed ({kind or 'no reason given'})")


def _error_of(status: int, body: bytes) -> Exception:
    """Read an error answer (``{"error": {"kind": K, "message": M}}``) into its exception."""
    try:
        data = json.loads(body)
        error = data["error"]
        kind, message = str(error["kind"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = body[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
        return RemoteError(f"the owner answered HTTP {status}: {text or 'no reason given'}")
    return error_for(kind, message[:MAX_ERROR_TEXT])


class Transport:
    """HTTP requests over one Unix socket, each within a deadline.

    Args:
        path: The control socket.
        timeout: Seconds a request may take unless a call says otherwise.
    """

    def __init__(self, path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session (opened on first use); its connector dials :attr:`path`."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.path)),
                # Deadlines are set per call (asyncio.timeout), never by the session.
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def reopen(self) -> None:
        """Drop the pooled connections: after the owner restarted, they lead nowhere."""
        await self.close()

    async def close(self) -> None:
        """Close the session and its connections (idempotent)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def call(
        self,
        method: str,
        route: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call deadline, enforced here
    ) -> Any:
        """Send one request and return its answer's JSON.

        Args:
            method: ``GET``, ``POST``, ``PUT`` or ``DELETE``.
            route: The path under the socket (``/v1/events``).
            body: A JSON-ready request body, or None for none.
            params: The query string.
            timeout: Seconds allowed (default :attr:`timeout`).

        Returns:
            The decoded JSON answer.

        Raises:
            NotStarted: The socket cannot be reached, or the owner said its core is not
                running.
            TimeoutError: No whole answer within ``timeout``.
            SecretStoreError: The owner's secret store failed.
            ValueError: The owner refused the request (not found, bad request, conflict).
            RemoteError: The owner failed otherwise, or its answer is not JSON.
        """
        seconds = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(seconds):
                async with self.session.request(
                    method, BASE + route, json=body, params=params
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
        except TimeoutError:
            raise TimeoutError(
                f"the owner at {self.path} did not answer {method} {route} within {seconds:g} s"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Unreachable(self.path, _reason(exc)) from exc
        if status >= 400:
            raise _error_of(status, payload)
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise RemoteError(f"the owner's answer to {method} {route} is not JSON") from exc
