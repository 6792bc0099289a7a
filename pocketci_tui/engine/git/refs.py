"""The values that reach git: refused input, clone URLs and directory names.

Commit ids and ref names come from webhook payloads, so they are checked (more strictly than git
checks them, by :mod:`pocketci_tui.gitrefs`, which the intake asks too) before any git command
sees them; a repository's clone URL is derived from its forge; a configured repository id becomes
a directory name that cannot lead outside the workspace root. Nothing here runs git.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from pocketci_tui.engine.git.command import FORBIDDEN_PROTOCOLS, GitError, url_protocol
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.gitrefs import is_no_commit, validate_ref, validate_sha
from pocketci_tui.model import Event

__all__ = [
    "CHANGE_REQUESTS",
    "GitInputError",
    "base_ref",
    "check_clone_url",
    "check_event",
    "check_refs",
    "default_clone_url",
    "repo_dir_name",
    "short_id",
    "validate_ref",
    "validate_sha",
]


class GitInputError(GitError, ValueError):
    """A value (ref, sha, URL) was refused before any git command ran."""


def default_clone_url(vendor: str, repository: str, base_url: str = "") -> str:
    """The clone URL of a repository, derived from its forge's base URL.

    Args:
        vendor: The forge (``github``, ``gitea``, ``forgejo``, ``gitlab``).
        repository: The full name, checked against the forge's naming rules.
        base_url: ``forges.<vendor>.url``; empty for the forge's own host (GitHub's).

    Returns:
        ``https://github.com/owner/name.git``, ``https://git.example.org/owner/name.git``...

    Raises:
        ValueError: Unknown forge, no base URL for a self-hosted forge, or a name the forge
            would not allow.
    """
    return git_access(vendor).clone_url(base_url, repository)


def repo_dir_name(repo_key: str) -> str:
    """Map a configured repository id to a directory name that stays where it is put.

    Args:
        repo_key: Any string (``owner/name``, ``../../x``...).

    Returns:
        A sanitized prefix (letters, digits, ``-``, ``_``, ``.``; never leading ``.``) plus a
        hash of the whole key, so distinct keys never share a directory.
    """
    digest = hashlib.sha256(repo_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", repo_key).strip("._-")[:48]
    return f"{name}-{digest}" if name else digest


def short_id(sha: str) -> str:
    """A commit id shortened for messages and directory names."""
    return sha[:12]


CHANGE_REQUESTS = frozenset({"pull_request", "merge_request"})
"""The event types of a proposed change (GitHub's, Gitea's and Forgejo's pull requests,
GitLab's merge requests): built at their head, compared with the merge base of their base
branch."""


def base_ref(event: Event) -> str:
    """The full ref of a pull request's base branch (``main`` -> ``refs/heads/main``)."""
    ref = event.base_ref
    if ref and not ref.startswith("refs/"):
        ref = "refs/heads/" + ref
    return ref


def check_event(event: Event) -> None:
    """Check every payload value of an event that a checkout hands to git.

    Raises:
        GitInputError: A deletion, an event naming neither a commit nor a ref, or a ref, id
            or pull request number that is refused.
    """
    try:
        if event.deleted:
            raise ValueError("a deletion has no commit to check out")
        if event.ref:
            validate_ref(event.ref)
        if event.sha:
            validate_sha(event.sha)
        elif not event.ref:
            raise ValueError("the event names neither a commit nor a ref")
        if not is_no_commit(event.base_sha):
            validate_sha(event.base_sha)
        if event.base_ref:
            validate_ref(base_ref(event))
        if event.pr_number is not None and event.pr_number <= 0:
            raise ValueError(f"bad pull request number {event.pr_number!r}")
    except ValueError as exc:
        raise GitInputError(f"refusing event: {exc}") from None


def check_refs(refs: Collection[str]) -> None:
    """Check the refs asked of a remote (see :func:`~pocketci_tui.gitrefs.ref_problem`).

    Raises:
        GitInputError: One of them is refused.
    """
    for ref in refs:
        try:
            validate_ref(ref)
        except ValueError as exc:
            raise GitInputError(f"refusing event: {exc}") from None


def check_clone_url(clone_url: str, allowed_protocols: Collection[str]) -> str:
    """Check a configured clone URL and return the transport it uses.

    Args:
        clone_url: The URL.
        allowed_protocols: The transports it may use (``ext`` and ``fd`` never are).

    Returns:
        The transport, as ``protocol.<name>.allow`` names it.

    Raises:
        GitInputError: Empty, option-like, with control characters or a password, or a
            transport that is not allowed.
    """
    if not clone_url or clone_url.startswith("-"):
        raise GitInputError(f"unusable clone URL {clone_url!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in clone_url):
        raise GitInputError("the clone URL contains control characters")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@", clone_url):
        raise GitInputError("the clone URL contains a password; keep tokens in the secret store")
    proto = url_protocol(clone_url)
    if proto in FORBIDDEN_PROTOCOLS or proto not in allowed_protocols:
        raise GitInputError(f"clone URL transport {proto!r} is not allowed")
    return proto
