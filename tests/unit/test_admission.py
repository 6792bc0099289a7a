"""Admission: what the configuration refuses to build, decided before anything is fetched."""

from __future__ import annotations

from dataclasses import replace

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.engine.dispatch.admission import Refusal, admit
from pocketci_tui.model import Event, EventStatus, StoredEvent, utcnow

HEAD = "ab" * 20
REPO = RepoConfig(name="acme/api")
SETTINGS = Settings(repos=(REPO,))


def pull_request(*, fork: bool = True, approved: str = "", sha: str = HEAD) -> StoredEvent:
    event = Event(
        vendor="github",
        event_type="pull_request",
        filter="opened",
        repository="acme/api",
        ref="refs/pull/9/head",
        sha=sha,
        base_ref="main",
        base_sha="cd" * 20,
        pr_number=9,
        is_fork=fork,
        delivery_id="d-9",
        received_at=utcnow(),
        body=b"{}",
        id=9,
    )
    return StoredEvent(event, EventStatus.RECEIVED, approved_sha=approved)


def test_an_unconfigured_repository_and_a_deletion_are_ignored() -> None:
    stored = pull_request(fork=False)
    other = replace(stored, event=replace(stored.event, repository="acme/web"))
    deleted = replace(stored, event=replace(stored.event, deleted=True))

    assert admit(other, SETTINGS) == Refusal(EventStatus.IGNORED, "acme/web is not in the config")
    assert admit(deleted, SETTINGS) == Refusal(EventStatus.IGNORED, "deleted: nothing to build")
    assert admit(stored, SETTINGS) == REPO


def test_a_fork_waits_for_approval_of_its_head_commit() -> None:
    waiting = admit(pull_request(), SETTINGS)
    assert waiting == Refusal(
        EventStatus.WAITING, f"fork pull request: waiting for approval of {HEAD[:12]}"
    )

    stale = admit(pull_request(approved="ef" * 20), SETTINGS)
    assert isinstance(stale, Refusal)
    assert stale.status is EventStatus.WAITING
    assert stale.detail.endswith(f"(approved {'ef' * 6}, a newer commit came)")

    assert admit(pull_request(approved=HEAD), SETTINGS) == REPO


def test_the_fork_policy_decides_skip_and_no_secrets() -> None:
    skip = replace(SETTINGS, fork_pull_requests="skip")
    refused = admit(pull_request(approved=HEAD), skip)
    assert refused == Refusal(
        EventStatus.SKIPPED, "fork pull request: not built (fork-pull-requests: skip)"
    )
    no_secrets = replace(SETTINGS, fork_pull_requests="no-secrets")
    assert admit(pull_request(), no_secrets) == REPO


def test_a_commit_git_could_not_be_asked_for_safely_is_refused() -> None:
    refused = admit(pull_request(fork=False, sha="--upload-pack=evil"), SETTINGS)
    assert isinstance(refused, Refusal)
    assert refused.status is EventStatus.ERROR
    assert refused.detail.startswith("refused: ")


def test_a_gitlab_fork_is_a_merge_request_in_the_details() -> None:
    stored = pull_request()
    gitlab = RepoConfig(name="acme/api", vendor="gitlab")
    mr = replace(stored, event=replace(stored.event, vendor="gitlab", event_type="merge_request"))
    waiting = admit(mr, Settings(repos=(gitlab,)))
    assert waiting == Refusal(
        EventStatus.WAITING, f"fork merge request: waiting for approval of {HEAD[:12]}"
    )
    skipped = admit(mr, Settings(repos=(gitlab,), fork_pull_requests="skip"))
    assert isinstance(skipped, Refusal)
    assert skipped.detail == "fork merge request: not built (fork-pull-requests: skip)"
