"""The intake's defences against strangers and absurd bodies, over real HTTP on loopback.

The unverified-bytes budget (503), the body deadlines (408), the connection cap, the refused
requests the UI is told about, replays (R12), and signed bodies that used to answer 500 (R7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, IntakeFactory, RecordingSink
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing import delivery_headers, push_body, send, send_signed

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.forges.github import REFIRE_HEADER, Verifier, sign
from pocketci_tui.intake import IntakeLimits, Listener, make_intake_app
from pocketci_tui.intake.budget import BudgetLimits
from pocketci_tui.intake.rejections import RejectionLog, RejectionSummary
from pocketci_tui.model import EventStatus
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.store import Store

pytestmark = pytest.mark.timeout(120)

KIB = 1024
MIB = 1024 * KIB


async def _open_body(url: str, body_length: int, first: bytes, signature: str) -> Any:
    """Start a POST declaring ``body_length`` bytes, send ``first`` of them and stop there."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        (
            f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {body_length}\r\nX-GitHub-Event: push\r\n"
            f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {signature}\r\n\r\n"
        ).encode()
        + first
    )
    await writer.drain()
    return reader, writer


# -- the budget of unverified bytes -------------------------------------------------------------


async def test_large_bodies_past_the_budget_get_503_small_ones_still_pass(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """R3: one stalled large body holds the large part of the budget; the next large one is
    refused with 503 at once, while a real (small) delivery is stored."""
    budget = BudgetLimits(total=3 * MIB, small_reserve=1 * MIB, small_body=256 * KIB)
    it = await intake_factory(limits=IntakeLimits(budget=budget))
    _, writer = await _open_body(it.url, 3 * MIB // 2, b"{" + b" " * 1000, "sha256=" + "0" * 64)
    big = b'{"a": "' + b"x" * MIB + b'"}'
    try:
        await asyncio.sleep(0.2)
        reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, big)
        assert reply.status == 503
        assert "unverified" in reply.json()["error"]
        small = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body())
        assert small.status == 202
    finally:
        writer.close()
    # Once the stalled body is gone its bytes are given back: the large body now fits.
    budget_state = it.listener.app[_budget_key()]
    async with asyncio.timeout(10):
        while budget_state.held:
            await asyncio.sleep(0.05)
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, big)
    assert reply.status == 200  # stored (and ignored: it names no repository)
    assert budget_state.peak <= budget.total


def _budget_key() -> Any:
    from pocketci_tui.intake import keys

    return keys.BUDGET


