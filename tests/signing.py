"""Helpers to sign and send GitHub-style deliveries in tests and benchmarks."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from pocketci_tui.forges.github import sign


def delivery_headers(
    secret: str,
    body: bytes,
    *,
    event: str = "push",
    delivery: str | None = None,
    hook_id: str | None = "512345678",
    content_type: str = "application/json",
) -> dict[str, str]:
    """Return the headers GitHub would send with ``body``."""
    headers = {
        "Content-Type": content_type,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "User-Agent": "GitHub-Hookshot/test",
    }
    if hook_id is not None:
        headers["X-GitHub-Hook-ID"] = hook_id
    return headers


def push_body(repository: str = "acme/api", branch: str = "main", n: int = 0) -> bytes:
    """A small, valid push payload (distinct per ``n``)."""
    payload: dict[str, Any] = {
        "ref": f"refs/heads/{branch}",
        "before": f"{n:040x}"[-40:] if n else "3c1b8a2d4e6f7081920a1b2c3d4e5f6a7b8c9d0e",
        "after": f"{n + 1:040x}",
        "deleted": False,
        "repository": {"full_name": repository, "clone_url": f"https://github.com/{repository}"},
        "head_commit": {"message": f"commit {n}"},
        "sender": {"login": "octocat"},
    }
    return json.dumps(payload).encode()


def gitea_push_body(repository: str = "acme/api", branch: str = "main", n: int = 0) -> bytes:
    """A small, valid Gitea push payload (distinct per ``n``), of GitHub's small push's size."""
    payload = json.loads(push_body(repository, branch, n))
    payload["repository"]["clone_url"] = f"https://git.example.org/{repository}.git"
    payload["pusher"] = payload["sender"] = {"login": "gitea-user", "username": "gitea-user"}
    return json.dumps(payload).encode()


def gitlab_push_body(repository: str = "acme/api", branch: str = "main", n: int = 0) -> bytes:
    """A small, valid GitLab ``Push Hook`` payload (distinct per ``n``), of GitHub's small
    push's size."""
    namespace, _, name = repository.rpartition("/")
    payload: dict[str, Any] = {
        "object_kind": "push",
        "event_name": "push",
        "ref": f"refs/heads/{branch}",
        "before": f"{n:040x}"[-40:] if n else "3c1b8a2d4e6f7081920a1b2c3d4e5f6a7b8c9d0e",
        "after": f"{n + 1:040x}",
        "checkout_sha": f"{n + 1:040x}",
        "user_username": "gitlab-user",
        "project": {
            "path_with_namespace": repository,
            "name": name,
            "namespace": namespace,
            "git_http_url": f"https://gitlab.example.org/{repository}.git",
        },
        "commits": [{"id": f"{n + 1:040x}", "message": f"commit {n}"}],
        "total_commits_count": 1,
    }
    return json.dumps(payload).encode()


@dataclass
class Reply:
    """What the listener answered."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The reply decoded as JSON."""
        return json.loads(self.body)


async def send(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
) -> Reply:
    """POST a delivery and return the status and body."""
    async with session.post(url, data=body, headers=headers) as resp:
        return Reply(resp.status, await resp.read())


async def send_signed(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    body: bytes,
    **kw: Any,
) -> Reply:
    """Sign ``body`` like GitHub and POST it."""
    return await send(session, url, body, delivery_headers(secret, body, **kw))
