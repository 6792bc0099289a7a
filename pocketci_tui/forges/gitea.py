"""Gitea and Forgejo: verify a webhook delivery and normalize it into an Event.

Forgejo is a fork of Gitea and sends the same bodies; it differs in its headers (``X-Forgejo-*``
beside the ``X-Gitea-*`` ones) and in the vendor name its Events carry, so that functions read
``OnForgejoPush`` and ``OnGiteaPush``. :class:`GiteaForge` implements the
:class:`~pocketci_tui.forges.base.Forge` interface for both; :data:`GITEA` and :data:`FORGEJO`
are the two registered forges. Everything here is pure (no I/O), so it is tested directly and
fuzzed with hypothesis.

Choices made here (each documented in the README):

* **Signatures.** Gitea signs the raw body with HMAC-SHA256 and sends the bare lower-case hex
  digest in ``X-Gitea-Signature``; Forgejo sends the same digest in ``X-Forgejo-Signature`` and,
  for compatibility, in ``X-Gitea-Signature``, which is accepted from Forgejo when its own
  header is absent. Nothing else is accepted: no ``sha256=`` prefix, no upper case, and never
  the deprecated ``secret`` field that some versions still put in the body.
* **Tags.** Pushing a tag makes Gitea send a ``push`` (ref ``refs/tags/…``) and a ``create``
  (``ref_type: tag``). The ``push`` is the one that runs, as the ``tag`` event: a webhook left
  at Gitea's default ("push events") sends only that one, and it carries the commit and its
  message. The ``create`` of a tag is stored and shown, never run. The ``create`` of a branch
  runs as a ``create`` event, as GitHub's does.
* **Deletions.** ``delete`` events (a branch or a tag removed) are stored, never run.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pocketci_tui.forges import context, github
from pocketci_tui.forges.base import BodyCheck, DeliveryRefused, GitAuth
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.forges.github import unsafe_ref_reason
from pocketci_tui.forges.payload import (
    blank_fields,
    first_line,
    read_int,
    read_str,
)
from pocketci_tui.gitrefs import is_commit_id, sha_problem
from pocketci_tui.model import ZERO_SHA, Event

__all__ = [
    "FORGEJO",
    "GITEA",
    "GiteaForge",
    "ignore_reason",
    "is_fork",
    "normalize",
    "repository_name",
    "signature_of",
]

_EVENT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DELIVERY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_HEX_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_REPO_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


def signature_of(body: bytes, secret: str | bytes) -> str:
    """Return the bare hex HMAC-SHA256 of ``body`` under ``secret``, as Gitea sends it."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, body, hashlib.sha256).hex()


class _SignatureCheck:
    """One delivery's signature check, fed the body as it arrives."""

    __slots__ = ("_header", "_mac")

    def __init__(self, mac: Any, header: str) -> None:
        self._mac = mac
        self._header = header

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def verified(self) -> bool:
        # Exactly 64 lower-case hex digits, compared in constant time at equal length.
        if not _HEX_SIGNATURE_RE.fullmatch(self._header):
            return False
        return hmac.compare_digest(self._mac.hexdigest(), self._header)

    def digest(self) -> str:
        # Once verified, the signature is the body's keyed hash.
        return self._header


class _HexVerifier:
    """Checks bare hex HMAC-SHA256 signatures under one secret.

    The HMAC key schedule is computed once; each delivery hashes its body on a copy of it.

    Args:
        secret: The webhook secret (never empty).
        headers: The signature headers, the first present is checked.
    """

    __slots__ = ("_headers", "_keyed")

    def __init__(self, secret: str, headers: tuple[str, ...]) -> None:
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256) if secret else None
        self._headers = headers

    def start(self, headers: Mapping[str, str]) -> BodyCheck:
        if self._keyed is None:
            raise DeliveryRefused(503, "cannot verify deliveries now", "no webhook secret")
        return _SignatureCheck(self._keyed.copy(), _first(headers, self._headers))


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return ""


# -- normalization ------------------------------------------------------------------------------


def _obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is dict else {}


def repository_name(payload: dict[str, Any]) -> str:
    """Return ``repository.full_name`` if it is a plausible ``owner/name``, else ``""``."""
    return _repo_name(_obj(payload, "repository"))


def _repo_name(repo: dict[str, Any]) -> str:
    name = read_str(repo, "full_name")
    return name if _REPO_RE.fullmatch(name) and ".." not in name else ""


def _head_commit_message(payload: dict[str, Any], after: str) -> str:
    message = read_str(_obj(payload, "head_commit"), "message")
    if message:
        return message
    commits = payload.get("commits")
    if type(commits) is list:
        for commit in commits[-50:]:  # the head is the last one; never walk a huge list
            if read_str(commit, "id") == after:
                return read_str(commit, "message")
    return ""


