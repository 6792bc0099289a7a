"""GitLab: tokens, Standard Webhooks signatures, headers and real payloads (issue 13)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from forgefixtures import bodies, body, gitlab_event, gitlab_oracle, golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from pocketci_tui.engine.match.naming import belongs_to, tier_names
from pocketci_tui.forges import gitlab
from pocketci_tui.forges.base import DeliveryRefused, Forge
from pocketci_tui.forges.gitlab import GITLAB, TOLERANCE, GitLabForge
from pocketci_tui.forges.payload import PayloadError, parse_payload
from pocketci_tui.model import Event, utcnow

TOKEN = "gitlab-secret-token"
KEY = bytes(range(32))
SIGNING = "whsec_" + base64.b64encode(KEY).decode()
NOW = 1_780_000_000.0
DELIVERY = "8f1c2d3e-4b5a-4c6d-9e8f-0a1b2c3d4e5f"
GITLAB_BODIES = bodies("gitlab")


def at(now: float) -> GitLabForge:
    return GitLabForge(clock=lambda: now)


def signed(
    forge: GitLabForge, data: bytes, secret: str, event: str = "Push Hook"
) -> CIMultiDict[str]:
    return CIMultiDict(forge.sign(data, secret, event_name=event, delivery_id=DELIVERY))


def verified(forge: GitLabForge, data: bytes, headers: CIMultiDict[str], secret: str) -> bool:
    check = forge.verifier(secret).start(headers)
    for i in range(0, len(data), 11):
        check.update(data[i : i + 11])
    return check.verified()


def refusal(forge: GitLabForge, headers: CIMultiDict[str], secret: str) -> DeliveryRefused:
    with pytest.raises(DeliveryRefused) as refused:
        forge.verifier(secret).start(headers)
    return refused.value


def read(name: str) -> Event:
    data = body("gitlab", name)
    headers = signed(GITLAB, data, TOKEN, gitlab_event(name))
    assert GITLAB.event_name(headers) == gitlab_event(name)
    return GITLAB.normalize(
        gitlab_event(name),
        GITLAB.delivery_id(headers),
        parse_payload(data),
        data,
        received_at=utcnow(),
        headers=headers,
    )


def test_gitlab_implements_the_interface() -> None:
    forge: Forge = GITLAB
    assert (forge.vendor, forge.event_header, forge.mimics) == (
        "gitlab",
        "X-Gitlab-Event",
        frozenset(),
    )


# -- the secret token ---------------------------------------------------------------------------


def test_the_secret_token_is_compared_whole() -> None:
    data = body("gitlab", "push.json")
    headers = signed(GITLAB, data, TOKEN)
    assert headers["X-Gitlab-Token"] == TOKEN
    assert verified(GITLAB, data, headers, TOKEN)
    for wrong in ["", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), " " + TOKEN, "other-project"]:
        headers["X-Gitlab-Token"] = wrong
        assert not verified(GITLAB, data, headers, TOKEN), wrong


def test_a_token_delivery_digest_is_keyed_and_stable() -> None:
    data = body("gitlab", "push.json")
    check = GITLAB.verifier(TOKEN).start(CIMultiDict({"X-Gitlab-Token": TOKEN}))
    check.update(data)
    assert check.digest() == hmac.new(TOKEN.encode(), data, hashlib.sha256).hexdigest()
    assert check.digest() != hashlib.sha256(data).hexdigest()


def test_missing_credentials() -> None:
    assert GITLAB.missing_credentials(CIMultiDict()) == (
        "no X-Gitlab-Token or webhook-signature header"
    )
    assert GITLAB.missing_credentials(CIMultiDict({"X-Gitlab-Token": "x"})) == ""
    assert GITLAB.missing_credentials(CIMultiDict({"webhook-signature": "x"})) == ""
    # A token is expected but only a signature came: said so, before the body is read.
    refused = refusal(GITLAB, CIMultiDict({"webhook-signature": "v1,x"}), TOKEN)
    assert (refused.status, refused.reason) == (401, "no X-Gitlab-Token header")
    assert "whsec_" in refused.message


# -- the signing token (Standard Webhooks) ------------------------------------------------------


def test_standard_webhooks_signature_is_computed_independently() -> None:
    data = b'{"object_kind":"push"}'
    mac = hmac.new(KEY, f"msg_1.{int(NOW)}.".encode() + data, hashlib.sha256).digest()
    assert gitlab.standard_signature(KEY, "msg_1", str(int(NOW)), data) == (
        "v1," + base64.b64encode(mac).decode()
    )
    headers = signed(at(NOW), data, SIGNING)
    assert headers["webhook-id"] == headers["Idempotency-Key"] == DELIVERY
    assert headers["webhook-timestamp"] == str(int(NOW))
    assert "X-Gitlab-Token" not in headers
    assert verified(at(NOW), data, headers, SIGNING)


def test_the_standard_webhooks_published_example() -> None:
    """The example of the Standard Webhooks specification, verified by this code."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    data = b'{"test": 2432232314}'
    headers = CIMultiDict(
        {
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        }
    )
    assert verified(at(1614265330), data, headers, secret)
    assert not verified(at(1614265330), data + b" ", headers, secret)


