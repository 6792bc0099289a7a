"""Orphans after a crash (issue 11): the ``dagger call`` a killed pocketci-tui left running is
stopped at the next start, and nothing else is.

Each call's process group is recorded with its leader's start time and the boot id when it
starts. A restart stops the recorded groups that are still there (SIGTERM, then SIGKILL) before
it marks their runs interrupted, and says so in the run's reason; a recorded pid that now
belongs to another process (another start time) or to another boot is left alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess
from enginekit import EngineKit
from gitrepo import push_event
from ownerkit import db_rows, kill_calls, push_payload, slow_home, until
from signing import send_signed

from pocketci_tui.engine.proc import call_process, leftover_pids
from pocketci_tui.model import CallProcess, EventStatus, Run, RunState
from pocketci_tui.store import Store

pytestmark = pytest.mark.timeout(180)


def _alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie is dead already)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _recorded(db: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return [(r[0], int(r[1])) for r in conn.execute("SELECT run_id, pgid FROM run_calls")]
    finally:
        conn.close()


async def test_a_call_left_running_by_a_killed_serve_is_stopped_at_restart(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = slow_home(hermetic_home, tmp_path / "fixture")
    db = hermetic_home / "data" / "pocketci.db"
    serve = await ServeProcess.start()
    try:
        async with aiohttp.ClientSession() as session:
            body = push_payload(kit)
            reply = await send_signed(session, serve.hook_url, WEBHOOK_SECRET, body)
        assert reply.status == 202
        await until(
            lambda: bool(kit.calls() and kit.calls()[0]["child_pid"] and _recorded(db)),
            "a running call, recorded",
        )
        [call] = kit.calls()
        [(run_id, pgid)] = _recorded(db)
        assert pgid == call["pid"]
        await serve.kill()
        # Nothing stops the call now: it keeps running without its server.
        assert _alive(call["pid"])
        assert _alive(call["child_pid"])

        restarted = await ServeProcess.start()
        try:
            # The leftovers are stopped before the listener opens.
            await until(
                lambda: not _alive(call["pid"]) and not _alive(call["child_pid"]),
                "the left-over call and its child stopped",
                timeout=30,
            )
            [run] = [r for r in db_rows(db)["runs"] if r[0] == run_id]
            assert run[2] == "interrupted"
            assert f"its dagger call kept running (process group {pgid})" in run[3]
            assert "was stopped at the next start" in run[3]
            assert any(
                f"stopped the dagger call of run {run_id}" in line for line in restarted.lines
            ), restarted.lines
            assert all(rid != run_id for rid, _ in _recorded(db))
        finally:
            assert await restarted.terminate() == 0
    finally:
        await serve.kill()
        kill_calls(kit)


def _sleeper() -> subprocess.Popen[bytes]:
    """A process in a session (and process group) of its own, like a ``dagger call``."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )


async def test_only_the_recorded_process_is_stopped(tmp_path: Path) -> None:
    """Three runs were running when their server died: one recorded call is still there, one
    recorded pid now has another start time (a reused pid), one was recorded in another boot.
    Only the first is stopped; all three runs are interrupted."""
    kit = EngineKit(tmp_path / "kit")
    ours, reused, other_boot = _sleeper(), _sleeper(), _sleeper()
    try:
        stamps: dict[str, CallProcess] = {}
        for name, proc in (("ours", ours), ("reused", reused), ("boot", other_boot)):
            stamp = call_process(f"run-{name}", proc.pid)
            assert stamp is not None
            stamps[name] = stamp
        stamps["reused"] = dataclasses.replace(
            stamps["reused"], start_ticks=stamps["reused"].start_ticks - 1
        )
        stamps["boot"] = dataclasses.replace(stamps["boot"], boot_id="another-boot")
        assert leftover_pids(stamps["ours"]) == [ours.pid]
        assert leftover_pids(stamps["reused"]) == []
        assert leftover_pids(stamps["boot"]) == []

        store = await Store.open(kit.paths.db_file)
        try:
            stored, _ = await store.record_event(
                push_event("refs/heads/main", kit.main_sha), EventStatus.DISPATCHED
            )
            assert stored.event.id is not None
            await store.add_runs(
                [
                    Run(id=s.run_id, event_id=stored.event.id, function=n, state=RunState.RUNNING)
                    for n, s in stamps.items()
                ]
            )
            for stamp in stamps.values():
                await store.record_call(stamp)
            assert len(await store.recorded_calls()) == 3
        finally:
            await store.close()

        async with kit:
            runs = {r.id: r for r in await kit.store.list_runs(stored.event.id)}
            assert await kit.store.recorded_calls() == []
        assert await asyncio.to_thread(ours.wait, 30) == -signal.SIGTERM
        assert reused.poll() is None
        assert other_boot.poll() is None
        assert {r.state for r in runs.values()} == {RunState.INTERRUPTED}
        assert "was stopped at the next start" in runs["run-ours"].reason
        for name in ("reused", "boot"):
            assert runs[f"run-{name}"].reason == "pocketci-tui stopped while this ran"
    finally:
        for proc in (ours, reused, other_boot):
            proc.kill()
            proc.wait()


async def test_a_finished_run_keeps_no_call_record(tmp_path: Path) -> None:
    """The record lives while the run runs: storing it finished removes it, and a record for a
    run already finished is not written."""
    kit = EngineKit(tmp_path / "kit")
    store = await Store.open(kit.paths.db_file)
    try:
        stored, _ = await store.record_event(
            push_event("refs/heads/main", kit.main_sha), EventStatus.DISPATCHED
        )
        assert stored.event.id is not None
        run = Run(id="r1", event_id=stored.event.id, function="f", state=RunState.RUNNING)
        await store.add_runs([run])
        stamp = CallProcess("r1", os.getpid(), 1, "boot")
        await store.record_call(stamp)
        assert await store.recorded_calls() == [stamp]
        await store.update_run(dataclasses.replace(run, state=RunState.PASSED, exit_code=0))
        assert await store.recorded_calls() == []
        await store.record_call(stamp)
        assert await store.recorded_calls() == []
    finally:
        await store.close()
