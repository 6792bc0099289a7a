"""What a person must see before a fork's pull request runs with secrets.

Approving a pull request from a fork lets code written by someone else run on this machine
with the secrets granted to the repository. :func:`fork_approval` gathers what that decision
rests on from the stored delivery and the user config: the head repository and commit, the
author and title, and every secret the run can receive. The approval that follows is pinned to
the head commit shown (:meth:`~pocketci_tui.engine.dispatch.dispatcher.Engine.approve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocketci_tui.config import RepoConfig, RepoSpec, Settings
from pocketci_tui.engine.dispatch.secret_grants import granted, refusal
from pocketci_tui.model import StoredEvent

DELETED_HEAD = "(deleted repository)"
"""What is shown as the head repository when the fork no longer exists."""


@dataclass(frozen=True, slots=True)
class ForkApproval:
    """The facts about a fork's pull request waiting for approval.

    Every text field comes from the payload and is untrusted: show it as literal text.

    Attributes:
        event_id: The stored event.
        repository: The base repository (``owner/name``).
        number: The pull request number, or None.
        head_repository: The fork (``someone/name``), or :data:`DELETED_HEAD`.
        head_ref: The fork's branch.
        author: Who opened the pull request (its ``user.login``).
        sender: Who caused this delivery (``sender.login``), when not the author.
        title: The pull request's title.
        head_sha: The commit the approval is pinned to.
        secrets: One line per secret the run can receive (empty: none).
        vendor: The forge, whose own words the change request is shown in (GitLab's merge
            request, the others' pull request).
    """

    event_id: int
    repository: str
    number: int | None
    head_repository: str
    head_ref: str
    author: str
    sender: str
    title: str
    head_sha: str
    secrets: tuple[str, ...]
    vendor: str = "github"


@dataclass(frozen=True, slots=True)
class HeadSecrets:
    """What the head commit's ``pocketci.yaml`` asks for, against the repository's grants.

    Attributes:
        given: One line per secret the run would receive (``ghPassword: secret-store entry
            'gh-password'``), the Dagger Cloud token included.
        refused: One line per secret it asks for without a grant (the run would not get it).
        error: Why the file could not be read (then the grants are all there is to go by).
    """

    given: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    error: str = ""


def head_secrets(
    spec: RepoSpec, repo: RepoConfig, settings: Settings, *, no_secrets: bool = False
) -> HeadSecrets:
    """Match a head commit's ``pocketci.yaml`` against the grants; no value is read.

    Args:
        spec: The ``pocketci.yaml`` at the head commit.
        repo: The repository's entry in the user config.
        settings: The user configuration (the Dagger Cloud token).
        no_secrets: True when the fork policy gives the run no secrets at all.

    Returns:
        What would be handed over and what would be refused.
    """
    if no_secrets:
        return HeadSecrets()
    given: list[str] = []
    refused: list[str] = []
    for ref in spec.secrets:
        source = (
            f"secret-store entry {ref.from_keyring!r}"
            if ref.from_keyring
            else f"environment variable {ref.from_env}"
        )
        if refusal(ref, repo) is None:
            given.append(f"{ref.name}: {source}")
        else:
            refused.append(f"{ref.name}: {source}, not granted to {repo.name}")
    if settings.dagger.cloud_token:
        given.append(f"DAGGER_CLOUD_TOKEN (secret-store entry {settings.dagger.cloud_token!r})")
    return HeadSecrets(tuple(given), tuple(refused))


def _text(obj: Any, *keys: str) -> str:
    for key in keys:
        if not isinstance(obj, dict):
            return ""
        obj = obj.get(key)
    return obj if isinstance(obj, str) else ""


def fork_approval(stored: StoredEvent, settings: Settings) -> ForkApproval:
    """Gather what to show before approving ``stored`` (a fork's pull request).

    Args:
        stored: The waiting event.
        settings: The user configuration (the repository's grants, the Dagger Cloud token).

    Returns:
        The facts; missing payload fields are empty strings.
    """
    event = stored.event
    assert event.id is not None
    try:
        payload = event.payload()
    except ValueError:
        payload = None
    if event.vendor == "gitlab":
        head_repo, head_ref, author, sender, title = _gitlab_request(payload)
    else:
        # GitHub's pull_request payload; Gitea and Forgejo send the same shape.
        pr = payload.get("pull_request") if isinstance(payload, dict) else None
        head_repo = _text(pr, "head", "repo", "full_name")
        head_ref = _text(pr, "head", "ref")
        author = _text(pr, "user", "login")
        sender = _text(payload, "sender", "login")
        title = _text(pr, "title")
    repo = settings.repo_for(event.vendor, event.repository)
    no_secrets = settings.fork_pull_requests == "no-secrets"
    secrets = granted(settings, repo, fork_no_secrets=no_secrets) if repo is not None else []
    return ForkApproval(
        event_id=event.id,
        repository=event.repository,
        number=event.pr_number,
        head_repository=head_repo or DELETED_HEAD,
        head_ref=head_ref,
        author=author,
        sender=sender if sender != author else "",
        title=title or event.title,
        head_sha=event.sha,
        secrets=tuple(secrets),
        vendor=event.vendor,
    )


def _gitlab_request(payload: Any) -> tuple[str, str, str, str, str]:
    """Read a GitLab merge request hook: (source project, source branch, author, sender, title).

    GitLab names the person who caused the delivery (``user``) but only the id of the merge
    request's author; the person who opened it is known when this delivery is the opening.
    """
    attrs = payload.get("object_attributes") if isinstance(payload, dict) else None
    sender = _text(payload, "user", "username")
    author = sender if _text(attrs, "action") == "open" else ""
    return (
        _text(attrs, "source", "path_with_namespace"),
        _text(attrs, "source_branch"),
        author,
        sender,
        _text(attrs, "title"),
    )
