"""GitHub: verify a webhook delivery and normalize it into an :class:`~pocketci_tui.model.Event`.

The functions are GitHub's rules; :data:`FORGE` puts them behind the
:class:`~pocketci_tui.forges.base.Forge` interface the intake and the engine use. Everything
here is pure (no I/O), so it is tested directly and fuzzed with hypothesis.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pocketci_tui.forges import context
from pocketci_tui.forges.base import REFIRE_HEADER, BodyCheck, DeliveryRefused, GitAuth
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.forges.payload import (
    MAX_JSON_VALUES,
    PayloadError,
    blank_fields,
    count_values,
    first_line,
    parse_payload,
    read_int,
    read_str,
)
from pocketci_tui.gitrefs import is_commit_id, ref_problem, sha_problem
from pocketci_tui.model import ZERO_SHA, Event

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "FORGE",
    "HOOK_ID_HEADER",
    "MAX_JSON_VALUES",
    "REFIRE_HEADER",
    "SIGNATURE_HEADER",
    "GitHubForge",
    "PayloadError",
    "Verifier",
    "clean_hook_id",
    "commit_refs",
    "commit_source",
    "count_values",
    "hook_reason",
    "ignore_reason",
    "normalize",
    "parse_payload",
    "repository_name",
    "sign",
    "unsafe_ref_reason",
    "valid_delivery_id",
    "valid_event_name",
    "verify",
]

VENDOR = "github"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
HOOK_ID_HEADER = "X-GitHub-Hook-ID"

_SIGNATURE_RE = re.compile(r"sha256=[0-9a-f]{64}")
_EVENT_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DELIVERY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_HOOK_ID_RE = re.compile(r"[0-9]{1,32}")
_REPO_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


# -- signature ----------------------------------------------------------------------------------


def sign(secret: str | bytes, body: bytes) -> str:
    """Return the ``X-Hub-Signature-256`` value GitHub would send for ``body``.

    Args:
        secret: The webhook secret.
        body: The raw request body.

    Returns:
        ``sha256=`` followed by the lower-case hex HMAC-SHA256.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.digest(key, body, hashlib.sha256).hex()


