"""The notice hub: every notice numbered once, each client served from its own bounded queue,
a client that stops reading cut off without the publisher or the other clients noticing, and
a client that comes back resumed without a gap or a repeat, or told to re-read."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

import pytest

from pocketci_tui.contract import CountsChanged, ProblemsChanged, RejectionSummary
from pocketci_tui.control.hub import ClientTooSlow, Entry, HubClient, NoticeHub
from pocketci_tui.control.wire import WireNotice, decode_notice
from pocketci_tui.intake.rejections import Rejection
from pocketci_tui.model import EventStatus, EventUpdated, RunOutput, utcnow
from pocketci_tui.problems import Problem


def output(n: int, text: str = "line") -> RunOutput:
    return RunOutput("r1", (f"{text} {n}",), n)


def frames(texts: list[str]) -> list[dict[str, Any]]:
    return [json.loads(t) for t in texts]


async def drain(client: HubClient) -> list[dict[str, Any]]:
    """Everything waiting for ``client`` now (without waiting for more)."""
    got: list[dict[str, Any]] = []
    while client.waiting:
        got += frames(await client.take())
    return got


async def test_every_notice_is_numbered_once_from_one_under_this_starts_instance() -> None:
    hub = NoticeHub()
    client, resync = hub.open(0, hub.instance)
    assert resync is None
    notices: list[WireNotice] = [
        output(1),
        EventUpdated(3, EventStatus.ERROR, "boom"),
        CountsChanged(1, 0),
    ]
    for notice in notices:
        hub.publish(notice)

    got = await drain(client)

    assert [f["seq"] for f in got] == [1, 2, 3]
    assert [decode_notice(f["notice"]) for f in got] == notices
    assert hub.seq == 3
    assert len(hub.instance) == 32
    assert NoticeHub().instance != hub.instance


async def test_a_client_that_never_reads_is_cut_off_and_nobody_else_notices() -> None:
    hub = NoticeHub()
    stalled, _ = hub.open(0, hub.instance)
    reader, _ = hub.open(0, hub.instance)
    received: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            texts = await reader.take()
            if not texts:
                return
            received.extend(frames(texts))

    task = asyncio.create_task(read())
    for n in range(1, 5001):
        # Publishing is a plain call: it returns at once whatever the clients do.
        hub.publish(output(n))
        if n % 100 == 0:
            await asyncio.sleep(0)  # the engine's callbacks come between other work
    await asyncio.sleep(0)
    hub.close(reader)
    await task

    assert stalled.too_slow
    assert stalled.waiting == 0  # its queue was freed at once
    assert hub.cut_off == 1
    assert hub.clients == 0
    with pytest.raises(ClientTooSlow):
        await stalled.take()
    # The other client got every notice, in order, once.
    assert [f["seq"] for f in received] == list(range(1, 5001))
    assert [f["notice"]["lines"][0] for f in received] == [f"line {n}" for n in range(1, 5001)]


async def test_a_client_is_cut_off_when_its_waiting_bytes_exceed_the_bound() -> None:
    hub = NoticeHub(queue_bytes=10_000)
    client, _ = hub.open(0, hub.instance)
    hub.publish(output(1, "x" * 4000))
    hub.publish(output(2, "x" * 4000))
    assert not client.too_slow
    hub.publish(output(3, "x" * 4000))
    assert client.too_slow


async def test_what_the_sender_took_is_a_small_batch_and_the_rest_still_counts() -> None:
    size = Entry(1, output(1, "x" * 4000)).size  # what one such notice counts for
    hub = NoticeHub(queue_bytes=24 * size + size // 2)
    client, _ = hub.open(0, hub.instance)
    for n in range(1, 25):  # just under the bound waiting
        hub.publish(output(n, "x" * 4000))
    taken = frames(await client.take())  # being sent, to a client that reads slowly
    assert [f["seq"] for f in taken] == list(range(1, 7))  # a quarter of the bound
    for n in range(25, 31):
        hub.publish(output(n, "x" * 4000))
    assert not client.too_slow
    hub.publish(output(31, "x" * 4000))  # over the bound, counting what still waits
    assert client.too_slow


async def test_a_frame_another_client_encoded_leaves_the_count_of_what_waits_exact() -> None:
    hub = NoticeHub()
    quick, _ = hub.open(0, hub.instance)
    slow, _ = hub.open(0, hub.instance)
    hub.publish(batch(0, 1_000))
    hub.publish(batch(1_000, 1_000))
    counted = slow._bytes
    await quick.take()  # encoded now: each is counted as its (smaller) frame from here on
    assert hub._ring[0].size < counted // 2
    await slow.take()
    assert slow.waiting == 0
    assert slow._bytes == 0  # what it had counted for them, no more and no less


async def test_a_client_that_comes_back_resumes_after_its_last_number() -> None:
    hub = NoticeHub()
    first, _ = hub.open(0, hub.instance)
    for n in range(1, 6):
        hub.publish(output(n))
    got = await drain(first)
    last = got[2]["seq"]  # it saw only three before its link dropped
    hub.close(first)
    for n in range(6, 9):
        hub.publish(output(n))

    again, resync = hub.open(last, hub.instance)
    hub.publish(output(9))

    assert resync is None
    assert [f["seq"] for f in await drain(again)] == list(range(last + 1, 10))
    # Up to date and resuming at the newest number: nothing to replay, nothing missed.
    latest, resync = hub.open(hub.seq, hub.instance)
    assert resync is None
    assert latest.waiting == 0
    hub.publish(output(10))
    assert [f["seq"] for f in await drain(latest)] == [10]


@pytest.mark.parametrize("why", ["no number", "another instance", "aged out", "ahead"])
async def test_a_client_that_cannot_resume_is_told_to_resync(why: str) -> None:
    hub = NoticeHub(ring_size=10)
    for n in range(1, 21):
        hub.publish(output(n))
    assert hub.oldest == 11
    after, instance = {
        "no number": (None, hub.instance),
        "another instance": (15, "0" * 32),
        "aged out": (9, hub.instance),
        "ahead": (21, hub.instance),
    }[why]

    client, resync = hub.open(after, instance)

    assert resync == {"resync": True, "seq": 20, "instance": hub.instance}
    assert client.waiting == 0
    # One older than the ring's oldest still resumes: it has everything before it.
    edge, edge_resync = hub.open(10, hub.instance)
    hub.publish(output(21))
    assert [f["seq"] for f in await drain(client)] == [21]
    assert edge_resync is None
    assert [f["seq"] for f in await drain(edge)] == list(range(11, 22))


async def test_the_ring_keeps_at_most_its_bytes() -> None:
    hub = NoticeHub(ring_bytes=20_000)
    for n in range(1, 11):
        hub.publish(output(n, "y" * 5000))
    assert hub.seq == 10
    assert hub.oldest > 6  # at most four frames of ~5 kB fit in 20 kB
    _, resync = hub.open(2, hub.instance)
    assert resync is not None


def batch(first: int, lines: int) -> RunOutput:
    """``lines`` short lines from line ``first``, each with its own arrival time, as a build
    flooding output publishes them."""
    numbers = range(first, first + lines)
    return RunOutput(
        "r1",
        tuple(f"line {i}" for i in numbers),
        first + lines,
        tuple(1_700_000_000 + i / 1000 for i in numbers),
    )


BOUND = 1024 * 1024


def held_since(before: int) -> int:
    """The bytes tracemalloc counts as allocated now, beyond ``before``."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def test_the_ring_holds_at_most_its_bytes_of_unencoded_output_in_memory() -> None:
    hub = NoticeHub(ring_bytes=BOUND)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(300):  # nobody attached: nothing is encoded
            hub.publish(batch(n * 1_000, 1_000))
        grown = held_since(before)
    finally:
        tracemalloc.stop()

    assert hub.seq == 300
    assert len(hub._ring) < 300  # the byte bound, not the count, decided what is kept
    assert grown <= BOUND * 1.05, f"{grown / 2**20:.1f} MiB held for a bound of 1 MiB"


