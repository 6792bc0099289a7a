"""A real ``pocketci-tui serve`` killed with SIGKILL while commit statuses are on their way.

The fake forge answers slowly, so when the process dies some statuses are queued and one is in
flight (the forge still applies it, as a forge would). After the restart every context's final
state reaches the forge exactly once, after the context's earlier states, and the outbox ends
with every row sent or superseded.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit
from ownerkit import push_payload, run_states, until
from signing import send_signed
from statusforge import StatusForge

pytestmark = pytest.mark.timeout(300)

FINAL = {"success", "failure", "error"}


def _outbox(db: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT sha, context, state, status FROM status_outbox ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


async def test_sigkill_with_statuses_queued_loses_none_and_sends_none_twice(
    hermetic_home: Path, tmp_path: Path
) -> None:
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    kit = EngineKit(
        tmp_path,
        functions=[
            fn("buildOnGithubPushMain", *base, call={"output": ["ok"], "exit": 0}),
            fn("testOnGithubPushMain", *base, call={"output": ["no"], "exit": 2}),
        ],
    )
    forge = await StatusForge("github", delay=1.5).start()
    try:
        write_serve_config(
            hermetic_home,
            repos=f"[{{name: {REPOSITORY}, clone-url: '{kit.remote.path}', statuses: true, "
            "status-token: forge-token}]",
            extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\nconcurrency: 4\n"
            f"forges: {{github: {{api-url: '{forge.api_url}'}}}}\n",
        )
        set_secret_cli("webhook-secret", WEBHOOK_SECRET)
        set_secret_cli("forge-token", forge.token)
        db = hermetic_home / "data" / "pocketci.db"
        serve = await ServeProcess.start()
        pushes = 3
        async with aiohttp.ClientSession() as http:
            for i in range(pushes):
                body = push_payload(kit, f"change {i}")
                reply = await send_signed(http, serve.hook_url, WEBHOOK_SECRET, body)
                assert reply.status == 202
        await until(
            lambda: (
                len(run_states(db)) == 2 * pushes
                and all(s in ("passed", "failed") for s in run_states(db))
            ),
            "every run to finish",
        )
        await until(lambda: forge.in_flight > 0, "a status in flight")
        undelivered = [r for r in _outbox(db) if r[3] in ("queued", "sending")]
        assert undelivered, "the kill must come while statuses are still queued"
        await serve.kill()
        await until(lambda: forge.in_flight == 0, "the forge to finish what it started")
        killed_at = len(forge.received)

        forge.delay = 0.0
        serve = await ServeProcess.start()
        await until(
            lambda: all(r[3] in ("sent", "superseded") for r in _outbox(db)),
            "the outbox to be delivered after the restart",
        )
        assert await serve.terminate() == 0
    finally:
        await forge.stop()

    assert forge.violations == []
    assert len(forge.received) > killed_at  # the restart delivered what was left
    contexts = {(r[0], r[1]) for r in _outbox(db)}
    assert len(contexts) == 2 * pushes
    for sha, context in contexts:
        applied = [a.state for a in forge.applied if (a.sha, a.context) == (sha, context)]
        finals = [s for s in applied if s in FINAL]
        assert len(finals) == 1, (context, applied)
        assert applied[-1] in FINAL, (context, applied)  # nothing after the final state
        stored_final = [r[2] for r in _outbox(db) if (r[0], r[1]) == (sha, context)][-1]
        assert {"success": "success", "failure": "failure"}[stored_final] == finals[0]