def test_several_signatures_one_of_them_valid() -> None:
    data = b'{"a": 1}'
    headers = signed(at(NOW), data, SIGNING)
    good = headers["webhook-signature"]
    other = gitlab.standard_signature(bytes(32), DELIVERY, headers["webhook-timestamp"], data)
    headers["webhook-signature"] = f"v2,abc {other} {good}"
    assert verified(at(NOW), data, headers, SIGNING)
    headers["webhook-signature"] = f"{other} v1,{'A' * 43}="
    assert not verified(at(NOW), data, headers, SIGNING)


@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1, -86_400, 10**9])
def test_a_timestamp_outside_the_tolerance_is_a_replay(offset: int) -> None:
    data = b'{"a": 1}'
    headers = signed(at(NOW), data, SIGNING)
    refused = refusal(at(NOW + offset), headers, SIGNING)
    assert (refused.status, refused.reason) == (401, "timestamp outside the tolerance")
    assert "replayed" in refused.message


@pytest.mark.parametrize("offset", [-TOLERANCE, 0, TOLERANCE])
def test_a_timestamp_inside_the_tolerance_passes(offset: int) -> None:
    data = b'{"a": 1}'
    assert verified(at(NOW + offset), data, signed(at(NOW), data, SIGNING), SIGNING)


def test_the_signature_covers_id_timestamp_and_body() -> None:
    data = b'{"a": 1}'
    headers = signed(at(NOW), data, SIGNING)
    for name, value in [
        ("webhook-id", "another-id"),
        ("webhook-timestamp", str(int(NOW) + 1)),
    ]:
        changed = headers.copy()
        changed[name] = value
        assert not verified(at(NOW), data, changed, SIGNING), name
    assert not verified(at(NOW), b'{"a": 2}', headers, SIGNING)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("webhook-timestamp", "", "bad signature headers"),
        ("webhook-timestamp", "1e9", "bad signature headers"),
        ("webhook-timestamp", "-5", "bad signature headers"),
        ("webhook-timestamp", "nan", "bad signature headers"),
        ("webhook-timestamp", "9" * 13, "bad signature headers"),
        ("webhook-id", "", "bad signature headers"),
        ("webhook-id", "a b", "bad signature headers"),
        ("webhook-signature", "", "no v1 signature"),
        ("webhook-signature", "v1", "no v1 signature"),
        ("webhook-signature", "v1,,", "no v1 signature"),
        ("webhook-signature", "v1,!!!!", "no v1 signature"),
        ("webhook-signature", "v1a,b,c", "no v1 signature"),
    ],
)
def test_malformed_signature_headers_are_refused_cleanly(
    name: str, value: str, reason: str
) -> None:
    headers = signed(at(NOW), b"{}", SIGNING)
    headers[name] = value
    refused = refusal(at(NOW), headers, SIGNING)
    assert (refused.status, refused.reason) == (401, reason)


def test_a_signing_token_expects_a_signature() -> None:
    refused = refusal(at(NOW), CIMultiDict({"X-Gitlab-Token": SIGNING}), SIGNING)
    assert (refused.status, refused.reason) == (401, "no webhook-signature header")


@pytest.mark.parametrize(
    "secret", ["whsec_", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()]
)
def test_a_broken_signing_token_says_so(secret: str) -> None:
    headers = signed(at(NOW), b"{}", SIGNING)
    refused = refusal(at(NOW), headers, secret)
    assert (refused.status, refused.reason) == (503, "bad signing token")


