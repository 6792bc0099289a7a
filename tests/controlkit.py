"""A bare client of the control socket, for the server's tests: plain HTTP and websocket over
the real Unix socket (aiohttp's UnixConnector), against real services."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from enginekit import EngineKit

from pocketci_tui.control.server import ControlServer
from pocketci_tui.services import Services

BASE = "http://control"


class Control:
    """HTTP requests and notice streams on one control socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(path)),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def call(
        self,
        method: str,
        route: str,
        *,
        body: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request; the status and the decoded JSON answer."""
        raw = (
            data if data is not None else (json.dumps(body).encode() if body is not None else None)
        )
        async with self.session.request(
            method,
            BASE + route,
            data=raw,
            params=params,
            headers={"Content-Type": "application/json"},
        ) as resp:
            return resp.status, json.loads(await resp.read())

    async def get(self, route: str, **params: str) -> Any:
        """A GET that must succeed; its answer."""
        status, answer = await self.call("GET", route, params=params or None)
        assert status == 200, (route, status, answer)
        return answer

    async def post(self, route: str, body: Any = None) -> Any:
        """A POST that must succeed; its answer."""
        status, answer = await self.call("POST", route, body=body if body is not None else {})
        assert status == 200, (route, status, answer)
        return answer

    async def notices(
        self, after: int | None = None, instance: str | None = None
    ) -> aiohttp.ClientWebSocketResponse:
        """Open the notices websocket."""
        params = {}
        if after is not None:
            params["after"] = str(after)
        if instance is not None:
            params["instance"] = instance
        return await self.session.ws_connect(BASE + "/v1/notices", params=params, heartbeat=10)

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()


async def frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 30) -> dict[str, Any]:
    """The next text frame, decoded; fails on a close."""
    msg = await ws.receive(timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    data: dict[str, Any] = json.loads(msg.data)
    return data


@contextlib.asynccontextmanager
async def running(kit: EngineKit, **kwargs: Any) -> AsyncIterator[tuple[Services, Control]]:
    """Real services on ``kit`` with their control socket, and a client of it."""
    services = Services(kit.settings, kit.paths, secrets=kit.secrets, **kwargs)
    await services.start(port=0)
    try:
        assert services.control is not None, services._status_problems()
        control = Control(services.control.path)
        try:
            yield services, control
        finally:
            await control.close()
    finally:
        await services.stop()


@contextlib.asynccontextmanager
async def second_server(
    services: Services,
    folder: Path,
    *,
    heartbeat: float = 10.0,
    send_timeout: float = 10.0,
    **limits: Any,
) -> AsyncIterator[ControlServer]:
    """Another control server on the same services, with its own socket, timings and limits
    (``max_clients``, ``max_connections``, ``request_deadline``)."""
    assert services.lock is not None
    server = ControlServer(
        services,
        path=folder / "run" / "control.sock",
        owner=services.lock.owner,
        paths=services.paths,
        heartbeat=heartbeat,
        send_timeout=send_timeout,
        **limits,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