async def test_a_body_that_pauses_too_long_is_cut_off(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A body that stops arriving is answered 408 after the idle timeout, not the total one."""
    it = await intake_factory(limits=IntakeLimits(body_idle_timeout=0.5, body_timeout=60))
    body = push_body()
    reader, writer = await _open_body(it.url, len(body), body[:10], sign(WEBHOOK_SECRET, body))
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert await it.store.count_events() == 0


# -- the connection cap -------------------------------------------------------------------------


async def test_idle_connections_over_the_cap_are_closed_oldest_first(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """R4: past the cap, each new connection closes the oldest idle one."""
    it = await intake_factory()
    await it.listener.stop()
    listener = Listener(it.listener.app, "127.0.0.1", 0, max_connections=20)
    url = await listener.start()
    host, port = url.removeprefix("http://").split(":")
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(40)]
    try:
        reply = await send_signed(http, url + "/webhooks/github", WEBHOOK_SECRET, push_body())
        assert reply.status == 202
        closed = []
        for index, (reader, _) in enumerate(conns):
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.05) == b"":
                    closed.append(index)
        # The 20 oldest went first (and the probe's own connection made one more room).
        assert closed[:20] == list(range(20))
        assert listener.evicted >= 20
    finally:
        for _, writer in conns:
            writer.close()
        await listener.stop()


# -- refused requests, counted for the UI -------------------------------------------------------


async def test_refusals_are_counted_and_told_without_the_body(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """Bad signatures and wrong content types are counted, the last reason kept, the recent
    ones listed (never a byte of the body), and subscribers told."""
    it = await intake_factory()
    rejections = it.listener.app[_rejections_key()]
    told: list[RejectionSummary] = []
    rejections.subscribe(told.append)
    body = push_body(branch="secret-branch-name")
    headers = delivery_headers("wrong secret", body, delivery="bad-sig-1")
    assert (await send(http, it.hook_url, body, headers)).status == 401
    headers = delivery_headers(WEBHOOK_SECRET, body, content_type="text/plain", delivery="ct-1")
    assert (await send(http, it.hook_url, body, headers)).status == 415
    async with asyncio.timeout(10):
        while not told or told[-1].count < 2:
            await asyncio.sleep(0.05)
    assert rejections.count == 2
    recent = rejections.recent()
    assert [(r.status, r.delivery_id) for r in recent] == [(415, "ct-1"), (401, "bad-sig-1")]
    assert recent[0].reason == "wrong content type"
    assert "text/plain" in recent[0].detail
    assert "bad signature" in recent[1].reason
    assert told[-1].last == recent[0]
    assert "secret-branch-name" not in repr(recent)


def _rejections_key() -> Any:
    from pocketci_tui.intake import keys

    return keys.REJECTIONS


async def test_rejection_log_writes_a_bounded_number_of_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R5: past a few lines per interval, refusals are summed up in one line."""
    log = RejectionLog(interval=0.3, lines_per_interval=3)
    with caplog.at_level("WARNING", logger="pocketci_tui.intake"):
        for n in range(1000):
            log.note(409, "replayed body", remote="127.0.0.1", detail=f"first delivered as d{n}")
        await asyncio.sleep(0.5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5, lines
    assert "replayed body: first delivered as d0" in lines[0]
    # The summary sums up by reason, whatever the details.
    assert lines[-1] == "refused 997 more request(s) in the last 0 s: 997 x replayed body (409)"
    assert log.count == 1000
    assert len(log.recent()) == 50
    log.close()


# -- replays (R12) ------------------------------------------------------------------------------


async def test_a_body_sent_again_under_a_new_delivery_id_is_refused(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """GitHub signs only the body: a captured delivery re-sent under a new id is a replay."""
    it = await intake_factory()
    body = push_body()
    first = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="original-1")
    assert first.status == 202
    replay = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="replayed-2")
    assert replay.status == 409
    assert "original-1" in replay.json()["error"]
    assert await it.store.count_events() == 1
    assert len(it.sink.submitted) == 1
    # A redelivery keeps its id: still recorded as a redelivery, not refused.
    again = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="original-1")
    assert (again.status, again.json()["status"]) == (202, "duplicate")
    last = it.listener.app[_rejections_key()].last
    assert (last.reason, last.detail) == ("replayed body", "first delivered as original-1")


async def test_concurrent_replays_store_one_event(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """Replays arriving together (one writer batch) still store the body once."""
    it = await intake_factory()
    body = push_body(n=5)
    replies = await asyncio.gather(
        *(
            send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery=f"burst-{n}")
            for n in range(30)
        ),
        *(send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=100 + n)) for n in range(30)),
    )
    statuses = [r.status for r in replies[:30]]
    assert statuses.count(202) == 1
    assert statuses.count(409) == 29
    assert {r.status for r in replies[30:]} == {202}
    assert await it.store.count_events() == 31


async def test_a_refire_signed_with_the_secret_runs_again(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """``pocketci-tui fire`` proves a deliberate re-run with a second signature over the new
    delivery id; a forged or copied proof is not enough."""
    it = await intake_factory()
    body = push_body()
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)).status == 202
    verifier = Verifier(WEBHOOK_SECRET)
    headers = delivery_headers(WEBHOOK_SECRET, body, delivery="fire-1")
    headers[REFIRE_HEADER] = verifier.refire_signature("fire-1", headers["X-Hub-Signature-256"])
    fired = await send(http, it.hook_url, body, headers)
    assert (fired.status, fired.json()["status"]) == (202, "stored")
    # The same proof under another delivery id, or a proof made with another secret: replays.
    copied = dict(headers, **{"X-GitHub-Delivery": "fire-2"})
    assert (await send(http, it.hook_url, body, copied)).status == 409
    forged = delivery_headers(WEBHOOK_SECRET, body, delivery="fire-3")
    forged[REFIRE_HEADER] = Verifier("guess").refire_signature(
        "fire-3", forged["X-Hub-Signature-256"]
    )
    assert (await send(http, it.hook_url, body, forged)).status == 409
    assert await it.store.count_events() == 2


