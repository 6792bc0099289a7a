"""Gitea and Forgejo: signatures, headers and the reading of real payloads (issue 13)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from forgefixtures import bodies, body, gitea_event, gitea_oracle, golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from pocketci_tui.engine.match.naming import tier_names
from pocketci_tui.forges import gitea
from pocketci_tui.forges.base import DeliveryRefused, Forge
from pocketci_tui.forges.gitea import FORGEJO, GITEA, GiteaForge
from pocketci_tui.forges.payload import PayloadError, parse_payload
from pocketci_tui.model import ZERO_SHA, Event, utcnow

SECRET = "gitea-webhook-secret"
DELIVERY = "5d9f4c1e-0b1a-4e8e-9a57-3f0f2c7a1b2c"
GITEA_BODIES = bodies("gitea")


def headers_for(
    forge: GiteaForge, data: bytes, event: str, secret: str = SECRET
) -> CIMultiDict[str]:
    return CIMultiDict(forge.sign(data, secret, event_name=event, delivery_id=DELIVERY))


def verified(
    forge: GiteaForge, data: bytes, headers: CIMultiDict[str], secret: str = SECRET
) -> bool:
    check = forge.verifier(secret).start(headers)
    for i in range(0, len(data), 7):  # fed in pieces, as the body arrives
        check.update(data[i : i + 7])
    return check.verified()


def read(forge: GiteaForge, name: str) -> Event:
    data = body("gitea", name)
    event_name = gitea_event(name)
    headers = headers_for(forge, data, event_name)
    assert forge.event_name(headers) == event_name
    assert forge.delivery_id(headers) == DELIVERY
    return forge.normalize(
        event_name, DELIVERY, parse_payload(data), data, received_at=utcnow(), headers=headers
    )


def test_both_forges_implement_the_interface() -> None:
    forges: list[Forge] = [GITEA, FORGEJO]
    assert [f.vendor for f in forges] == ["gitea", "forgejo"]
    assert (GITEA.event_header, FORGEJO.event_header) == ("X-Gitea-Event", "X-Forgejo-Event")
    assert FORGEJO.mimics == {"gitea", "github"}
    assert GITEA.mimics == {"github"}


# -- signatures ---------------------------------------------------------------------------------


def test_signature_is_the_bare_hex_hmac_of_the_body() -> None:
    """The published GitHub vector, as Gitea sends it: the same digest without ``sha256=``."""
    assert gitea.signature_of(b"Hello, World!", "It's a Secret to Everybody") == (
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    data = body("gitea", "push.json")
    headers = headers_for(GITEA, data, "push")
    expected = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
    assert headers["X-Gitea-Signature"] == expected
    assert verified(GITEA, data, headers)
    assert GITEA.verifier(SECRET).start(headers).digest() == expected


def _flip(sig: str, i: int) -> str:
    return sig[:i] + ("0" if sig[i] != "0" else "1") + sig[i + 1 :]


@pytest.mark.parametrize("forge", [GITEA, FORGEJO], ids=["gitea", "forgejo"])
def test_bad_signatures_are_refused(forge: GiteaForge) -> None:
    data = body("gitea", "push.json")
    good = gitea.signature_of(data, SECRET)
    for variant in [
        _flip(good, 0),
        _flip(good, 63),
        "sha256=" + good,
        good.upper(),
        good[:-1],
        good + "0",
        " " + good,
        good + "\n",
        "",
        gitea.signature_of(data, SECRET + "x"),
        gitea.signature_of(data + b" ", SECRET),
    ]:
        headers = CIMultiDict({forge.signature_header: variant})
        assert not verified(forge, data, headers), variant


def test_the_secret_field_in_the_body_is_never_a_credential() -> None:
    """Old Gitea put the secret in the body; knowing it proves nothing without the HMAC."""
    data = body("gitea", "pull_request_opened.json")
    assert parse_payload(data)["secret"] == "12345"
    headers = CIMultiDict({"X-Gitea-Signature": "0" * 64})
    assert not verified(GITEA, data, headers, secret="12345")
    assert GITEA.missing_credentials(CIMultiDict()) == "no X-Gitea-Signature header"


def test_forgejo_reads_its_own_headers_first_then_giteas() -> None:
    data = body("gitea", "push.json")
    good = gitea.signature_of(data, SECRET)
    only_forgejo = CIMultiDict(
        {"X-Forgejo-Signature": good, "X-Forgejo-Event": "push", "X-Forgejo-Delivery": "f-1"}
    )
    only_gitea = CIMultiDict(
        {"X-Gitea-Signature": good, "X-Gitea-Event": "push", "X-Gitea-Delivery": "g-1"}
    )
    assert verified(FORGEJO, data, only_forgejo)
    assert verified(FORGEJO, data, only_gitea)
    assert (FORGEJO.event_name(only_forgejo), FORGEJO.delivery_id(only_forgejo)) == ("push", "f-1")
    assert (FORGEJO.event_name(only_gitea), FORGEJO.delivery_id(only_gitea)) == ("push", "g-1")
    # Forgejo's own header is the one checked when present: a bad one is not saved by Gitea's.
    both = CIMultiDict({"X-Forgejo-Signature": _flip(good, 5), "X-Gitea-Signature": good})
    assert not verified(FORGEJO, data, both)
    # Gitea never reads Forgejo's header.
    assert GITEA.missing_credentials(only_forgejo)
    assert not verified(GITEA, data, only_forgejo)
    assert FORGEJO.missing_credentials(only_gitea) == ""


def test_forgejo_signs_with_every_header_forgejo_sends() -> None:
    data = b'{"a": 1}'
    headers = FORGEJO.sign(data, SECRET, event_name="push", delivery_id=DELIVERY)
    digest = gitea.signature_of(data, SECRET)
    assert headers["X-Forgejo-Signature"] == headers["X-Gitea-Signature"] == digest
    assert headers["X-Hub-Signature-256"] == "sha256=" + digest
    assert headers["X-Forgejo-Event"] == headers["X-Gitea-Event"] == "push"
    assert headers["X-Forgejo-Delivery"] == headers["X-GitHub-Delivery"] == DELIVERY
    assert "X-Forgejo-Event" not in GITEA.sign(data, SECRET, event_name="push", delivery_id="d")


def test_an_empty_secret_never_verifies() -> None:
    with pytest.raises(DeliveryRefused) as refused:
        GITEA.verifier("").start(CIMultiDict({"X-Gitea-Signature": "0" * 64}))
    assert refused.value.status == 503


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("X-Gitea-Event", "push", "push"),
        ("X-Gitea-Event", "pull_request", "pull_request"),
        ("X-Gitea-Event", "Push", ""),
        ("X-Gitea-Event", "push\n", ""),
        ("X-Gitea-Event", "x" * 65, ""),
        ("X-Gitea-Event", "", ""),
    ],
)
def test_event_names_are_validated(header: str, value: str, expected: str) -> None:
    assert GITEA.event_name(CIMultiDict({header: value})) == expected


@pytest.mark.parametrize("value", ["", "-x", "a b", "a" * 129, "é"])
def test_bad_delivery_ids_are_refused(value: str) -> None:
    assert GITEA.delivery_id(CIMultiDict({"X-Gitea-Delivery": value})) == ""


# -- the real payloads, read beside go-scm's reading --------------------------------------------


def test_every_gitea_fixture_is_covered() -> None:
    assert len(GITEA_BODIES) == 19
    assert set(GITEA_BODIES) == set(EXPECTED)


EXPECTED: dict[str, tuple[str, str, str]] = {
    # file: (event_type, filter, ignore reason)
    "push.json": ("push", "master", ""),
    "branch_create.json": ("create", "", ""),
    "branch_delete.json": ("delete", "", "branch deleted"),
    "tag_create.json": ("create", "", gitea.TAG_CREATE_REASON),
    "tag_delete.json": ("delete", "", "tag deleted"),
    "pull_request_opened.json": ("pull_request", "opened", ""),
    "pull_request_synchronized.json": ("pull_request", "synchronized", ""),
    "pull_request_reopened.json": ("pull_request", "reopened", ""),
    "pull_request_edited.json": ("pull_request", "edited", ""),
    "pull_request_closed.json": ("pull_request", "closed", ""),
    "pull_request_merged.json": ("pull_request", "closed", ""),
    "pull_request_comment_created.json": ("issue_comment", "created", ""),
    "pull_request_comment_edited.json": ("issue_comment", "edited", ""),
    "pull_request_comment_deleted.json": ("issue_comment", "deleted", ""),
    "issues_opened.json": ("issues", "opened", ""),
    "issues_closed.json": ("issues", "closed", ""),
    "issue_comment_created.json": ("issue_comment", "created", ""),
    "issue_comment_edited.json": ("issue_comment", "edited", ""),
    "issue_comment_deleted.json": ("issue_comment", "deleted", ""),
}


@pytest.mark.parametrize("name", GITEA_BODIES)
@pytest.mark.parametrize("forge", [GITEA, FORGEJO], ids=["gitea", "forgejo"])
def test_fixture_reading(forge: GiteaForge, name: str) -> None:
    event = read(forge, name)
    assert event.vendor == forge.vendor
    assert event.event_name == gitea_event(name)
    assert (event.event_type, event.filter, forge.ignore_reason(event)) == EXPECTED[name]
    assert event.body == body("gitea", name)
    assert event.delivery_id == DELIVERY
    assert event.repository in ("gogits/hello-world", "jcitizen/my-repo")


@pytest.mark.parametrize("name", [n for n in GITEA_BODIES if golden("gitea", n)])
def test_fixture_reading_agrees_with_go_scm(name: str) -> None:
    reading = golden("gitea", name)
    assert reading is not None
    expected = gitea_oracle(name, reading)
    event = read(GITEA, name)
    ours = {key: getattr(event, key) for key in expected}
    assert ours == expected
    assert len(expected) >= 2  # every golden speaks about the repository and something more


def test_fixture_pull_request_fields() -> None:
    event = read(GITEA, "pull_request_opened.json")
    assert (event.ref, event.sha, event.base_ref, event.base_sha) == (
        "refs/pull/1/head",
        "2eba238e33607c1fa49253182e9fff42baafa1eb",
        "master",
        "39af58f1eff02aa308e16913e887c8d50362b474",
    )
    assert (event.pr_number, event.is_fork, event.title) == (1, False, "Add License File")
    merged = read(GITEA, "pull_request_merged.json")
    assert (merged.filter, merged.payload()["pull_request"]["merged"]) == ("closed", True)


def _modified(name: str, change: Any) -> tuple[dict[str, Any], bytes]:
    payload = json.loads(body("gitea", name))
    change(payload)
    return payload, json.dumps(payload).encode()


def _normalize(forge: GiteaForge, event_name: str, payload: dict[str, Any], data: bytes) -> Event:
    return forge.normalize(
        event_name, DELIVERY, payload, data, received_at=utcnow(), headers=CIMultiDict()
    )


def test_a_pushed_tag_runs_once_from_its_push() -> None:
    """A tag push sends a ``push`` of refs/tags/… and a ``create``: only the push runs."""

    def as_tag(p: dict[str, Any]) -> None:
        p["ref"] = "refs/tags/v1.0.0"

    payload, data = _modified("push.json", as_tag)
    push = _normalize(GITEA, "push", payload, data)
    create = read(GITEA, "tag_create.json")
    assert (push.event_type, push.filter, push.ref) == ("tag", "v1.0.0", "refs/tags/v1.0.0")
    assert push.sha == "4522cbcefc20728a5b72b3a86af35e608622c514"
    assert GITEA.ignore_reason(push) == ""
    assert create.ref == push.ref
    assert GITEA.ignore_reason(create) == gitea.TAG_CREATE_REASON
    runs = [e for e in (push, create) if not GITEA.ignore_reason(e)]
    assert runs == [push]


def test_a_push_deleting_a_branch_is_never_run() -> None:
    def deleted(p: dict[str, Any]) -> None:
        p["after"] = ZERO_SHA

    payload, data = _modified("push.json", deleted)
    event = _normalize(FORGEJO, "push", payload, data)
    assert event.deleted
    assert FORGEJO.ignore_reason(event) == "branch deleted"


def test_pull_requests_from_forks() -> None:
    def from_fork(p: dict[str, Any]) -> None:
        head = p["pull_request"]["head"]["repo"]
        head["id"] += 1
        head["full_name"] = "mallory/my-repo"

    payload, data = _modified("pull_request_synchronized.json", from_fork)
    assert _normalize(GITEA, "pull_request", payload, data).is_fork
    assert GITEA.is_fork("pull_request", payload)

    def fork_deleted(p: dict[str, Any]) -> None:
        p["pull_request"]["head"]["repo"] = None

    payload, data = _modified("pull_request_opened.json", fork_deleted)
    assert _normalize(FORGEJO, "pull_request", payload, data).is_fork

    def renamed_same_repo(p: dict[str, Any]) -> None:
        p["pull_request"]["head"]["repo"]["full_name"] = "jcitizen/renamed"

    payload, data = _modified("pull_request_opened.json", renamed_same_repo)
    assert not _normalize(GITEA, "pull_request", payload, data).is_fork  # same repository id
    assert not GITEA.is_fork("issues", payload)


def test_release() -> None:
    payload: dict[str, Any] = {
        "action": "published",
        "release": {
            "tag_name": "v2.0.0",
            "target_commitish": "main",
            "name": "Version 2\nnotes",
        },
        "repository": {"full_name": "me/app"},
    }
    data = json.dumps(payload).encode()
    event = _normalize(FORGEJO, "release", payload, data)
    assert (event.event_type, event.filter, event.ref, event.sha) == (
        "release",
        "published",
        "refs/tags/v2.0.0",
        "",
    )
    assert event.title == "Version 2"
    assert FORGEJO.ignore_reason(event) == ""
    assert FORGEJO.commit_refs(event) == ("refs/tags/v2.0.0", "refs/heads/main")
    assert FORGEJO.commit_source(event) == "release tag"


@pytest.mark.parametrize(
    "ref",
    ["refs/heads/--upload-pack=touch /tmp/pwn", "refs/heads/-c", "refs/heads/a..b"],
)
def test_unsafe_refs_are_refused(ref: str) -> None:
    def evil(p: dict[str, Any]) -> None:
        p["ref"] = ref

    payload, data = _modified("push.json", evil)
    assert GITEA.ignore_reason(_normalize(GITEA, "push", payload, data)).startswith("refused:")


def test_a_very_long_ref_is_refused() -> None:
    def long_ref(p: dict[str, Any]) -> None:
        p["ref"] = "refs/heads/" + "a" * 2000

    payload, data = _modified("push.json", long_ref)
    reason = GITEA.ignore_reason(_normalize(GITEA, "push", payload, data))
    assert reason.startswith("refused: ref longer than 255 characters")


def test_a_push_without_a_commit_is_refused() -> None:
    def no_sha(p: dict[str, Any]) -> None:
        p["after"] = "HEAD"

    payload, data = _modified("push.json", no_sha)
    assert "is not a commit sha" in GITEA.ignore_reason(_normalize(GITEA, "push", payload, data))


# -- fetching -----------------------------------------------------------------------------------


def test_clone_url_pull_request_refs_and_git_auth() -> None:
    assert GITEA.clone_url("https://git.example.org", "me/app") == (
        "https://git.example.org/me/app.git"
    )
    assert FORGEJO.clone_url("https://example.org/forgejo/", "team/app") == (
        "https://example.org/forgejo/team/app.git"
    )
    for bad in ["me", "me/app/x", "../app", "me/..", "-x/app", "me/app.git", "me/a b"]:
        with pytest.raises(ValueError, match="not a Gitea"):
            GITEA.clone_url("https://git.example.org", bad)
    with pytest.raises(ValueError, match=r"forges\.forgejo\.url"):
        FORGEJO.clone_url("", "me/app")
    assert GITEA.pull_request_refs(7) == ("refs/pull/7/head",)
    auth = FORGEJO.git_auth("tok")
    assert auth.password == "tok"
    assert auth.username == GITEA.git_auth("tok").username != ""


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
    event=st.sampled_from(["push", "pull_request", "release", "create", "delete", "issues", "x"]),
    payload=st.dictionaries(
        st.sampled_from(
            [
                "ref",
                "ref_type",
                "sha",
                "after",
                "before",
                "action",
                "deleted",
                "number",
                "pull_request",
                "repository",
                "release",
                "head_commit",
                "commits",
            ]
        ),
        json_values,
    ),
    forge=st.sampled_from([GITEA, FORGEJO]),
)
def test_normalize_never_crashes_on_junk(
    event: str, payload: dict[str, Any], forge: GiteaForge
) -> None:
    data = json.dumps(payload).encode()
    e = _normalize(forge, event, payload, data)
    assert isinstance(e.filter, str)
    assert isinstance(e.repository, str)
    assert isinstance(forge.ignore_reason(e), str)
    assert isinstance(forge.is_fork(event, payload), bool)
    assert isinstance(forge.commit_refs(e), tuple)
    assert e.pr_number is None or 0 < e.pr_number <= 2**53


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), event=st.sampled_from(["push", "pull_request", "release"]))
def test_the_whole_reading_refuses_junk_bodies_cleanly(data: bytes, event: str) -> None:
    """Whatever a signed body holds, reading it ends in an Event or a PayloadError."""
    headers = headers_for(GITEA, data, event)
    assert verified(GITEA, data, headers)
    try:
        payload = parse_payload(data)
    except PayloadError:
        return
    assert isinstance(GITEA.ignore_reason(_normalize(GITEA, event, payload, data)), str)


def test_function_names_use_the_forges_words() -> None:
    push = read(GITEA, "push.json")
    opened = read(FORGEJO, "pull_request_opened.json")
    assert tier_names(push.vendor, push.event_type, push.filter)[0] == "onGiteaPushMaster"
    assert tier_names(opened.vendor, opened.event_type, opened.filter)[:2] == [
        "onForgejoPullRequestOpened",
        "onForgejoPullRequest",
    ]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.text(max_size=80) | st.from_regex(r"[0-9a-fA-F]{60,68}", fullmatch=True),
    data=st.binary(max_size=64),
    forge=st.sampled_from([GITEA, FORGEJO]),
)
def test_verification_never_crashes_on_junk_signatures(
    header: str, data: bytes, forge: GiteaForge
) -> None:
    """Any signature header but the exact digest is refused, without an exception."""
    headers = CIMultiDict({forge.signature_header: header})
    assert verified(forge, data, headers) == (header == gitea.signature_of(data, SECRET))
