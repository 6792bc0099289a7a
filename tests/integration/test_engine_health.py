"""Engines that cannot be reached, with the stand-in dagger failing the way the real CLI does.

The real v0.21 CLI keeps trying an unreachable engine (one ``Control/Info`` attempt a second,
each ending ``! connection error: desc = "..."``) for ten minutes, then prints ``Error: start
engine: new client: context deadline exceeded`` and exits 1; the stand-in acts that out
(tests/fixtures/fake_dagger/engine_link.py). Engines are loopback listeners, reached directly
(``tcp://``) or through a fake ``kube-pod://`` pod (a file naming the listener).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from daggerstub import arg, engine_listeners, fn, install_fake_dagger, write_module
from enginekit import EngineKit

from pocketci_tui.commands.check import _engines
from pocketci_tui.config import DaggerSettings, EngineSettings
from pocketci_tui.engine.dagger.connect_phase import ConnectWatch
from pocketci_tui.engine.dagger.engine_probe import cli_probe
from pocketci_tui.model import EventUpdated, RunOutput, RunState

GAVE_UP = "Error: start engine: new client: context deadline exceeded"
POD = "kube-pod://engine-0?namespace=dagger"


def functions(**call: object) -> list[dict[str, object]]:
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    behaviour = {"output": ["built"], "sleep": 0.1, "exit": 0, **call}
    return [fn(f"{p}OnGithubPushMain", *base, call=behaviour) for p in ("build", "test", "lint")]


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


def started(starts_file: Path) -> Counter[str]:
    """How many calls started on each runner host."""
    lines = starts_file.read_text().splitlines()
    return Counter(line.split(" ", 1)[1] for line in lines if line.startswith("start "))


async def eventually(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until ``predicate()`` holds (the pool's state changes without a notice)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def requeued(kit: EngineKit, engine: str) -> int:
    """How many times a run was put back in line because ``engine`` could not be reached."""
    note = f"engine {engine} cannot be reached; queued again"
    return sum(
        1 for n in kit.notices if isinstance(n, RunOutput) and any(note in x for x in n.lines)
    )


# -- the stand-in against the real CLI's failure ---------------------------------------------


@pytest.mark.parametrize("scheme", ["tcp", "unix", "kube-pod"])
def test_the_stand_in_fails_to_connect_as_the_real_cli_does(tmp_path: Path, scheme: str) -> None:
    with socket.socket() as gone:
        gone.bind(("127.0.0.1", 0))
        port = gone.getsockname()[1]
    host, expected = {
        "tcp": (
            f"tcp://127.0.0.1:{port}",
            f"dial tcp 127.0.0.1:{port}: connect: connection refused",
        ),
        "unix": (f"unix://{tmp_path}/engine.sock", f"dial unix {tmp_path}/engine.sock: connect:"),
        "kube-pod": (POD, 'Error from server (NotFound): pods "engine-0" not found'),
    }[scheme]
    (tmp_path / "pods").mkdir()
    env = {
        "FAKE_DAGGER_KUBE_PODS": str(tmp_path / "pods"),
        "FAKE_DAGGER_CONNECT_RETRY": "0.01",
        "FAKE_DAGGER_CONNECT_DEADLINE": "0.05",
        "FAKE_DAGGER_RECORD_DIR": str(tmp_path),
        "_EXPERIMENTAL_DAGGER_RUNNER_HOST": host,
    }
    cli = install_fake_dagger(tmp_path, env) / "dagger"
    argv = [str(cli), "call", "--progress=plain", "-m", str(tmp_path), "build", "--src", "."]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[-1] == GAVE_UP
    watch = ConnectWatch()
    watch.feed(lines)
    assert watch.unreachable
    assert watch.gave_up
    assert watch.failures >= 1
    assert expected in watch.last_error
    assert not list(tmp_path.glob("*.json")), "nothing of the call ran"


async def test_the_cli_probe_tells_a_missing_pod_from_a_running_one(tmp_path: Path) -> None:
    pods = tmp_path / "pods" / "dagger"
    pods.mkdir(parents=True)
    # The stand-in's own deadline is the real CLI's ten minutes: the probe must stop it.
    cli = install_fake_dagger(
        tmp_path, {"FAKE_DAGGER_KUBE_PODS": str(pods.parent), "FAKE_DAGGER_CONNECT_RETRY": "0.02"}
    )
    why = await cli_probe(str(cli / "dagger"), POD)
    assert why.startswith(f"{POD}: error reading server preface: command [kubectl ")
    assert why.endswith('pods "engine-0" not found')
    async with engine_listeners(1) as (engine,):
        (pods / "engine-0").write_text(engine.host)
        assert await cli_probe(str(cli / "dagger"), POD) == ""
        await engine.stop()
        why = await cli_probe(str(cli / "dagger"), POD)
    assert "connection refused" in why
    assert "did not answer" not in why


# -- a kube-pod:// engine in a pool ------------------------------------------------------------


@pytest.mark.parametrize("deadline", ["600", "0"], ids=["keeps-trying", "gives-up"])
async def test_a_kube_pod_engine_is_marked_down_and_probed_back_up(
    tmp_path: Path, deadline: str
) -> None:
    """A missing pod: the calls given to it go to the other engine (whether the CLI is stopped
    while it keeps trying or gives up on its own), the engine is down with kubectl's reason,
    and ``dagger core version`` brings it back once the pod exists again."""
    starts = tmp_path / "starts.txt"
    pods = tmp_path / "pods" / "dagger"
    pods.mkdir(parents=True)
    async with engine_listeners(2) as (in_pod, rack):
        (pods / "engine-0").write_text(in_pod.host)
        engines = (EngineSettings("k8s", POD, 2), EngineSettings("rack", rack.host, 2))
        env = {
            "FAKE_DAGGER_STARTS_FILE": str(starts),
            "FAKE_DAGGER_KUBE_PODS": str(pods.parent),
            "FAKE_DAGGER_CONNECT_RETRY": "0.02",
            "FAKE_DAGGER_CONNECT_DEADLINE": deadline,
        }
        async with EngineKit(
            tmp_path,
            functions=functions(),
            dagger_env=env,
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            pool = kit.engine.executor.pool
            first = await kit.deliver(kit.push({"main.go": "// 1\n"}))
            assert first.event.id is not None
            before = await kit.wait_runs_finished(first.event.id, count=3)
            assert {r.engine for r in before} == {"k8s", "rack"}

            (pods / "engine-0").unlink()
            later = [await kit.deliver(kit.push({"main.go": f"// {i}\n"})) for i in (2, 3, 4)]
            runs = []
            for stored in later:
                assert stored.event.id is not None
                runs += await kit.wait_runs_finished(stored.event.id, count=3, timeout=120)
            assert [r.state for r in runs] == [RunState.PASSED] * 9
            assert {r.engine for r in runs} == {"rack"}
            assert requeued(kit, "k8s") >= 1
            problems = {p.key: p for p in kit.engine.problems()}
            assert 'pods "engine-0" not found' in problems["engine:k8s"].detail
            assert pool.loads()[0].down
            [k8s, _] = await _engines(kit.settings)
            assert k8s.level == "WARN"
            assert 'pods "engine-0" not found' in k8s.message

            (pods / "engine-0").write_text(in_pod.host)
            await eventually(lambda: not pool.loads()[0].down)
            assert "engine:k8s" not in {p.key for p in kit.engine.problems()}
            last = await kit.deliver(kit.push({"main.go": "// 5\n"}))
            assert last.event.id is not None
            back = await kit.wait_runs_finished(last.event.id, count=3)
    assert [r.state for r in back] == [RunState.PASSED] * 3
    assert "k8s" in {r.engine for r in back}
    assert sum(started(starts).values()) == 15
    assert max(peak_per_host(starts).values()) <= 2


# -- introspection -------------------------------------------------------------------------


async def test_introspection_runs_on_an_engine_that_is_up(tmp_path: Path) -> None:
    """The catalog's ``dagger session`` goes to the first engine not marked down: with the
    first engine gone, a changed module is introspected on the second."""
    log_file = tmp_path / "fake.log"
    async with engine_listeners(2) as (first, second):
        engines = (EngineSettings("a", first.host, 2), EngineSettings("b", second.host, 2))
        async with EngineKit(
            tmp_path,
            functions=functions(),
            dagger_env={"FAKE_DAGGER_LOG": str(log_file), "FAKE_DAGGER_CONNECT_RETRY": "0.05"},
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            pool = kit.engine.executor.pool
            one = await kit.deliver(kit.push({"main.go": "// 1\n"}))
            assert one.event.id is not None
            await kit.wait_runs_finished(one.event.id, count=3)
            await first.stop()
            two = await kit.deliver(kit.push({"main.go": "// 2\n"}))
            assert two.event.id is not None
            await kit.wait_runs_finished(two.event.id, count=3, timeout=120)
            assert pool.loads()[0].down
            more = [*functions(), {**functions()[0], "name": "docsOnGithubPushMain"}]
            changed = write_module(tmp_path / "module-v2", "ci", more)
            module = (changed / "pocketci-fake.json").read_text()
            three = await kit.deliver(kit.push({"ci/pocketci-fake.json": module}))
            assert three.event.id is not None
            runs = await kit.wait_runs_finished(three.event.id, count=4, timeout=120)
    assert [r.state for r in runs] == [RunState.PASSED] * 4
    sessions = [
        line.split("=", 1)[1]
        for line in log_file.read_text().splitlines()
        if "session env _EXPERIMENTAL_DAGGER_RUNNER_HOST=" in line
    ]
    assert sessions == [first.host, second.host]


# -- an engine lost in the middle of a run ---------------------------------------------------


@pytest.mark.parametrize("capacities", [(2, 3), (2, 3, 1)], ids=["two", "three"])
async def test_an_engine_lost_mid_run(tmp_path: Path, capacities: tuple[int, ...]) -> None:
    """Engine e0 goes away while calls run on it and others wait in line: the calls it was
    running fail (they had started), the calls that then reach for it go to the other engines
    and pass, it is marked down (a problem, and in ``check``) and comes back when it returns;
    no engine ever runs more calls than its capacity."""
    starts = tmp_path / "starts.txt"
    gate = tmp_path / "gate"
    async with engine_listeners(len(capacities)) as listeners:
        engines = tuple(
            EngineSettings(f"e{i}", listener.host, cap)
            for i, (listener, cap) in enumerate(zip(listeners, capacities, strict=True))
        )
        lost = listeners[0]
        async with EngineKit(
            tmp_path,
            functions=functions(wait_file=str(gate)),
            dagger_env={"FAKE_DAGGER_STARTS_FILE": str(starts)},
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            pool = kit.engine.executor.pool
            events = [await kit.deliver(kit.push({"main.go": f"// {i}\n"})) for i in range(4)]
            total = sum(capacities)
            # Every engine full, its calls connected, and calls waiting in line.
            await eventually(
                lambda: (
                    sum(e.busy for e in pool.loads()) == total
                    and sum(x.connections for x in listeners) == total
                    and pool.waiting > 0
                )
            )
            await lost.stop()
            await eventually(lambda: bool(pool.loads()[0].down))
            problems = {p.key: p for p in kit.engine.problems()}
            assert "connection refused" in problems["engine:e0"].detail
            [e0, *others] = await _engines(kit.settings)
            assert e0.level == "WARN"
            assert "cannot be reached" in e0.message
            assert {f.level for f in others} == {"ok"}
            gate.write_text("open")
            runs = []
            for stored in events:
                assert stored.event.id is not None
                runs += await kit.wait_runs_finished(stored.event.id, count=3, timeout=120)

            # While e0 is still down, the other engines' slots are taken: only e0 can take
            # the next calls once it is back.
            async with contextlib.AsyncExitStack() as held:
                for _ in range(total - capacities[0]):
                    taken = await held.enter_async_context(pool.slot("someone/else"))
                    assert taken.name != "e0"
                await lost.start()
                await eventually(lambda: not pool.loads()[0].down)
                assert "engine:e0" not in {p.key for p in kit.engine.problems()}
                again = await kit.deliver(kit.push({"main.go": "// back\n"}))
                assert again.event.id is not None
                back = await kit.wait_runs_finished(again.event.id, count=3, timeout=120)
            requeues = requeued(kit, "e0")

    failed = [r for r in runs if r.state is RunState.FAILED]
    passed = [r for r in runs if r.state is RunState.PASSED]
    assert len(runs) == 12
    # The calls e0 was running had started: failed builds, with the CLI's error.
    assert len(failed) == capacities[0]
    assert {r.engine for r in failed} == {"e0"}
    assert all("error reading from server: EOF" in r.reason for r in failed)
    # Everything else passed on the other engines, first time, nothing failed that never ran.
    assert len(passed) == 12 - capacities[0]
    assert "e0" not in {r.engine for r in passed}
    assert all(r.attempt == 1 for r in runs)
    assert requeues >= 1, "calls that reached for the lost engine were queued again"
    assert [r.state for r in back] == [RunState.PASSED] * 3
    assert {r.engine for r in back} == {"e0"}
    # Every call that started, started on an engine that took it, within its capacity.
    hosts = {e.runner_host: e.concurrency for e in engines}
    assert sum(started(starts).values()) == 12 + 3
    peak = peak_per_host(starts)
    assert set(peak) == set(hosts)
    for host, most in peak.items():
        assert most <= hosts[host], f"{host} ran {most} calls at once, above {hosts[host]}"


async def test_a_module_waits_for_an_engine_when_the_whole_pool_is_down(tmp_path: Path) -> None:
    """Both engines went away while idle and a push changes the module: each is found down
    with a connection of its own (not after a session's ten minutes of retries), the event
    waits for an engine, saying so, and loads and runs on the first that comes back."""
    async with engine_listeners(2) as (first, second):
        engines = (EngineSettings("a", first.host, 2), EngineSettings("b", second.host, 2))
        async with EngineKit(
            tmp_path,
            functions=functions(),
            dagger=DaggerSettings(cli=str(tmp_path / "bin" / "dagger"), engines=engines),
        ) as kit:
            pool = kit.engine.executor.pool
            one = await kit.deliver(kit.push({"main.go": "// 1\n"}))
            assert one.event.id is not None
            await kit.wait_runs_finished(one.event.id, count=3)
            await first.stop()
            await second.stop()
            more = [*functions(), {**functions()[0], "name": "docsOnGithubPushMain"}]
            changed = write_module(tmp_path / "module-v2", "ci", more)
            module = (changed / "pocketci-fake.json").read_text()
            two = await kit.deliver(kit.push({"ci/pocketci-fake.json": module}))
            event_id = two.event.id
            assert event_id is not None
            await kit.wait_for(
                lambda: any(
                    isinstance(n, EventUpdated)
                    and n.event_id == event_id
                    and n.detail == "waiting for an engine: none of the pool can be reached"
                    for n in kit.notices
                )
            )
            assert all("connection refused" in e.down for e in pool.loads())
            assert {"engine:a", "engine:b"} <= {p.key for p in kit.engine.problems()}
            assert await kit.store.list_runs(event_id) == []
            await second.start()
            runs = await kit.wait_runs_finished(event_id, count=4, timeout=120)
            assert pool.loads()[0].down
    assert [r.state for r in runs] == [RunState.PASSED] * 4
    assert {r.engine for r in runs} == {"b"}
