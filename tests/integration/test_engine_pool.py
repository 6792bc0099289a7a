"""Builds spread over a pool of Dagger engines, with the stand-in dagger reaching each engine.

Each ``tcp://`` engine is a real loopback listener; the stand-in connects to it before a call
as the real CLI does, and writes ``start``/``end`` lines per runner host, so the tests see how
many calls each engine ran at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from daggerstub import EngineListener, arg, engine_listeners, fn
from enginekit import EngineKit

from pocketci_tui import stamps
from pocketci_tui.commands.events import _run_row
from pocketci_tui.config import DaggerSettings, EngineSettings
from pocketci_tui.contract import ClientNotice, CountsChanged, EngineLoadInfo
from pocketci_tui.core_feed import StatusWatch
from pocketci_tui.model import RunOutput, RunState

SLEEP = 0.2


def three_functions() -> list[dict[str, object]]:
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    call = {"output": ["built"], "sleep": SLEEP, "exit": 0}
    return [fn(f"{p}OnGithubPushMain", *base, call=call) for p in ("build", "test", "lint")]


def peak_per_host(starts_file: Path) -> dict[str, int]:
    """The most calls each runner host ran at once, from the stand-in's start/end lines."""
    busy: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    for line in starts_file.read_text().splitlines():
        what, host = line.split(" ", 1)
        busy[host] += 1 if what == "start" else -1
        peak[host] = max(peak[host], busy[host])
    assert all(n == 0 for n in busy.values()), "every started call ended"
    return dict(peak)


