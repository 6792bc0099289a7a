"""Deliveries as GitHub, Gitea, Forgejo and GitLab send them, for end-to-end tests and benchmarks.

Bodies start from real webhook payloads (the project's GitHub fixtures, and the Gitea and GitLab
bodies of ``tests/fixtures/go-scm``) with the repository, refs and commits of a test
repository written in, and every URL the payload carries pointed at an address where nothing
listens (a payload URL must never be fetched). Headers are signed here, independently of the
code under test, exactly as each forge signs:

* GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``;
* Gitea: ``X-Gitea-Signature: <hex HMAC>``, beside GitHub's and Gogs' headers, which Gitea
  sends too;
* Forgejo: ``X-Forgejo-Signature`` beside all of Gitea's headers;
* GitLab: ``X-Gitlab-Token: <the secret itself>``, and ``Idempotency-Key`` as GitLab 17.4+ does.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import PAYLOADS_DIR

__all__ = ["Delivery", "Forge", "forge_kit"]

NOWHERE = "http://127.0.0.1:9/evil.git"
"""Where every clone URL of a payload points: nothing listens there."""

ZERO = "0" * 40


def _go_scm_dir() -> Path:
    """The ``go-scm`` bodies kept with the tests (``tests/fixtures/go-scm``)."""
    return Path(__file__).resolve().parent / "fixtures" / "go-scm"


def _load(forge: str, name: str) -> dict[str, Any]:
    if forge == "github":
        data: dict[str, Any] = json.loads((PAYLOADS_DIR / f"{name}.json").read_text())
    else:
        data = json.loads((_go_scm_dir() / forge / f"{name}.json").read_text())
    return data


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: the forge's event header value and the exact body."""

    vendor: str
    event: str
    body: bytes

    def headers(self, secret: str, delivery_id: str | None = None) -> dict[str, str]:
        """The headers the forge sends with this body, signed with ``secret``."""
        delivery_id = delivery_id or str(uuid.uuid4())
        headers = {"Content-Type": "application/json"}
        mac = _hex_hmac(secret, self.body)
        if self.vendor in ("github", "gitea", "forgejo"):
            headers.update(
                {
                    "X-GitHub-Event": self.event,
                    "X-GitHub-Delivery": delivery_id,
                    "X-Hub-Signature-256": "sha256=" + mac,
                }
            )
        if self.vendor == "github":
            headers["User-Agent"] = "GitHub-Hookshot/test"
            headers["X-GitHub-Hook-ID"] = "512345678"
        if self.vendor in ("gitea", "forgejo"):
            headers.update(
                {
                    "X-Gogs-Event": self.event,
                    "X-Gogs-Delivery": delivery_id,
                    "X-Gogs-Signature": mac,
                    "X-Gitea-Event": self.event,
                    "X-Gitea-Event-Type": self.event,
                    "X-Gitea-Delivery": delivery_id,
                    "X-Gitea-Signature": mac,
                    "User-Agent": "Go-http-client/1.1",
                }
            )
        if self.vendor == "forgejo":
            headers.update(
                {
                    "X-Forgejo-Event": self.event,
                    "X-Forgejo-Event-Type": self.event,
                    "X-Forgejo-Delivery": delivery_id,
                    "X-Forgejo-Signature": mac,
                }
            )
        if self.vendor == "gitlab":
            headers.update(
                {
                    "X-Gitlab-Event": self.event,
                    "X-Gitlab-Token": secret,
                    "X-Gitlab-Event-UUID": str(uuid.uuid4()),
                    "X-Gitlab-Webhook-UUID": "6bd1a2f4-3f0e-4f4e-9d7a-4a1c1c1e2f3a",
                    "X-Gitlab-Instance": "https://gitlab.example.org",
                    "Idempotency-Key": delivery_id,
                    "User-Agent": "GitLab/17.6.0",
                }
            )
        return headers


