"""Builds over a pool of engines: wall time against total capacity, and the scheduler's cost.

Real parts: a real engine (store, git checkouts, catalog through the stand-in ``dagger
session``) scheduling 200 ``dagger call`` runs (8 push events x 25 matching functions) over
1, 2 and 4 engines of equal capacity. Each engine is a loopback listener the stand-in connects
to before its call; each call then sleeps a fixed time. Wall time is from the first delivery to
the last run finished; the ideal is calls x sleep / total capacity, and the rest is process
start-up and dispatch on a small machine.

Separately, the scheduler's own cost per call: :class:`EnginePool` handing out and taking
back 20,000 slots to waiting tasks over 4 engines, with affinity, nothing else running.

Usage: ``.venv/bin/python tests/bench/bench_engines.py [--sleep S] [--capacity N]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daggerstub import EngineListener, arg, fn
from enginekit import EngineKit

from pocketci_tui.config import DaggerSettings, EngineSettings
from pocketci_tui.engine.dispatch.engines import EnginePool
from pocketci_tui.model import RunState

EVENTS = 8
FUNCTIONS = 25


async def wall_time(engines: int, capacity: int, sleep: float) -> tuple[float, dict[str, int]]:
    """Seconds to run EVENTS x FUNCTIONS calls over ``engines`` engines; runs per engine."""
    servers = [await EngineListener().start() for _ in range(engines)]
    pool = tuple(EngineSettings(f"e{i}", s.host, capacity) for i, s in enumerate(servers))
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    call = {"sleep": sleep, "exit": 0}
    functions = [fn(f"f{i}OnGithubPushMain", *base, call=call) for i in range(FUNCTIONS)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dagger = DaggerSettings(cli=str(Path(tmp) / "bin" / "dagger"), engines=pool)
            async with EngineKit(Path(tmp), functions=functions, dagger=dagger) as kit:
                # A first event warms the mirror and the catalog cache, as in steady use.
                warm = await kit.deliver(kit.push({"main.go": "// warm\n"}, delivery_id="w"))
                assert warm.event.id is not None
                await kit.wait_runs_finished(warm.event.id, count=FUNCTIONS, timeout=600)
                began = time.perf_counter()
                ids = []
                for i in range(EVENTS):
                    stored = await kit.deliver(kit.push({"main.go": f"// {i}\n"}))
                    assert stored.event.id is not None
                    ids.append(stored.event.id)
                runs = []
                for event_id in ids:
                    runs += await kit.wait_runs_finished(event_id, count=FUNCTIONS, timeout=600)
                took = time.perf_counter() - began
    finally:
        for server in servers:
            await server.stop()
    bad = [
        (r.function, r.state.value, r.reason[:300]) for r in runs if r.state is not RunState.PASSED
    ]
    assert not bad, f"every call passed: {len(bad)} did not, e.g. {bad[:2]}"
    per_engine: dict[str, int] = {}
    for r in runs:
        per_engine[r.engine] = per_engine.get(r.engine, 0) + 1
    return took, per_engine


async def scheduler_cost(calls: int = 20_000) -> float:
    """Microseconds of :class:`EnginePool` work per call (slot handed out and given back)."""
    pool = EnginePool([EngineSettings(f"e{i}", "", 4) for i in range(4)])

    async def one(i: int) -> None:
        async with pool.slot(f"repo{i % 37}"):
            await asyncio.sleep(0)

    async def baseline(_: int) -> None:
        await asyncio.sleep(0)

    async def timed(body: Callable[[int], Awaitable[None]]) -> float:
        began = time.perf_counter()
        await asyncio.gather(*(body(i) for i in range(calls)))
        return time.perf_counter() - began

    with_pool = await timed(one)
    without = await timed(baseline)
    return max(with_pool - without, 0.0) / calls * 1e6


def run(sleep: float = 0.3, capacity: int = 2) -> list[dict[str, object]]:
    """Measure; rows for the suite table."""
    rows: list[dict[str, object]] = []
    first = 0.0
    for engines in (1, 2, 4):
        took, spread = asyncio.run(wall_time(engines, capacity, sleep))
        first = first or took
        ideal = EVENTS * FUNCTIONS * sleep / (engines * capacity)
        print(
            f"{engines} engine(s) x {capacity} slots: {took:6.2f}s for {EVENTS * FUNCTIONS} calls "
            f"(ideal {ideal:5.2f}s, speed-up {first / took:4.2f}x over 1 engine; "
            f"runs per engine {dict(sorted(spread.items()))})"
        )
        rows.append(
            {
                "name": f"engines: {EVENTS * FUNCTIONS} calls on {engines}x{capacity} slots",
                "target": f"scales with capacity (ideal {ideal:.2f}s)",
                "value": round(took, 2),
                "unit": "s",
                "comparison": f"{first / took:.2f}x over 1 engine",
                "ok": True,
            }
        )
    cost = asyncio.run(scheduler_cost())
    print(f"scheduler: {cost:.1f} us per call (slot out and back, 4 engines, affinity)")
    rows.append(
        {
            "name": "engines: scheduler cost per call",
            "target": "negligible next to a dagger call",
            "value": round(cost, 1),
            "unit": "us",
            "comparison": "pool vs bare task",
            "ok": True,
        }
    )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.3)
    parser.add_argument("--capacity", type=int, default=2)
    args = parser.parse_args()
    run(args.sleep, args.capacity)
