"""The engine pool: ``dagger.engines`` in config.yaml and how slots are handed out."""

from __future__ import annotations

import asyncio
import re

import pytest

from pocketci_tui.config import ConfigError, EngineSettings, Settings, parse_settings
from pocketci_tui.engine.dispatch.engines import EnginePool


def engines_of(data: object) -> tuple[EngineSettings, ...]:
    return parse_settings({"dagger": {"engines": data}}).dagger.engines


def test_engines_are_read_with_names_hosts_and_capacities() -> None:
    settings = parse_settings(
        {
            "concurrency": 3,
            "dagger": {
                "engines": [
                    {"name": "here", "runner-host": "", "concurrency": 2},
                    {"name": "rack", "runner-host": "tcp://10.0.0.5:1234", "concurrency": 8},
                    {"name": "k8s", "runner-host": "kube-pod://dagger-engine-0?namespace=dagger"},
                ]
            },
        }
    )
    assert settings.engine_pool() == (
        EngineSettings("here", "", 2),
        EngineSettings("rack", "tcp://10.0.0.5:1234", 8),
        EngineSettings("k8s", "kube-pod://dagger-engine-0?namespace=dagger", 2),
    )


def test_a_single_runner_host_is_a_pool_of_one_at_the_global_concurrency() -> None:
    settings = parse_settings({"concurrency": 5, "dagger": {"runner-host": "tcp://e:1234"}})
    assert settings.engine_pool() == (EngineSettings("local", "tcp://e:1234", 5),)
    assert Settings().engine_pool() == (EngineSettings("local", "", 2),)


@pytest.mark.parametrize(
    ("engines", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], "already the name of engines[0]"),
        ([{"name": "a", "concurrency": 0}], "engines[0].concurrency: must be between 1"),
        ([{"name": "a", "runner-host": "http://x"}], "is not an engine address"),
        ([{"name": "a", "runner-host": "10.0.0.5:1234"}], "is not an engine address"),
        ([{"name": ""}], "engines[0].name: an engine needs a short name"),
        ([{"name": "a", "host": "tcp://x:1"}], "engines[0].host: unknown key"),
        ([], "expected a list of engines"),
        ("tcp://x:1", "expected a list of engines"),
    ],
)
def test_bad_engines_are_refused_with_the_reason(engines: object, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        engines_of(engines)


def test_runner_host_and_engines_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="either runner-host or engines"):
        parse_settings({"dagger": {"runner-host": "tcp://x:1", "engines": [{"name": "a"}]}})


def test_a_misspelt_runner_host_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"dagger\.runner-host"):
        parse_settings({"dagger": {"runner-host": "tpc://x:1"}})


def test_every_known_scheme_is_accepted() -> None:
    hosts = [
        "unix:///run/dagger/engine.sock",
        "tls://e:1234",
        "docker-container://dagger-engine",
        "podman-container://dagger-engine",
        "kube-pod://dagger-engine-0?namespace=dagger",
    ]
    engines = engines_of([{"name": f"e{i}", "runner-host": h} for i, h in enumerate(hosts)])
    assert [e.runner_host for e in engines] == hosts


async def test_slots_never_exceed_an_engines_capacity_and_follow_the_line() -> None:
    pool = EnginePool([EngineSettings("a", "", 1), EngineSettings("b", "", 2)])
    order: list[tuple[int, str]] = []
    gate = asyncio.Event()
    peak = {"a": 0, "b": 0}

    async def call(i: int) -> None:
        async with pool.slot(f"repo{i}") as engine:
            order.append((i, engine.name))
            for load in pool.loads():
                peak[load.settings.name] = max(peak[load.settings.name], load.busy)
            await gate.wait()

    tasks = [asyncio.create_task(call(i)) for i in range(7)]
    await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert [i for i, _ in order] == [0, 1, 2]
    assert pool.waiting == 4
    gate.set()
    await asyncio.gather(*tasks)
    assert [i for i, _ in order] == list(range(7))
    assert peak == {"a": 1, "b": 2}
    assert sum(load.started for load in pool.loads()) == 7
    assert all(load.busy == 0 for load in pool.loads())


