"""The sender tells what becomes of each run's commit status as it is recorded, so a client
shows it live: claimed, then sent, or refused with the forge's reason."""

from __future__ import annotations

from pathlib import Path

from enginekit import REPOSITORY
from statusforge import StatusForge
from test_statuses import one_function, rig

from pocketci_tui.contract import ClientNotice, StatusDelivery
from pocketci_tui.core_feed import tell_delivery


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
