"""The webhook intake over real HTTP on loopback: every status code, A1-A17."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, IntakeFactory
from signing import delivery_headers, push_body, send, send_signed

from pocketci_tui.forges.github import sign
from pocketci_tui.intake import MAX_BODY, IntakeLimits
from pocketci_tui.model import EventStatus
from pocketci_tui.secrets import (
    MemorySecretStore,
    SecretStore,
    SecretStoreUnavailable,
    plaintext_store,
)

pytestmark = pytest.mark.timeout(60)


async def test_healthz(intake_factory: IntakeFactory, http: aiohttp.ClientSession) -> None:
    it = await intake_factory()
    async with http.get(it.url + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


async def test_valid_push_is_stored_then_acknowledged(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, payloads_dir: Path
) -> None:
    it = await intake_factory()
    body = (payloads_dir / "push_branch.json").read_bytes()
    delivery = str(uuid.uuid4())
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery=delivery)
    assert reply.status == 202
    data = reply.json()
    assert data["status"] == "stored"
    assert data["delivery_id"] == delivery
    stored = await it.store.get_event(data["event_id"])
    assert stored is not None
    assert stored.status is EventStatus.RECEIVED
    assert stored.event.body == body
    assert (stored.event.filter, stored.event.repository) == ("main", "acme/api")
    assert [(s.event.id, dup) for s, dup in it.sink.submitted] == [(data["event_id"], False)]


async def test_github_test_vector_over_http(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A1: GitHub's example signature verifies (then the non-JSON body is a 400, not a 401)."""
    it = await intake_factory(
        secrets=MemorySecretStore({"webhook-secret": "It's a Secret to Everybody"})
    )
    headers = delivery_headers("x", b"")
    headers["X-Hub-Signature-256"] = (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    reply = await send(http, it.hook_url, b"Hello, World!", headers)
    assert reply.status == 400
    assert "JSON" in reply.json()["error"]
    headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"][:-1] + "6"
    assert (await send(http, it.hook_url, b"Hello, World!", headers)).status == 401
    assert await it.store.count_events() == 0


async def test_missing_signature_same_reply_as_bad(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A2: 401, nothing stored, the same body as a wrong signature."""
    it = await intake_factory()
    body = push_body()
    headers = delivery_headers(WEBHOOK_SECRET, body)
    del headers["X-Hub-Signature-256"]
    missing = await send(http, it.hook_url, body, headers)
    headers["X-Hub-Signature-256"] = sign("wrong", body)
    wrong = await send(http, it.hook_url, body, headers)
    assert (missing.status, wrong.status) == (401, 401)
    assert missing.json() == wrong.json()
    assert await it.store.count_events() == 0
    assert it.sink.submitted == []


def _variants(sig: str) -> list[str]:
    last = sig[-1]
    return [
        sig[:-1] + ("0" if last != "0" else "1"),
        "sha1=" + sig[7:],
        sig.upper(),
        "sha256=" + sig[7:].upper(),
        "sha256= " + sig[7:],
        sig[:20] + " " + sig[20:],
        sig[:-1],
        sig[7:],
    ]


async def test_bad_signatures(intake_factory: IntakeFactory, http: aiohttp.ClientSession) -> None:
    """A3: off by one, sha1= prefix, upper case, whitespace, truncated, bare hex.

    Leading and trailing blanks of a header value are removed by HTTP itself (RFC 9110 OWS), so
    whitespace is tested inside the value here and around it in the unit tests of verify().
    """
    it = await intake_factory()
    body = push_body()
    good = sign(WEBHOOK_SECRET, body)
    for variant in _variants(good):
        headers = delivery_headers(WEBHOOK_SECRET, body)
        headers["X-Hub-Signature-256"] = variant
        reply = await send(http, it.hook_url, body, headers)
        assert reply.status == 401, variant
    assert await it.store.count_events() == 0


async def test_legacy_sha1_only(intake_factory: IntakeFactory, http: aiohttp.ClientSession) -> None:
    """A4: the legacy X-Hub-Signature alone is not enough."""
    import hashlib
    import hmac

    it = await intake_factory()
    body = push_body()
    headers = delivery_headers(WEBHOOK_SECRET, body)
    del headers["X-Hub-Signature-256"]
    headers["X-Hub-Signature"] = (
        "sha1=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()
    )
    assert (await send(http, it.hook_url, body, headers)).status == 401
    assert await it.store.count_events() == 0


async def test_modified_and_reserialized_bodies(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A5 and A6: the HMAC covers the raw bytes."""
    it = await intake_factory()
    body = push_body()
    headers = delivery_headers(WEBHOOK_SECRET, body)
    modified = body.replace(b"octocat", b"octocas")
    assert (await send(http, it.hook_url, modified, headers)).status == 401
    reserialized = json.dumps(json.loads(body), indent=1).encode()
    assert (await send(http, it.hook_url, reserialized, headers)).status == 401
    assert await it.store.count_events() == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "application/jsonx", "multipart/form-data"],
)
async def test_wrong_content_type(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, content_type: str
) -> None:
    """A7: only application/json."""
    it = await intake_factory()
    body = push_body()
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, content_type=content_type)
    assert reply.status == 415
    assert await it.store.count_events() == 0


