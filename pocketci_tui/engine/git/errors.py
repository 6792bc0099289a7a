"""The errors of the git layer: what failed, with every secret masked.

The command runner and the credentials both raise them, and the workspace's parts catch them,
so they sit in a module of their own that both import.
"""

from __future__ import annotations

__all__ = ["GitError", "GitTimeoutError"]


class GitError(Exception):
    """A git operation failed; the message says what failed and never contains a secret."""


class GitTimeoutError(GitError):
    """A git command did not finish within its time limit and was killed."""
