"""The fork approval dialog's secrets section: grants first, then what the head commit gets."""

from __future__ import annotations

from dataclasses import replace

from pocketci_tui.config import RepoConfig, RepoSpec, SecretRef, Settings
from pocketci_tui.engine.dispatch.approval import ForkApproval, HeadSecrets, head_secrets
from pocketci_tui.tui.dialogs.approve import headline, secret_rows

FACTS = ForkApproval(
    event_id=1,
    repository="acme/api",
    number=3,
    head_repository="mallory/api",
    head_ref="x",
    author="mallory",
    sender="",
    title="t",
    head_sha="a" * 40,
    secrets=("secret-store entry 'gh-password'",),
)


def test_until_the_head_is_read_the_grants_are_shown() -> None:
    assert secret_rows(FACTS, None) == [
        ("secrets", "granted to this repository, the most the run can receive:"),
        ("", "• secret-store entry 'gh-password'"),
        ("", "reading this commit's pocketci.yaml..."),
    ]


def test_a_head_that_cannot_be_read_leaves_the_grants_and_says_why() -> None:
    rows = secret_rows(FACTS, HeadSecrets(error="checkout failed\x1b[2J"))
    assert rows[:2] == secret_rows(FACTS, None)[:2]
    assert rows[2] == ("", "cannot read this commit's pocketci.yaml: checkout failed")


def test_what_the_head_commit_gets_and_is_refused() -> None:
    spec = RepoSpec(
        secrets=(
            SecretRef("ghPassword", from_keyring="gh-password"),
            SecretRef("hookSecret", from_keyring="webhook-secret"),
            SecretRef("token", from_env="GITHUB_TOKEN"),
        )
    )
    repo = RepoConfig(name="acme/*", secrets=("gh-password",))
    head = head_secrets(spec, repo, Settings(repos=(repo,)))
    assert secret_rows(FACTS, head) == [
        ("secrets", "this commit receives:"),
        ("", "• ghPassword: secret-store entry 'gh-password'"),
        ("", "it asks for, and is refused (the functions asking fail):"),
        ("", "• hookSecret: secret-store entry 'webhook-secret', not granted to acme/*"),
        ("", "• token: environment variable GITHUB_TOKEN, not granted to acme/*"),
    ]
    # Under no-secrets the run gets nothing whatever the file asks.
    none = head_secrets(spec, repo, Settings(repos=(repo,)), no_secrets=True)
    assert secret_rows(FACTS, none) == [("secrets", "this commit receives none")]


def test_the_dialog_speaks_of_each_forge_change_request_in_its_words() -> None:
    assert headline(FACTS) == (
        "Approve a pull request from a fork",
        "Run pull request #3 from a fork?",
    )
    gitlab = replace(FACTS, vendor="gitlab")
    assert headline(gitlab) == (
        "Approve a merge request from a fork",
        "Run merge request !3 from a fork?",
    )
    assert headline(replace(gitlab, number=None))[1] == "Run merge request from a fork?"