class Forge:
    """Builds the deliveries of one forge for one repository.

    Args:
        vendor: ``github``, ``gitea``, ``forgejo`` or ``gitlab``.
        repository: The full name (``owner/name``, GitLab ``group/sub/project``).
    """

    def __init__(self, vendor: str, repository: str) -> None:
        self.vendor = vendor
        self.repository = repository
        self.family = "gitea" if vendor in ("gitea", "forgejo") else vendor

    # -- the repository, written into any payload ---------------------------------------------

    def _repo_object(self, base: dict[str, Any], full_name: str | None = None) -> dict[str, Any]:
        full_name = full_name or self.repository
        owner, _, name = full_name.rpartition("/")
        repo = copy.deepcopy(base)
        repo.update(full_name=full_name, name=name, clone_url=NOWHERE, html_url=NOWHERE)
        if isinstance(repo.get("owner"), dict):
            repo["owner"] = {**repo["owner"], "login": owner, "username": owner}
        for key in ("ssh_url", "git_url", "url", "mirror_url"):
            if key in repo:
                repo[key] = NOWHERE
        return repo

    def _project(self, base: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        path = path or self.repository
        project = copy.deepcopy(base)
        namespace, _, name = path.rpartition("/")
        project.update(path_with_namespace=path, name=name, namespace=namespace)
        for key in ("git_http_url", "git_ssh_url", "http_url", "ssh_url", "url", "web_url"):
            if key in project:
                project[key] = NOWHERE
        return project

    def _delivery(self, event: str, payload: dict[str, Any]) -> Delivery:
        return Delivery(self.vendor, event, json.dumps(payload).encode())

    # -- events ---------------------------------------------------------------------------------

    def push(self, branch: str, before: str, after: str) -> Delivery:
        """A push of ``before..after`` to ``branch``."""
        ref = f"refs/heads/{branch}"
        if self.family == "gitlab":
            p = _load("gitlab", "push")
            p.update(ref=ref, before=before, after=after, checkout_sha=after)
            p["project"] = self._project(p["project"])
            p["repository"] = {**p["repository"], "url": NOWHERE, "git_http_url": NOWHERE}
            p["commits"] = [{**p["commits"][0], "id": after, "url": NOWHERE}]
            return self._delivery("Push Hook", p)
        p = _load(self.family, "push" if self.family == "gitea" else "push_branch")
        p.update(ref=ref, before=before, after=after)
        p["repository"] = self._repo_object(p["repository"])
        if self.family == "github":
            p["head_commit"] = {**p.get("head_commit", {}), "id": after, "message": "a change"}
        p["commits"] = [{**p["commits"][0], "id": after, "url": NOWHERE}] if p["commits"] else []
        return self._delivery("push", p)

    def tag(self, name: str, sha: str) -> list[Delivery]:
        """What the forge sends when a tag is pushed (Gitea and Forgejo: a ``push`` and a
        ``create``; GitHub: a ``push`` and a ``create``; GitLab: a ``Tag Push Hook``)."""
        ref = f"refs/tags/{name}"
        if self.family == "gitlab":
            p = _load("gitlab", "tag_create")
            p.update(ref=ref, before=ZERO, after=sha, checkout_sha=sha)
            p["project"] = self._project(p["project"])
            p["repository"] = {**p["repository"], "url": NOWHERE, "git_http_url": NOWHERE}
            return [self._delivery("Tag Push Hook", p)]
        push = _load(self.family, "push" if self.family == "gitea" else "push_tag")
        push.update(ref=ref, before=ZERO, after=sha, created=True)
        push["repository"] = self._repo_object(push["repository"])
        push["commits"] = []
        create = _load(self.family, "tag_create" if self.family == "gitea" else "create_branch")
        create.update(ref=name, ref_type="tag")
        if self.family == "gitea":
            create["sha"] = sha
        create["repository"] = self._repo_object(create["repository"])
        return [self._delivery("push", push), self._delivery("create", create)]

    def change(
        self,
        action: str,
        number: int,
        *,
        head: str,
        head_branch: str,
        base: str,
        base_branch: str = "main",
        fork: str = "",
        oldrev: str = "",
    ) -> Delivery:
        """A pull request (GitLab: merge request) event.

        Args:
            action: The forge's own action (``opened``, ``synchronized``; GitLab ``open``,
                ``update``).
            number: The pull request number (GitLab's ``iid``).
            head: The head commit.
            head_branch: The head (source) branch.
            base: The base commit (GitLab's payload has none: ignored there).
            base_branch: The base (target) branch.
            fork: The fork's full name when the head lives in another repository.
            oldrev: GitLab: the previous head of an ``update`` that brought new commits.
        """
        if self.family == "gitlab":
            p = _load("gitlab", "pull_request_create")
            attrs = p["object_attributes"]
            target = self._project(attrs["target"])
            source = self._project(attrs["source"], fork or None)
            attrs.update(
                action=action,
                iid=number,
                source_branch=head_branch,
                target_branch=base_branch,
                source=source,
                target=target,
                source_project_id=attrs["target_project_id"] + (1 if fork else 0),
                url=NOWHERE,
            )
            attrs["last_commit"] = {**attrs["last_commit"], "id": head, "url": NOWHERE}
            if oldrev:
                attrs["oldrev"] = oldrev
            p["project"] = self._project(p["project"])
            p["repository"] = {**p["repository"], "url": NOWHERE}
            return self._delivery("Merge Request Hook", p)
        p = _load(self.family, "pull_request_opened")
        p["action"] = action
        p["number"] = number
        pr = p["pull_request"]
        pr["number"] = number
        pr["head"].update(sha=head, ref=head_branch, label=head_branch)
        pr["base"].update(sha=base, ref=base_branch, label=base_branch)
        pr["head"]["repo"] = self._repo_object(pr["head"]["repo"], fork or None)
        pr["base"]["repo"] = self._repo_object(pr["base"]["repo"])
        if fork and "repo_id" in pr["head"]:
            pr["head"]["repo_id"] = pr["base"]["repo_id"] + 1
            pr["head"]["repo"]["id"] = pr["head"]["repo_id"]
            pr["head"]["repo"]["fork"] = True
        p["repository"] = self._repo_object(p["repository"])
        return self._delivery("pull_request", p)

    def issue(self) -> Delivery:
        """An issue opened: an event of the repository as a whole, with no commit."""
        if self.family == "gitlab":
            p = _load("gitlab", "issue_create")
            p["project"] = self._project(p["project"])
            if isinstance(p.get("repository"), dict):
                p["repository"] = {**p["repository"], "url": NOWHERE, "homepage": NOWHERE}
            return self._delivery("Issue Hook", p)
        p = _load(self.family, "issues_opened")
        p["repository"] = self._repo_object(p["repository"])
        return self._delivery("issues", p)

    def release(self, tag: str, sha: str, target_branch: str = "main") -> Delivery:
        """A release published at ``tag`` (GitLab: created), which points at ``sha``."""
        if self.family == "gitlab":
            push = _load("gitlab", "push")
            p: dict[str, Any] = {
                "id": 1,
                "created_at": "2026-01-01 10:00:00 UTC",
                "description": "First release",
                "name": f"Release {tag}",
                "released_at": "2026-01-01 10:00:00 UTC",
                "tag": tag,
                "object_kind": "release",
                "project": self._project(push["project"]),
                "url": NOWHERE,
                "action": "create",
                "assets": {"count": 0, "links": [], "sources": []},
                "commit": {"id": sha, "message": "release", "url": NOWHERE},
            }
            return self._delivery("Release Hook", p)
        base = _load(self.family, "push" if self.family == "gitea" else "push_branch")
        p = {
            "action": "published",
            "release": {
                "id": 1,
                "tag_name": tag,
                "target_commitish": target_branch,
                "name": f"Release {tag}",
                "body": "",
                "url": NOWHERE,
                "draft": False,
                "prerelease": False,
            },
            "repository": self._repo_object(base["repository"]),
            "sender": base.get("sender") or {"login": "someone"},
        }
        return self._delivery("release", p)


def forge_kit(vendor: str, repository: str) -> Forge:
    """The delivery builder of ``vendor`` for ``repository``."""
    return Forge(vendor, repository)