@pytest.mark.parametrize("capacities", [(1, 3), (1, 2, 3)], ids=["two", "three"])
async def test_calls_spread_over_engines_within_each_capacity(
    tmp_path: Path, capacities: tuple[int, ...]
) -> None:
    starts = tmp_path / "starts.txt"
    async with engine_listeners(len(capacities) - 1) as remote:
        hosts = ["", *(e.host for e in remote)]
        engines = tuple(
            EngineSettings(f"e{i}", host, cap)
            for i, (host, cap) in enumerate(zip(hosts, capacities, strict=True))
        )
        async with EngineKit(
            tmp_path,
            functions=three_functions(),
            dagger_env={"FAKE_DAGGER_STARTS_FILE": str(starts)},
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            events = []
            for i in range(30):
                events.append(await kit.deliver(kit.push({"main.go": f"// {i}\n"})))
            runs = []
            for stored in events:
                assert stored.event.id is not None
                runs += await kit.wait_runs_finished(stored.event.id, count=3, timeout=120)

    assert len(runs) == 90
    assert {r.state for r in runs} == {RunState.PASSED}
    by_engine = Counter(r.engine for r in runs)
    assert set(by_engine) == {e.name for e in engines}
    peak = peak_per_host(starts)
    limits = {e.runner_host or "local": e.concurrency for e in engines}
    assert set(peak) == set(limits)
    for host, most in peak.items():
        assert most <= limits[host], f"{host} ran {most} calls at once, above {limits[host]}"
    # Every call ran where its run says it ran.
    by_host = Counter(
        next(e.runner_host for e in engines if e.name == r.engine) or "local" for r in runs
    )
    assert by_host == Counter(
        line.split(" ", 1)[1] for line in starts.read_text().splitlines() if line[:5] == "start"
    )
    # The engine is in events --json.
    assert _run_row(runs[0])["engine"] == runs[0].engine


async def test_a_repositorys_second_event_goes_to_the_same_engine(tmp_path: Path) -> None:
    async with engine_listeners(2) as remote:
        engines = (EngineSettings("a", remote[0].host, 4), EngineSettings("b", remote[1].host, 4))
        async with EngineKit(
            tmp_path,
            functions=three_functions()[:1],
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            first = await kit.deliver(kit.push({"main.go": "// 1\n"}))
            assert first.event.id is not None
            [one] = await kit.wait_runs_finished(first.event.id, count=1)
            pool = kit.engine.executor.pool
            other = "b" if one.engine == "a" else "a"
            assert pool.last_engine("owner/repo") == one.engine
            # Another repository's call holds a slot there, so the other engine is the less
            # loaded one: affinity must still win.
            async with pool.slot("someone/else") as held:
                assert held.name == one.engine
                second = await kit.deliver(kit.push({"main.go": "// 2\n"}))
                assert second.event.id is not None
                [two] = await kit.wait_runs_finished(second.event.id, count=1)
            stored = await kit.store.get_run(two.id)
    hosts = {e.name: e.runner_host for e in engines}
    assert one.engine
    assert two.engine == one.engine != other
    assert stored is not None
    assert stored.engine == one.engine
    first_line = (kit.paths.logs_dir / two.log_path).read_text().splitlines()[0]
    stamp, text = stamps.split(first_line)
    assert stamp is not None
    assert text == f"pocketci-tui: engine {one.engine} ({hosts[one.engine]})"
    assert [c["env"]["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] for c in kit.calls()] == [
        hosts[one.engine]
    ] * 2


async def eventually(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``predicate()`` holds (the pool's state changes without a notice)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_an_unreachable_engine_is_skipped_then_used_again(tmp_path: Path) -> None:
    starts = tmp_path / "starts.txt"
    engine_a = await EngineListener().start()
    async with engine_listeners(1) as (engine_b,):
        engines = (EngineSettings("a", engine_a.host, 2), EngineSettings("b", engine_b.host, 2))
        async with EngineKit(
            tmp_path,
            functions=three_functions(),
            dagger_env={"FAKE_DAGGER_STARTS_FILE": str(starts)},
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            pool = kit.engine.executor.pool
            first = await kit.deliver(kit.push({"main.go": "// 1\n"}))
            assert first.event.id is not None
            before = await kit.wait_runs_finished(first.event.id, count=3)
            assert {r.engine for r in before} == {"a", "b"}

            # Engine a goes away: the calls given to it never start and go to b.
            await engine_a.stop()
            later = [await kit.deliver(kit.push({"main.go": f"// {i}\n"})) for i in (2, 3, 4)]
            runs = []
            for stored in later:
                assert stored.event.id is not None
                runs += await kit.wait_runs_finished(stored.event.id, count=3, timeout=120)
            assert [r.state for r in runs] == [RunState.PASSED] * 9
            assert {r.engine for r in runs} == {"b"}
            assert all(r.attempt == 1 for r in runs)
            down = {p.key: p for p in kit.engine.problems()}
            assert "engine:a" in down
            assert "cannot be reached" in down["engine:a"].detail
            assert pool.loads()[0].down
            requeued = [
                n
                for n in kit.notices
                if isinstance(n, RunOutput)
                and any("engine a cannot be reached; queued again" in x for x in n.lines)
            ]
            assert requeued, "a call given to engine a was queued again"

            # Engine a comes back on the same address: it is probed up and takes calls again.
            await engine_a.start()
            await eventually(lambda: not pool.loads()[0].down)
            assert "engine:a" not in {p.key for p in kit.engine.problems()}
            last = await kit.deliver(kit.push({"main.go": "// 5\n"}))
            assert last.event.id is not None
            back = await kit.wait_runs_finished(last.event.id, count=3)
            await engine_a.stop()
    assert [r.state for r in back] == [RunState.PASSED] * 3
    assert "a" in {r.engine for r in back}
    # Only calls that reached an engine started there.
    started = Counter(
        line.split(" ", 1)[1] for line in starts.read_text().splitlines() if line[:5] == "start"
    )
    assert sum(started.values()) == 15


async def test_each_engines_load_reaches_subscribers_as_calls_start_and_end(
    tmp_path: Path,
) -> None:
    """The loads come with the counts, told when they change: a call taking a slot, giving it
    back, an engine marked down."""
    async with engine_listeners(1) as remote:
        engines = (EngineSettings("here", "", 2), EngineSettings("rack", remote[0].host, 3))
        async with EngineKit(
            tmp_path,
            functions=three_functions()[:1],
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            told: list[CountsChanged] = []

            def tell(notice: ClientNotice) -> None:
                if isinstance(notice, CountsChanged):
                    told.append(notice)

            watch = StatusWatch(kit.engine, tell)
            try:
                idle = (EngineLoadInfo("here", 0, 2, True), EngineLoadInfo("rack", 0, 3, True))
                assert told == [CountsChanged(0, 0, idle)]
                stored = await kit.deliver(kit.push({"main.go": "// 1\n"}))
                assert stored.event.id is not None
                [run] = await kit.wait_runs_finished(stored.event.id, count=1)
                await eventually(lambda: told[-1].engines == idle)
                busy = [c.engines for c in told if any(e.busy for e in c.engines)]
                assert busy, "the call's slot was told"
                assert {e.name for e in busy[0] if e.busy == 1} == {run.engine}
                kit.engine.executor.pool.mark_down("rack", "connection refused")
                await eventually(lambda: not told[-1].engines[1].up)
                assert told[-1].engines == (idle[0], EngineLoadInfo("rack", 0, 3, False))
            finally:
                watch.close()
