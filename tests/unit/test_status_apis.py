"""Each forge's status API: requests in its own form, and what its answers mean."""

from __future__ import annotations

import email.utils

import pytest

from pocketci_tui.statuses.apis import APIS, retry_after
from pocketci_tui.store.outbox import OutboxRow

ROW = OutboxRow(1, 1, "r", "gitlab", "grp/sub/proj", "a" * 40, "pocketci/test", "canceled", "x")


def test_each_forge_gets_its_path_header_state_and_context_field() -> None:
    gh = APIS["github"].post("https://api.github.com", replace_vendor("github"), "T")
    assert gh.url == f"https://api.github.com/repos/grp/sub%2Fproj/statuses/{'a' * 40}"
    assert gh.headers["Authorization"] == "Bearer T"
    assert gh.body == {"state": "error", "context": "pocketci/test", "description": "x"}
    gt = APIS["gitea"].post("https://g/api/v1", replace_vendor("gitea"), "T")
    assert gt.headers["Authorization"] == "token T"
    gl = APIS["gitlab"].post("https://gl/api/v4", ROW, "sekret-token-xyz")
    assert gl.url == f"https://gl/api/v4/projects/grp%2Fsub%2Fproj/statuses/{'a' * 40}"
    assert gl.headers["PRIVATE-TOKEN"] == "sekret-token-xyz"
    assert "Authorization" not in gl.headers
    assert gl.body == {"state": "canceled", "name": "pocketci/test", "description": "x"}
    assert "sekret" not in repr(gl)  # the headers stay out of any repr


def replace_vendor(vendor: str) -> OutboxRow:
    from dataclasses import replace

    return replace(ROW, vendor=vendor)


def test_answers_are_retried_or_refused_for_good() -> None:
    gh = APIS["github"]
    assert gh.verdict(201, {}, "").outcome == "sent"
    limited = gh.verdict(429, {"retry-after": "7"}, "")
    assert (limited.outcome, limited.wait) == ("retry", 7.0)
    assert gh.verdict(502, {}, "bad gateway").ambiguous
    rate = gh.verdict(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "99999999999"}, "")
    assert rate.outcome == "retry"
    assert rate.wait == 3600.0
    denied = gh.verdict(403, {}, '{"message": "Resource not accessible by integration"}')
    assert denied.outcome == "failed"
    assert (
        denied.reason
        == "403, the token lacks the Commit statuses permission (classic: repo:status)"
    )
    moved = gh.verdict(301, {"location": "https://elsewhere.example/x"}, "")
    assert moved.outcome == "failed"
    assert "redirects are not followed" in moved.reason
    assert gh.verdict(422, {}, '{"message": "No commit found for SHA"}').reason.endswith("SHA")
    gl = APIS["gitlab"]
    assert gl.verdict(400, {}, '{"message": "Cannot transition status via :run"}').outcome == "sent"
    assert gl.verdict(409, {}, "").outcome == "retry"
    assert gl.verdict(400, {}, '{"message": "name is too long"}').outcome == "failed"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": email.utils.formatdate(1000 + 30, usegmt=True)}, 30.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1060"}, 60.0),
        ({"x-ratelimit-remaining": "12", "x-ratelimit-reset": "1060"}, None),
    ],
)
def test_retry_after_and_rate_limit_headers(headers: dict[str, str], expected: float) -> None:
    assert retry_after(headers, now=1000.0) == expected


def test_a_link_is_sent_in_each_forges_target_url_only_when_given() -> None:
    for vendor in ("github", "gitea", "forgejo", "gitlab"):
        row = replace_vendor(vendor)
        linked = APIS[vendor].post("https://api", row, "T", "https://ci.example.org/#event-1")
        assert linked.body is not None
        assert linked.body["target_url"] == "https://ci.example.org/#event-1"
        bare = APIS[vendor].post("https://api", row, "T")
        assert bare.body is not None
        assert "target_url" not in bare.body