async def test_replay_is_refused_after_its_event_left_by_count(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The digests outlive count-based retention (they are kept for the retention days)."""
    it = await intake_factory()
    body = push_body(n=1)
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)).status == 202
    for n in range(2, 5):
        await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=n))
    removed = await it.store.apply_retention(max_events=1, max_days=90, logs_dir=tmp_path)
    assert removed == 3
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)).status == 409
    # Past the retention days the digest goes too.
    await it.store.apply_retention(max_events=1, max_days=-1, logs_dir=tmp_path)
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)).status == 202


# -- signed bodies that used to answer 500 (R7) -------------------------------------------------


def _pull_request(number: Any) -> dict[str, Any]:
    return {
        "action": "opened",
        "number": number,
        "pull_request": {
            "number": number,
            "title": "t",
            "head": {"sha": "a" * 40, "ref": "f", "repo": {"full_name": "acme/api"}},
            "base": {"sha": "b" * 40, "ref": "main", "repo": {"full_name": "acme/api"}},
        },
        "repository": {"full_name": "acme/api"},
    }


@pytest.mark.parametrize(
    ("body", "event", "expected"),
    [
        (b'{"a": ' + b"7" * 5000 + b"}", "push", 400),
        (b'{"ref": "refs/heads/\\ud800", "repository": {"full_name": "acme/api"}}', "push", 400),
        (b'{"head_commit": {"message": "x\\udfff"}, "ref": "refs/heads/m"}', "push", 400),
        (json.dumps(_pull_request(10**30)).encode(), "pull_request", 200),
        (json.dumps(_pull_request(-1)).encode(), "pull_request", 200),
        (b'{"a": 1e400, "ref": "refs/heads/m"}', "push", 200),
    ],
)
async def test_absurd_signed_values_are_400_or_stored_never_500(
    intake_factory: IntakeFactory,
    http: aiohttp.ClientSession,
    body: bytes,
    event: str,
    expected: int,
) -> None:
    """R7: a 5,000-digit number, a lone surrogate in a stored field, a PR number of 10^30."""
    it = await intake_factory()
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, event=event)
    assert reply.status == expected, reply.body
    if expected == 200:
        stored = await it.store.get_event(reply.json()["event_id"])
        assert stored is not None
        assert stored.status is EventStatus.IGNORED
        assert stored.event.pr_number is None


async def test_a_paired_surrogate_escape_is_fine(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory()
    payload = json.loads(push_body())
    payload["head_commit"]["message"] = "ship it \U0001f680"
    body = json.dumps(payload).encode()  # ensure_ascii: the rocket as \ud83d\ude80
    assert b"\\ud83d\\ude80" in body
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)
    assert reply.status == 202
    stored = await it.store.get_event(reply.json()["event_id"])
    assert stored is not None
    assert stored.event.title == "ship it \U0001f680"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["refs/heads/main", "a" * 40, "acme/api", "\ud800", "-x", "../.."])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "ref",
        "after",
        "before",
        "action",
        "number",
        "repository",
        "pull_request",
        "head_commit",
        "release",
        "deleted",
        "zen",
        "full_name",
        "head",
        "base",
        "repo",
        "sha",
        "title",
        "message",
    ]
)


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload: dict[str, Any] = {"repository": {"full_name": "acme/api"}}
    for key in draw(st.lists(_keys, max_size=6)):
        payload[key] = draw(_values | st.dictionaries(_keys, _values, max_size=4))
    return payload


@pytest.fixture
def intake_in_thread(tmp_path: Path) -> Iterator[str]:
    """A real intake (listener, SQLite store) on its own loop in a thread; yields its hook URL.

    Hypothesis drives a plain function, so the listener cannot share the test's loop.
    """
    ready: queue.Queue[str | BaseException] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        store = await Store.open(tmp_path / "fuzz" / "pocketci.db")
        app = make_intake_app(
            settings=Settings(repos=(RepoConfig(name="acme/api"),)),
            store=store,
            secrets=MemorySecretStore({"webhook-secret": WEBHOOK_SECRET}),
            sink=RecordingSink(),
        )
        listener = Listener(app, "127.0.0.1", 0)
        try:
            ready.put(await listener.start() + "/webhooks/github")
            await stop.wait()
        finally:
            await listener.stop()
            await store.close()

    def main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # pragma: no cover - reported to the test below
            ready.put(exc)

    thread = threading.Thread(target=main, name="fuzz-intake")
    thread.start()
    url = ready.get(timeout=60)
    if isinstance(url, BaseException):
        raise url
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=_payloads(),
    event=st.sampled_from(["push", "pull_request", "release", "ping", "issues"]),
    number=st.integers(min_value=-(10**30), max_value=10**30),
)
def test_fuzzed_signed_payloads_never_answer_500(
    intake_in_thread: str, payload: dict[str, Any], event: str, number: int
) -> None:
    """Whatever a signed body holds, the answer is a 2xx, a 400 or a replay's 409, never 500."""
    payload.setdefault("number", number)
    body = json.dumps(payload, ensure_ascii=True).encode()
    request = urllib.request.Request(
        intake_in_thread, data=body, headers=delivery_headers(WEBHOOK_SECRET, body, event=event)
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, answer = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    assert status in (200, 202, 400, 409), (status, answer[:300])
