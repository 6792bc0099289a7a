"""Where the user sees commit statuses from the command line: ``check`` and ``events --json``.

``check`` reads each reporting repository with its status token from a fake forge API on
loopback (a harmless read), and reports the repositories whose last status the forge refused;
``events --json`` says for each run whether its status reached the forge.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import set_secret_cli, write_serve_config
from enginekit import REPOSITORY, EngineKit
from ownerkit import cli
from statusforge import StatusForge
from test_statuses import one_function, rig

from pocketci_tui.config import ForgeSettings
from pocketci_tui.contract import ClientNotice, ProblemsChanged
from pocketci_tui.model import EventStatus
from pocketci_tui.services import Services

pytestmark = pytest.mark.timeout(120)


async def test_check_reads_each_repository_with_its_status_token(hermetic_home: Path) -> None:
    forge = await StatusForge("github").start()
    try:
        write_serve_config(
            hermetic_home,
            repos="[{name: acme/api, status-token: good-token}, "
            "{name: acme/web, status-token: stale-token}, "
            "{name: acme/docs, statuses: true}, {name: acme/site}]",
            extra=f"forges: {{github: {{api-url: '{forge.api_url}'}}}}\n",
        )
        await asyncio.to_thread(set_secret_cli, "good-token", forge.token)
        await asyncio.to_thread(set_secret_cli, "stale-token", "expired-value-123")
        done = await asyncio.to_thread(cli, "check")
    finally:
        await forge.stop()
    out = done.stdout
    lines = [line for line in out.splitlines() if "statuses of" in line]
    assert any(
        line.startswith("ok") and f"acme/api: the token reaches {forge.api_url}" in line
        for line in lines
    ), out
    assert any(
        line.startswith("FAIL") and "acme/web: 401, the token was refused" in line for line in lines
    ), out
    assert any(
        line.startswith("FAIL") and "acme/docs: no token to post them with" in line
        for line in lines
    ), out
    assert not any("acme/site" in line for line in lines)  # no token, not asked: off
    assert forge.token not in out
    assert "expired-value-123" not in out
    reads = [(r.method, r.path) for r in forge.received]
    assert reads == [("GET", "/repos/acme/api"), ("GET", "/repos/acme/web")]
    assert done.returncode == 1


async def test_events_json_and_check_show_a_refused_status_with_its_reason(
    tmp_path: Path, hermetic_home: Path
) -> None:
    refused: tuple[int, dict[str, str], str] = (403, {}, '{"message": "no"}')
    forge = StatusForge("github", answers={REPOSITORY: [refused] * 10})
    async with rig(tmp_path / "kit", functions=one_function(), forge=forge) as r:
        stored = await r.kit.deliver(r.push("seen"))
        assert stored.event.id is not None
        await r.kit.wait_runs_finished(stored.event.id)
        await r.wait_outbox_settled()
    data = ["--data-dir", str(tmp_path / "kit" / "data")]
    listed = await asyncio.to_thread(cli, "events", "--json", *data)
    assert listed.returncode == 0, listed.stderr
    [event] = json.loads(listed.stdout)
    [run] = event["runs"]
    reason = "403, the token lacks the Commit statuses permission (classic: repo:status)"
    assert run["commit_status"] == {
        "context": "pocketci/testOnGithubPushMain",
        "state": "success",
        "description": run["commit_status"]["description"],
        "delivery": "failed",
        "detail": reason,
    }
    assert run["commit_status"]["description"].startswith("passed in ")
    checked = await asyncio.to_thread(cli, "check", *data)
    assert f"status not posted to {REPOSITORY}: {reason}" in checked.stdout


async def test_events_json_shows_a_delivered_status(tmp_path: Path) -> None:
    async with rig(tmp_path / "kit", functions=one_function()) as r:
        stored = await r.kit.deliver(r.push("sent"))
        assert stored.event.id is not None
        await r.kit.wait_runs_finished(stored.event.id)
        await r.wait_outbox_settled()
    listed = await asyncio.to_thread(
        cli, "events", "--json", "--data-dir", str(tmp_path / "kit" / "data")
    )
    [event] = json.loads(listed.stdout)
    assert event["runs"][0]["commit_status"]["delivery"] == "sent"


async def test_the_ui_is_told_of_a_refused_status_as_a_problem(tmp_path: Path) -> None:
    """Through the real services, as the terminal UI subscribes: the status bar's problems."""
    refused: tuple[int, dict[str, str], str] = (403, {}, '{"message": "no"}')
    forge = await StatusForge("github", answers={REPOSITORY: [refused] * 10}).start()
    kit = EngineKit(tmp_path, functions=one_function(), secrets={"forge-token": forge.token})
    repo = replace(kit.settings.repos[0], statuses=True, status_token="forge-token")
    settings = replace(
        kit.settings, repos=(repo,), forges={"github": ForgeSettings(api_url=forge.api_url)}
    )
    services = Services(settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        told: list[ClientNotice] = []
        changed = asyncio.Event()

        def tell(notice: ClientNotice) -> None:
            told.append(notice)
            changed.set()

        unsubscribe = services.subscribe(tell)
        assert services.store is not None
        assert services.engine is not None
        stored, _ = await services.store.record_event(
            replace(kit.push({"main.go": "x\n"}), delivery_id="ui-1"), EventStatus.RECEIVED
        )
        await services.engine.submit(stored, False)
        expected = (
            f"status not posted to {REPOSITORY}: 403, the token lacks the Commit statuses "
            "permission (classic: repo:status)"
        )

        def shown() -> bool:
            return any(
                isinstance(n, ProblemsChanged) and expected in [p.detail for p in n.problems]
                for n in told
            )

        async with asyncio.timeout(30):
            while not shown():
                changed.clear()
                await changed.wait()
        unsubscribe()
    finally:
        await services.stop()
        await forge.stop()
