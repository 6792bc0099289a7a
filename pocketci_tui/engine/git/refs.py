"""Checks of the values that reach git, and the directory name of a configured repository.

Commit ids and ref names come from webhook payloads, so they are checked (more strictly than git
checks them) before any git command sees them; a repository's clone URL is derived from its forge;
a configured repository id becomes a directory name that cannot lead outside the workspace root.
Nothing here runs git.
"""

from __future__ import annotations

import hashlib
import re

from pocketci_tui.engine.git.command import GitError
from pocketci_tui.forges.git_access import git_access

__all__ = [
    "GitInputError",
    "default_clone_url",
    "repo_dir_name",
    "validate_ref",
    "validate_sha",
]

_SHA_RE = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class GitInputError(GitError, ValueError):
    """A value (ref, sha, URL) was refused before any git command ran."""


def validate_sha(sha: str) -> None:
    """Check a commit id from a payload.

    Args:
        sha: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.

    Raises:
        ValueError: Not such a string, or all zeros (the "no commit" marker of deletions).
    """
    if not isinstance(sha, str) or not _SHA_RE.match(sha):
        raise ValueError(f"not a commit id: {sha!r}")
    if sha.strip("0") == "":
        raise ValueError("the all-zeros commit id names no commit")


def _is_zero_or_empty(sha: str) -> bool:
    return not sha or (set(sha) == {"0"} and len(sha) in (40, 64))


def validate_ref(ref: str) -> None:
    """Check a full ref name from a payload, more strictly than ``git check-ref-format``.

    Accepted refs start with ``refs/`` and follow git's rules; on top of them, no component may
    start with ``-`` (it would read as an option), and the length is capped. Shell
    metacharacters (``$``, ``;``, ``|``, quotes, backticks) are allowed because git allows them
    in branch names and no shell ever sees a ref.

    Args:
        ref: A full ref name, e.g. ``refs/heads/main``.

    Raises:
        ValueError: With the reason.
    """
    if not isinstance(ref, str) or not ref:
        raise ValueError("empty ref")
    if len(ref) > 255:
        raise ValueError("ref longer than 255 characters")
    if not ref.startswith("refs/"):
        raise ValueError(f"ref does not start with refs/: {ref!r}")
    if _REF_FORBIDDEN.search(ref):
        raise ValueError(f"ref contains a space, control or forbidden character: {ref!r}")
    if ".." in ref or "@{" in ref or ref == "@":
        raise ValueError(f"ref contains '..' or '@{{': {ref!r}")
    if ref.endswith(("/", ".")) or "//" in ref:
        raise ValueError(f"ref has an empty component or ends with '.': {ref!r}")
    for part in ref.split("/"):
        if part.startswith((".", "-")):
            raise ValueError(f"ref component starts with '.' or '-': {ref!r}")
        if part.endswith(".lock"):
            raise ValueError(f"ref component ends with '.lock': {ref!r}")
    if len(ref.split("/")) < 3:
        raise ValueError(f"ref has no name below its namespace: {ref!r}")


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


def _short(sha: str) -> str:
    return sha[:12]