def test_a_signed_delivery_digest_ignores_id_and_timestamp() -> None:
    """The same body retried later (new timestamp) is recognised as the same body."""
    data = b'{"a": 1}'
    digests = set()
    for now in (NOW, NOW + 60):
        check = at(now).verifier(SIGNING).start(signed(at(now), data, SIGNING))
        check.update(data)
        assert check.verified()
        digests.add(check.digest())
    assert len(digests) == 1


# -- headers ------------------------------------------------------------------------------------


def test_delivery_id_prefers_the_idempotency_key() -> None:
    both = CIMultiDict(
        {"Idempotency-Key": "idem-1", "webhook-id": "wh-1", "X-Gitlab-Event-UUID": "uuid-1"}
    )
    assert GITLAB.delivery_id(both) == "idem-1"
    del both["Idempotency-Key"]
    assert GITLAB.delivery_id(both) == "wh-1"
    del both["webhook-id"]
    assert GITLAB.delivery_id(both) == "uuid-1"
    assert GITLAB.delivery_id(CIMultiDict()) == ""
    assert GITLAB.delivery_id(CIMultiDict({"Idempotency-Key": "-bad"})) == ""


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("Push Hook", True),
        ("Tag Push Hook", True),
        ("Merge Request Hook", True),
        ("Confidential Note Hook", True),
        ("push", False),
        ("Push Hook\n", False),
        ("Hook", False),
        ("Push  Hook", False),
        ("A " * 40 + "Hook", False),
    ],
)
def test_event_names(value: str, ok: bool) -> None:
    assert GITLAB.event_name(CIMultiDict({"X-Gitlab-Event": value})) == (value if ok else "")


def test_event_types() -> None:
    assert [
        gitlab.event_type_of(n)
        for n in ["Push Hook", "Tag Push Hook", "Merge Request Hook", "Release Hook"]
    ] == ["push", "tag", "merge_request", "release"]
    assert gitlab.event_type_of("Confidential Note Hook") == "confidential_note"
    assert gitlab.event_type_of("Pipeline Hook") == "pipeline"


# -- the real payloads, read beside go-scm's reading --------------------------------------------

EXPECTED: dict[str, tuple[str, str, str]] = {
    # file: (event_type, filter, ignore reason)
    "branch_create.json": ("push", "feature", ""),
    "branch_delete.json": ("push", "feature", "branch deleted"),
    "branch_delete_subgroup.json": ("push", "feature", "branch deleted"),
    "issue_closed.json": ("issue", "close", ""),
    "issue_comment_create.json": ("note", "", ""),
    "issue_create.json": ("issue", "open", ""),
    "issue_edited.json": ("issue", "update", ""),
    "issue_labeled.json": ("issue", "update", ""),
    "issue_reopen.json": ("issue", "reopen", ""),
    "merge_request_comment_create.json": ("note", "", ""),
    "merge_request_comment_subgroup.json": ("note", "", ""),
    "merge_request_subgroup.json": ("merge_request", "open", ""),
    "pipeline_hook.json": ("pipeline", "", ""),
    "pipeline_subgroup.json": ("pipeline", "", ""),
    "pull_request_close.json": ("merge_request", "close", ""),
    "pull_request_create.json": ("merge_request", "open", ""),
    "pull_request_merge.json": ("merge_request", "merge", ""),
    "pull_request_reopen.json": ("merge_request", "reopen", ""),
    "pull_request_review_ready.json": ("merge_request", "update", gitlab.NO_NEW_COMMITS),
    "push.json": ("push", "master", ""),
    "push_merge.json": ("push", "master", ""),
    "push_subgroup.json": ("push", "master", ""),
    "review_comment_create.json": ("note", "", ""),
    "tag_create.json": ("tag", "v1.0.0", ""),
    "tag_delete.json": ("tag", "v1.0.0", "tag deleted"),
    "tag_delete_subgroup.json": ("tag", "v1.0.0", "tag deleted"),
}


def test_every_gitlab_fixture_is_covered() -> None:
    assert len(GITLAB_BODIES) == 26
    assert set(GITLAB_BODIES) == set(EXPECTED)


@pytest.mark.parametrize("name", GITLAB_BODIES)
def test_fixture_reading(name: str) -> None:
    event = read(name)
    assert (event.vendor, event.event_name) == ("gitlab", gitlab_event(name))
    assert (event.event_type, event.filter, GITLAB.ignore_reason(event)) == EXPECTED[name]
    assert event.delivery_id == DELIVERY
    assert event.body == body("gitlab", name)
    if "subgroup" in name:
        assert event.repository == "group1/group2/group3/grp2repo"