async def test_json_with_charset_is_fine(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory()
    reply = await send_signed(
        http,
        it.hook_url,
        WEBHOOK_SECRET,
        push_body(),
        content_type="application/json; charset=utf-8",
    )
    assert reply.status == 202


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-gzip", "gzip, identity"])
async def test_content_encoding_refused(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, encoding: str
) -> None:
    """A8: compressed bodies are refused (and never decompressed)."""
    it = await intake_factory()
    raw = gzip.compress(push_body())
    headers = delivery_headers(WEBHOOK_SECRET, raw)
    headers["Content-Encoding"] = encoding
    assert (await send(http, it.hook_url, raw, headers)).status == 415
    assert await it.store.count_events() == 0


async def test_body_over_limit_with_content_length(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A9: 26 MiB with a Content-Length: 413 before reading, no row."""
    it = await intake_factory()
    body = b"{" + b" " * (26 * 1024 * 1024) + b"}"
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)
    assert reply.status == 413
    assert await it.store.count_events() == 0


async def _chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b" " * n


async def test_chunked_body_over_limit_memory_bounded(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A9: a chunked 80 MiB body (no Content-Length) gets 413 and never sits in memory."""
    import tracemalloc

    it = await intake_factory()
    headers = delivery_headers(WEBHOOK_SECRET, b"whatever")
    tracemalloc.start()
    try:
        try:
            async with http.post(
                it.hook_url, data=_chunks(80 * 1024 * 1024), headers=headers
            ) as resp:
                status = resp.status
        except aiohttp.ClientError:
            status = -1  # the server may close the socket while we still write
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status in (413, -1)
    # The server never holds more than the 25 MiB limit plus a chunk (x2 for the final join).
    assert peak < 2 * MAX_BODY + 8 * 1024 * 1024
    assert await it.store.count_events() == 0


async def test_chunked_body_over_small_limit_gets_413(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(limits=IntakeLimits(max_body=100_000))
    headers = delivery_headers(WEBHOOK_SECRET, b"whatever")
    async with http.post(it.hook_url, data=_chunks(300_000, 1000), headers=headers) as resp:
        assert resp.status == 413
    assert await it.store.count_events() == 0


async def test_body_exactly_at_the_limit_is_accepted(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory()
    base = push_body()
    body = base[:-1] + b" " * (MAX_BODY - len(base)) + b"}"
    assert len(body) == MAX_BODY
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)
    assert reply.status == 202


async def _raw_request(url: str, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    return reader, writer


async def test_dribbled_body_is_cut_off_others_served(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A10: a body sent a byte at a time is cut off at the deadline; others are served."""
    it = await intake_factory(limits=IntakeLimits(body_timeout=0.6, header_timeout=5))
    body = push_body()
    head = (
        f"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\n"
        f"X-Hub-Signature-256: {sign(WEBHOOK_SECRET, body)}\r\n\r\n"
    ).encode()
    reader, writer = await _raw_request(it.url, head)

    async def dribble() -> None:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    dribbler = asyncio.create_task(dribble())
    try:
        reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=7))
        assert reply.status == 202
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        dribbler.cancel()
        writer.close()
    assert await it.store.count_events() == 1


async def test_dribbled_headers_are_cut_off_others_served(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A10: a client that never finishes its headers is disconnected at the deadline."""
    it = await intake_factory(limits=IntakeLimits(header_timeout=0.5))
    reader, writer = await _raw_request(it.url, b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\n")

    async def dribble() -> None:
        for _ in range(100):
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.1)

    dribbler = asyncio.create_task(dribble())
    try:
        reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body())
        assert reply.status == 202
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    finally:
        dribbler.cancel()
        writer.close()


async def test_a_thousand_concurrent_deliveries(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A11: 1000 concurrent valid deliveries: all 2xx, exactly 1000 rows."""
    it = await intake_factory()
    replies = await asyncio.gather(
        *(send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=i)) for i in range(1000))
    )
    assert {r.status for r in replies} == {202}
    assert await it.store.count_events() == 1000
    assert len({r.json()["event_id"] for r in replies}) == 1000


async def test_redelivery_recorded_not_run_twice(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A12: both 2xx, the second marked duplicate; one row."""
    it = await intake_factory()
    body = push_body()
    first = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="guid-1")
    second = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="guid-1")
    assert (first.status, second.status) == (202, 202)
    assert first.json()["status"] == "stored"
    assert second.json()["status"] == "duplicate"
    assert second.json()["event_id"] == first.json()["event_id"]
    assert await it.store.count_events() == 1
    assert [dup for _, dup in it.sink.submitted] == [False, True]
    stored = await it.store.get_event(first.json()["event_id"])
    assert stored is not None
    assert stored.redeliveries == 1


async def test_same_guid_from_repo_and_org_hook(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A13: one row (dedupe on vendor + GUID), both hook ids recorded."""
    it = await intake_factory()
    body = push_body()
    r1 = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="g", hook_id="111")
    r2 = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="g", hook_id="222")
    assert (r1.status, r2.status) == (202, 202)
    assert await it.store.count_events() == 1
    assert await it.store.hook_ids(r1.json()["event_id"]) == ["111", "222"]


async def test_concurrent_redeliveries_make_one_row(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory()
    body = push_body()
    replies = await asyncio.gather(
        *(send_signed(http, it.hook_url, WEBHOOK_SECRET, body, delivery="same") for _ in range(20))
    )
    assert [r.json()["status"] for r in replies].count("stored") == 1
    assert await it.store.count_events() == 1


async def test_ping(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, payloads_dir: Path
) -> None:
    """A14: 200, stored as ignored, hook marked verified, no job."""
    it = await intake_factory()
    for name in ("ping", "ping_org"):
        body = (payloads_dir / f"{name}.json").read_bytes()
        reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, event="ping")
        assert reply.status == 200
        assert reply.json()["status"] == "ignored"
        stored = await it.store.get_event(reply.json()["event_id"])
        assert stored is not None
        assert (stored.status, stored.detail) == (EventStatus.IGNORED, "ping: hook verified")


async def test_other_events_of_configured_repo_are_stored_for_matching(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, payloads_dir: Path
) -> None:
    """A15 (our choice): any verified event of a configured repository is stored as received
    (202) so an ``onGithubIssues``-style function can match it; when no function matches, the
    dispatcher marks it skipped and nothing runs. Events with no repository are ignored (200)."""
    it = await intake_factory()
    body = (payloads_dir / "issues_opened.json").read_bytes()
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body, event="issues")
    assert reply.status == 202
    stored = await it.store.get_event(reply.json()["event_id"])
    assert stored is not None
    assert (stored.event.event_type, stored.event.filter) == ("issues", "opened")
    weird = b'{"action": "frobnicated", "organization": {"login": "acme"}}'
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, weird, event="made_up_event")
    assert reply.status == 200
    assert reply.json()["detail"] == "no repository in the payload"


async def test_unconfigured_repository_is_stored_ignored(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, payloads_dir: Path
) -> None:
    """A16 (our choice): 2xx-ignore, stored and shown, never run."""
    it = await intake_factory()
    body = (payloads_dir / "push_unconfigured_repo.json").read_bytes()
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)
    assert reply.status == 200
    assert reply.json()["detail"] == "repository someone/else is not in the config"
    stored = await it.store.get_event(reply.json()["event_id"])
    assert stored is not None
    assert stored.status is EventStatus.IGNORED


async def test_globbed_repository_is_accepted(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(repos=("acme/*",))
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body("ACME/Web"))
    assert reply.status == 202


@pytest.mark.parametrize(
    ("name", "detail"),
    [("push_branch_deleted", "branch deleted"), ("push_evil_ref", "refused: ref")],
)
async def test_deletions_and_unsafe_refs_stored_ignored(
    intake_factory: IntakeFactory,
    http: aiohttp.ClientSession,
    payloads_dir: Path,
    name: str,
    detail: str,
) -> None:
    it = await intake_factory()
    body = (payloads_dir / f"{name}.json").read_bytes()
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)
    assert reply.status == 200
    assert reply.json()["detail"].startswith(detail)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"repository": {"full_name": "acme/api\xff"}}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"ref": "refs/heads/main", "ref": "refs/heads/x"}',
        b"[]",
        b"",
    ],
)
async def test_malformed_json_is_400_no_row(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, body: bytes
) -> None:
    """A17: deep nesting, invalid UTF-8, NaN/Infinity, duplicate keys."""
    it = await intake_factory()
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, body)
    assert reply.status == 400
    assert await it.store.count_events() == 0


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-GitHub-Event", None),
        ("X-GitHub-Delivery", None),
        ("X-GitHub-Event", "Push Event"),
        ("X-GitHub-Delivery", "../../etc/passwd"),
        ("X-GitHub-Delivery", ""),
    ],
)
async def test_missing_or_bad_event_headers(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, header: str, value: str | None
) -> None:
    it = await intake_factory()
    body = push_body()
    headers = delivery_headers(WEBHOOK_SECRET, body)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    assert (await send(http, it.hook_url, body, headers)).status == 400
    assert await it.store.count_events() == 0


async def test_wrong_method_and_path(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory()
    async with http.get(it.hook_url) as resp:
        assert resp.status == 405
    body = push_body()
    reply = await send(
        http, it.url + "/webhooks/bitbucket", body, delivery_headers(WEBHOOK_SECRET, body)
    )
    assert reply.status == 404
    assert await it.store.count_events() == 0


class _BrokenSecrets(MemorySecretStore):
    def __init__(self, mode: str) -> None:
        super().__init__({})
        self.mode = mode

    async def get(self, name: str) -> str | None:
        if self.mode == "hang":
            await asyncio.sleep(60)
        raise SecretStoreUnavailable("no keyring backend")


@pytest.mark.parametrize("mode", ["fail", "hang", "missing"])
async def test_secret_store_unavailable_is_503(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, mode: str
) -> None:
    """K6 at intake: a failing, hanging or empty secret store gives 503 and stores nothing."""
    secrets = MemorySecretStore({}) if mode == "missing" else _BrokenSecrets(mode)
    it = await intake_factory(secrets=secrets, limits=IntakeLimits(secret_timeout=0.3))
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body())
    assert reply.status == 503
    assert "secret" in reply.json()["error"]
    assert await it.store.count_events() == 0


async def test_secret_is_cached_then_reread(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A secret changed by another process (`secrets set` in another terminal, here a second
    store on the same file) is used once the cached value's time to live is over."""
    secrets = plaintext_store(tmp_path / "secrets.json")
    await secrets.set("webhook-secret", WEBHOOK_SECRET)
    it = await intake_factory(secrets=secrets, limits=IntakeLimits(secret_ttl=0.3))
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=1))).status == 202
    elsewhere = plaintext_store(tmp_path / "secrets.json")
    await elsewhere.set("webhook-secret", "rotated-secret-value")
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=2))).status == 202
    await asyncio.sleep(0.4)
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=3))).status == 401
    reply = await send_signed(http, it.hook_url, "rotated-secret-value", push_body(n=4))
    assert reply.status == 202


