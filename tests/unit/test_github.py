"""Normalizing realistic GitHub payloads into Events (SPEC 4.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pocketci_tui.forges import github
from pocketci_tui.model import ZERO_SHA, Event, utcnow

HEAD = "e4d909c290d0fb1ca068ffaddf22cbd0e4d909c2"
BASE = "b1946ac92492d2347c6235b4d2611184b1946ac9"
AFTER = "9f2c1a7e3b5d4c6e8f0a1b2c3d4e5f60718293a4"
BEFORE = "3c1b8a2d4e6f7081920a1b2c3d4e5f6a7b8c9d0e"


def load(payloads_dir: Path, name: str, event: str) -> Event:
    body = (payloads_dir / f"{name}.json").read_bytes()
    payload = github.parse_payload(body)
    return github.normalize(
        event,
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        payload,
        body,
        received_at=utcnow(),
        hook_id="512345678",
    )


def test_push_to_branch(payloads_dir: Path) -> None:
    e = load(payloads_dir, "push_branch", "push")
    assert (e.vendor, e.event_type, e.filter, e.repository) == (
        "github",
        "push",
        "main",
        "acme/api",
    )
    assert (e.ref, e.sha, e.base_sha) == ("refs/heads/main", AFTER, BEFORE)
    assert e.title == "Fix the login redirect"
    assert not e.deleted
    assert e.pr_number is None
    assert not e.is_fork
    assert e.hook_id == "512345678"
    assert e.event_name == "push"
    assert e.body == (payloads_dir / "push_branch.json").read_bytes()
    assert github.ignore_reason(e) == ""


def test_push_new_branch_with_slash(payloads_dir: Path) -> None:
    e = load(payloads_dir, "push_new_branch", "push")
    assert (e.event_type, e.filter, e.base_sha) == ("push", "feature/login", ZERO_SHA)
    assert github.ignore_reason(e) == ""


def test_push_of_a_tag(payloads_dir: Path) -> None:
    e = load(payloads_dir, "push_tag", "push")
    assert (e.event_type, e.filter, e.ref, e.sha) == ("tag", "v1.4.0", "refs/tags/v1.4.0", AFTER)
    assert e.title == "Fix the login redirect"
    assert github.ignore_reason(e) == ""


def test_branch_deletion_is_ignored(payloads_dir: Path) -> None:
    e = load(payloads_dir, "push_branch_deleted", "push")
    assert e.deleted
    assert (e.filter, e.sha, e.title) == ("feature/old", ZERO_SHA, "")
    assert github.ignore_reason(e) == "branch deleted"


def test_deletion_detected_by_zero_sha_alone(payloads_dir: Path) -> None:
    payload = json.loads((payloads_dir / "push_branch_deleted.json").read_text())
    payload["deleted"] = False
    e = github.normalize("push", "d", payload, b"{}", received_at=utcnow())
    assert e.deleted


def test_evil_ref_is_refused(payloads_dir: Path) -> None:
    e = load(payloads_dir, "push_evil_ref", "push")
    assert e.filter.startswith("--upload-pack")
    assert github.ignore_reason(e).startswith("refused:")


def test_pull_request_opened_same_repo(payloads_dir: Path) -> None:
    e = load(payloads_dir, "pull_request_opened", "pull_request")
    assert (e.event_type, e.filter, e.pr_number) == ("pull_request", "opened", 42)
    assert (e.ref, e.sha, e.base_ref, e.base_sha) == ("refs/pull/42/head", HEAD, "main", BASE)
    assert not e.is_fork
    assert e.title == "Add rate limiting to the login endpoint"
    assert github.ignore_reason(e) == ""


def test_pull_request_from_fork(payloads_dir: Path) -> None:
    e = load(payloads_dir, "pull_request_synchronize_fork", "pull_request")
    assert e.filter == "synchronize"
    assert e.is_fork
    assert e.repository == "acme/api"


def test_pull_request_from_deleted_fork_is_a_fork(payloads_dir: Path) -> None:
    """P5: head repository null."""
    e = load(payloads_dir, "pull_request_reopened_deleted_fork", "pull_request")
    assert e.filter == "reopened"
    assert e.is_fork


@pytest.mark.parametrize(
    "action",
    [
        "opened",
        "synchronize",
        "reopened",
        "closed",
        "edited",
        "labeled",
        "ready_for_review",
        "converted_to_draft",
        "assigned",
        "review_requested",
        "auto_merge_enabled",
    ],
)
def test_pull_request_every_action_is_the_filter(payloads_dir: Path, action: str) -> None:
    payload = json.loads((payloads_dir / "pull_request_closed.json").read_text())
    payload["action"] = action
    e = github.normalize("pull_request", "d", payload, b"{}", received_at=utcnow())
    assert e.filter == action
    assert e.pr_number == 42


def test_pull_request_title_kept_as_untrusted_text(payloads_dir: Path) -> None:
    e = load(payloads_dir, "pull_request_labeled", "pull_request")
    assert e.filter == "labeled"
    assert "\x1b[31m" in e.title  # stored verbatim; the UI escapes it when showing


def test_release(payloads_dir: Path) -> None:
    e = load(payloads_dir, "release_published", "release")
    assert (e.event_type, e.filter, e.ref, e.sha) == (
        "release",
        "published",
        "refs/tags/v1.4.0",
        "",
    )
    assert e.title == "v1.4.0 — rate limits"
    assert github.ignore_reason(e) == ""


def test_ping_repo_and_org(payloads_dir: Path) -> None:
    e = load(payloads_dir, "ping", "ping")
    assert (e.event_type, e.filter, e.repository) == ("ping", "", "acme/api")
    assert e.title == "Keep it logically awesome."
    assert github.ignore_reason(e) == "ping: hook verified"
    org = load(payloads_dir, "ping_org", "ping")
    assert org.repository == ""
    assert github.ignore_reason(org) == "ping: hook verified"


def test_generic_events_use_their_own_name_and_action(payloads_dir: Path) -> None:
    e = load(payloads_dir, "issues_opened", "issues")
    assert (e.event_type, e.filter, e.repository, e.ref, e.sha) == (
        "issues",
        "opened",
        "acme/api",
        "",
        "",
    )
    assert github.ignore_reason(e) == ""
    c = load(payloads_dir, "create_branch", "create")
    assert (c.event_type, c.filter) == ("create", "")


def test_events_without_a_commit_id_name_the_refs_to_resolve(payloads_dir: Path) -> None:
    """Issue 10: releases, created refs and repository-level events carry no commit id; the
    refs to ask the remote for (empty: its default branch) come from the payload."""
    release = load(payloads_dir, "release_published", "release")
    assert github.commit_refs(release) == ("refs/tags/v1.4.0", "refs/heads/main")
    created = load(payloads_dir, "create_branch", "create")
    assert created.ref == "refs/heads/feature/login"
    assert github.commit_refs(created) == ("refs/heads/feature/login",)
    assert github.commit_refs(load(payloads_dir, "issues_opened", "issues")) == ()
    body = json.dumps({"ref": "v2", "ref_type": "tag", "repository": {"full_name": "a/b"}})
    tag = github.normalize("create", "d", json.loads(body), body.encode(), received_at=utcnow())
    assert github.commit_refs(tag) == ("refs/tags/v2",)


def test_unsafe_refs_of_create_and_release_targets_are_refused() -> None:
    payload = {"ref": "-x", "ref_type": "branch", "repository": {"full_name": "a/b"}}
    e = github.normalize("create", "d", payload, b"{}", received_at=utcnow())
    assert "starts with '.' or '-'" in github.ignore_reason(e)
    body = json.dumps(
        {"release": {"tag_name": "v1", "target_commitish": "--upload-pack=x"}}
    ).encode()
    r = github.normalize("release", "d", json.loads(body), body, received_at=utcnow())
    assert github.commit_refs(r) == ("refs/tags/v1",)


def test_commit_source_says_where_the_commit_came_from(payloads_dir: Path) -> None:
    from dataclasses import replace

    release = load(payloads_dir, "release_published", "release")
    assert github.commit_source(replace(release, sha=HEAD)) == "release tag"
    on_branch = replace(release, ref="refs/heads/main", sha=HEAD)
    assert github.commit_source(on_branch) == "release target branch"
    issues = load(payloads_dir, "issues_opened", "issues")
    assert github.commit_source(replace(issues, ref="refs/heads/main", sha=HEAD)) == (
        "default branch"
    )
    created = load(payloads_dir, "create_branch", "create")
    assert github.commit_source(replace(created, sha=HEAD)) == "created branch"
    assert github.commit_source(load(payloads_dir, "push_branch", "push")) == "payload"


def test_repository_name_validated() -> None:
    for bad in ["a/../b", "../x", "noslash", "a/b/c", "a b/c", 5, None]:
        assert github.repository_name({"repository": {"full_name": bad}}) == ""
    assert github.repository_name({"repository": {"full_name": "Acme-1/api.go"}}) == "Acme-1/api.go"


def test_push_without_valid_sha_is_refused() -> None:
    payload = {"ref": "refs/heads/main", "after": "not-a-sha", "repository": {"full_name": "a/b"}}
    e = github.normalize("push", "d", payload, b"{}", received_at=utcnow())
    assert "not a commit sha" in github.ignore_reason(e)
    e2 = github.normalize(
        "push", "d", {"repository": {"full_name": "a/b"}}, b"{}", received_at=utcnow()
    )
    assert "no ref" in github.ignore_reason(e2)


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/-c",
        "refs/heads/--output=x",
        "refs/heads/a..b",
        "refs/heads/a b",
        "refs/heads/x.lock",
        "refs/heads//x",
        "refs/heads/a\x00",
        "refs/heads/@{u}",
    ],
)
def test_unsafe_refs(ref: str) -> None:
    assert github.unsafe_ref_reason(ref)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    event=st.sampled_from(["push", "pull_request", "release", "ping", "issues", "x"]),
    payload=st.dictionaries(
        st.sampled_from(
            [
                "ref",
                "after",
                "before",
                "action",
                "deleted",
                "pull_request",
                "repository",
                "release",
                "head_commit",
                "number",
                "zen",
            ]
        ),
        json_values,
    ),
)
def test_normalize_never_crashes_on_junk(event: str, payload: dict[str, object]) -> None:
    e = github.normalize(event, "d", payload, b"{}", received_at=utcnow())
    assert isinstance(e.filter, str)
    assert isinstance(e.repository, str)
    assert isinstance(github.ignore_reason(e), str)
