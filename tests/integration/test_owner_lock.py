"""One owner per data folder, with real processes (issue 10, "one owner of the data").

While a first pocketci-tui (``serve`` or the UI) runs a build, a second engine on the same
data folder (``serve``, ``serve --port`` elsewhere) exits with code 2 naming the owner's pid and
kind, and a second UI attaches to the owner instead (issue 15); neither changes anything: the
live run stays running, the lock file keeps the owner's record. The read-only commands work
beside the owner, and ``fire`` goes through its listener.
A lock does not outlive its process: after ``kill -9`` a new owner starts.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess
from ownerkit import PtyUI, cli, db_rows, kill_calls, push_payload, run_states, slow_home, until
from signing import send_signed

from pocketci_tui.datalock import lock_owner

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _deliver(url: str, body: bytes, delivery: str) -> None:
    async with aiohttp.ClientSession() as session:
        reply = await send_signed(session, url, WEBHOOK_SECRET, body, delivery=delivery)
    assert reply.status == 202, reply.body


async def _refused(*args: str) -> str:
    """Run ``pocketci-tui ARGS``; assert it exits 2; return its stderr."""
    done = await asyncio.to_thread(cli, *args)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    return done.stderr


def _attached(screen: str, kind: str, pid: int) -> bool:
    """The status bar names the owner it is attached to, in whichever of its forms fits
    (``attached to pocketci-tui serve (pid N)``, ``⇄ serve (pid N)``...)."""
    return ("attached to" in screen or "⇄" in screen) and f"{kind} (pid {pid})" in screen


async def test_serve_owns_the_folder_and_a_second_ui_or_serve_changes_nothing(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = slow_home(hermetic_home, tmp_path / "fixture")
    data = hermetic_home / "data"
    db, lock_file = data / "pocketci.db", data / "pocketci.lock"
    serve = await ServeProcess.start()
    try:
        await _deliver(serve.hook_url, push_payload(kit), "owner-serve-1")
        await until(lambda: "running" in run_states(db) and bool(kit.calls()), "a running build")
        before, record = db_rows(db), lock_file.read_text()
        owner = f"pocketci-tui serve (pid {serve.proc.pid}"

        ui = PtyUI.start()
        try:
            await until(lambda: _attached(ui.screen, "serve", serve.proc.pid), "the UI attached")
            ui.press(b"q")  # detaches at once: nothing to confirm, nothing stops
            assert await asyncio.to_thread(ui.wait, 60) == 0, ui.screen[-2000:]
        finally:
            ui.quit()
        for args in (("serve",), ("serve", "--port", str(_free_port()))):
            assert owner in await _refused(*args)

        assert db_rows(db) == before, "a refused process changed the database"
        assert lock_file.read_text() == record
        assert run_states(db)[0] == "running"

        # Beside the owner: the read-only commands, and fire through the owner's listener
        # (its port is only known from the lock file: the config says port 0).
        events = await asyncio.to_thread(cli, "events", "--json")
        assert events.returncode == 0, events.stderr
        [event] = json.loads(events.stdout)
        check = await asyncio.to_thread(cli, "check")
        assert f"ok    owner          {data} is in use by {owner}" in check.stdout, check.stdout
        fired = await asyncio.to_thread(cli, "fire", str(event["id"]))
        assert fired.returncode == 0, fired.stderr
        await until(lambda: len(db_rows(db)["events"]) == 2, "the fired event stored by serve")
        assert db_rows(db)["runs"][0] == before["runs"][0]
    finally:
        assert await serve.terminate() == 0
        kill_calls(kit)


async def test_the_ui_owns_the_folder_and_serve_is_refused(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = slow_home(hermetic_home, tmp_path / "fixture")
    data = hermetic_home / "data"
    db, lock_file = data / "pocketci.db", data / "pocketci.lock"
    ui = PtyUI.start()
    try:
        await until(
            lambda: bool((o := lock_owner(lock_file)) and o.url), "the UI listening", timeout=90
        )
        found = lock_owner(lock_file)
        assert found is not None
        assert (found.mode, found.pid) == ("ui", ui.proc.pid)
        await _deliver(found.url + "/webhooks/github", push_payload(kit), "owner-ui-1")
        await until(lambda: "running" in run_states(db) and bool(kit.calls()), "a running build")
        before, record = db_rows(db), lock_file.read_text()
        owner = f"the pocketci-tui terminal UI (pid {ui.proc.pid}"

        for args in (("serve",), ("serve", "--port", str(_free_port()))):
            assert owner in await _refused(*args)
        second = PtyUI.start()
        try:
            await until(
                lambda: _attached(second.screen, "terminal UI", ui.proc.pid), "the UI attached"
            )
            second.press(b"q")
            assert await asyncio.to_thread(second.wait, 60) == 0, second.screen[-2000:]
        finally:
            second.quit()

        assert db_rows(db) == before, "a refused process changed the database"
        assert lock_file.read_text() == record
        assert run_states(db)[0] == "running"
        events = await asyncio.to_thread(cli, "events")
        assert events.returncode == 0, events.stderr
        assert "owner/repo" in events.stdout
    finally:
        code = await asyncio.to_thread(ui.quit)
        kill_calls(kit)
    assert code == 0, ui.screen[-2000:]
    assert lock_owner(lock_file) is None


async def test_the_lock_does_not_outlive_a_killed_owner(
    hermetic_home: Path, tmp_path: Path
) -> None:
    slow_home(hermetic_home, tmp_path / "fixture")
    lock_file = hermetic_home / "data" / "pocketci.lock"
    first = await ServeProcess.start()
    await first.kill()
    second = await ServeProcess.start()
    try:
        found = lock_owner(lock_file)
        assert found is not None
        assert (found.mode, found.pid, found.url) == ("serve", second.proc.pid, second.url)
    finally:
        assert await second.terminate() == 0
    assert lock_owner(lock_file) is None