@pytest.mark.parametrize("kind", ["memory", "plaintext file"])
async def test_a_secret_rotated_in_this_process_is_used_at_the_next_delivery(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, tmp_path: Path, kind: str
) -> None:
    """Setting the webhook secret through the store the intake reads (as the UI's dialogs do)
    takes effect at once, however long the cached value had to live; so does deleting it."""
    secrets: SecretStore = (
        MemorySecretStore() if kind == "memory" else plaintext_store(tmp_path / "secrets.json")
    )
    await secrets.set("webhook-secret", WEBHOOK_SECRET)
    it = await intake_factory(secrets=secrets, limits=IntakeLimits(secret_ttl=3600))
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=1))).status == 202
    await secrets.set("webhook-secret", "rotated-secret-value")
    reply = await send_signed(http, it.hook_url, "rotated-secret-value", push_body(n=2))
    assert reply.status == 202
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=3))).status == 401
    await secrets.set("another-secret", "unrelated-value")  # not the webhook secret: kept
    reply = await send_signed(http, it.hook_url, "rotated-secret-value", push_body(n=4))
    assert reply.status == 202
    await secrets.delete("webhook-secret")
    reply = await send_signed(http, it.hook_url, "rotated-secret-value", push_body(n=5))
    assert reply.status == 503
    assert "not set" in reply.json()["error"]
    assert await it.store.count_events() == 3


