"""Commit statuses through the real engine, the stand-in dagger and a fake forge API per vendor.

Each test drives real events through :class:`~enginekit.EngineKit` with the store's status
router and the :class:`~pocketci_tui.statuses.sender.StatusSender` wired as ``serve`` wires
them, against :class:`~statusforge.StatusForge` on loopback, and asserts what the forge got.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit
from statusforge import StatusForge

from pocketci_tui.config import ForgeSettings
from pocketci_tui.engine.match.naming import pascal
from pocketci_tui.model import Event, RunState
from pocketci_tui.statuses.routing import SettingsRouter
from pocketci_tui.statuses.sender import StatusSender

TOKEN = "status-token-value"
BASE = [arg("src", "Directory"), arg("eventTrigger", "File")]


def three_functions(vendor: str) -> list[dict[str, Any]]:
    """A pass, a fail (exit 3), a slow one to cancel, and one the winning tier skips."""
    tier1 = f"On{pascal(vendor)}PushMain"
    return [
        fn("pass" + tier1, *BASE, call={"output": ["ok"], "exit": 0}),
        fn("fail" + tier1, *BASE, call={"output": ["boom"], "exit": 3}),
        fn("slow" + tier1, *BASE, call={"output": ["started"], "sleep": 60}),
        fn(
            "other" + "Dispatch",
            *BASE,
            arg("filter", "String"),
            arg("event", "String"),
            arg("vendor", "String"),
            call={"exit": 0},
        ),
    ]


class Rig:
    """An engine kit, a fake forge and the sender, wired as services wires them."""

    def __init__(self, kit: EngineKit, forge: StatusForge, sender: StatusSender) -> None:
        self.kit = kit
        self.forge = forge
        self.sender = sender

    def push(self, text: str) -> Event:
        event = self.kit.push({"main.go": f"package main // {text}\n"})
        return replace(event, vendor=self.forge.vendor)

    async def wait_posts(self, predicate: Any, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.forge.posted.clear()
                if predicate():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.forge.posted.wait(), 0.5)

    async def wait_outbox_settled(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while await self.kit.store.due_statuses():
                await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    vendor: str = "github",
    *,
    functions: list[dict[str, Any]] | None = None,
    forge: StatusForge | None = None,
    **settings: Any,
) -> AsyncIterator[Rig]:
    forge = await (forge or StatusForge(vendor)).start()
    kit = EngineKit(
        tmp_path,
        functions=functions or three_functions(vendor),
        secrets={"forge-token": TOKEN},
    )
    repo = replace(kit.settings.repos[0], vendor=vendor, statuses=True, status_token="forge-token")
    kit.settings = replace(
        kit.settings,
        repos=(repo,),
        forges={vendor: ForgeSettings(url=forge.url, api_url=forge.api_url)},
        concurrency=4,
        **settings,
    )
    try:
        async with kit:
            kit.store.status_router = SettingsRouter(kit.settings)
            sender = StatusSender(kit.store, kit.secrets, kit.settings, backoff_base=0.05)
            kit.engine.subscribe(sender.wake)
            await sender.start()
            try:
                yield Rig(kit, forge, sender)
            finally:
                await sender.stop()
    finally:
        await forge.stop()


async def _push_pass_fail_cancel(r: Rig) -> dict[str, list[tuple[str, str]]]:
    kit = r.kit
    stored = await kit.deliver(r.push("three"))
    event_id = stored.event.id
    assert event_id is not None
    tier1 = f"On{pascal(r.forge.vendor)}PushMain"
    await kit.wait_for(lambda: len(kit.calls()) >= 3)
    runs = await kit.store.list_runs(event_id)
    slow_run = next(x for x in runs if x.function == f"slow{tier1}")
    await kit.wait_for(lambda: RunState.RUNNING in kit.run_states(slow_run.id))
    assert await kit.engine.cancel(slow_run.id)
    await kit.wait_runs_finished(event_id)
    await r.wait_outbox_settled()
    return r.forge.sequence(REPOSITORY)


@pytest.mark.parametrize("vendor", ["github", "gitea", "forgejo", "gitlab"])
async def test_push_with_pass_fail_and_cancel_reports_each_context(
    tmp_path: Path, vendor: str
) -> None:
    async with rig(tmp_path, vendor) as r:
        seq = await _push_pass_fail_cancel(r)
        assert r.forge.violations == []
        tier1 = f"On{pascal(vendor)}PushMain"
        # The skipped function gets no status at all.
        assert set(seq) == {f"pocketci/{n}{tier1}" for n in ("pass", "fail", "slow")}
        finals = {ctx.split("/")[1][:4]: states[-1] for ctx, states in seq.items()}
        if vendor == "gitlab":
            assert finals["pass"][0] == "success"
            assert finals["fail"] == ("failed", "failed: exit 3")
            assert finals["slow"][0] == "canceled"
        else:
            assert finals["pass"][0] == "success"
            assert finals["fail"] == ("failure", "failed: exit 3")
            assert finals["slow"][0] == "error"
        assert finals["pass"][1].startswith("passed in ")
        assert finals["slow"][1].startswith("cancelled")
        for states in seq.values():
            # Each context starts pending (or running on GitLab, when pending was superseded)
            # and ends with one final state, never going back.
            assert states[0][0] in ("pending", "running")
            assert [s for s, _ in states[:-1]] == sorted(
                (s for s, _ in states[:-1]), key=["pending", "running"].index
            )
            assert all(len(d) <= 140 for _, d in states)
        if vendor == "gitlab":
            assert ("running", "running") in seq[f"pocketci/slow{tier1}"]
        rows = await r.kit.store.all_statuses()
        assert {row.status for row in rows} <= {"sent", "superseded"}
