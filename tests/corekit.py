"""Helpers for tests of the UI's contract (:class:`~pocketci_tui.contract.CoreClient`), run
against the in-process services and against a client attached over the control socket alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp

from pocketci_tui.contract import ClientNotice, CoreClient, LinkChanged, OutputTail
from pocketci_tui.control.client import SocketClient
from pocketci_tui.control.location import socket_path
from pocketci_tui.model import Event, EventStatus, Run, RunOutput, RunState, RunUpdated
from pocketci_tui.services import Services

IMPLEMENTATIONS = ["in-process", "socket"]
"""The two implementations of the contract every contract test runs against."""


class Told:
    """What a subscriber was told, with a way to wait for something."""

    def __init__(self) -> None:
        self.notices: list[ClientNotice] = []
        self._changed = asyncio.Event()

    def __call__(self, notice: ClientNotice) -> None:
        self.notices.append(notice)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def of(self, kind: type[ClientNotice]) -> list[ClientNotice]:
        return [n for n in self.notices if isinstance(n, kind)]

    def links(self) -> list[LinkChanged]:
        """The link changes told, in order."""
        return [n for n in self.notices if isinstance(n, LinkChanged)]

    def run(self, state: RunState) -> Run | None:
        for notice in self.notices:
            if isinstance(notice, RunUpdated) and notice.run.state is state:
                return notice.run
        return None


async def deliver(services: Services, event: Event) -> int:
    """Store an event and hand it to the engine, as the listener does."""
    assert services.store is not None
    assert services.engine is not None
    stored, duplicate = await services.store.record_event(event, EventStatus.RECEIVED)
    await services.engine.submit(stored, duplicate)
    assert stored.event.id is not None
    return stored.event.id


def join(tail: OutputTail, batches: list[RunOutput]) -> list[str]:
    """The UI's join: the tail, then each later batch from the position the view ends at."""
    shown = list(tail.lines)
    assert tail.end is not None
    end = tail.end
    for batch in batches:
        assert batch.end is not None
        new = batch.end - end
        if new <= 0:
            continue
        shown.extend(batch.lines[-new:])
        end = batch.end
    return shown


@contextlib.asynccontextmanager
async def attached(
    services: Services, how: str, *, path: Path | None = None
) -> AsyncIterator[CoreClient]:
    """The running ``services`` as the UI uses them: in process, or through a client attached
    to their control socket (``path``, by default where the owner binds it)."""
    if how == "in-process":
        yield services
        return
    client = SocketClient(path or socket_path(services.paths))
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def forge_delivery(webhook_url: str) -> int:
    """Post a delivery with a wrong signature to the listener; return its answer's status."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            webhook_url,
            data=b'{"zen": "forged"}',
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": "forged-1",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
            },
        ) as resp,
    ):
        return resp.status
