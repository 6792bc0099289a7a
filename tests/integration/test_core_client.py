"""The UI's contract, as both its implementations keep it: the in-process services, and a client
attached to them over the control socket (one body per test, run against each). The run counts
and the engine's problems come as notices (now, then on change; nobody asks on a timer), and a
run's output tail says where it ends, so live output continues from it without a gap or a
repeat, across the socket too. Real services (lock, listener, control socket, SQLite, engine,
git) and the stand-in ``dagger``."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from corekit import IMPLEMENTATIONS, Told, attached, deliver, forge_delivery, join
from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui import stamps
from pocketci_tui.config import DaggerSettings
from pocketci_tui.contract import CountsChanged, ProblemsChanged, RejectionSummary
from pocketci_tui.model import EventSettled, RunOutput, RunState
from pocketci_tui.services import Services

BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))


@pytest.mark.parametrize("how", IMPLEMENTATIONS)
async def test_counts_and_problems_are_told_at_once_and_then_as_they_change(
    tmp_path: Path, how: str
) -> None:
    kit = EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"output": ["long job"], "sleep": 120})],
    )
    settings = replace(
        kit.settings,
        dagger=DaggerSettings(cli=kit.settings.dagger.cli, cloud_token="dagger-cloud"),
    )
    services = Services(settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with attached(services, how) as core:
            told = Told()
            unsubscribe = core.subscribe(told)
            # Told at once, before anything happens: nothing runs, the cloud token is missing.
            assert told.notices[0] == CountsChanged(0, 0)
            first = told.notices[1]
            assert isinstance(first, ProblemsChanged)
            assert [p.key for p in first.problems] == ["cloud-token"]

            await kit.secrets.set("dagger-cloud", "dagger-cloud-token-value")
            event_id = await deliver(services, kit.push({"main.go": "2\n"}))
            await told.wait_for(lambda: CountsChanged(0, 1) in told.notices)
            # The token was read for the run: the problem is gone, and the subscriber was told.
            await told.wait_for(lambda: ProblemsChanged(()) in told.notices)

            assert await core.cancel_event(event_id) == 1
            await told.wait_for(lambda: told.of(CountsChanged)[-1] == CountsChanged(0, 0))
            # Each change was told once: never the same value twice in a row.
            counts = told.of(CountsChanged)
            assert all(a != b for a, b in itertools.pairwise(counts))
            assert await core.counts() == CountsChanged(0, 0)

            # Unsubscribed, it is told nothing more (another subscriber still is).
            unsubscribe()
            before = len(told.notices)
            other = Told()
            core.subscribe(other)
            await deliver(services, kit.push({"main.go": "3\n"}))
            await other.wait_for(lambda: CountsChanged(0, 1) in other.notices)
            assert len(told.notices) == before
    finally:
        await services.stop()


@pytest.mark.parametrize("how", IMPLEMENTATIONS)
async def test_live_output_continues_from_the_tail_without_a_gap_or_a_repeat(
    tmp_path: Path, how: str
) -> None:
    total = 3000
    kit = EngineKit(
        tmp_path,
        functions=[
            fn(
                "onGithubPushMain",
                *BASE,
                call={"lines": total, "lines_per_second": 3000, "exit": 0},
            )
        ],
    )
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with attached(services, how) as core:
            told = Told()
            core.subscribe(told)
            await deliver(services, kit.push({"main.go": "2\n"}))

            def streamed() -> int:
                ends = [n.end or 0 for n in told.of(RunOutput) if isinstance(n, RunOutput)]
                return max(ends, default=0)

            await told.wait_for(lambda: streamed() >= 300)
            running = told.run(RunState.RUNNING)
            assert running is not None
            tail = await core.output_tail(running, 10_000)
            assert tail.end is not None
            assert tail.end >= 300
            mark = len(told.notices)  # batches told from here on may overlap the tail

            await told.wait_for(lambda: told.run(RunState.PASSED) is not None)
            later = [n for n in told.notices[mark:] if isinstance(n, RunOutput)]
            shown = join(tail, later)
            first = tail.end - len(tail.lines) + 1
            assert shown == [f"line {n}" for n in range(first, total + 1)]

            # Once finished, the tail comes from the log file, and says where it ends alike.
            finished = told.run(RunState.PASSED)
            assert finished is not None
            log_file = kit.paths.logs_dir / finished.log_path
            after_ms = log_file.stat().st_mtime_ns // 1_000_000 + stamps.MTIME_SLACK_MS
            on_disk, times = stamps.split_lines(log_file.read_text().splitlines(), after_ms)
            last = await core.output_tail(finished, 100)
            assert list(last.lines) == on_disk[-100:]
            assert last.lines[-1] == f"line {total}"
            assert last.end == len(on_disk)
            # The tail read from the file gives each line the moment its live notice gave it.
            outputs = [n for n in told.of(RunOutput) if isinstance(n, RunOutput)]
            assert [x for n in outputs for x in n.lines] == on_disk
            told_times = [t for n in outputs for t in n.times]
            assert list(last.times) == times[-100:] == told_times[-100:]
    finally:
        await services.stop()


@pytest.mark.parametrize("how", IMPLEMENTATIONS)
async def test_every_read_and_action_answers_alike(tmp_path: Path, how: str) -> None:
    """Each read gives the values the core holds, each action acts, and a refused action says
    why, whichever side of the socket the UI is on."""
    kit = EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"output": ["hello"], "exit": 0})],
    )
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with attached(services, how) as core:
            assert core.started
            assert core.url == services.url
            assert core.settings == services.settings
            assert (core.owner is None) is (how == "in-process")
            told = Told()
            core.subscribe(told)
            event_id = await deliver(services, kit.push({"main.go": "2\n"}))
            await told.wait_for(lambda: settled(told, event_id) == 1)

            page = await core.events_page(limit=10)
            assert [stored.event.id for stored in page] == [event_id]
            assert page == await services.events_page(limit=10)
            assert await core.events_page(limit=10, before_id=event_id) == []
            assert await core.events_page(limit=10, text="state:failed") == []
            assert await core.events_page(limit=10, text="state:passed") == page
            assert await core.event(event_id) == await services.event(event_id)
            assert await core.event(event_id + 100) is None
            runs = await core.runs(event_id)
            assert runs == await services.runs(event_id)
            assert [run.state for run in runs] == [RunState.PASSED]
            assert await core.queue_order() == []
            assert await core.repositories() == await services.repositories()
            ids = [run.id for run in runs]
            assert await core.status_deliveries(ids) == await services.status_deliveries(ids)
            assert await core.preview(event_id) == await services.preview(event_id)
            assert await core.head_secrets(event_id) == await services.head_secrets(event_id)
            assert await core.refusals() == ([], 0)
            assert await core.webhook_secret_problem() == await services.webhook_secret_problem()
            assert await core.counts() == CountsChanged(0, 0)

            assert await core.cancel(runs[0].id) is False  # it finished: nothing to cancel
            assert await core.cancel_event(event_id) == 0
            await core.rerun(runs[0].id)
            await told.wait_for(lambda: settled(told, event_id) == 2)
            await core.fire(event_id)
            await told.wait_for(lambda: settled(told, event_id) == 3)
            again = await core.runs(event_id)
            assert len(again) == 3
            assert [run.state for run in again] == [RunState.PASSED] * 3
            with pytest.raises(Exception, match="no stored event"):
                await core.fire(event_id + 100)
            with pytest.raises(Exception, match="only pull and merge requests from forks"):
                await core.approve(event_id)
    finally:
        await services.stop()


def settled(told: Told, event_id: int) -> int:
    """How many times the event was told settled."""
    return sum(
        1 for n in told.of(EventSettled) if isinstance(n, EventSettled) and n.event_id == event_id
    )


@pytest.mark.parametrize("how", IMPLEMENTATIONS)
async def test_secrets_are_listed_set_read_and_deleted_and_watched(
    tmp_path: Path, how: str
) -> None:
    """The secret store the UI is handed is the owner's: what it sets, the owner's engine
    reads, and every change is told to its watchers."""
    kit = EngineKit(tmp_path, functions=[fn("onGithubPushMain", *BASE, call={"exit": 0})])
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with attached(services, how) as core:
            store = core.secrets
            assert store is not None
            changed: list[str] = []
            arrived = asyncio.Event()

            def on_change(name: str) -> None:
                changed.append(name)
                arrived.set()

            async def told_of(count: int) -> None:
                async with asyncio.timeout(30):
                    while len(changed) < count:
                        arrived.clear()
                        await arrived.wait()

            stop_watching = store.watch(on_change)
            assert await store.names() == []
            await store.set("deploy-token", "deploy-token-value")
            assert await kit.secrets.get("deploy-token") == "deploy-token-value"
            assert await store.get("deploy-token") == "deploy-token-value"
            assert await store.names() == ["deploy-token"]
            await told_of(1)
            await store.delete("deploy-token")
            assert await store.get("deploy-token") is None
            assert await kit.secrets.get("deploy-token") is None
            await told_of(2)
            assert changed == ["deploy-token", "deploy-token"]
            stop_watching()
            await kit.secrets.set("later", "later-value")
            assert await store.names() == ["later"]
            assert changed == ["deploy-token", "deploy-token"]
    finally:
        await services.stop()


@pytest.mark.parametrize("how", IMPLEMENTATIONS)
async def test_refused_deliveries_are_told_and_listed(tmp_path: Path, how: str) -> None:
    kit = EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"exit": 0})],
        secrets={"webhook-secret": "webhook-secret-value"},
    )
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        async with attached(services, how) as core:
            summaries: list[RejectionSummary] = []
            arrived = asyncio.Event()

            def on_refusal(summary: RejectionSummary) -> None:
                summaries.append(summary)
                arrived.set()

            core.subscribe_refusals(on_refusal)
            assert await forge_delivery(services.webhook_url) == 401
            async with asyncio.timeout(30):
                while not summaries:
                    arrived.clear()
                    await arrived.wait()
            assert summaries[-1].count == 1
            assert summaries[-1].last.status == 401
            recent, total = await core.refusals()
            assert total == 1
            assert recent == [summaries[-1].last]
    finally:
        await services.stop()