def _pull_request_is_fork(payload: dict[str, Any]) -> bool:
    """Tell whether a pull request's head lives in another repository than its base.

    Repository ids decide when both are there (a rename cannot confuse them), else full names;
    a head repository that is gone (a deleted fork) counts as a fork.
    """
    pr = _obj(payload, "pull_request")
    head_repo = _obj(pr, "head").get("repo")
    if type(head_repo) is not dict:
        return True
    base_repo = _obj(_obj(pr, "base"), "repo") or _obj(payload, "repository")
    head_id, base_id = read_int(head_repo, "id"), read_int(base_repo, "id")
    if head_id is not None and base_id is not None:
        return head_id != base_id
    head_name, base_name = read_str(head_repo, "full_name"), read_str(base_repo, "full_name")
    return not head_name or head_name.lower() != base_name.lower()


def _push_fields(payload: dict[str, Any]) -> dict[str, Any]:
    ref = read_str(payload, "ref")
    after = read_str(payload, "after")
    fields: dict[str, Any] = {"ref": ref, "sha": after, "base_sha": read_str(payload, "before")}
    if ref.startswith("refs/tags/"):
        fields.update(event_type="tag", filter=ref.removeprefix("refs/tags/"))
    else:
        fields["filter"] = ref.removeprefix("refs/heads/")
    fields["deleted"] = after == ZERO_SHA or payload.get("deleted") is True
    fields["title"] = "" if fields["deleted"] else first_line(_head_commit_message(payload, after))
    return fields


def _pull_request_fields(payload: dict[str, Any]) -> dict[str, Any]:
    pr = _obj(payload, "pull_request")
    head, base = _obj(pr, "head"), _obj(pr, "base")
    number = read_int(pr, "number") or read_int(payload, "number")
    return {
        "ref": f"refs/pull/{number}/head" if number is not None else "",
        "sha": read_str(head, "sha"),
        "base_ref": read_str(base, "ref"),
        "base_sha": read_str(base, "sha"),
        "pr_number": number,
        "is_fork": _pull_request_is_fork(payload),
        "title": first_line(read_str(pr, "title")),
    }


def _release_fields(payload: dict[str, Any]) -> dict[str, Any]:
    release = _obj(payload, "release")
    tag = read_str(release, "tag_name")
    commitish = read_str(release, "target_commitish")
    return {
        "ref": f"refs/tags/{tag}" if tag else "",
        "sha": commitish if is_commit_id(commitish) else "",
        "title": first_line(read_str(release, "name") or tag),
    }


