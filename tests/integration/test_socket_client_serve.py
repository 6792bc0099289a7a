"""A client attached to a real ``pocketci-tui serve`` process, as the UI attaches over SSH:
found through the data folder's lock and socket, it follows a streaming build (the tail and
the live output joined without a gap or a repeat), sees ``serve`` killed (told at once, every
call failing at once), and attaches by itself to the ``serve`` started again, reading anew
what changed meanwhile (the killed build, interrupted)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess
from corekit import Told, join
from ownerkit import kill_calls, push_payload, slow_home
from signing import send_signed

from pocketci_tui.contract import NotStarted
from pocketci_tui.control.client import SocketClient, find_owner
from pocketci_tui.model import RunOutput, RunState, RunUpdated
from pocketci_tui.paths import AppPaths

pytestmark = pytest.mark.timeout(240)

STREAM = {"lines": 100_000, "lines_per_second": 200}
"""A build that keeps printing ``line N`` for as long as the test runs."""


def streamed(told: Told) -> int:
    """How far the live output told goes."""
    return max((n.end or 0 for n in told.notices if isinstance(n, RunOutput)), default=0)


async def test_a_client_follows_serve_through_a_kill_and_a_restart(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = slow_home(hermetic_home, tmp_path / "fixture", call=STREAM)
    paths = AppPaths(config_file=hermetic_home / "config.yaml", data_dir=hermetic_home / "data")
    assert await find_owner(paths) is None
    serve = await ServeProcess.start()
    again: ServeProcess | None = None
    client: SocketClient | None = None
    try:
        path = await find_owner(paths)
        assert path is not None
        client = SocketClient(path, backoff=(0.05, 0.5))
        assert await client.start() == serve.url
        assert client.owner == f"pocketci-tui serve (pid {serve.proc.pid})"
        told = Told()
        client.subscribe(told)
        async with aiohttp.ClientSession() as http:
            reply = await send_signed(
                http, serve.hook_url, WEBHOOK_SECRET, push_payload(kit), delivery="attached-1"
            )
        assert reply.status == 202, reply.body

        # The build's output streams through the socket, and joins its tail.
        await told.wait_for(lambda: streamed(told) >= 100, timeout=60)
        running = told.run(RunState.RUNNING)
        assert running is not None
        tail = await client.output_tail(running, 50)
        assert tail.end is not None
        mark = len(told.notices)
        await told.wait_for(lambda: streamed(told) >= tail.end + 100, timeout=60)  # type: ignore[operator]
        shown = join(tail, [n for n in told.notices[mark:] if isinstance(n, RunOutput)])
        first = tail.end - len(tail.lines) + 1
        assert shown == [f"line {n}" for n in range(first, first + len(shown))]
        assert len(shown) >= len(tail.lines) + 100

        # serve is killed: told at once, and every call fails at once.
        await serve.kill()
        kill_calls(kit)
        await told.wait_for(lambda: any(not link.up for link in told.links()))
        assert "went away" in told.links()[0].detail
        assert client.started
        with pytest.raises(NotStarted):
            await client.runs(running.event_id)
        with pytest.raises(NotStarted):
            await client.cancel(running.id)

        # serve again: attached by itself, told to re-read, and what it reads is current.
        again = await ServeProcess.start()
        await told.wait_for(lambda: told.links()[-1].up, timeout=60)
        assert told.links()[-1].resync is True
        assert client.owner == f"pocketci-tui serve (pid {again.proc.pid})"
        assert client.url == again.url
        runs = await client.runs(running.event_id)
        assert [run.state for run in runs if run.id == running.id] == [RunState.INTERRUPTED]
        assert await find_owner(paths) == path

        # And it follows the new process's builds.
        async with aiohttp.ClientSession() as http:
            reply = await send_signed(
                http, again.hook_url, WEBHOOK_SECRET, push_payload(kit, "again"), delivery="a-2"
            )
        assert reply.status == 202, reply.body
        await told.wait_for(
            lambda: any(
                isinstance(n, RunUpdated) and n.run.event_id != running.event_id
                for n in told.notices
            ),
            timeout=60,
        )
    finally:
        if client is not None:
            await client.stop()
        if again is not None:
            await again.kill()
        await serve.kill()
        kill_calls(kit)
