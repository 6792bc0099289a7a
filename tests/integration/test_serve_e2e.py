"""End to end through a real ``pocketci-tui serve`` process.

A signed delivery posted over loopback becomes runs with results and logs on disk; a pull
request from a fork waits for approval; re-firing a stored event with ``pocketci-tui fire``
produces new runs; stopping ``serve`` stops the ``dagger call`` process tree it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from conftest import PAYLOADS_DIR, WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from enginekit import REPOSITORY, EngineKit, standard_functions
from signing import send_signed

from pocketci_tui.model import ZERO_SHA, EventStatus, Run, RunState, StoredEvent
from pocketci_tui.store import Store

pytestmark = pytest.mark.timeout(180)
T = TypeVar("T")


def _setup(home: Path, tmp: Path, call: dict[str, Any] | None = None) -> EngineKit:
    """A remote repository and a stand-in dagger, and a config for serve that uses them."""
    kit = EngineKit(tmp, functions=standard_functions(call))
    write_serve_config(
        home,
        repos=f"[{{name: {REPOSITORY}, clone-url: '{kit.remote.path}'}}]",
        extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    return kit


def _push_payload(before: str, after: str) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "deleted": False,
            "created": before == ZERO_SHA,
            "repository": {"full_name": REPOSITORY, "default_branch": "main"},
            "head_commit": {"id": after, "message": "a change"},
            "sender": {"login": "octocat"},
        }
    ).encode()


async def _poll(
    home: Path, delivery: str, found: Callable[[Store, StoredEvent], Awaitable[T | None]]
) -> T:
    """Poll serve's database until ``found`` returns something for the event of ``delivery``."""
    store = await Store.open(home / "data" / "pocketci.db")
    try:
        async with asyncio.timeout(60):
            while True:
                for stored in await store.list_events(limit=50):
                    if stored.event.delivery_id == delivery:
                        result = await found(store, stored)
                        if result is not None:
                            return result
                await asyncio.sleep(0.1)
    finally:
        await store.close()


async def _runs(home: Path, delivery: str, count: int) -> list[Run]:
    """Wait until the event of ``delivery`` has ``count`` finished runs."""

    async def finished(store: Store, stored: StoredEvent) -> list[Run] | None:
        assert stored.event.id is not None
        runs = await store.list_runs(stored.event.id)
        return runs if len(runs) >= count and all(r.state.finished for r in runs) else None

    return await _poll(home, delivery, finished)


async def _status(home: Path, delivery: str, *wanted: EventStatus) -> tuple[int, str]:
    """Wait until the event of ``delivery`` has one of the ``wanted`` statuses."""

    async def reached(store: Store, stored: StoredEvent) -> tuple[int, str] | None:
        assert stored.event.id is not None
        return (stored.event.id, stored.detail) if stored.status in wanted else None

    return await _poll(home, delivery, reached)


async def _send(serve: ServeProcess, body: bytes, **headers: Any) -> Any:
    """Post a delivery to the running serve, signed like GitHub."""
    async with aiohttp.ClientSession() as session:
        return await send_signed(session, serve.hook_url, WEBHOOK_SECRET, body, **headers)


