"""The sender tells what becomes of each run's commit status as it is recorded, so a client
shows it live: claimed, then sent, or refused with the forge's reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from corekit import Told, deliver
from enginekit import REPOSITORY, EngineKit
from statusforge import StatusForge
from test_statuses import TOKEN, one_function, rig

from pocketci_tui.config import ForgeSettings
from pocketci_tui.contract import ClientNotice, StatusDelivery
from pocketci_tui.core_feed import tell_delivery
from pocketci_tui.services import Services


async def _told_deliveries(tmp_path: Path, forge: StatusForge) -> tuple[list[StatusDelivery], str]:
    told: list[ClientNotice] = []
    async with rig(tmp_path, functions=one_function(), forge=forge) as r:
        stop = r.sender.watch_deliveries(lambda row: tell_delivery(told.append, row))
        stored = await r.kit.deliver(r.push("told"))
        [run] = await r.kit.wait_runs_finished(stored.event.id or 0)
        await r.wait_outbox_settled()
        stop()
    deliveries = [n for n in told if isinstance(n, StatusDelivery)]
    assert deliveries == told
    assert {d.run_id for d in deliveries} == {run.id}
    assert {d.event_id for d in deliveries} == {stored.event.id}
    return deliveries, run.id


async def test_each_claim_and_answer_is_told_and_the_last_says_sent(tmp_path: Path) -> None:
    deliveries, _ = await _told_deliveries(tmp_path, StatusForge("github"))
    assert deliveries[0].delivery == "sending"
    assert {d.delivery for d in deliveries} <= {"sending", "sent"}
    assert deliveries[-1].delivery == "sent"


async def test_a_refusal_is_told_with_its_reason(tmp_path: Path) -> None:
    refused: tuple[int, dict[str, str], str] = (
        403,
        {},
        '{"message": "Resource not accessible by integration"}',
    )
    forge = StatusForge("github", answers={REPOSITORY: [refused] * 20})
    deliveries, _ = await _told_deliveries(tmp_path, forge)
    assert deliveries[-1].delivery == "failed"
    assert deliveries[-1].detail == (
        "403, the token lacks the Commit statuses permission (classic: repo:status)"
    )


async def test_the_core_tells_its_subscribers_and_answers_for_an_events_runs(
    tmp_path: Path,
) -> None:
    forge = await StatusForge("github").start()
    kit = EngineKit(tmp_path, functions=one_function(), secrets={"forge-token": TOKEN})
    repo = replace(kit.settings.repos[0], statuses=True, status_token="forge-token")
    settings = replace(
        kit.settings,
        repos=(repo,),
        forges={"github": ForgeSettings(url=forge.url, api_url=forge.api_url)},
    )
    services = Services(settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        told = Told()
        unsubscribe = services.subscribe(told)
        event_id = await deliver(services, kit.push({"main.go": "package main // core\n"}))

        def sent() -> list[ClientNotice]:
            return [n for n in told.of(StatusDelivery) if n.delivery == "sent"]  # type: ignore[union-attr]

        # Each status the forge applied is told once it is recorded, the final one included.
        await told.wait_for(
            lambda: (
                any(p.body and p.body["state"] == "success" for p in forge.posts())
                and len(sent()) == len(forge.posts())
            )
        )
        unsubscribe()
        [run] = await services.runs(event_id)
        assert {n.run_id for n in told.of(StatusDelivery)} == {run.id}  # type: ignore[union-attr]
        answer = await services.status_deliveries([run.id, "no-such-run"])
        assert answer == {run.id: StatusDelivery(run.id, event_id, "sent", "")}
        assert forge.violations == []
    finally:
        await services.stop()
        await forge.stop()