@pytest.mark.parametrize("name", [n for n in GITLAB_BODIES if golden("gitlab", n)])
def test_fixture_reading_agrees_with_go_scm(name: str) -> None:
    reading = golden("gitlab", name)
    assert reading is not None
    expected = gitlab_oracle(name, reading)
    event = read(name)
    assert {key: getattr(event, key) for key in expected} == expected


def test_fixture_merge_request_fields() -> None:
    event = read("merge_request_subgroup.json")
    assert (event.ref, event.sha, event.base_ref, event.pr_number, event.is_fork) == (
        "refs/merge-requests/1/head",
        "c4c79227ed610f1151f05bbc5be33b4f340d39c8",
        "master",
        1,
        False,
    )
    assert event.title == "update readme"
    assert GITLAB.commit_source(event) == "payload"


def _modified(name: str, change: Any) -> tuple[dict[str, Any], bytes]:
    payload = json.loads(body("gitlab", name))
    change(payload)
    return payload, json.dumps(payload).encode()


def _normalize(event_name: str, payload: dict[str, Any], data: bytes) -> Event:
    return GITLAB.normalize(
        event_name, DELIVERY, payload, data, received_at=utcnow(), headers=CIMultiDict()
    )


def test_an_update_with_new_commits_runs() -> None:
    def pushed(p: dict[str, Any]) -> None:
        p["object_attributes"]["oldrev"] = "9217710ce8c7e1eae7a5d1c45f6e43e1c769f866"

    payload, data = _modified("pull_request_review_ready.json", pushed)
    event = _normalize("Merge Request Hook", payload, data)
    assert (event.filter, GITLAB.ignore_reason(event)) == ("update", "")


def test_merge_requests_from_forks() -> None:
    def from_fork(p: dict[str, Any]) -> None:
        p["object_attributes"]["source_project_id"] = 999

    payload, data = _modified("pull_request_create.json", from_fork)
    assert _normalize("Merge Request Hook", payload, data).is_fork
    assert GITLAB.is_fork("Merge Request Hook", payload)
    assert not GITLAB.is_fork("Push Hook", payload)

    def unknown_source(p: dict[str, Any]) -> None:
        del p["object_attributes"]["source_project_id"]

    payload, data = _modified("pull_request_create.json", unknown_source)
    assert _normalize("Merge Request Hook", payload, data).is_fork  # unknown: treated as one


def test_release() -> None:
    payload: dict[str, Any] = {
        "object_kind": "release",
        "action": "create",
        "tag": "v1.2.0",
        "name": "Release 1.2",
        "commit": {"id": "2adc9465c4edfc33834e173fe89436a7cb899a1d"},
        "project": {"path_with_namespace": "team/sub/api"},
    }
    event = _normalize("Release Hook", payload, json.dumps(payload).encode())
    assert (event.event_type, event.filter, event.ref, event.sha, event.repository) == (
        "release",
        "create",
        "refs/tags/v1.2.0",
        "2adc9465c4edfc33834e173fe89436a7cb899a1d",
        "team/sub/api",
    )
    assert (event.title, GITLAB.ignore_reason(event)) == ("Release 1.2", "")
    assert GITLAB.commit_source(event) == "payload"
    del payload["commit"]
    event = _normalize("Release Hook", payload, json.dumps(payload).encode())
    assert (GITLAB.commit_refs(event), GITLAB.commit_source(event)) == (
        ("refs/tags/v1.2.0",),
        "release tag",
    )


@pytest.mark.parametrize(
    "path",
    ["", "solo", "a/../b", "-x/y", "a/.hidden", "a b/c", "/".join("g" * 1 for _ in range(23))],
)
def test_implausible_project_paths_are_not_names(path: str) -> None:
    payload = {"project": {"path_with_namespace": path}}
    event = _normalize("Push Hook", payload, b"{}")
    assert event.repository == ""
    assert GITLAB.ignore_reason(event) == "no project in the payload"


def test_unsafe_refs_are_refused() -> None:
    def evil(p: dict[str, Any]) -> None:
        p["ref"] = "refs/heads/--upload-pack=touch /tmp/pwn"

    payload, data = _modified("push.json", evil)
    assert GITLAB.ignore_reason(_normalize("Push Hook", payload, data)).startswith("refused:")


