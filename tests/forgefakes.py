"""A second forge for the tests of the route, typed against the Forge interface.

It signs and reads like Gitea does (``X-Gitea-Event``, ``X-Gitea-Delivery``, a bare hex
HMAC-SHA256 in ``X-Gitea-Signature``, and GitHub's headers beside them), and reads payloads
with GitHub's rules: enough to show what the route does with a forge that is not GitHub.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pocketci_tui.forges import github
from pocketci_tui.forges.base import BodyCheck, Forge, GitAuth, Verifier
from pocketci_tui.model import Event

_HEX_RE = re.compile(r"[0-9a-f]{64}")


class _HexCheck:
    def __init__(self, secret: str, header: str) -> None:
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._header = header

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def verified(self) -> bool:
        return bool(_HEX_RE.fullmatch(self._header)) and hmac.compare_digest(
            self._mac.hexdigest(), self._header
        )

    def digest(self) -> str:
        return self._header


class _HexVerifier:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def start(self, headers: Mapping[str, str]) -> BodyCheck:
        return _HexCheck(self._secret, headers.get("X-Gitea-Signature", ""))


class GiteaLikeForge:
    """A Gitea-shaped forge (see the module docs)."""

    vendor = "gitea"
    display_name = "Gitea"
    event_header = "X-Gitea-Event"
    delivery_header = "X-Gitea-Delivery"
    mimics = frozenset({"github"})

    def missing_credentials(self, headers: Mapping[str, str]) -> str:
        return "" if "X-Gitea-Signature" in headers else "no X-Gitea-Signature header"

    def event_name(self, headers: Mapping[str, str]) -> str:
        value = headers.get("X-Gitea-Event", "")
        return value if github.valid_event_name(value) else ""

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        value = headers.get("X-Gitea-Delivery", "")
        return value if github.valid_delivery_id(value) else ""

    def hook_id(self, headers: Mapping[str, str]) -> str:
        return ""

    def verifier(self, secret: str) -> Verifier:
        return _HexVerifier(secret)

    def sign(
        self, body: bytes, secret: str, *, event_name: str, delivery_id: str
    ) -> dict[str, str]:
        hexmac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            "X-Gitea-Event": event_name,
            "X-Gitea-Delivery": delivery_id,
            "X-Gitea-Signature": hexmac,
            "X-GitHub-Event": event_name,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": "sha256=" + hexmac,
        }

    def normalize(
        self,
        event_name: str,
        delivery_id: str,
        payload: dict[str, Any],
        body: bytes,
        *,
        received_at: datetime,
        headers: Mapping[str, str],
    ) -> Event:
        event = github.normalize(event_name, delivery_id, payload, body, received_at=received_at)
        return replace(event, vendor=self.vendor)

    def is_fork(self, event_name: str, payload: dict[str, Any]) -> bool:
        return github.FORGE.is_fork(event_name, payload)

    def hook_reason(self, event: Event) -> str:
        return github.hook_reason(event)

    def ignore_reason(self, event: Event) -> str:
        return github.ignore_reason(event)

    def clone_url(self, base_url: str, repository: str) -> str:
        if not base_url:
            raise ValueError("set forges.gitea.url")
        return f"{base_url}/{repository}.git"

    def pull_request_refs(self, number: int) -> tuple[str, ...]:
        return (f"refs/pull/{number}/head",)

    def git_auth(self, token: str) -> GitAuth:
        return GitAuth(username="oauth2", password=token)

    def commit_refs(self, event: Event) -> tuple[str, ...]:
        return github.commit_refs(event)

    def commit_source(self, event: Event) -> str:
        return github.commit_source(event)


GITEA_LIKE: Forge = GiteaLikeForge()
"""Checked by mypy against the interface."""
