"""Reloading config.yaml in a running ``pocketci-tui serve`` (issue 10).

A repository added to the config while serve runs was reported "not in the config" until a
restart. Now SIGHUP, or the file changing, reloads it: deliveries for the new repository are
accepted; a bad edit keeps the running configuration and says which file and key; a change
that needs a restart (the listen port) is said to need one.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from signing import push_body, send_signed

pytestmark = pytest.mark.timeout(180)


async def _status_of(serve: ServeProcess, repository: str, n: int) -> str:
    async with aiohttp.ClientSession() as session:
        reply = await send_signed(
            session, serve.hook_url, WEBHOOK_SECRET, push_body(repository, n=n)
        )
    status: str = reply.json()["status"]
    assert reply.status in (200, 202), reply.body
    return status


async def _wait_line(serve: ServeProcess, *needles: str, after: int = 0) -> str:
    async with asyncio.timeout(60):
        while True:
            for line in serve.lines[after:]:
                if all(n in line for n in needles):
                    return line
            await asyncio.sleep(0.05)


async def test_sighup_reloads_repositories_and_a_bad_edit_keeps_the_running_config(
    hermetic_home: Path,
) -> None:
    config = write_serve_config(hermetic_home, repos="[{name: acme/api}]")
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        assert await _status_of(serve, "owner/new", 1) == "ignored"

        # Add the repository and send SIGHUP: the next delivery is accepted.
        mark = len(serve.lines)
        write_serve_config(hermetic_home, repos="[{name: acme/api}, {name: owner/new}]")
        serve.proc.send_signal(signal.SIGHUP)
        line = await _wait_line(serve, "reloaded", "applied repos", after=mark)
        assert str(config) in line
        assert await _status_of(serve, "owner/new", 2) == "stored"

        # A bad edit: the error names the file and the key; the running config stays.
        mark = len(serve.lines)
        config.write_text(config.read_text() + "concurrency: lots\n")
        serve.proc.send_signal(signal.SIGHUP)
        line = await _wait_line(serve, "concurrency", "running configuration is kept", after=mark)
        assert str(config) in line
        assert "WARNING" in line
        assert await _status_of(serve, "owner/new", 3) == "stored"

        # What needs a restart is said so, and the listener stays where it is.
        mark = len(serve.lines)
        config.write_text(
            "listen: {host: 127.0.0.1, port: 1}\nsecrets: {backend: plaintext}\n"
            "repos: [{name: acme/api}, {name: owner/new}]\n"
        )
        serve.proc.send_signal(signal.SIGHUP)
        line = await _wait_line(serve, "restart pocketci-tui to change listen.port", after=mark)
        assert "WARNING" in line
        assert await _status_of(serve, "owner/new", 4) == "stored"
    finally:
        assert await serve.terminate() == 0


async def test_an_edited_file_is_reloaded_without_a_signal(hermetic_home: Path) -> None:
    write_serve_config(hermetic_home, repos="[{name: acme/api}]")
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        assert await _status_of(serve, "owner/other", 1) == "ignored"
        mark = len(serve.lines)
        write_serve_config(hermetic_home, repos="[{name: acme/api}, {name: owner/*}]")
        await _wait_line(serve, "reloaded", "applied repos", after=mark)
        assert await _status_of(serve, "owner/other", 2) == "stored"
    finally:
        assert await serve.terminate() == 0
