"""A single ``dagger.runner-host`` is a pool of one, with the pool's health rules.

The stand-in ``dagger`` fails to reach an unreachable engine the way the real v0.21 CLI does
(tests/fixtures/fake_dagger/engine_link.py): it keeps trying, so without these rules each call
would hold its slot until the CLI gave up and then count as a failed build.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from daggerstub import arg, engine_listeners, fn, write_module
from enginekit import EngineKit

from pocketci_tui.commands.check import _engines
from pocketci_tui.config import LOCAL_ENGINE, DaggerSettings
from pocketci_tui.model import EventStatus, EventUpdated, RunOutput, RunState, RunUpdated

WAITING = f"waiting for engine {LOCAL_ENGINE}, which cannot be reached"


def functions(gate: Path) -> list[dict[str, object]]:
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    behaviour = {"output": ["built"], "exit": 0, "wait_file": str(gate)}
    return [fn(f"{p}OnGithubPushMain", *base, call=behaviour) for p in ("build", "test", "lint")]


async def eventually(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``predicate()`` holds (the pool's state changes without a notice)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_single_runner_host_lost_mid_run_and_back(tmp_path: Path) -> None:
    """The engine goes away while two calls run on it and four wait: the two that had started
    fail as builds do; the others never reach it, so they wait in line (queued, saying why)
    instead of failing; the engine is down in the problems and in ``check``; once it answers
    again it is marked up and the waiting calls pass, on their first attempt."""
    gate = tmp_path / "gate"
    async with (
        engine_listeners(1) as (engine,),
        EngineKit(
            tmp_path,
            functions=functions(gate),
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), runner_host=engine.host),
            concurrency=2,
        ) as kit,
    ):
        pool = kit.engine.executor.pool
        [load] = pool.loads()
        events = [await kit.deliver(kit.push({"main.go": f"// {i}\n"})) for i in range(2)]
        # Both slots taken, their calls connected, and four calls waiting in line.
        await eventually(lambda: load.busy == 2 and engine.connections == 2)
        await eventually(lambda: pool.waiting == 4)
        await engine.stop()
        # The two running calls fail; two waiting ones take the slots, cannot connect and
        # go back in line; then nothing runs.
        await eventually(lambda: bool(load.down) and load.busy == 0 and pool.waiting == 4)
        assert "connection refused" in load.down

        problems = {p.key: p for p in kit.engine.problems()}
        down = problems[f"engine:{LOCAL_ENGINE}"]
        assert "connection refused" in down.detail
        assert "wait in line" in down.detail
        [finding] = await _engines(kit.settings)
        assert finding.level == "WARN"
        assert f"engine {LOCAL_ENGINE}" == finding.topic
        assert "cannot be reached" in finding.message
        assert "connection refused" in finding.message
        assert "dagger.runner-host" in finding.fix

        stored = []
        for e in events:
            assert e.event.id is not None
            stored += await kit.store.list_runs(e.event.id)
        waiting = [r for r in stored if r.state is RunState.QUEUED]
        assert len(waiting) == 4
        requeued = [r for r in waiting if r.reason.startswith(WAITING)]
        assert requeued, "a call that could not reach the engine says it waits for it"
        assert all("connection refused" in r.reason for r in requeued)
        assert [r.state for r in stored].count(RunState.FAILED) == 2

        gate.write_text("open")
        await engine.start()
        await eventually(lambda: not load.down)
        runs = []
        for e in events:
            assert e.event.id is not None
            runs += await kit.wait_runs_finished(e.event.id, count=3, timeout=120)
        assert f"engine:{LOCAL_ENGINE}" not in {p.key for p in kit.engine.problems()}
        notes = [
            line
            for n in kit.notices
            if isinstance(n, RunOutput)
            for line in n.lines
            if "cannot be reached; waiting for it to answer" in line
        ]
        running_reasons = {
            n.run.reason
            for n in kit.notices
            if isinstance(n, RunUpdated) and n.run.state is RunState.RUNNING
        }
        queued_again = {
            n.run.id
            for n in kit.notices
            if isinstance(n, RunUpdated)
            and n.run.state is RunState.QUEUED
            and n.run.reason.startswith(WAITING)
        }

    failed = [r for r in runs if r.state is RunState.FAILED]
    passed = [r for r in runs if r.state is RunState.PASSED]
    # The calls that had started when the engine went away are failed builds, with its error.
    assert len(failed) == 2
    assert all("error reading from server: EOF" in r.reason for r in failed)
    # The others waited and passed on their first attempt; none was counted as failed.
    assert len(passed) == 4
    assert {r.id for r in requeued} <= {r.id for r in passed}
    assert queued_again <= {r.id for r in passed}
    assert all(r.attempt == 1 for r in runs)
    assert all(r.engine == LOCAL_ENGINE for r in runs)
    assert not any(r.reason for r in passed), "a passed run keeps no waiting reason"
    assert running_reasons == {""}, "a run that got its engine no longer says it waits"
    assert notes


async def test_an_event_waits_for_its_single_engine_to_load_its_module(tmp_path: Path) -> None:
    """The engine went away while idle and a push changes the module: loading it needs the
    engine, so the event waits for it (saying so) instead of failing after the CLI's ten
    minutes of retries; once the engine answers, the module loads and every call passes."""
    gate = tmp_path / "gate"
    gate.write_text("open")
    async with (
        engine_listeners(1) as (engine,),
        EngineKit(
            tmp_path,
            functions=functions(gate),
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), runner_host=engine.host),
        ) as kit,
    ):
        [load] = kit.engine.executor.pool.loads()
        first = await kit.deliver(kit.push({"main.go": "// 1\n"}))
        assert first.event.id is not None
        await kit.wait_runs_finished(first.event.id, count=3)

        await engine.stop()
        more = [*functions(gate), {**functions(gate)[0], "name": "docsOnGithubPushMain"}]
        changed = write_module(tmp_path / "module-v2", "ci", more)
        module = (changed / "pocketci-fake.json").read_text()
        second = await kit.deliver(kit.push({"ci/pocketci-fake.json": module}))
        event_id = second.event.id
        assert event_id is not None

        def said_waiting() -> bool:
            return any(
                isinstance(n, EventUpdated)
                and n.event_id == event_id
                and n.detail.startswith(WAITING)
                for n in kit.notices
            )

        await kit.wait_for(said_waiting)
        assert "connection refused" in load.down
        assert f"engine:{LOCAL_ENGINE}" in {p.key for p in kit.engine.problems()}
        stored = await kit.store.get_event(event_id)
        assert stored is not None
        assert stored.status is EventStatus.RECEIVED, "nothing is decided while it waits"
        assert await kit.store.list_runs(event_id) == []

        await engine.start()
        runs = await kit.wait_runs_finished(event_id, count=4, timeout=120)
        assert not load.down
    assert [r.state for r in runs] == [RunState.PASSED] * 4
    assert all(r.attempt == 1 for r in runs)


async def test_the_engine_on_this_machine_lost_mid_run_and_back(tmp_path: Path) -> None:
    """No runner host: the engine is the container the CLI starts itself. When it goes away,
    the calls that had started fail; the CLI of each call that then cannot reach it is left
    to try until it gives up (the engine may just be booting), and that call then waits in
    line instead of failing, the engine down and probed through the CLI until it is back.
    ``check`` does not probe it (that would start it)."""
    gate = tmp_path / "gate"
    async with engine_listeners(1) as (container,):
        env = {
            "FAKE_DAGGER_LOCAL_ENGINE": container.host,
            "FAKE_DAGGER_CONNECT_RETRY": "0.05",
            "FAKE_DAGGER_CONNECT_DEADLINE": "0.5",
        }
        async with EngineKit(tmp_path, functions=functions(gate), dagger_env=env) as kit:
            pool = kit.engine.executor.pool
            [load] = pool.loads()
            events = [await kit.deliver(kit.push({"main.go": f"// {i}\n"})) for i in range(2)]
            await eventually(lambda: load.busy == 2 and container.connections == 2)
            await eventually(lambda: pool.waiting == 4)
            await container.stop()
            await eventually(lambda: bool(load.down) and load.busy == 0 and pool.waiting == 4)
            assert "docker exec -i" in load.down
            assert "connection refused" in load.down
            down = {p.key: p for p in kit.engine.problems()}[f"engine:{LOCAL_ENGINE}"]
            assert "the engine on this machine" in down.detail
            assert await _engines(kit.settings) == []

            gate.write_text("open")
            await container.start()
            runs = []
            for e in events:
                assert e.event.id is not None
                runs += await kit.wait_runs_finished(e.event.id, count=3, timeout=120)
            assert not load.down
            gave_up = [
                n.run_id
                for n in kit.notices
                if isinstance(n, RunOutput)
                and any(line.startswith("Error: start engine:") for line in n.lines)
            ]
    failed = [r for r in runs if r.state is RunState.FAILED]
    passed = [r for r in runs if r.state is RunState.PASSED]
    assert len(failed) == 2
    assert all("error reading from server: EOF" in r.reason for r in failed)
    assert len(passed) == 4
    assert all(r.attempt == 1 for r in runs)
    # The CLI was not stopped while it tried: it gave up on its own, and that call waited.
    assert gave_up
    assert set(gave_up) <= {r.id for r in passed}
