"""What the fork approval dialog rests on, read from a stored delivery and the user config."""

from __future__ import annotations

import json
from dataclasses import replace

from pocketci_tui.config import DaggerSettings, RepoConfig, Settings
from pocketci_tui.engine.dispatch.approval import DELETED_HEAD, fork_approval
from pocketci_tui.model import Event, EventStatus, StoredEvent, utcnow

HEAD = "ab" * 20


def _stored(payload: object) -> StoredEvent:
    event = Event(
        vendor="github",
        event_type="pull_request",
        filter="opened",
        repository="acme/api",
        ref="refs/pull/9/head",
        sha=HEAD,
        base_ref="main",
        base_sha="cd" * 20,
        pr_number=9,
        is_fork=True,
        delivery_id="d-9",
        received_at=utcnow(),
        body=json.dumps(payload).encode(),
        title="fallback title",
        id=9,
    )
    return StoredEvent(event, EventStatus.WAITING)


def test_a_deleted_fork_and_a_sender_other_than_the_author() -> None:
    payload = {
        "pull_request": {
            "title": "Speed up\x1b[2J the build",
            "user": {"login": "alice"},
            "head": {"ref": "fast", "repo": None},
        },
        "sender": {"login": "bob"},
    }
    settings = Settings(repos=(RepoConfig(name="acme/*", secrets=("npm-token",)),))
    facts = fork_approval(_stored(payload), settings)
    assert facts.head_repository == DELETED_HEAD
    assert (facts.author, facts.sender, facts.head_ref) == ("alice", "bob", "fast")
    assert facts.head_sha == HEAD
    assert facts.title == "Speed up\x1b[2J the build"  # untrusted: the dialog cleans it
    assert facts.secrets == ("secret-store entry 'npm-token'",)


def test_own_entries_are_named_and_the_cloud_token_is_listed() -> None:
    payload = {"pull_request": {"user": {"login": "alice"}}, "sender": {"login": "alice"}}
    settings = Settings(
        repos=(RepoConfig(name="acme/api", token="api-token", secrets=("webhook-secret",)),),
        dagger=DaggerSettings(cloud_token="dagger-cloud"),
    )
    facts = fork_approval(_stored(payload), settings)
    assert facts.sender == ""  # the author pushed it
    assert facts.title == "fallback title"
    assert facts.secrets == (
        "secret-store entry 'webhook-secret': the webhook secret (anyone holding it can sign "
        "deliveries)",
        "DAGGER_CLOUD_TOKEN (secret-store entry 'dagger-cloud')",
    )


def test_a_gitlab_merge_request_from_a_fork_names_its_source_project() -> None:
    """GitLab's hook has no ``pull_request``: the fork and branch are the MR's source."""
    payload = {
        "object_kind": "merge_request",
        "user": {"username": "mallory", "name": "M"},
        "object_attributes": {
            "action": "open",
            "iid": 9,
            "title": "Add a step",
            "source_branch": "patch-1",
            "source_project_id": 2,
            "target_project_id": 1,
            "source": {"path_with_namespace": "mallory/sub/api"},
            "target": {"path_with_namespace": "team/sub/api"},
        },
    }
    stored = _stored(payload)
    stored = StoredEvent(
        replace(stored.event, vendor="gitlab", repository="team/sub/api"), stored.status
    )
    settings = Settings(repos=(RepoConfig(name="team/sub/api", vendor="gitlab"),))
    facts = fork_approval(stored, settings)
    assert (facts.head_repository, facts.head_ref) == ("mallory/sub/api", "patch-1")
    assert (facts.author, facts.sender) == ("mallory", "")
    assert facts.title == "Add a step"
    assert facts.head_sha == HEAD
    assert facts.vendor == "gitlab"  # the dialog speaks of a merge request
    # An update names who pushed, not who opened it.
    payload["object_attributes"]["action"] = "update"  # type: ignore[index]
    stored = StoredEvent(replace(stored.event, body=json.dumps(payload).encode()), stored.status)
    facts = fork_approval(stored, settings)
    assert (facts.author, facts.sender) == ("", "mallory")


def test_a_gitea_pull_request_from_a_fork_reads_like_github() -> None:
    payload = {
        "pull_request": {
            "title": "Fix",
            "user": {"login": "jcitizen"},
            "head": {"ref": "feature", "repo": {"full_name": "jcitizen/my-repo"}},
        },
        "sender": {"login": "jcitizen"},
    }
    stored = _stored(payload)
    stored = StoredEvent(replace(stored.event, vendor="gitea"), stored.status)
    settings = Settings(repos=(RepoConfig(name="acme/api", vendor="gitea"),))
    facts = fork_approval(stored, settings)
    assert (facts.head_repository, facts.head_ref, facts.author) == (
        "jcitizen/my-repo",
        "feature",
        "jcitizen",
    )
