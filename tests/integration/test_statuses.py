"""Commit statuses through the real engine, the stand-in dagger and a fake forge API per vendor.

Each test drives real events through :class:`~enginekit.EngineKit` with the store's status
router and the :class:`~pocketci_tui.statuses.sender.StatusSender` wired as ``serve`` wires
them, against :class:`~statusforge.StatusForge` on loopback, and asserts what the forge got.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit
from gitrepo import push_event
from statusforge import StatusForge

from pocketci_tui.config import ForgeSettings, RepoConfig, Settings
from pocketci_tui.engine.match.naming import pascal
from pocketci_tui.model import Event, EventStatus, Run, RunState, Vendor
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.statuses.routing import SettingsRouter
from pocketci_tui.statuses.sender import StatusSender
from pocketci_tui.store import Store

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
    vendor: Vendor = "github",
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
    tmp_path: Path, vendor: Vendor
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


def one_function(call: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One function for a push to main."""
    return [fn("testOnGithubPushMain", *BASE, call=call or {"output": ["ok"], "exit": 0})]


async def test_a_fork_pull_request_waits_with_one_pending_status_then_is_approved(
    tmp_path: Path,
) -> None:
    async with rig(tmp_path) as r:
        stored = await r.kit.deliver(r.kit.pull_request({"a.go": "x\n"}, fork=True))
        event_id = stored.event.id
        assert event_id is not None
        await r.kit.wait_status(event_id, EventStatus.WAITING)
        await r.wait_posts(lambda: len(r.forge.posts()) >= 1)
        await r.wait_outbox_settled()
        assert r.forge.sequence() == {
            "pocketci/approval": [("pending", "waiting for approval in pocketci-tui")]
        }
        await r.kit.engine.approve(event_id)
        await r.kit.wait_status(event_id, EventStatus.SKIPPED, EventStatus.DISPATCHED)
        await r.wait_outbox_settled()
        assert r.forge.sequence()["pocketci/approval"] == [
            ("pending", "waiting for approval in pocketci-tui"),
            ("success", "approved in pocketci-tui"),
        ]
        assert r.forge.violations == []


async def test_a_rerun_posts_pending_again_then_its_new_outcome(tmp_path: Path) -> None:
    flaky = "~/flaky-exit"
    call = {"output": ["FAIL"], "exit": 1, "exit_file": flaky}
    async with rig(tmp_path, functions=one_function(call)) as r:
        stored = await r.kit.deliver(r.push("flaky"))
        event_id = stored.event.id
        assert event_id is not None
        [failed] = await r.kit.wait_runs_finished(event_id)
        await r.wait_outbox_settled()
        await asyncio.to_thread(Path(flaky.replace("~", os.environ["HOME"], 1)).write_text, "0\n")
        await r.kit.engine.rerun(failed.id)
        await r.kit.wait_runs_finished(event_id, count=2)
        await r.wait_outbox_settled()
        states = r.forge.sequence()["pocketci/testOnGithubPushMain"]
        end_of_first = states.index(("failure", "failed: exit 1"))
        again = states[end_of_first + 1 :]
        assert again[0][0] == "pending"
        assert again[-1][0] == "success"
        assert {s for s, _ in again[:-1]} == {"pending"}
        assert r.forge.violations == []


async def test_429_and_500_are_retried_with_backoff_and_retry_after(tmp_path: Path) -> None:
    forge = StatusForge(
        "github",
        answers={"*": [(429, {"Retry-After": "1"}, "{}"), (500, {}, '{"message": "oops"}')]},
    )
    async with rig(tmp_path, functions=one_function(), forge=forge) as r:
        stored = await r.kit.deliver(r.push("retry"))
        assert stored.event.id is not None
        await r.kit.wait_runs_finished(stored.event.id)
        await r.wait_outbox_settled()
        posts = [x for x in forge.received if x.method == "POST"]
        assert [p.answer for p in posts[:3]] == [429, 500, 201]
        # Retry-After: 1 is honoured; after the 500 the backoff waits before trying again,
        # and reads the commit's statuses first (a 500 may have applied it).
        assert posts[1].at - posts[0].at >= 1.0
        after_500 = [x for x in forge.received if x.at > posts[1].at]
        assert after_500[0].method == "GET"
        assert after_500[0].at - posts[1].at >= 0.05 * 0.5
        assert forge.sequence()["pocketci/testOnGithubPushMain"][-1][0] == "success"
        assert forge.violations == []


