"""Gitea, Forgejo and GitLab deliveries over real HTTP to ``/webhooks/{vendor}`` (issue 13).

The real bodies of ``tests/fixtures/go-scm`` are posted signed as each forge signs them;
the status code and the stored Event are checked for each, the Event beside go-scm's reading of
the same body. Then what must be refused: bad signatures, wrong tokens, replayed timestamps,
missing headers, and deliveries posted to another forge's URL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, IntakeFactory, RecordingSink, RunningIntake
from forgefixtures import (
    bodies,
    body,
    gitea_event,
    gitea_oracle,
    gitlab_event,
    gitlab_oracle,
    golden,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing import Reply, delivery_headers, send

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.forges import gitea, gitlab
from pocketci_tui.forges.base import Forge
from pocketci_tui.forges.gitea import FORGEJO, GITEA
from pocketci_tui.forges.gitlab import GITLAB
from pocketci_tui.intake import Listener, make_intake_app
from pocketci_tui.model import EventStatus
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.store import Store

pytestmark = pytest.mark.timeout(120)

SIGNING = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()

# Every repository of these forges is configured, so a 200 means "never run", not "unknown".
EVERY_REPO = Settings(
    repos=tuple(RepoConfig(name="*", vendor=v) for v in ("gitea", "forgejo", "gitlab"))
)

GITEA_IGNORED = {
    "branch_delete.json": "branch deleted",
    "tag_delete.json": "tag deleted",
    "tag_create.json": gitea.TAG_CREATE_REASON,
}
GITLAB_IGNORED = {
    "branch_delete.json": "branch deleted",
    "branch_delete_subgroup.json": "branch deleted",
    "tag_delete.json": "tag deleted",
    "tag_delete_subgroup.json": "tag deleted",
    "pull_request_review_ready.json": gitlab.NO_NEW_COMMITS,
}


def headers_for(
    forge: Forge, data: bytes, event: str, secret: str = WEBHOOK_SECRET, delivery: str = ""
) -> dict[str, str]:
    signed = forge.sign(data, secret, event_name=event, delivery_id=delivery or str(uuid.uuid4()))
    return {"Content-Type": "application/json", **signed}


async def post(
    http: aiohttp.ClientSession,
    it: RunningIntake,
    vendor: str,
    data: bytes,
    headers: dict[str, str],
) -> Reply:
    return await send(http, it.hook_url_for(vendor), data, headers)


async def check_fixture(
    http: aiohttp.ClientSession,
    it: RunningIntake,
    forge: Forge,
    name: str,
    event_name: str,
    ignored: str,
    oracle: dict[str, Any] | None,
    secret: str = WEBHOOK_SECRET,
) -> None:
    data = body("gitlab" if forge is GITLAB else "gitea", name)
    delivery = str(uuid.uuid4())
    reply = await post(
        http, it, forge.vendor, data, headers_for(forge, data, event_name, secret, delivery)
    )
    assert reply.status == (200 if ignored else 202), (name, reply.body)
    answer = reply.json()
    assert (answer["status"], answer["delivery_id"]) == (
        "ignored" if ignored else "stored",
        delivery,
    ), name
    stored = await it.store.get_event(answer["event_id"])
    assert stored is not None, name
    event = stored.event
    assert (event.vendor, event.event_name, event.delivery_id, event.body) == (
        forge.vendor,
        event_name,
        delivery,
        data,
    ), name
    assert stored.status is (EventStatus.IGNORED if ignored else EventStatus.RECEIVED), name
    assert stored.detail == ignored, name
    if oracle is not None:
        assert {key: getattr(event, key) for key in oracle} == oracle, name


@pytest.mark.parametrize("forge", [GITEA, FORGEJO], ids=["gitea", "forgejo"])
async def test_every_gitea_payload_over_http(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, forge: Forge
) -> None:
    """Forgejo gets Gitea's bodies with Forgejo's headers (and Gitea's, as it sends them)."""
    it = await intake_factory(settings=EVERY_REPO)
    names = bodies("gitea")
    assert len(names) == 19
    for name in names:
        reading = golden("gitea", name)
        await check_fixture(
            http,
            it,
            forge,
            name,
            gitea_event(name),
            GITEA_IGNORED.get(name, ""),
            gitea_oracle(name, reading) if reading else None,
        )
    assert await it.store.count_events() == len(names)
    assert {s.event.vendor for s, _ in it.sink.submitted} == {forge.vendor}


@pytest.mark.parametrize("secret", [WEBHOOK_SECRET, SIGNING], ids=["token", "signing-token"])
async def test_every_gitlab_payload_over_http(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, secret: str
) -> None:
    """Both of GitLab's credentials: the secret token and the Standard Webhooks signature."""
    it = await intake_factory(
        settings=EVERY_REPO, secrets=MemorySecretStore({"webhook-secret": secret})
    )
    names = bodies("gitlab")
    assert len(names) == 26
    for name in names:
        reading = golden("gitlab", name)
        await check_fixture(
            http,
            it,
            GITLAB,
            name,
            gitlab_event(name),
            GITLAB_IGNORED.get(name, ""),
            gitlab_oracle(name, reading) if reading else None,
            secret,
        )
    assert await it.store.count_events() == len(names)


async def test_a_redelivery_is_a_duplicate_for_each_forge(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(settings=EVERY_REPO)
    cases: list[tuple[Forge, bytes, str]] = [
        (GITEA, body("gitea", "push.json"), "push"),
        (FORGEJO, body("gitea", "pull_request_opened.json"), "pull_request"),
        (GITLAB, body("gitlab", "push.json"), "Push Hook"),
    ]
    for forge, data, event in cases:
        headers = headers_for(forge, data, event)
        first = await post(http, it, forge.vendor, data, headers)
        again = await post(http, it, forge.vendor, data, headers)
        assert (first.status, again.status) == (202, 202), forge.vendor
        assert again.json()["status"] == "duplicate"
        assert again.json()["event_id"] == first.json()["event_id"]
    assert await it.store.count_events() == 3


async def test_a_signed_gitlab_retry_is_a_duplicate_of_its_first_delivery(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """GitLab retries with the same Idempotency-Key and webhook-id, signed at a new time."""
    it = await intake_factory(
        settings=EVERY_REPO, secrets=MemorySecretStore({"webhook-secret": SIGNING})
    )
    data = body("gitlab", "push.json")
    first = headers_for(
        gitlab.GitLabForge(clock=lambda: time.time() - 100), data, "Push Hook", SIGNING, "idem-7"
    )
    retry = headers_for(GITLAB, data, "Push Hook", SIGNING, "idem-7")
    assert first["webhook-signature"] != retry["webhook-signature"]
    replies = [await post(http, it, "gitlab", data, h) for h in (first, retry)]
    assert [r.status for r in replies] == [202, 202]
    assert [r.json()["status"] for r in replies] == ["stored", "duplicate"]
    assert await it.store.count_events() == 1


# -- refusals -----------------------------------------------------------------------------------


async def expect_refused(
    http: aiohttp.ClientSession,
    it: RunningIntake,
    vendor: str,
    data: bytes,
    headers: dict[str, str],
    status: int,
    text: str = "",
) -> str:
    reply = await post(http, it, vendor, data, headers)
    assert reply.status == status, (vendor, headers, reply.body)
    message = str(reply.json()["error"])
    assert text in message, message
    assert await it.store.count_events() == 0
    return message


@pytest.mark.parametrize("forge", [GITEA, FORGEJO], ids=["gitea", "forgejo"])
async def test_gitea_bad_signatures_are_401(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, forge: gitea.GiteaForge
) -> None:
    it = await intake_factory(settings=EVERY_REPO)
    data = body("gitea", "push.json")
    good = gitea.signature_of(data, WEBHOOK_SECRET)
    for variant in [
        "sha256=" + good,
        good.upper(),
        good[:-1] + ("1" if good[-1] == "0" else "0"),
        "",
    ]:
        headers = headers_for(forge, data, "push")
        for name in ("X-Gitea-Signature", "X-Forgejo-Signature"):
            if name in headers:
                headers[name] = variant
        await expect_refused(http, it, forge.vendor, data, headers, 401)
    headers = headers_for(forge, data, "push", secret="another secret")
    await expect_refused(http, it, forge.vendor, data, headers, 401)
    tampered = data.replace(b"Updated readme", b"Updated README")
    await expect_refused(http, it, forge.vendor, tampered, headers_for(forge, data, "push"), 401)
    headers = headers_for(forge, data, "push")
    for name in ("X-Gitea-Signature", "X-Forgejo-Signature"):
        headers.pop(name, None)
    await expect_refused(http, it, forge.vendor, data, headers, 401)


async def test_the_secret_field_of_a_gitea_body_is_no_credential(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    """The deprecated ``secret`` in the body equals the webhook secret: still 401 unsigned."""
    it = await intake_factory(
        settings=EVERY_REPO, secrets=MemorySecretStore({"webhook-secret": "12345"})
    )
    data = body("gitea", "pull_request_opened.json")
    assert json.loads(data)["secret"] == "12345"
    headers = headers_for(GITEA, data, "pull_request", secret="12345")
    headers["X-Gitea-Signature"] = "0" * 64
    await expect_refused(http, it, "gitea", data, headers, 401)


async def test_gitlab_wrong_tokens_are_401(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(settings=EVERY_REPO)
    data = body("gitlab", "push.json")
    for token in ["wrong", WEBHOOK_SECRET + "x", WEBHOOK_SECRET[:-1], "token-of-another-project"]:
        headers = headers_for(GITLAB, data, "Push Hook", secret=token)
        await expect_refused(http, it, "gitlab", data, headers, 401)
    headers = headers_for(GITLAB, data, "Push Hook")
    del headers["X-Gitlab-Token"]
    await expect_refused(http, it, "gitlab", data, headers, 401)
    # A signing-token delivery to an intake that holds a secret token: said so.
    signed = headers_for(GITLAB, data, "Push Hook", secret=SIGNING)
    await expect_refused(http, it, "gitlab", data, signed, 401, "secret token")


@pytest.mark.parametrize("offset", [-gitlab.TOLERANCE - 120, gitlab.TOLERANCE + 120])
async def test_gitlab_replayed_or_future_timestamps_are_401(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, offset: int
) -> None:
    it = await intake_factory(
        settings=EVERY_REPO, secrets=MemorySecretStore({"webhook-secret": SIGNING})
    )
    data = body("gitlab", "push.json")
    then = gitlab.GitLabForge(clock=lambda: time.time() + offset)
    headers = headers_for(then, data, "Push Hook", SIGNING)
    await expect_refused(http, it, "gitlab", data, headers, 401, "webhook-timestamp")
    # The same delivery signed now passes: the timestamp alone was the problem.
    fresh = headers_for(GITLAB, data, "Push Hook", SIGNING)
    assert (await post(http, it, "gitlab", data, fresh)).status == 202


async def test_gitlab_signature_refusals(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(
        settings=EVERY_REPO, secrets=MemorySecretStore({"webhook-secret": SIGNING})
    )
    data = body("gitlab", "push.json")
    other_key = "whsec_" + base64.b64encode(bytes(32)).decode()
    cases: list[tuple[str, str | None]] = [
        (
            "webhook-signature",
            headers_for(GITLAB, data, "Push Hook", other_key)["webhook-signature"],
        ),
        ("webhook-signature", "v1,not-base64"),
        ("webhook-signature", None),
        ("webhook-timestamp", None),
        ("webhook-id", "another-id"),
        ("X-Gitlab-Token", SIGNING),  # the token itself, sent in the clear, is not a signature
    ]
    for name, value in cases:
        headers = headers_for(GITLAB, data, "Push Hook", SIGNING)
        if name == "X-Gitlab-Token":
            for key in ("webhook-signature", "webhook-timestamp", "webhook-id"):
                del headers[key]
        if value is None:
            del headers[name]
        else:
            headers[name] = value
        await expect_refused(http, it, "gitlab", data, headers, 401)


@pytest.mark.parametrize(
    ("forge", "event", "missing"),
    [
        (GITEA, "push", "X-Gitea-Event"),
        (GITEA, "push", "X-Gitea-Delivery"),
        (GITLAB, "Push Hook", "X-Gitlab-Event"),
    ],
    ids=["gitea-event", "gitea-delivery", "gitlab-event"],
)
async def test_missing_headers_are_400(
    intake_factory: IntakeFactory,
    http: aiohttp.ClientSession,
    forge: Forge,
    event: str,
    missing: str,
) -> None:
    it = await intake_factory(settings=EVERY_REPO)
    data = body("gitlab" if forge is GITLAB else "gitea", "push.json")
    headers = headers_for(forge, data, event)
    del headers[missing]
    await expect_refused(http, it, forge.vendor, data, headers, 400)


async def test_gitlab_without_any_delivery_id_is_400(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession
) -> None:
    it = await intake_factory(settings=EVERY_REPO)
    data = body("gitlab", "push.json")
    headers = headers_for(GITLAB, data, "Push Hook")
    del headers["Idempotency-Key"]
    del headers["X-Gitlab-Event-UUID"]
    await expect_refused(http, it, "gitlab", data, headers, 400)
    # Old GitLab (before 17.4) sends only the event UUID: that is the delivery id then.
    headers["X-Gitlab-Event-UUID"] = "0b7d4c8e-1f2a-4b3c-9d4e-5f6a7b8c9d0e"
    reply = await post(http, it, "gitlab", data, headers)
    assert reply.status == 202
    assert reply.json()["delivery_id"] == "0b7d4c8e-1f2a-4b3c-9d4e-5f6a7b8c9d0e"


@pytest.mark.parametrize(
    ("sender", "route"),
    [
        ("forgejo", "gitea"),
        ("gitea", "github"),
        ("forgejo", "github"),
        ("gitlab", "gitea"),
        ("gitea", "gitlab"),
        ("gitlab", "github"),
        ("github", "gitlab"),
        ("github", "forgejo"),
    ],
)
async def test_a_delivery_posted_to_another_forges_url_is_400_naming_its_own(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, sender: str, route: str
) -> None:
    it = await intake_factory(settings=EVERY_REPO)
    data = body("gitlab" if sender == "gitlab" else "gitea", "push.json")
    if sender == "github":
        headers = delivery_headers(WEBHOOK_SECRET, data)
    else:
        forges: dict[str, Forge] = {"gitea": GITEA, "forgejo": FORGEJO, "gitlab": GITLAB}
        forge = forges[sender]
        headers = headers_for(forge, data, "Push Hook" if sender == "gitlab" else "push")
    await expect_refused(http, it, route, data, headers, 400, f"/webhooks/{sender}")


# -- fuzzing over HTTP --------------------------------------------------------------------------


@pytest.fixture
def forge_intake_in_thread(tmp_path: Path) -> Iterator[str]:
    """A real intake on its own loop in a thread (hypothesis drives a plain function)."""
    ready: queue.Queue[str | BaseException] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        store = await Store.open(tmp_path / "fuzz" / "pocketci.db")
        app = make_intake_app(
            settings=EVERY_REPO,
            store=store,
            secrets=MemorySecretStore({"webhook-secret": WEBHOOK_SECRET}),
            sink=RecordingSink(),
        )
        listener = Listener(app, "127.0.0.1", 0)
        try:
            ready.put(await listener.start())
            await stop.wait()
        finally:
            await listener.stop()
            await store.close()

    def main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # pragma: no cover - reported to the test below
            ready.put(exc)

    thread = threading.Thread(target=main, name="fuzz-forge-intake")
    thread.start()
    url = ready.get(timeout=60)
    if isinstance(url, BaseException):
        raise url
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "ref",
        "ref_type",
        "after",
        "before",
        "action",
        "sha",
        "number",
        "pull_request",
        "repository",
        "release",
        "commits",
        "head",
        "base",
        "repo",
        "id",
        "full_name",
        "object_kind",
        "object_attributes",
        "project",
        "path_with_namespace",
        "iid",
        "source_project_id",
        "target_project_id",
        "last_commit",
        "oldrev",
        "tag",
        "commit",
    ]
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    payload: dict[str, Any] = {}
    for key in draw(st.lists(_keys, max_size=6)):
        payload[key] = draw(_values | st.dictionaries(_keys, _values, max_size=4))
    if draw(st.booleans()):
        return json.dumps(payload).encode()
    raw = json.dumps(payload).encode()
    cut = draw(st.integers(min_value=0, max_value=len(raw)))
    return raw[:cut] + draw(st.binary(max_size=8))  # truncated or junk-tailed JSON


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=_bodies(),
    target=st.sampled_from(
        [
            (GITEA, "push"),
            (GITEA, "pull_request"),
            (FORGEJO, "release"),
            (FORGEJO, "create"),
            (GITLAB, "Push Hook"),
            (GITLAB, "Merge Request Hook"),
            (GITLAB, "Release Hook"),
            (GITLAB, "Note Hook"),
        ]
    ),
)
def test_fuzzed_signed_bodies_never_answer_500(
    forge_intake_in_thread: str, data: bytes, target: tuple[Forge, str]
) -> None:
    """Whatever a signed body holds, each forge's route answers 2xx, a clean 400 or a 409."""
    forge, event = target
    request = urllib.request.Request(
        f"{forge_intake_in_thread}/webhooks/{forge.vendor}",
        data=data,
        headers=headers_for(forge, data, event),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, answer = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read()
    assert status in (200, 202, 400, 409), (status, answer[:300])
    if status == 400:
        assert json.loads(answer)["error"]


@pytest.mark.parametrize("forge", [GITEA, FORGEJO], ids=["gitea", "forgejo"])
async def test_a_pushed_tag_runs_once_of_its_two_deliveries(
    intake_factory: IntakeFactory, http: aiohttp.ClientSession, forge: Forge
) -> None:
    """Gitea sends a push of refs/tags/v1.0.0 and a create of the tag: one of them runs."""
    it = await intake_factory(settings=EVERY_REPO)
    push = json.loads(body("gitea", "push.json"))
    push["ref"] = "refs/tags/v1.0.0"
    push_data = json.dumps(push).encode()
    create_data = body("gitea", "tag_create.json")
    replies = [
        await post(http, it, forge.vendor, push_data, headers_for(forge, push_data, "push")),
        await post(http, it, forge.vendor, create_data, headers_for(forge, create_data, "create")),
    ]
    assert [r.status for r in replies] == [202, 200]
    assert [s.status for s, _ in it.sink.submitted] == [EventStatus.RECEIVED, EventStatus.IGNORED]
    tag = it.sink.submitted[0][0].event
    assert (tag.event_type, tag.filter, tag.ref) == ("tag", "v1.0.0", "refs/tags/v1.0.0")
    assert it.sink.submitted[1][0].detail == gitea.TAG_CREATE_REASON