async def test_sink_failure_still_acknowledges_stored_delivery(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory()

    async def broken(stored: object, duplicate: bool) -> None:
        raise RuntimeError("dispatcher down")

    it.sink.submit = broken  # type: ignore[method-assign]
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body())
    assert reply.status == 202
    assert await it.store.count_events() == 1


class _SlowSecrets(MemorySecretStore):
    """A store whose reads can be made to hang, counting every read; ``elsewhere`` holds what
    another process wrote to the same store, which this one's watchers never hear of."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.reads = 0
        self.hang = False
        self.elsewhere: dict[str, str] = {}

    async def get(self, name: str) -> str | None:
        self.reads += 1
        if self.hang:
            await asyncio.sleep(60)
        return self.elsewhere.get(name) or await super().get(name)


async def test_secret_is_read_ahead_before_it_expires(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """In the last fifth of its time to live the secret is read again in the background."""
    secrets = _SlowSecrets({"webhook-secret": WEBHOOK_SECRET})
    it = await intake_factory(secrets=secrets, limits=IntakeLimits(secret_ttl=1.0))
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=1))).status == 202
    assert secrets.reads == 1
    secrets.elsewhere["webhook-secret"] = "rotated-secret-value"
    await asyncio.sleep(0.85)
    # Still within the time to live: the cached secret answers, and a read starts behind it.
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=2))).status == 202
    for _ in range(100):
        if secrets.reads == 2:
            break
        await asyncio.sleep(0.01)
    assert secrets.reads == 2
    reply = await send_signed(http, it.hook_url, "rotated-secret-value", push_body(n=3))
    assert reply.status == 202
    assert secrets.reads == 2


async def test_hung_secret_store_does_not_stall_deliveries_before_expiry(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """A read ahead that hangs holds no delivery; after expiry the store's failure is a 503."""
    secrets = _SlowSecrets({"webhook-secret": WEBHOOK_SECRET})
    limits = IntakeLimits(secret_ttl=1.0, secret_timeout=0.5)
    it = await intake_factory(secrets=secrets, limits=limits)
    assert (await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=1))).status == 202
    secrets.hang = True
    await asyncio.sleep(0.82)
    for n in range(2, 6):
        # Waiting for the hung store would end in its timeout, a 503.
        reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=n))
        assert reply.status == 202
    assert secrets.reads == 2  # one read ahead, not one per delivery
    await asyncio.sleep(0.3)  # past the time to live: the delivery itself reads, and fails
    reply = await send_signed(http, it.hook_url, WEBHOOK_SECRET, push_body(n=9))
    assert reply.status == 503
    assert await it.store.count_events() == 5
