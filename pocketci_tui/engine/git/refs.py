"""The values that reach git: refused input, clone URLs and directory names.

Commit ids and ref names come from webhook payloads, so they are checked (more strictly than git
checks them, by :mod:`pocketci_tui.gitrefs`, which the intake asks too) before any git command
sees them; a repository's clone URL is derived from its forge; a configured repository id becomes
a directory name that cannot lead outside the workspace root. Nothing here runs git.
"""

from __future__ import annotations

import hashlib
import re

from pocketci_tui.engine.git.command import GitError
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.gitrefs import validate_ref, validate_sha

__all__ = [
    "GitInputError",
    "default_clone_url",
    "repo_dir_name",
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


def _short(sha: str) -> str:
    return sha[:12]
