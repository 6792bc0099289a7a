"""A real ``pocketci-tui serve`` owns its control socket: it says who it is, logs each client
that attaches and detaches, re-reads its config.yaml when an attached UI asks, and removes the
socket when it stops."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from controlkit import Control

from pocketci_tui.config import Settings
from pocketci_tui.control.location import socket_candidates
from pocketci_tui.control.wire import decode
from pocketci_tui.paths import resolve_paths

pytestmark = pytest.mark.timeout(180)


async def line_with(serve: ServeProcess, needle: str) -> str:
    async with asyncio.timeout(60):
        while True:
            for line in serve.lines:
                if needle in line:
                    return line
            await asyncio.sleep(0.05)


async def test_serve_logs_attaches_and_reloads_for_an_attached_ui(hermetic_home: Path) -> None:
    write_serve_config(hermetic_home)
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    serve = await ServeProcess.start()
    try:
        found = [p for p in socket_candidates(resolve_paths()) if p.exists()]
        assert len(found) == 1, found
        path = found[0]
        control = Control(path)
        try:
            hello = await control.get("/v1/hello")
            assert (hello["mode"], hello["pid"], hello["url"]) == (
                "serve",
                serve.proc.pid,
                serve.url,
            )
            ws = await control.notices(hello["seq"], hello["instance"])
            await line_with(serve, f"attached: pid {os.getpid()} uid {os.getuid()}")
            await ws.close()
            await line_with(serve, f"detached: pid {os.getpid()} (closed by the client)")

            write_serve_config(hermetic_home, repos="[{name: acme/api}, {name: acme/web}]")
            answer = await control.post("/v1/config/reload")
            assert answer["ok"] is True
            assert answer["message"].startswith(f"reloaded {hermetic_home / 'config.yaml'}")
            snap = await control.get("/v1/snapshot")
            repos = [r.name for r in decode(Settings, snap["settings"]).repos]
            assert repos == ["acme/api", "acme/web"]
            await line_with(serve, "applied repos")
        finally:
            await control.close()
    finally:
        assert await serve.terminate() == 0
    assert not path.exists()