def verify(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Tell whether ``header`` is the exact signature of ``body`` under ``secret``.

    The header must be ``sha256=`` and 64 lower-case hex digits, exactly as GitHub sends it;
    anything else (the legacy ``sha1=``, upper case, whitespace) is refused. The comparison is
    constant-time over strings of equal length.

    Args:
        secret: The webhook secret; an empty secret never verifies.
        body: The raw request body, before any parsing.
        header: The ``X-Hub-Signature-256`` header, or None when absent.

    Returns:
        True when the signature matches.
    """
    if not secret:
        return False
    return Verifier(secret).verify(body, header)


class Verifier:
    """Checks ``X-Hub-Signature-256`` headers under one secret (what :func:`verify` does).

    The HMAC key schedule is computed once, and each body is hashed on a copy of it: cheaper
    per delivery, and (for bodies under 2 KiB) without letting go of the GIL for a few
    microseconds of hashing, which on a busy server costs a thread switch each time.

    Args:
        secret: The webhook secret; an empty secret never verifies.
    """

    __slots__ = ("_keyed",)

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        self._keyed = hmac.new(key, digestmod=hashlib.sha256) if key else None

    def verify(self, body: bytes, header: str | None) -> bool:
        """Tell whether ``header`` is the exact signature of ``body`` (see :func:`verify`)."""
        if self._keyed is None or not header or not _SIGNATURE_RE.fullmatch(header):
            return False
        mac = self._keyed.copy()
        mac.update(body)
        return hmac.compare_digest("sha256=" + mac.hexdigest(), header)

    def start(self) -> Any:
        """Return a fresh HMAC to feed a body chunk by chunk (``update``), as it arrives.

        Check the result with :meth:`matches`. None when the secret is empty.
        """
        return self._keyed.copy() if self._keyed is not None else None

    @staticmethod
    def matches(mac: Any, header: str | None) -> bool:
        """Tell whether ``header`` is the signature of what ``mac`` (from :meth:`start`) was fed."""
        if mac is None or not header or not _SIGNATURE_RE.fullmatch(header):
            return False
        return hmac.compare_digest("sha256=" + mac.hexdigest(), header)

    def refire_signature(self, delivery_id: str, signature: str) -> str:
        """Return the :data:`REFIRE_HEADER` value that asks to run a known body again.

        GitHub signs only the body, so a captured delivery sent again under a new delivery id
        carries a valid signature; the intake refuses a body it already stored under another
        delivery id. ``pocketci-tui fire``, which holds the secret, proves a deliberate re-run
        with this second signature over the new delivery id and the body's signature.

        Args:
            delivery_id: The new ``X-GitHub-Delivery``.
            signature: The body's ``X-Hub-Signature-256``.

        Returns:
            ``sha256=`` and the hex HMAC, or ``""`` when the secret is empty.
        """
        if self._keyed is None:
            return ""
        mac = self._keyed.copy()
        mac.update(b"pocketci-refire\n" + delivery_id.encode() + b"\n" + signature.encode())
        return "sha256=" + mac.hexdigest()

    def refire_allowed(self, delivery_id: str, signature: str, header: str | None) -> bool:
        """Tell whether ``header`` is :meth:`refire_signature` of this delivery and body."""
        if not header or not _SIGNATURE_RE.fullmatch(header):
            return False
        expected = self.refire_signature(delivery_id, signature)
        return bool(expected) and hmac.compare_digest(expected, header)


# -- headers ------------------------------------------------------------------------------------


def valid_event_name(value: str) -> bool:
    """Tell whether an ``X-GitHub-Event`` value looks like a GitHub event name."""
    return bool(_EVENT_NAME_RE.fullmatch(value))


def valid_delivery_id(value: str) -> bool:
    """Tell whether an ``X-GitHub-Delivery`` value looks like a delivery id (a GUID)."""
    return bool(_DELIVERY_RE.fullmatch(value))


def clean_hook_id(value: str | None) -> str:
    """Return the ``X-GitHub-Hook-ID`` if it is a number, else an empty string."""
    return value if value and _HOOK_ID_RE.fullmatch(value) else ""


# -- normalization ------------------------------------------------------------------------------


# Payloads come from parse_payload, so objects are plain dicts (a C type check, much cheaper
# than isinstance against the Mapping ABC on this hot path).


def _obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is dict else {}


def repository_name(payload: dict[str, Any]) -> str:
    """Return ``repository.full_name`` if it is a plausible ``owner/name``, else ``""``."""
    name = read_str(_obj(payload, "repository"), "full_name")
    return name if _REPO_RE.fullmatch(name) and ".." not in name else ""


def _pull_request_is_fork(payload: dict[str, Any]) -> bool:
    """Tell whether a pull request's head repository differs from its base repository."""
    pr = _obj(payload, "pull_request")
    head_repo = _obj(pr, "head").get("repo")
    base_repo_name = read_str(_obj(_obj(pr, "base"), "repo"), "full_name") or repository_name(
        payload
    )
    if type(head_repo) is not dict:
        return True  # the fork was deleted: treat it as one (P5)
    head_name = read_str(head_repo, "full_name")
    return not head_name or head_name.lower() != base_repo_name.lower()


def normalize(
    event_name: str,
    delivery_id: str,
    payload: dict[str, Any],
    body: bytes,
    *,
    received_at: datetime,
    hook_id: str = "",
) -> Event:
    """Turn a verified GitHub delivery into an Event (SPEC 4.5).

    Values are copied only when they have the expected type; nothing here trusts the payload.

    Args:
        event_name: The ``X-GitHub-Event`` header.
        delivery_id: The ``X-GitHub-Delivery`` header.
        payload: The decoded body.
        body: The raw body, kept exactly as signed.
        received_at: When the delivery arrived.
        hook_id: The ``X-GitHub-Hook-ID`` header, if any.

    Returns:
        The normalized event (not yet stored, ``id`` None).
    """
    fields = blank_fields(event_name, read_str(payload, "action"))
    if event_name == "push":
        ref = read_str(payload, "ref")
        after = read_str(payload, "after")
        fields.update(ref=ref, sha=after, base_sha=read_str(payload, "before"))
        if ref.startswith("refs/tags/"):
            fields.update(event_type="tag", filter=ref.removeprefix("refs/tags/"))
        else:
            fields.update(filter=ref.removeprefix("refs/heads/"))
        fields["deleted"] = payload.get("deleted") is True or after == ZERO_SHA
        fields["title"] = first_line(read_str(_obj(payload, "head_commit"), "message"))
    elif event_name == "pull_request":
        pr = _obj(payload, "pull_request")
        head = _obj(pr, "head")
        base = _obj(pr, "base")
        number = read_int(pr, "number")
        if number is None:
            number = read_int(payload, "number")
        fields.update(
            ref=f"refs/pull/{number}/head" if number is not None else "",
            sha=read_str(head, "sha"),
            base_ref=read_str(base, "ref"),
            base_sha=read_str(base, "sha"),
            pr_number=number,
            is_fork=_pull_request_is_fork(payload),
            title=first_line(read_str(pr, "title")),
        )
    elif event_name == "release":
        release = _obj(payload, "release")
        tag = read_str(release, "tag_name")
        commitish = read_str(release, "target_commitish")
        fields.update(
            ref=f"refs/tags/{tag}" if tag else "",
            sha=commitish if is_commit_id(commitish) else "",
            title=first_line(read_str(release, "name") or tag),
        )
    elif event_name == "create":
        name = read_str(payload, "ref")
        kind = read_str(payload, "ref_type")
        if name and kind in ("branch", "tag"):
            prefix = "refs/heads/" if kind == "branch" else "refs/tags/"
            fields.update(ref=prefix + name.removeprefix(prefix))
    elif event_name == "ping":
        fields.update(filter="", title=first_line(read_str(payload, "zen")))
    return Event(
        vendor=VENDOR,
        event_name=event_name,
        repository=repository_name(payload),
        delivery_id=delivery_id,
        received_at=received_at,
        body=body,
        hook_id=hook_id,
        **fields,
        **context.github(event_name, payload),
    )


def unsafe_ref_reason(ref: str) -> str:
    """Return why a ref must never reach git (a component starting with ``-``...), or ``""``.

    The rules are the workspace's own (:func:`pocketci_tui.gitrefs.ref_problem`), so an event
    the intake lets through is never refused later for its ref; an empty ref is no problem here.
    """
    return ref_problem(ref) if ref else ""


def hook_reason(event: Event) -> str:
    """Return why a delivery concerns the hook rather than a repository, or ``""``.

    A ``ping`` (sent when the hook is created) and a payload without a repository are stored
    as ignored before the repository is looked up in the configuration.
    """
    if event.event_name == "ping":
        return "ping: hook verified"
    if not event.repository:
        return "no repository in the payload"
    return ""


def ignore_reason(event: Event) -> str:
    """Return why a verified event must be stored but never run, or ``""`` to process it.

    Args:
        event: A normalized event of a configured repository.

    Returns:
        The reason shown in the UI (``ping: hook verified``, ``branch deleted``...).
    """
    reason = hook_reason(event)
    if reason:
        return reason
    if event.deleted:
        return "tag deleted" if event.event_type == "tag" else "branch deleted"
    if event.event_type in ("push", "tag", "pull_request"):
        if not event.ref:
            return f"refused: the {event.event_name} payload has no ref"
        reason = unsafe_ref_reason(event.ref)
        if reason:
            return f"refused: {reason}"
        if sha_problem(event.sha):
            return f"refused: {event.sha[:80]!r} is not a commit sha"
    reason = unsafe_ref_reason(event.ref)
    if reason:
        return f"refused: {reason}"
    return ""


_BRANCH_RE = re.compile(r"[A-Za-z0-9._/-]{1,200}")

COMMIT_FROM_PAYLOAD = "payload"
"""Where the commit of a push, tag or pull request comes from: the payload names it."""


def commit_refs(event: Event) -> tuple[str, ...]:
    """The refs that name the commit of an event whose payload carries no commit id.

    A release is built at its tag, or at its target branch while the tag does not exist yet (a
    draft); a ``create`` event at the branch or tag it created. Every other event (``issues``,
    ``delete``, ``workflow_dispatch``...) concerns the repository as a whole: an empty tuple,
    meaning the remote's default branch. The refs are still untrusted payload values: the
    workspace validates them before asking the remote, and only the configured remote is asked.

    Args:
        event: A normalized event with an empty ``sha``.

    Returns:
        Full ref names to try in order; empty for the default branch.
    """
    refs: list[str] = []
    if event.ref:
        refs.append(event.ref)
    if event.event_type == "release":
        try:
            target = read_str(_obj(event.payload(), "release"), "target_commitish")
        except ValueError:
            target = ""
        if target and not is_commit_id(target) and _BRANCH_RE.fullmatch(target):
            branch = target if target.startswith("refs/") else "refs/heads/" + target
            if not unsafe_ref_reason(branch):
                refs.append(branch)
    return tuple(dict.fromkeys(refs))


def commit_source(event: Event) -> str:
    """Say where the commit an event is built at came from, for the event trigger file.

    Args:
        event: The event as dispatched (its ``ref`` and ``sha`` resolved when the payload
            carried no commit id).

    Returns:
        ``payload`` when the payload named the commit (pushes, tags, pull requests, releases
        that target a commit id), else ``release tag``, ``release target branch``, ``created
        branch``, ``created tag`` or ``default branch``.
    """
    kind = event.event_type
    if kind in ("push", "tag", "pull_request"):
        return COMMIT_FROM_PAYLOAD
    if kind == "release":
        try:
            target = read_str(_obj(event.payload(), "release"), "target_commitish")
        except ValueError:
            target = ""
        if target and is_commit_id(target) and target == event.sha:
            return COMMIT_FROM_PAYLOAD
        if event.ref.startswith("refs/tags/"):
            return "release tag"
        return "release target branch"
    if kind == "create" and event.ref.startswith(("refs/heads/", "refs/tags/")):
        return "created branch" if event.ref.startswith("refs/heads/") else "created tag"
    return "default branch"


# -- the Forge interface ------------------------------------------------------------------------

_GIT = git_access(VENDOR)


class _SignatureCheck:
    """One delivery's ``X-Hub-Signature-256`` check, fed the body as it arrives."""

    __slots__ = ("_header", "_mac")

    def __init__(self, mac: Any, header: str) -> None:
        self._mac = mac
        self._header = header

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def verified(self) -> bool:
        return Verifier.matches(self._mac, self._header)

    def digest(self) -> str:
        # Once verified, the signature is the body's keyed hash.
        return self._header[7:]


class _HubVerifier:
    """:class:`Verifier` behind the :class:`~pocketci_tui.forges.base.Verifier` interface."""

    __slots__ = ("_verifier",)

    def __init__(self, secret: str) -> None:
        self._verifier = Verifier(secret)

    def start(self, headers: Mapping[str, str]) -> BodyCheck:
        mac = self._verifier.start()
        if mac is None:
            raise DeliveryRefused(503, "cannot verify deliveries now", "no webhook secret")
        return _SignatureCheck(mac, headers.get(SIGNATURE_HEADER) or "")


class GitHubForge:
    """GitHub behind the :class:`~pocketci_tui.forges.base.Forge` interface."""

    vendor = VENDOR
    display_name = "GitHub"
    event_header = EVENT_HEADER
    delivery_header = DELIVERY_HEADER
    mimics: frozenset[str] = frozenset()

    def missing_credentials(self, headers: Mapping[str, str]) -> str:
        return "" if SIGNATURE_HEADER in headers else f"no {SIGNATURE_HEADER} header"

    def event_name(self, headers: Mapping[str, str]) -> str:
        value = headers.get(EVENT_HEADER, "")
        return value if valid_event_name(value) else ""

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        value = headers.get(DELIVERY_HEADER, "")
        return value if valid_delivery_id(value) else ""

    def hook_id(self, headers: Mapping[str, str]) -> str:
        return clean_hook_id(headers.get(HOOK_ID_HEADER))

    def verifier(self, secret: str) -> _HubVerifier:
        return _HubVerifier(secret)

    def sign(
        self, body: bytes, secret: str, *, event_name: str, delivery_id: str
    ) -> dict[str, str]:
        return {
            EVENT_HEADER: event_name,
            DELIVERY_HEADER: delivery_id,
            SIGNATURE_HEADER: sign(secret, body),
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
        return normalize(
            event_name,
            delivery_id,
            payload,
            body,
            received_at=received_at,
            hook_id=self.hook_id(headers),
        )

    def is_fork(self, event_name: str, payload: dict[str, Any]) -> bool:
        return event_name == "pull_request" and _pull_request_is_fork(payload)

    def hook_reason(self, event: Event) -> str:
        return hook_reason(event)

    def ignore_reason(self, event: Event) -> str:
        return ignore_reason(event)

    def clone_url(self, base_url: str, repository: str) -> str:
        return _GIT.clone_url(base_url, repository)

    def pull_request_refs(self, number: int) -> tuple[str, ...]:
        return _GIT.change_refs(number)

    def git_auth(self, token: str) -> GitAuth:
        return GitAuth(username=_GIT.username, password=token)

    def commit_refs(self, event: Event) -> tuple[str, ...]:
        return commit_refs(event)

    def commit_source(self, event: Event) -> str:
        return commit_source(event)


FORGE = GitHubForge()
"""GitHub, as registered in :mod:`pocketci_tui.forges.registry`."""