def _ref_event_fields(event_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``create`` and ``delete``: the ref they name; a deletion is never run."""
    name = read_str(payload, "ref")
    kind = read_str(payload, "ref_type")
    if not name or kind not in ("branch", "tag"):
        return {}
    prefix = "refs/heads/" if kind == "branch" else "refs/tags/"
    sha = read_str(payload, "sha")
    return {
        "ref": prefix + name.removeprefix(prefix),
        "sha": sha if event_name == "create" and is_commit_id(sha) else "",
        "deleted": event_name == "delete",
    }


def is_fork(event_name: str, payload: dict[str, Any]) -> bool:
    """Tell whether a ``pull_request`` delivery comes from another repository (False otherwise)."""
    return event_name == "pull_request" and _pull_request_is_fork(payload)


def normalize(
    vendor: str,
    event_name: str,
    delivery_id: str,
    payload: dict[str, Any],
    body: bytes,
    *,
    received_at: datetime,
) -> Event:
    """Turn a verified Gitea or Forgejo delivery into an Event (SPEC 4.5).

    Values are copied only when they have the expected type; nothing here trusts the payload.

    Args:
        vendor: ``gitea`` or ``forgejo`` (the route the delivery came to).
        event_name: The event header (``push``, ``pull_request``, ``release``, ``create``...).
        delivery_id: The delivery header.
        payload: The decoded body.
        body: The raw body, kept exactly as signed.
        received_at: When the delivery arrived.

    Returns:
        The normalized event (not yet stored, ``id`` None).
    """
    fields = blank_fields(event_name, read_str(payload, "action"))
    if event_name == "push":
        fields.update(_push_fields(payload))
    elif event_name == "pull_request":
        fields.update(_pull_request_fields(payload))
    elif event_name == "release":
        fields.update(_release_fields(payload))
    elif event_name in ("create", "delete"):
        fields.update(_ref_event_fields(event_name, payload))
    return Event(
        vendor=vendor,
        event_name=event_name,
        repository=repository_name(payload),
        delivery_id=delivery_id,
        received_at=received_at,
        body=body,
        **fields,
        **context.gitea(event_name, payload),
    )


def hook_reason(event: Event) -> str:
    """Return why a delivery concerns the webhook rather than a repository, or ``""``.

    Gitea and Forgejo send no ping (their "test delivery" is a push of the latest commit), so
    only a payload that names no repository is such a delivery.
    """
    return "" if event.repository else "no repository in the payload"


TAG_CREATE_REASON = "a tag runs from its push delivery (sent beside this create)"


def ignore_reason(event: Event) -> str:
    """Return why a verified event must be stored but never run, or ``""`` to process it.

    Args:
        event: A normalized Gitea or Forgejo event.

    Returns:
        The reason shown in the UI (``branch deleted``, ``tag deleted``...).
    """
    reason = hook_reason(event)
    if reason:
        return reason
    if event.deleted:
        return "tag deleted" if event.ref.startswith("refs/tags/") else "branch deleted"
    if event.event_name == "create" and event.ref.startswith("refs/tags/"):
        return TAG_CREATE_REASON
    reason = unsafe_ref_reason(event.ref)
    if reason:
        return f"refused: {reason}"
    if event.event_type in ("push", "tag", "pull_request"):
        if not event.ref:
            return f"refused: the {event.event_name} payload has no ref"
        if sha_problem(event.sha):
            return f"refused: {event.sha[:80]!r} is not a commit sha"
    return ""


# -- the Forge interface ------------------------------------------------------------------------


class GiteaForge:
    """Gitea or Forgejo behind the :class:`~pocketci_tui.forges.base.Forge` interface.

    Args:
        vendor: ``gitea`` or ``forgejo``.
        display_name: ``Gitea`` or ``Forgejo``.
        prefix: The forge's own header prefix (``X-Gitea``, ``X-Forgejo``).
        fallback_prefix: Headers read when the forge's own are absent (Forgejo's ``X-Gitea``).
        mimics: The vendors whose headers this forge sends too.
    """

    def __init__(
        self,
        vendor: str,
        display_name: str,
        prefix: str,
        *,
        fallback_prefix: str = "",
        mimics: frozenset[str] = frozenset(),
    ) -> None:
        self.vendor = vendor
        self.display_name = display_name
        self.event_header = f"{prefix}-Event"
        self.delivery_header = f"{prefix}-Delivery"
        self.signature_header = f"{prefix}-Signature"
        self.mimics = mimics
        prefixes = (prefix, fallback_prefix) if fallback_prefix else (prefix,)
        self._event_headers = tuple(f"{p}-Event" for p in prefixes)
        self._delivery_headers = tuple(f"{p}-Delivery" for p in prefixes)
        self._signature_headers = tuple(f"{p}-Signature" for p in prefixes)
        self._access = git_access(vendor)

    def missing_credentials(self, headers: Mapping[str, str]) -> str:
        if any(name in headers for name in self._signature_headers):
            return ""
        return f"no {' or '.join(self._signature_headers)} header"

    def event_name(self, headers: Mapping[str, str]) -> str:
        value = _first(headers, self._event_headers)
        return value if _EVENT_NAME_RE.fullmatch(value) else ""

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        value = _first(headers, self._delivery_headers)
        return value if _DELIVERY_RE.fullmatch(value) else ""

    def hook_id(self, headers: Mapping[str, str]) -> str:
        return ""  # neither forge says which of its webhooks sent a delivery

    def verifier(self, secret: str) -> _HexVerifier:
        return _HexVerifier(secret, self._signature_headers)

    def sign(
        self, body: bytes, secret: str, *, event_name: str, delivery_id: str
    ) -> dict[str, str]:
        """The headers the forge sends: its own, Gitea's (for Forgejo) and GitHub's."""
        digest = signature_of(body, secret)
        headers = {
            "X-GitHub-Event": event_name,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": "sha256=" + digest,
        }
        for prefix in ("X-Gitea", self.event_header.removesuffix("-Event")):
            headers.update(
                {
                    f"{prefix}-Event": event_name,
                    f"{prefix}-Delivery": delivery_id,
                    f"{prefix}-Signature": digest,
                }
            )
        return headers

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
        return normalize(
            self.vendor, event_name, delivery_id, payload, body, received_at=received_at
        )

    def is_fork(self, event_name: str, payload: dict[str, Any]) -> bool:
        return is_fork(event_name, payload)

    def hook_reason(self, event: Event) -> str:
        return hook_reason(event)

    def ignore_reason(self, event: Event) -> str:
        return ignore_reason(event)

    def clone_url(self, base_url: str, repository: str) -> str:
        return self._access.clone_url(base_url, repository)

    def pull_request_refs(self, number: int) -> tuple[str, ...]:
        return self._access.change_refs(number)

    def git_auth(self, token: str) -> GitAuth:
        return GitAuth(username=self._access.username, password=token)

    def commit_refs(self, event: Event) -> tuple[str, ...]:
        # Releases and create events read as GitHub's do (same payload fields).
        return github.commit_refs(event)

    def commit_source(self, event: Event) -> str:
        return github.commit_source(event)


GITEA = GiteaForge("gitea", "Gitea", "X-Gitea", mimics=frozenset({"github"}))
"""Gitea, as registered in :mod:`pocketci_tui.forges.registry`."""

FORGEJO = GiteaForge(
    "forgejo",
    "Forgejo",
    "X-Forgejo",
    fallback_prefix="X-Gitea",
    mimics=frozenset({"gitea", "github"}),
)
"""Forgejo, as registered in :mod:`pocketci_tui.forges.registry`."""
