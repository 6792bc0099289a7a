"""The UI's contract, as the in-process services implement it: the run counts and the engine's
problems come as notices (now, then on change; nobody asks on a timer), and a run's output tail
says where it ends, so live output continues from it without a gap or a repeat. Real services
(lock, listener, SQLite, engine, git) and the stand-in ``dagger``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.config import DaggerSettings
from pocketci_tui.contract import ClientNotice, CountsChanged, OutputTail, ProblemsChanged
from pocketci_tui.model import Event, EventStatus, Run, RunOutput, RunState, RunUpdated
from pocketci_tui.services import Services

BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))


class Told:
    """What a subscriber was told, with a way to wait for something."""

    def __init__(self) -> None:
        self.notices: list[ClientNotice] = []
        self._changed = asyncio.Event()

    def __call__(self, notice: ClientNotice) -> None:
        self.notices.append(notice)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def of(self, kind: type[ClientNotice]) -> list[ClientNotice]:
        return [n for n in self.notices if isinstance(n, kind)]

    def run(self, state: RunState) -> Run | None:
        for notice in self.notices:
            if isinstance(notice, RunUpdated) and notice.run.state is state:
                return notice.run
        return None


async def deliver(services: Services, event: Event) -> int:
    """Store an event and hand it to the engine, as the listener does."""
    assert services.store is not None
    assert services.engine is not None
    stored, duplicate = await services.store.record_event(event, EventStatus.RECEIVED)
    await services.engine.submit(stored, duplicate)
    assert stored.event.id is not None
    return stored.event.id


async def test_counts_and_problems_are_told_at_once_and_then_as_they_change(
    tmp_path: Path,
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
        told = Told()
        unsubscribe = services.subscribe(told)
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

        assert await services.cancel_event(event_id) == 1
        await told.wait_for(lambda: told.of(CountsChanged)[-1] == CountsChanged(0, 0))
        # Each change was told once: never the same value twice in a row.
        counts = told.of(CountsChanged)
        assert all(a != b for a, b in itertools.pairwise(counts))

        # Unsubscribed, it is told nothing more (another subscriber still is).
        unsubscribe()
        before = len(told.notices)
        other = Told()
        services.subscribe(other)
        await deliver(services, kit.push({"main.go": "3\n"}))
        await other.wait_for(lambda: CountsChanged(0, 1) in other.notices)
        assert len(told.notices) == before
    finally:
        await services.stop()


def join(tail: OutputTail, batches: list[RunOutput]) -> list[str]:
    """The UI's join: the tail, then each later batch from the position the view ends at."""
    shown = list(tail.lines)
    assert tail.end is not None
    end = tail.end
    for batch in batches:
        assert batch.end is not None
        new = batch.end - end
        if new <= 0:
            continue
        shown.extend(batch.lines[-new:])
        end = batch.end
    return shown


async def test_live_output_continues_from_the_tail_without_a_gap_or_a_repeat(
    tmp_path: Path,
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
        told = Told()
        services.subscribe(told)
        await deliver(services, kit.push({"main.go": "2\n"}))

        def streamed() -> int:
            ends = [n.end or 0 for n in told.of(RunOutput) if isinstance(n, RunOutput)]
            return max(ends, default=0)

        await told.wait_for(lambda: streamed() >= 300)
        running = told.run(RunState.RUNNING)
        assert running is not None
        tail = await services.output_tail(running, 10_000)
        assert tail.end is not None
        assert tail.end >= 300
        mark = len(told.notices)  # batches told from here on may overlap the tail

        await told.wait_for(lambda: told.run(RunState.PASSED) is not None)
        later = [n for n in told.notices[mark:] if isinstance(n, RunOutput)]
        shown = join(tail, later)
        first = tail.end - len(tail.lines) + 1
        assert shown == [f"line {n}" for n in range(first, total + 1)]

        # Once finished, the tail comes from the log file, and says where it ends just alike.
        finished = told.run(RunState.PASSED)
        assert finished is not None
        on_disk = (kit.paths.logs_dir / finished.log_path).read_text().splitlines()
        last = await services.output_tail(finished, 100)
        assert list(last.lines) == on_disk[-100:]
        assert last.lines[-1] == f"line {total}"
        assert last.end == len(on_disk)
    finally:
        await services.stop()