def test_clone_url_merge_request_refs_and_git_auth() -> None:
    assert GITLAB.clone_url("https://gitlab.example.org", "team/sub/api") == (
        "https://gitlab.example.org/team/sub/api.git"
    )
    assert GITLAB.pull_request_refs(4) == ("refs/merge-requests/4/head",)
    auth = GITLAB.git_auth("glpat-x")
    assert (auth.username, auth.password) == ("oauth2", "glpat-x")


# -- fuzzing ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=st.sampled_from(
        ["Push Hook", "Tag Push Hook", "Merge Request Hook", "Release Hook", "Note Hook"]
    ),
    payload=st.dictionaries(
        st.sampled_from(
            [
                "ref",
                "after",
                "before",
                "action",
                "tag",
                "commit",
                "commits",
                "message",
                "project",
                "object_attributes",
            ]
        ),
        json_values,
    ),
)
def test_normalize_never_crashes_on_junk(event: str, payload: dict[str, Any]) -> None:
    e = _normalize(event, payload, json.dumps(payload).encode())
    assert isinstance(e.filter, str)
    assert isinstance(e.repository, str)
    assert isinstance(GITLAB.ignore_reason(e), str)
    assert isinstance(GITLAB.is_fork(event, payload), bool)
    assert e.pr_number is None or 0 < e.pr_number <= 2**53


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "X-Gitlab-Token"]),
        st.text(max_size=80),
    ),
    data=st.binary(max_size=64),
)
def test_verification_never_crashes_on_junk_headers(headers: dict[str, str], data: bytes) -> None:
    """Whatever the headers hold, a verifier answers yes, no, or a clean refusal."""
    statuses: set[int] = set()
    for secret in (TOKEN, SIGNING):
        try:
            check = at(NOW).verifier(secret).start(CIMultiDict(headers))
        except DeliveryRefused as refused:
            statuses.add(refused.status)
            continue
        check.update(data)
        assert isinstance(check.verified(), bool)
    assert statuses <= {401}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_the_whole_reading_refuses_junk_bodies_cleanly(data: bytes) -> None:
    try:
        payload = parse_payload(data)
    except PayloadError:
        return
    assert isinstance(GITLAB.ignore_reason(_normalize("Push Hook", payload, data)), str)


def test_function_names_use_the_forges_words() -> None:
    opened = read("pull_request_create.json")
    tag = read("tag_create.json")
    assert tier_names(opened.vendor, opened.event_type, opened.filter)[0] == (
        "onGitlabMergeRequestOpen"
    )
    assert tier_names(tag.vendor, tag.event_type, tag.filter)[1] == "onGitlabTag"
    assert belongs_to("testOnGitlabTag", "onGitlabTag")


def test_oldrev_is_found_without_decoding_when_absent_and_in_large_bodies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The intake decides on the event loop: no second decode of a large body, nor when the
    raw bytes already say there is no ``oldrev``."""
    payload, _ = _modified("pull_request_review_ready.json", lambda p: None)
    small = _normalize("Merge Request Hook", payload, json.dumps(payload).encode())
    payload["object_attributes"]["description"] = "x" * 300_000
    large = _normalize("Merge Request Hook", payload, json.dumps(payload).encode())
    payload["object_attributes"]["oldrev"] = "9217710ce8c7e1eae7a5d1c45f6e43e1c769f866"
    large_pushed = _normalize("Merge Request Hook", payload, json.dumps(payload).encode())

    def no_decoding(self: Event) -> Any:
        raise AssertionError("the body was decoded again")

    with monkeypatch.context() as patched:
        patched.setattr(Event, "payload", no_decoding)
        assert GITLAB.ignore_reason(small) == gitlab.NO_NEW_COMMITS
        assert GITLAB.ignore_reason(large) == gitlab.NO_NEW_COMMITS
        assert GITLAB.ignore_reason(large_pushed) == ""
    # A small body with "oldrev" elsewhere than object_attributes is decoded and not fooled.
    payload, _ = _modified("pull_request_review_ready.json", lambda p: p.update(oldrev="x"))
    data = json.dumps(payload).encode()
    assert GITLAB.ignore_reason(_normalize("Merge Request Hook", payload, data)) == (
        gitlab.NO_NEW_COMMITS
    )
