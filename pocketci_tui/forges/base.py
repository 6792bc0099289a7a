"""The one interface every forge implements, and the pieces the intake builds deliveries with.

A forge is everything pocketci-tui knows about one vendor: how its deliveries are signed, what
its headers and payloads are called, which of its events never run, how its repositories are
cloned and how a token authenticates git there. The intake, the engine and the commands know
only this interface; each vendor module (``github``, ``gitea``, ``forgejo``, ``gitlab``) holds
one object implementing it, registered in :mod:`pocketci_tui.forges.registry`.

How the intake uses a forge, in order (the route ``/webhooks/{vendor}`` chose it):

1. :meth:`Forge.missing_credentials`: cheap, before the secret is read and before the body;
2. :attr:`Forge.event_header` and :meth:`Forge.event_name` / :meth:`Forge.delivery_id`;
3. :meth:`Forge.verifier` (once per secret value), :meth:`Verifier.start` per delivery, the
   body fed to :meth:`BodyCheck.update` as it arrives, :meth:`BodyCheck.verified`;
4. :func:`pocketci_tui.forges.payload.parse_payload` (the same strict decoder for every forge);
5. :meth:`Forge.normalize`, :meth:`Forge.hook_reason`, the configured repositories,
   :meth:`Forge.ignore_reason`.

Everything a forge does is pure (no I/O), so each one is tested directly and fuzzed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pocketci_tui.model import Event

REFIRE_HEADER = "X-Pocketci-Refire"
"""Sent by ``pocketci-tui fire``: the proof that a known body is run again on purpose."""


class DeliveryRefused(Exception):
    """A delivery fails a forge's check before or during verification.

    Attributes:
        status: The HTTP status to answer (401 for credentials, 400 for the rest).
        message: What the sender is told.
        reason: The short reason recorded with the refusal (``bad signature``...).
    """

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GitAuth:
    """How a token is sent to the forge's git server over HTTPS (basic authentication).

    Attributes:
        username: The user name to send with the token (``x-access-token`` on GitHub).
        password: The token itself.
    """

    username: str
    password: str


class BodyCheck(Protocol):
    """The verification of one delivery's body, fed as the body arrives.

    Returned by :meth:`Verifier.start`. Nothing of the body is parsed before :meth:`verified`
    said yes.
    """

    def update(self, chunk: bytes) -> None:
        """Feed the next chunk of the raw body, exactly as received."""
        ...

    def verified(self) -> bool:
        """Tell, once the whole body was fed, whether the delivery is authentic.

        The comparison with what the sender claims is constant-time.
        """
        ...

    def digest(self) -> str:
        """A hex digest of the body, remembered to recognise the same body sent again.

        Only meaningful after :meth:`verified` returned True. Two deliveries of the same body
        to the same forge under the same secret give the same digest (GitHub's is its
        signature). It must not reveal the secret.
        """
        ...


class Verifier(Protocol):
    """Checks deliveries under one webhook secret; built once per secret value and reused."""

    def start(self, headers: Mapping[str, str]) -> BodyCheck:
        """Begin checking one delivery from its headers, before its body is read.

        Args:
            headers: The request headers (case-insensitive mapping).

        Returns:
            The check to feed the body to.

        Raises:
            DeliveryRefused: The headers can never verify (a malformed signature, a
                timestamp outside the tolerance...): answered without reading the body.
        """
        ...


class Forge(Protocol):
    """Everything pocketci-tui knows about one forge (see the module docs for the order).

    Attributes:
        vendor: The forge's name in the configuration, the route and events (``gitea``).
        display_name: The forge's name for people (``Gitea``).
        event_header: The header that names the event and that only this forge sends
            (``X-GitHub-Event``, ``X-Gitea-Event``...); used to tell a delivery posted to the
            wrong forge's URL.
        mimics: The vendors whose headers this forge sends too (Gitea sends GitHub's,
            Forgejo sends Gitea's and GitHub's), so their presence does not mean the delivery
            came from them.
        delivery_header: The header that carries the delivery id (for messages).
    """

    vendor: str
    display_name: str
    event_header: str
    mimics: frozenset[str]
    delivery_header: str

    # -- before the body ---------------------------------------------------------------------

    def missing_credentials(self, headers: Mapping[str, str]) -> str:
        """Say why a delivery carries nothing to verify it with, or ``""``.

        Checked first, before the webhook secret is read and before the body: a delivery
        without a signature (or token) header is refused with 401 at once.

        Args:
            headers: The request headers.

        Returns:
            The reason recorded (``no X-Hub-Signature-256 header``), or ``""``.
        """
        ...

    def event_name(self, headers: Mapping[str, str]) -> str:
        """Return the forge's event name from the headers when well-formed, else ``""``.

        The name is the forge's own (``push``, ``Merge Request Hook``); an empty answer is
        refused with 400. It is also what a refusal is recorded with.
        """
        ...

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        """Return the delivery id from the headers when well-formed, else ``""``.

        The id deduplicates redeliveries, so it must be stable across the forge's retries of
        one delivery. An empty answer is refused with 400.
        """
        ...

    def hook_id(self, headers: Mapping[str, str]) -> str:
        """Return the id of the webhook that sent the delivery when well-formed, else ``""``."""
        ...

    def verifier(self, secret: str) -> Verifier:
        """Return a verifier keyed with a webhook secret (never empty).

        The intake builds one per secret value and keeps it while the value stays the same;
        anything costly to derive from the secret is done here once.
        """
        ...

    def sign(
        self, body: bytes, secret: str, *, event_name: str, delivery_id: str
    ) -> dict[str, str]:
        """Return the headers this forge sends with ``body``, signed with ``secret``.

        What ``pocketci-tui fire --vendor`` and the tests send: the event, delivery and
        signature (or token) headers exactly as the forge would, so that the real intake
        verifies them. ``Content-Type`` is not included.

        Args:
            body: The raw body.
            secret: The webhook secret.
            event_name: The forge's event name (``push``, ``Push Hook``).
            delivery_id: The delivery id to send.
        """
        ...

    # -- after verification ------------------------------------------------------------------

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
        """Turn a verified, decoded delivery into an Event (its ``vendor`` is this forge).

        Values are copied only when they have the expected type; nothing trusts the payload.
        ``event_type`` and ``filter`` use the forge's own vocabulary (``merge_request``,
        ``open``), so function names like ``OnGitlabMergeRequestOpen`` match; ``event_name``
        is kept as the header said it. ``is_fork`` comes from :meth:`is_fork`.

        Args:
            event_name: What :meth:`event_name` read.
            delivery_id: What :meth:`delivery_id` read.
            payload: The decoded body.
            body: The raw body, kept exactly as signed.
            received_at: When the delivery arrived.
            headers: The request headers, for anything else the forge reads (the hook id).
        """
        ...

    def is_fork(self, event_name: str, payload: dict[str, Any]) -> bool:
        """Tell whether a pull or merge request comes from another repository than its base.

        False for any other event. A head repository that no longer exists counts as a fork.
        """
        ...

    def hook_reason(self, event: Event) -> str:
        """Say why a delivery concerns the webhook rather than a repository, or ``""``.

        A ping, a payload that names no repository: stored as ignored before the repository
        is looked up in the configuration.
        """
        ...

    def ignore_reason(self, event: Event) -> str:
        """Say why an event of a configured repository is stored but never run, or ``""``.

        Branch and tag deletions, an update with no new commits, refs git would refuse, a
        push or pull request without a commit sha. Shown to the user as the event's detail.
        """
        ...

    # -- fetching ----------------------------------------------------------------------------

    def clone_url(self, base_url: str, repository: str) -> str:
        """Return the HTTPS clone URL of a repository on this forge.

        Never taken from a payload: derived from the configured base URL. Nested GitLab
        groups (``group/sub/project``) are kept whole.

        Args:
            base_url: ``forges.<vendor>.url`` from the configuration, without a trailing
                slash (``https://git.example.org``); ``""`` for the forge's public host, if
                it has one (``https://github.com``).
            repository: The repository as the forge names it (``owner/name``).

        Raises:
            ValueError: The name is not one this forge allows, or there is no base URL and
                the forge has no public host; the message says what to configure.
        """
        ...

    def pull_request_refs(self, number: int) -> tuple[str, ...]:
        """The refs that hold a pull/merge request's head commit, to fetch in this order.

        ``refs/pull/N/head`` on GitHub, Gitea and Forgejo; ``refs/merge-requests/N/head``
        on GitLab (served by the target project, forks included).
        """
        ...

    def git_auth(self, token: str) -> GitAuth:
        """How a clone token authenticates git over HTTPS on this forge."""
        ...

    def commit_refs(self, event: Event) -> tuple[str, ...]:
        """The refs that name the commit of an event whose payload carries no commit id.

        Tried in order; an empty tuple means the remote's default branch. The refs are
        untrusted payload values that the workspace validates before use.
        """
        ...

    def commit_source(self, event: Event) -> str:
        """Say where the commit an event is built at came from (for the event trigger file).

        ``payload`` when the payload named it, else a short phrase such as ``release tag``
        or ``default branch``.
        """
        ...


# -- helpers shared by the forges ---------------------------------------------------------------


def refire_signature(secret: str, delivery_id: str, digest: str) -> str:
    """Return the :data:`REFIRE_HEADER` value that asks to run a known body again.

    Forges sign only the body, so a captured delivery sent again under a new delivery id
    would carry a valid signature; the intake refuses a body it already stored under another
    delivery id. ``pocketci-tui fire``, which holds the secret, proves a deliberate re-run
    with this second signature over the new delivery id and the body's digest.

    Args:
        secret: The webhook secret of the forge the delivery is sent to.
        delivery_id: The new delivery id.
        digest: The body's :meth:`BodyCheck.digest`.

    Returns:
        ``sha256=`` and the hex HMAC, or ``""`` when the secret is empty.
    """
    if not secret:
        return ""
    message = b"pocketci-refire\n" + delivery_id.encode() + b"\nsha256=" + digest.encode()
    return "sha256=" + hmac.digest(secret.encode(), message, hashlib.sha256).hex()


def refire_allowed(secret: str, delivery_id: str, digest: str, header: str | None) -> bool:
    """Tell whether ``header`` is :func:`refire_signature` of this delivery (constant time)."""
    if not header or len(header) != 71 or not header.startswith("sha256="):
        return False
    expected = refire_signature(secret, delivery_id, digest)
    return bool(expected) and hmac.compare_digest(expected, header)


def keyed_digest(secret: str) -> Any:
    """A fresh HMAC-SHA256 keyed with a webhook secret, to feed a body into for its digest.

    What :meth:`BodyCheck.digest` is built from by forges whose credential is not itself a
    keyed hash of the whole body (a token header): the same body is recognised however it
    was signed, without an unkeyed hash that would tell whether a guessed body was delivered.
    """
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)