async def test_403_is_recorded_with_its_reason_and_other_repositories_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    refused: tuple[int, dict[str, str], str] = (
        403,
        {},
        '{"message": "Resource not accessible by integration"}',
    )
    forge = StatusForge("github", answers={REPOSITORY: [refused] * 20})
    async with rig(tmp_path, functions=one_function(), forge=forge) as r:
        other = replace(r.kit.settings.repos[0], name="owner/other", clone_url="")
        settings = replace(r.kit.settings, repos=(*r.kit.settings.repos, other))
        r.sender.settings = settings
        assert isinstance(r.kit.store.status_router, SettingsRouter)
        r.kit.store.status_router.settings = settings
        stored = await r.kit.deliver(r.push("refused"))
        assert stored.event.id is not None
        # Another repository's run, stored as the engine stores one.
        elsewhere, _ = await r.kit.store.record_event(
            replace(stored.event, repository="owner/other", delivery_id="other-1"),
            EventStatus.DISPATCHED,
        )
        assert elsewhere.event.id is not None
        run = Run("other-run", elsewhere.event.id, "testOnGithubPushMain", RunState.QUEUED)
        await r.kit.store.add_runs([run])
        await r.kit.store.update_run(replace(run, state=RunState.PASSED))
        r.sender.wake()
        await r.kit.wait_runs_finished(stored.event.id)
        await r.wait_outbox_settled()
        assert forge.sequence("owner/other") == {
            "pocketci/testOnGithubPushMain": [("success", "passed")]
        }
        assert forge.posts(REPOSITORY) == []
        reason = "403, the token lacks the Commit statuses permission (classic: repo:status)"
        rows = [x for x in await r.kit.store.all_statuses() if x.repository == REPOSITORY]
        assert rows
        assert {x.status for x in rows} <= {"failed", "superseded"}
        assert rows[-1].detail == reason
        [problem] = r.sender.problems()
        assert problem.detail == f"status not posted to {REPOSITORY}: {reason}"
        assert f"status not posted to {REPOSITORY}: {reason}" in caplog.text
        assert TOKEN not in caplog.text


async def _sender_alone(tmp_path: Path, forge: StatusForge) -> tuple[Store, StatusSender, str]:
    """A store with one run's queued status claimed (marked sending) and a sender, not started."""
    settings = Settings(
        repos=(RepoConfig(name=REPOSITORY, statuses=True, status_token="forge-token"),),
        forges={"github": ForgeSettings(api_url=forge.api_url)},
    )
    store = await Store.open(tmp_path / "db.sqlite")
    store.status_router = SettingsRouter(settings)
    sha = "c" * 40
    stored, _ = await store.record_event(
        push_event("refs/heads/main", sha, "b" * 40, repository=REPOSITORY, delivery_id="x"),
        EventStatus.DISPATCHED,
    )
    assert stored.event.id is not None
    await store.add_runs([Run("r1", stored.event.id, "test", RunState.QUEUED)])
    [row] = await store.due_statuses()
    assert await store.claim_status(row.key) is not None  # handed over; then the crash
    sender = StatusSender(store, MemorySecretStore({"forge-token": TOKEN}), settings)
    return store, sender, sha