async def test_a_repository_goes_back_to_its_engine_rather_than_the_least_loaded() -> None:
    pool = EnginePool([EngineSettings("a", "", 2), EngineSettings("b", "", 2)])
    async with pool.slot("acme/x") as first, pool.slot("acme/y") as other:
        pass
    assert (first.name, other.name) == ("a", "b")
    # Both idle: the least loaded would be the first, a; acme/y goes back to b.
    async with pool.slot("acme/y") as again:
        assert again.name == "b"
        # b is now half busy and a idle: acme/y still goes to b, where its cache is,
        async with pool.slot("acme/y") as still:
            assert still.name == "b"
        # while a new repository goes to the least loaded engine.
        async with pool.slot("acme/z") as fresh:
            assert fresh.name == "a"
    assert pool.last_engine("ACME/Y") == "b"


async def test_a_full_preferred_engine_falls_back_to_the_least_loaded() -> None:
    pool = EnginePool([EngineSettings("a", "", 1), EngineSettings("b", "", 1)])
    async with pool.slot("acme/x") as first, pool.slot("acme/x") as second:
        assert (first.name, second.name) == ("a", "b")


async def test_a_down_engine_gets_nothing_until_it_is_up_again() -> None:
    pool = EnginePool([EngineSettings("a", "", 1), EngineSettings("b", "", 1)])
    pool.mark_down("a", "connection refused")
    got: list[str] = []

    async def call() -> None:
        async with pool.slot("acme/x") as engine:
            got.append(engine.name)
            await asyncio.sleep(0.01)

    async with pool.slot("acme/y") as held:
        assert held.name == "b"
        waiter = asyncio.create_task(call())
        for _ in range(5):
            await asyncio.sleep(0)
        assert got == []
        assert pool.waiting == 1
        pool.mark_up("a")
        await waiter
    assert got == ["a"]


async def test_a_cancelled_waiter_leaves_the_line_and_loses_no_slot() -> None:
    pool = EnginePool([EngineSettings("a", "", 1)])
    async with pool.slot("r"):
        waiter = asyncio.create_task(pool.slot("r").__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.waiting == 0
    async with pool.slot("r") as engine:
        assert engine.name == "a"
    assert pool.loads()[0].busy == 0


async def test_a_call_given_back_goes_to_the_head_of_the_line() -> None:
    pool = EnginePool([EngineSettings("a", "", 1)])
    got: list[str] = []

    async def call(name: str, *, first: bool = False) -> None:
        async with pool.slot("r", first=first):
            got.append(name)

    async with pool.slot("r"):
        later = asyncio.create_task(call("later"))
        await asyncio.sleep(0)
        again = asyncio.create_task(call("again", first=True))
        await asyncio.sleep(0)
        assert pool.waiting == 2
    await asyncio.gather(later, again)
    assert got == ["again", "later"]


async def test_waiting_for_an_engine_up_returns_once_one_is_marked_up() -> None:
    pool = EnginePool([EngineSettings("a", "", 1), EngineSettings("b", "", 1)])
    await asyncio.wait_for(pool.wait_up(), 5)  # both up: at once
    pool.mark_down("a", "refused")
    await asyncio.wait_for(pool.wait_up(), 5)  # b is still up
    pool.mark_down("b", "refused")
    first, second = (asyncio.create_task(pool.wait_up()) for _ in range(2))
    await asyncio.sleep(0)
    assert not first.done()
    assert not second.done()
    pool.mark_down("a", "still refused")  # a reason changing is no engine coming back
    await asyncio.sleep(0)
    assert not first.done()
    pool.mark_up("b")
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    # Down again: a new waiter waits again, and a cancelled one leaves nothing behind.
    pool.mark_down("b", "refused")
    third = asyncio.create_task(pool.wait_up())
    await asyncio.sleep(0)
    third.cancel()
    with pytest.raises(asyncio.CancelledError):
        await third
    fourth = asyncio.create_task(pool.wait_up())
    pool.mark_up("a")
    await asyncio.wait_for(fourth, 5)