async def test_push_delivery_runs_and_refire_makes_new_runs(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = _setup(hermetic_home, tmp_path / "fixture")
    before = kit.remote.rev("main")
    after = kit.remote.commit({"main.go": "package main // e2e\n"}, branch="main")
    serve = await ServeProcess.start()
    try:
        reply = await _send(serve, _push_payload(before, after), delivery="e2e-push-1")
        assert reply.status == 202, reply.body
        try:
            runs = await _runs(hermetic_home, "e2e-push-1", count=2)
        except TimeoutError:
            raise AssertionError("\n".join(serve.lines)) from None
        passed = [r for r in runs if r.state is RunState.PASSED]
        assert [r.function for r in passed] == ["onGithubPushMain"]
        log_file = hermetic_home / "data" / "logs" / passed[0].log_path
        assert "hello from dagger" in log_file.read_text()
        [call] = kit.calls()
        assert call["event_trigger"]["sha"] == after
        assert call["event_trigger"]["delivery_id"] == "e2e-push-1"

        # Re-fire the stored event through the CLI: a new delivery, new runs.
        event_id, _ = await _status(hermetic_home, "e2e-push-1", EventStatus.DISPATCHED)
        fired = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pocketci_tui", "fire", str(event_id), "--url", serve.hook_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert fired.returncode == 0, fired.stderr
        async with asyncio.timeout(60):
            while len(kit.calls()) < 2:
                await asyncio.sleep(0.1)
        second = kit.calls()[1]
        assert second["event_trigger"]["sha"] == after
        assert second["event_trigger"]["run_id"] != call["event_trigger"]["run_id"]
        # serve logged what happened, one line each.
        text = "\n".join(serve.lines)
        assert "onGithubPushMain" in text
        assert "passed" in text
    finally:
        assert await serve.terminate() == 0


async def test_fork_pull_request_waits_for_approval(hermetic_home: Path, tmp_path: Path) -> None:
    kit = _setup(hermetic_home, tmp_path / "fixture")
    base = kit.remote.rev("main")
    head = kit.remote.commit({"a.go": "package a\n"}, branch="feature")
    payload = json.loads((PAYLOADS_DIR / "pull_request_synchronize_fork.json").read_text())
    payload["repository"]["full_name"] = REPOSITORY
    payload["pull_request"]["base"]["repo"]["full_name"] = REPOSITORY
    payload["pull_request"]["head"]["sha"] = head
    payload["pull_request"]["base"]["sha"] = base
    payload["after"] = head
    serve = await ServeProcess.start()
    try:
        reply = await _send(
            serve, json.dumps(payload).encode(), event="pull_request", delivery="e2e-fork-1"
        )
        assert reply.status == 202, reply.body
        _, detail = await _status(hermetic_home, "e2e-fork-1", EventStatus.WAITING)
        assert "approval" in detail
        await asyncio.sleep(0.5)
        assert kit.calls() == []
    finally:
        assert await serve.terminate() == 0


async def test_stopping_serve_stops_the_call_process_tree(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = _setup(
        hermetic_home,
        tmp_path / "fixture",
        {"output": ["working"], "sleep": 120, "spawn_child": True},
    )
    before = kit.remote.rev("main")
    after = kit.remote.commit({"main.go": "package main // slow\n"}, branch="main")
    serve = await ServeProcess.start()
    try:
        reply = await _send(serve, _push_payload(before, after), delivery="e2e-slow-1")
        assert reply.status == 202
        async with asyncio.timeout(60):
            while not (kit.calls() and kit.calls()[0]["child_pid"]):
                await asyncio.sleep(0.1)
    finally:
        assert await serve.terminate() == 0
    [call] = kit.calls()
    for pid in (call["pid"], call["child_pid"]):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    runs = await _runs(hermetic_home, "e2e-slow-1", count=1)
    assert RunState.INTERRUPTED in {r.state for r in runs}


async def test_everything_serve_creates_is_private_under_umask_022(
    hermetic_home: Path, tmp_path: Path
) -> None:
    """Under the common umask 022, a push handled end to end leaves nothing readable by others.

    The data folder holds raw payloads (the database), the full source of the repositories
    (mirrors, checkouts) and build output (logs): every folder must be 0700 and every file
    0600 or stricter (R9).
    """
    old = os.umask(0o022)
    try:
        kit = _setup(hermetic_home, tmp_path / "fixture")
        before = kit.remote.rev("main")
        after = kit.remote.commit({"main.go": "package main // private\n"}, branch="main")
        serve = await ServeProcess.start()
    finally:
        os.umask(old)
    try:
        reply = await _send(serve, _push_payload(before, after), delivery="e2e-private")
        assert reply.status == 202, reply.body
        try:
            runs = await _runs(hermetic_home, "e2e-private", count=2)
        except TimeoutError:
            raise AssertionError("\n".join(serve.lines)) from None
        assert RunState.PASSED in {r.state for r in runs}
        assert await serve.terminate() == 0
    finally:
        await serve.kill()

    created, opened = _walk(hermetic_home)
    names = {p.name for p in created}
    # What a push creates is all there: database, logs, mirror packs, checkouts, catalog cache.
    assert {"pocketci.db", "logs", "cache", "mirrors", "checkouts"} <= names
    assert any(p.suffix == ".pack" for p in created), "no mirror pack was written"
    assert opened == []


def _walk(home: Path) -> tuple[list[Path], list[str]]:
    """Everything under the data folder and the secret files; those open to group or others."""
    data = home / "data"
    created = [data, *data.rglob("*")]
    created += [p for p in home.iterdir() if p.name.startswith("secrets")]
    opened = [
        f"{p.relative_to(home)} {stat.S_IMODE(p.lstat().st_mode):04o}"
        for p in created
        if not p.is_symlink() and stat.S_IMODE(p.lstat().st_mode) & 0o077
    ]
    return created, opened


async def test_serve_warns_about_an_existing_data_folder_open_to_others(
    hermetic_home: Path, tmp_path: Path
) -> None:
    """A data folder an older version left 0755 is reported at start, and left as it is."""
    _setup(hermetic_home, tmp_path / "fixture")
    data = hermetic_home / "data"
    data.mkdir()
    data.chmod(0o755)
    serve = await ServeProcess.start()
    try:
        async with asyncio.timeout(30):
            while not any(f"{data} (the data folder)" in line for line in serve.lines):
                await asyncio.sleep(0.05)
        [line] = [line for line in serve.lines if f"{data} (the data folder)" in line]
        assert "WARNING" in line
        assert "is open to other users (0755)" in line
        assert f"run `chmod -R go-rwx {data}`" in line
    finally:
        await serve.kill()
    assert stat.S_IMODE(data.stat().st_mode) == 0o755