@pytest.mark.parametrize("reached", [True, False])
async def test_a_status_caught_mid_send_by_a_crash_reaches_the_forge_once(
    tmp_path: Path, reached: bool
) -> None:
    forge = await StatusForge("github").start()
    store, sender, sha = await _sender_alone(tmp_path, forge)
    try:
        if reached:  # the forge applied it before the process died
            async with aiohttp.ClientSession() as http:
                answer = await http.post(
                    f"{forge.api_url}/repos/{REPOSITORY}/statuses/{sha}",
                    json={"state": "pending", "context": "pocketci/test", "description": "queued"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert answer.status == 201
        await sender.start()
        async with asyncio.timeout(30):
            while await store.due_statuses():
                await asyncio.sleep(0.05)
        assert forge.sequence() == {"pocketci/test": [("pending", "queued")]}
        assert [x.method for x in forge.received] == ["POST", "GET"] if reached else ["GET", "POST"]
        [row] = await store.all_statuses()
        assert row.status == "sent"
    finally:
        await sender.stop()
        await store.close()
        await forge.stop()


async def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(
    tmp_path: Path,
) -> None:
    elsewhere = await StatusForge("github").start()
    moved: tuple[int, dict[str, str], str] = (
        301,
        {"Location": f"{elsewhere.url}/repos/{REPOSITORY}/statuses/x"},
        "",
    )
    forge = StatusForge("github", answers={"*": [moved] * 10})
    try:
        async with rig(tmp_path, functions=one_function(), forge=forge) as r:
            stored = await r.kit.deliver(r.push("moved"))
            assert stored.event.id is not None
            await r.kit.wait_runs_finished(stored.event.id)
            await r.wait_outbox_settled()
            rows = await r.kit.store.all_statuses()
    finally:
        await elsewhere.stop()
    assert elsewhere.received == []
    assert rows[-1].status == "failed"
    assert "redirects are not followed: set forges.github.api-url" in rows[-1].detail


async def test_gitlab_409_is_retried_and_cannot_transition_counts_as_applied(
    tmp_path: Path,
) -> None:
    conflict: tuple[int, dict[str, str], str] = (409, {}, '{"message": "409 Conflict"}')
    applied: tuple[int, dict[str, str], str] = (
        400,
        {},
        '{"message": "Cannot transition status via :enqueue from :pending"}',
    )
    forge = StatusForge("gitlab", answers={"*": [conflict, applied]})
    functions = [fn("testOnGitlabPushMain", *BASE, call={"output": ["ok"], "exit": 0})]
    async with rig(tmp_path, "gitlab", functions=functions, forge=forge) as r:
        stored = await r.kit.deliver(r.push("gitlab"))
        assert stored.event.id is not None
        await r.kit.wait_runs_finished(stored.event.id)
        await r.wait_outbox_settled()
        rows = await r.kit.store.all_statuses()
    posts = [x for x in forge.received if x.method == "POST"]
    assert [p.answer for p in posts[:2]] == [409, 400]
    assert {row.status for row in rows} <= {"sent", "superseded"}
    assert any(row.detail == "already applied" for row in rows)
    assert forge.sequence()["pocketci/testOnGitlabPushMain"][-1][0] == "success"
    assert forge.violations == []


@pytest.mark.parametrize("answer", [201, 500])
async def test_a_stop_delivers_what_is_queued_unless_the_forge_fails(
    tmp_path: Path, answer: int
) -> None:
    script: list[tuple[int, dict[str, str], str]] = [(500, {}, "{}")] * 50
    forge = StatusForge("github", delay=0.2, answers={"*": script} if answer == 500 else {})
    await forge.start()
    store, sender, _ = await _sender_alone(tmp_path, forge)
    try:
        await sender.start()
        await sender.stop(grace=30.0)
        due = await store.due_statuses()
    finally:
        await store.close()
        await forge.stop()
    if answer == 201:
        assert due == []
        assert forge.sequence() == {"pocketci/test": [("pending", "queued")]}
    else:  # a retry waits for the next start; the stop did not wait for it
        assert [row.status for row in due] == ["sending"]
        assert [x.answer for x in forge.received if x.method == "POST"] == [500]


async def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forge = await StatusForge("github").start()
    store, sender, _ = await _sender_alone(tmp_path, forge)
    sender.secrets = MemorySecretStore({"forge-token": "first-half\nsecond-half"})
    try:
        await sender.start()
        async with asyncio.timeout(30):
            while await store.due_statuses():
                await asyncio.sleep(0.05)
        await sender.stop()
        [row] = await store.all_statuses()
    finally:
        await store.close()
        await forge.stop()
    assert row.status == "failed"
    assert row.detail == (
        "the token 'forge-token' is not a valid HTTP header value (a line break in it?)"
    )
    assert "first-half" not in caplog.text
    assert "second-half" not in caplog.text
    assert [x for x in forge.received if x.method == "POST"] == []
