"""GitLab: verify a webhook delivery and normalize it into an Event.

:data:`GITLAB` implements the :class:`~pocketci_tui.forges.base.Forge` interface. Everything
here is pure (no I/O, the clock passed in), so it is tested directly and fuzzed with hypothesis.

Choices made here (each documented in the README):

* **Credentials.** GitLab offers two: a secret token, sent as it is in ``X-Gitlab-Token``, and
  a signing token (``whsec_`` and base64), with which it signs each delivery the Standard
  Webhooks way: ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``. The
  webhook secret in the secret store says which one is expected: a value starting with
  ``whsec_`` is a signing token, anything else a secret token. A signed delivery is refused
  when its ``webhook-timestamp`` is more than :data:`TOLERANCE` seconds away from this
  machine's clock, either way, so a captured delivery cannot be played again later. The
  scheme is a few lines of HMAC; the ``standardwebhooks`` package decodes the body as text,
  lets malformed headers escape as other exceptions and fixes the clock, so it is not used.
* **Delivery ids.** ``Idempotency-Key`` (the same on GitLab's retries of one delivery), else
  ``webhook-id``, else ``X-Gitlab-Event-UUID`` (GitLab before 17.4).
* **Events.** ``Push Hook`` is ``push`` (a ref under ``refs/tags/`` is a ``tag``), ``Tag Push
  Hook`` is ``tag``, ``Merge Request Hook`` is ``merge_request`` with the action as filter
  (``open``, ``update``, ``merge``...), ``Release Hook`` is ``release``; any other ``X Y Hook``
  is ``x_y`` with ``object_attributes.action`` (or ``action``) as filter. A deletion (``after``
  all zeros) is never run; neither is a merge request ``update`` without new commits (no
  ``oldrev``: a title, label or assignee change).
* **Names.** Repositories are full paths with nested groups (``group/sub/project``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pocketci_tui.forges import context
from pocketci_tui.forges.base import BodyCheck, DeliveryRefused, GitAuth, keyed_digest
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
    "GITLAB",
    "TOLERANCE",
    "GitLabForge",
    "event_type_of",
    "ignore_reason",
    "is_fork",
    "normalize",
    "repository_name",
    "standard_signature",
]

VENDOR = "gitlab"
EVENT_HEADER = "X-Gitlab-Event"
TOKEN_HEADER = "X-Gitlab-Token"
IDEMPOTENCY_HEADER = "Idempotency-Key"
UUID_HEADER = "X-Gitlab-Event-UUID"
WEBHOOK_UUID_HEADER = "X-Gitlab-Webhook-UUID"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SIGNING_PREFIX = "whsec_"

TOLERANCE = 300
"""Seconds a signed delivery's timestamp may differ from this machine's clock, either way."""

MAX_SIGNATURES = 8
"""The most ``v1,…`` entries looked at in one ``webhook-signature`` (rotations send two)."""

_EVENT_NAME_RE = re.compile(r"[A-Z][A-Za-z]{0,30}(?: [A-Z][A-Za-z]{0,30}){0,5} Hook")
_DELIVERY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_UUID_RE = re.compile(r"[0-9a-fA-F-]{8,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"v1,([A-Za-z0-9+/]{43}=)")

_EVENT_TYPES = {
    "Push Hook": "push",
    "Tag Push Hook": "tag",
    "Merge Request Hook": "merge_request",
    "Release Hook": "release",
}


# -- credentials --------------------------------------------------------------------------------


def signing_token_problem(secret: str) -> str:
    """Say why a stored ``whsec_…`` signing token cannot verify deliveries, or ``""``.

    A secret without the prefix is a secret token, for which anything goes. Checked by
    ``pocketci-tui check`` with the same rules the intake keys its verifier with, so a token
    ``check`` passes never answers deliveries with 503.
    """
    if not secret.startswith(SIGNING_PREFIX):
        return ""
    try:
        signing_key(secret)
    except ValueError as exc:
        return str(exc)
    return ""


SIGNING_TOKEN_FIX = (
    "copy the signing token again from the GitLab webhook's settings, whole (whsec_ and the "
    "base64 after it) and on one line"
)
"""What to do about a stored signing token that cannot verify deliveries."""


def signing_key(secret: str) -> bytes:
    """Return the HMAC key of a ``whsec_…`` signing token.

    Raises:
        ValueError: The rest of the token is not base64 of at least 16 bytes.
    """
    encoded = secret.removeprefix(SIGNING_PREFIX)
    if encoded != "".join(encoded.split()):
        raise ValueError("the signing token has a space or a line break in it")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("the signing token is not whsec_ followed by base64") from None
    if len(key) < 16:
        raise ValueError("the signing token is shorter than 16 bytes")
    return key


def standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """Return the ``v1,<base64>`` Standard Webhooks signature of a delivery.

    Args:
        key: The signing key (:func:`signing_key`).
        msg_id: The ``webhook-id``.
        timestamp: The ``webhook-timestamp`` (seconds since the epoch, as sent).
        body: The raw body.
    """
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode(), hashlib.sha256)
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()


class _TokenCheck:
    """A delivery carrying ``X-Gitlab-Token``: the token is compared, the body only digested."""

    __slots__ = ("_digest", "_ok")

    def __init__(self, secret: str, token: str) -> None:
        # Hashing both sides first makes the comparison constant-time whatever the lengths.
        self._ok = hmac.compare_digest(
            hashlib.sha256(token.encode()).digest(), hashlib.sha256(secret.encode()).digest()
        )
        self._digest = keyed_digest(secret)

    def update(self, chunk: bytes) -> None:
        self._digest.update(chunk)

    def verified(self) -> bool:
        return self._ok

    def digest(self) -> str:
        return str(self._digest.hexdigest())


class _SignedCheck:
    """A Standard Webhooks delivery: the HMAC of ``id.timestamp.`` and the body as it arrives."""

    __slots__ = ("_digest", "_mac", "_signatures")

    def __init__(self, mac: Any, secret: str, signatures: list[bytes]) -> None:
        self._mac = mac
        self._signatures = signatures
        self._digest = keyed_digest(secret)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)
        self._digest.update(chunk)

    def verified(self) -> bool:
        expected = self._mac.digest()
        found = False
        for signature in self._signatures:  # every entry compared, in constant time each
            found |= hmac.compare_digest(expected, signature)
        return found

    def digest(self) -> str:
        # Not the signature: it covers the id and timestamp, which differ on each retry.
        return str(self._digest.hexdigest())


def _refused(message: str, reason: str) -> DeliveryRefused:
    return DeliveryRefused(401, message, reason)


class _TokenVerifier:
    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def start(self, headers: Mapping[str, str]) -> BodyCheck:
        token = headers.get(TOKEN_HEADER)
        if token is None:
            raise _refused(
                "missing or invalid X-Gitlab-Token: the webhook secret stored here is a "
                "secret token; paste it as the webhook's secret token in GitLab (or store "
                "the signing token, whsec_…, instead)",
                f"no {TOKEN_HEADER} header",
            )
        return _TokenCheck(self._secret, token)


class _SignedVerifier:
    __slots__ = ("_clock", "_error", "_keyed", "_secret")

    def __init__(self, secret: str, clock: Callable[[], float]) -> None:
        self._secret = secret
        self._clock = clock
        self._keyed: Any = None
        self._error = ""
        try:
            self._keyed = hmac.new(signing_key(secret), digestmod=hashlib.sha256)
        except ValueError as exc:
            self._error = str(exc)

    def start(self, headers: Mapping[str, str]) -> BodyCheck:
        if self._keyed is None:
            raise DeliveryRefused(
                503,
                f"cannot verify deliveries now: {self._error}; {SIGNING_TOKEN_FIX}",
                "bad signing token",
            )
        msg_id = headers.get(ID_HEADER, "")
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        header = headers.get(SIGNATURE_HEADER)
        if header is None:
            raise _refused(
                "missing webhook-signature: the webhook secret stored here is a signing "
                "token (whsec_…); set the same signing token on the GitLab webhook",
                f"no {SIGNATURE_HEADER} header",
            )
        if not _DELIVERY_RE.fullmatch(msg_id) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise _refused(
                "missing or invalid webhook-id or webhook-timestamp", "bad signature headers"
            )
        skew = int(timestamp) - self._clock()
        if abs(skew) > TOLERANCE:
            raise _refused(
                f"the webhook-timestamp is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'}"
                f" this machine's clock (at most {TOLERANCE} s): a replayed delivery, or a "
                "clock out of sync",
                "timestamp outside the tolerance",
            )
        signatures = []
        for entry in header.split()[:MAX_SIGNATURES]:
            match = _SIGNATURE_RE.fullmatch(entry)
            if match:
                signatures.append(base64.b64decode(match.group(1)))
        if not signatures:
            raise _refused("missing or invalid signature", "no v1 signature")
        mac = self._keyed.copy()
        mac.update(f"{msg_id}.{timestamp}.".encode())
        return _SignedCheck(mac, self._secret, signatures)


# -- normalization ------------------------------------------------------------------------------


def _obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is dict else {}


def event_type_of(event_name: str) -> str:
    """The normalized event type of an ``X-Gitlab-Event`` (``Note Hook`` -> ``note``)."""
    known = _EVENT_TYPES.get(event_name)
    if known:
        return known
    return event_name.removesuffix(" Hook").strip().lower().replace(" ", "_")


def repository_name(payload: dict[str, Any]) -> str:
    """Return ``project.path_with_namespace`` if GitLab would allow it, else ``""``."""
    name = read_str(_obj(payload, "project"), "path_with_namespace")
    try:
        git_access(VENDOR).check_name(name)
    except ValueError:
        return ""
    return name


def _commit_message(payload: dict[str, Any], after: str) -> str:
    commits = payload.get("commits")
    if type(commits) is list:
        for commit in commits[-50:]:  # the newest is last; never walk a huge list
            if read_str(commit, "id") == after:
                return read_str(commit, "message")
    return read_str(payload, "message")  # an annotated tag's own message


def _push_fields(payload: dict[str, Any], *, tag_hook: bool) -> dict[str, Any]:
    ref = read_str(payload, "ref")
    after = read_str(payload, "after")
    fields: dict[str, Any] = {"ref": ref, "sha": after, "base_sha": read_str(payload, "before")}
    if tag_hook or ref.startswith("refs/tags/"):
        fields.update(event_type="tag", filter=ref.removeprefix("refs/tags/"))
    else:
        fields.update(event_type="push", filter=ref.removeprefix("refs/heads/"))
    fields["deleted"] = after == ZERO_SHA
    fields["title"] = "" if fields["deleted"] else first_line(_commit_message(payload, after))
    return fields


def _merge_request_is_fork(payload: dict[str, Any]) -> bool:
    """Source and target project ids differ; a missing id counts as a fork (fail safe)."""
    attributes = _obj(payload, "object_attributes")
    source = read_int(attributes, "source_project_id")
    target = read_int(attributes, "target_project_id")
    return source is None or target is None or source != target


def _merge_request_fields(payload: dict[str, Any]) -> dict[str, Any]:
    attributes = _obj(payload, "object_attributes")
    number = read_int(attributes, "iid")
    return {
        "filter": read_str(attributes, "action"),
        "ref": f"refs/merge-requests/{number}/head" if number is not None else "",
        "sha": read_str(_obj(attributes, "last_commit"), "id"),
        "base_ref": read_str(attributes, "target_branch"),
        "pr_number": number,
        "is_fork": _merge_request_is_fork(payload),
        "title": first_line(read_str(attributes, "title")),
    }


def _release_fields(payload: dict[str, Any]) -> dict[str, Any]:
    tag = read_str(payload, "tag")
    sha = read_str(_obj(payload, "commit"), "id")
    return {
        "filter": read_str(payload, "action"),
        "ref": f"refs/tags/{tag}" if tag else "",
        "sha": sha if is_commit_id(sha) else "",
        "title": first_line(read_str(payload, "name") or tag),
    }


def is_fork(event_name: str, payload: dict[str, Any]) -> bool:
    """Tell whether a merge request comes from another project (False for other events)."""
    return event_type_of(event_name) == "merge_request" and _merge_request_is_fork(payload)


def normalize(
    event_name: str,
    delivery_id: str,
    payload: dict[str, Any],
    body: bytes,
    *,
    received_at: datetime,
    hook_id: str = "",
) -> Event:
    """Turn a verified GitLab delivery into an Event (SPEC 4.5, with GitLab's words).

    Values are copied only when they have the expected type; nothing here trusts the payload.

    Args:
        event_name: The ``X-Gitlab-Event`` header (``Push Hook``, ``Merge Request Hook``...).
        delivery_id: The delivery id (see :meth:`GitLabForge.delivery_id`).
        payload: The decoded body.
        body: The raw body, kept exactly as signed.
        received_at: When the delivery arrived.
        hook_id: The ``X-Gitlab-Webhook-UUID`` header, if any.

    Returns:
        The normalized event (not yet stored, ``id`` None).
    """
    attributes = _obj(payload, "object_attributes")
    fields = blank_fields(
        event_type_of(event_name), read_str(attributes, "action") or read_str(payload, "action")
    )
    kind = fields["event_type"]
    if kind in ("push", "tag"):
        fields.update(_push_fields(payload, tag_hook=kind == "tag"))
    elif kind == "merge_request":
        fields.update(_merge_request_fields(payload))
    elif kind == "release":
        fields.update(_release_fields(payload))
    return Event(
        vendor=VENDOR,
        event_name=event_name,
        repository=repository_name(payload),
        delivery_id=delivery_id,
        received_at=received_at,
        body=body,
        hook_id=hook_id,
        **fields,
        **context.gitlab(kind, payload),
    )


def hook_reason(event: Event) -> str:
    """Return why a delivery concerns the webhook rather than a project, or ``""``."""
    return "" if event.repository else "no project in the payload"


NO_NEW_COMMITS = "merge request updated without new commits"


_OLDREV_MARKER = b'"oldrev"'
_DECODE_AT_MOST = 256 * 1024
"""The largest body decoded again to read ``oldrev`` (the intake runs on the event loop)."""


def _has_oldrev(event: Event) -> bool:
    """Tell whether a merge request update carries ``object_attributes.oldrev`` (new commits).

    The key's absence from the raw body settles it without decoding; a body that has it is
    decoded to check where it is, unless it is large, when the key's presence is trusted
    (the body is GitLab's own, verified, and the cost of a second decode is not spent on
    the event loop).
    """
    if _OLDREV_MARKER not in event.body:
        return False
    if len(event.body) > _DECODE_AT_MOST:
        return True
    try:
        payload = event.payload()
    except ValueError:
        return False
    return bool(read_str(_obj(payload, "object_attributes"), "oldrev"))


def ignore_reason(event: Event) -> str:
    """Return why a verified event must be stored but never run, or ``""`` to process it.

    Args:
        event: A normalized GitLab event.

    Returns:
        The reason shown in the UI (``branch deleted``, ``merge request updated without new
        commits``...).
    """
    reason = hook_reason(event)
    if reason:
        return reason
    if event.deleted:
        return "tag deleted" if event.event_type == "tag" else "branch deleted"
    if event.event_type == "merge_request" and event.filter == "update" and not _has_oldrev(event):
        return NO_NEW_COMMITS
    reason = unsafe_ref_reason(event.ref)
    if reason:
        return f"refused: {reason}"
    if event.event_type in ("push", "tag", "merge_request"):
        if not event.ref:
            return f"refused: the {event.event_name} payload has no ref"
        if sha_problem(event.sha):
            return f"refused: {event.sha[:80]!r} is not a commit sha"
    return ""


# -- the Forge interface ------------------------------------------------------------------------


class GitLabForge:
    """GitLab behind the :class:`~pocketci_tui.forges.base.Forge` interface.

    Args:
        clock: Seconds since the epoch (``time.time``), for the signed deliveries' tolerance.
    """

    vendor = VENDOR
    display_name = "GitLab"
    event_header = EVENT_HEADER
    delivery_header = IDEMPOTENCY_HEADER
    mimics: frozenset[str] = frozenset()

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._access = git_access(VENDOR)

    def missing_credentials(self, headers: Mapping[str, str]) -> str:
        if TOKEN_HEADER in headers or SIGNATURE_HEADER in headers:
            return ""
        return f"no {TOKEN_HEADER} or {SIGNATURE_HEADER} header"

    def event_name(self, headers: Mapping[str, str]) -> str:
        value = headers.get(EVENT_HEADER, "")
        return value if len(value) <= 64 and _EVENT_NAME_RE.fullmatch(value) else ""

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        for name in (IDEMPOTENCY_HEADER, ID_HEADER, UUID_HEADER):
            value = headers.get(name)
            if value is not None:
                return value if _DELIVERY_RE.fullmatch(value) else ""
        return ""

    def hook_id(self, headers: Mapping[str, str]) -> str:
        value = headers.get(WEBHOOK_UUID_HEADER, "")
        return value if _UUID_RE.fullmatch(value) else ""

    def verifier(self, secret: str) -> _TokenVerifier | _SignedVerifier:
        if secret.startswith(SIGNING_PREFIX):
            return _SignedVerifier(secret, self._clock)
        return _TokenVerifier(secret)

    def sign(
        self, body: bytes, secret: str, *, event_name: str, delivery_id: str
    ) -> dict[str, str]:
        """The headers GitLab sends: the token, or the Standard Webhooks signature for a
        ``whsec_`` signing token (timestamped now)."""
        headers = {
            EVENT_HEADER: event_name,
            IDEMPOTENCY_HEADER: delivery_id,
            UUID_HEADER: delivery_id,
        }
        if secret.startswith(SIGNING_PREFIX):
            timestamp = str(int(self._clock()))
            headers[ID_HEADER] = delivery_id
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = standard_signature(
                signing_key(secret), delivery_id, timestamp, body
            )
        else:
            headers[TOKEN_HEADER] = secret
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
            event_name,
            delivery_id,
            payload,
            body,
            received_at=received_at,
            hook_id=self.hook_id(headers),
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
        # The target project serves every merge request's head there, forks' included.
        return self._access.change_refs(number)

    def git_auth(self, token: str) -> GitAuth:
        return GitAuth(username=self._access.username, password=token)

    def commit_refs(self, event: Event) -> tuple[str, ...]:
        """A release without a commit id is built at its tag; anything else at the default
        branch."""
        return (event.ref,) if event.event_type == "release" and event.ref else ()

    def commit_source(self, event: Event) -> str:
        if event.event_type in ("push", "tag", "merge_request"):
            return "payload"
        if event.event_type == "release":
            return "payload" if event.sha else "release tag"
        return "default branch"


GITLAB = GitLabForge()
"""GitLab, as registered in :mod:`pocketci_tui.forges.registry`."""