async def test_the_ring_holds_at_most_its_bytes_once_its_frames_are_encoded() -> None:
    hub = NoticeHub(ring_bytes=BOUND)
    client, _ = hub.open(0, hub.instance)
    sent = 0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(30):
            for b in range(10):
                hub.publish(batch((n * 10 + b) * 1_000, 1_000))
            sent += len(await client.take())  # each is encoded for it, then kept as its frame
        grown = held_since(before)
    finally:
        tracemalloc.stop()

    assert sent == 300
    assert hub._ring[0]._frame is not None
    assert len(hub._ring) < 300
    assert grown <= BOUND * 1.05, f"{grown / 2**20:.1f} MiB held for a bound of 1 MiB"


async def test_the_latest_counts_problems_and_refusals_are_kept_for_the_snapshot() -> None:
    hub = NoticeHub()
    problem = Problem("dagger", "dagger not found", "no dagger")
    refused = RejectionSummary(2, Rejection(utcnow(), 401, "bad signature"))
    hub.publish(CountsChanged(1, 0))
    hub.publish(ProblemsChanged((problem,)))
    hub.publish(CountsChanged(0, 1))
    hub.publish(refused)
    assert hub.counts == CountsChanged(0, 1)
    assert hub.problems == ProblemsChanged((problem,))
    assert hub.refusals == refused


async def test_a_notice_that_cannot_be_encoded_keeps_its_number_without_a_notice() -> None:
    hub = NoticeHub()
    client, _ = hub.open(0, hub.instance)
    hub.publish(EventUpdated(1, EventStatus.ERROR, {1, 2}))  # type: ignore[arg-type]
    hub.publish(output(1))
    got = await drain(client)
    assert [f["seq"] for f in got] == [1, 2]
    assert got[0]["notice"] is None  # a client skips it; its stream has no gap
    assert decode_notice(got[1]["notice"]) == output(1)


async def test_nothing_is_encoded_until_a_client_needs_it_then_once_for_all() -> None:
    hub = NoticeHub()
    hub.publish(output(1))
    [entry] = list(hub._ring)
    assert entry._frame is None  # nobody attached: nothing spent on encoding
    first, _ = hub.open(0, hub.instance)
    second, _ = hub.open(0, hub.instance)
    [a] = await first.take()
    [b] = await second.take()
    assert a is b  # encoded once, the same text for every client


async def test_stop_closes_every_client() -> None:
    hub = NoticeHub()
    client, _ = hub.open(0, hub.instance)
    waiting = asyncio.create_task(client.take())
    await asyncio.sleep(0)
    hub.stop()
    assert await waiting == []
    assert hub.clients == 0
    hub.publish(output(1))  # nobody is told, nothing fails
    assert client.waiting == 0
