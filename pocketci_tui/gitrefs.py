"""What a commit id and a ref name from a payload may look like, decided in one place.

Commit ids and ref names arrive in webhook payloads and end up as git arguments, so the intake
(deciding whether an event is run at all) and the git workspace (right before git sees them)
must agree on what is acceptable. Both ask this module. The rules are git's own
(``git check-ref-format``) plus stricter ones of ours: a full ref under ``refs/`` with a name
below its namespace, no component starting with ``-`` (it would read as an option), a length
cap; and a commit id is 40 (SHA-1) or 64 (SHA-256) lowercase hex digits, never all zeros.

Nothing here runs git or does I/O.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_REF_LENGTH",
    "is_commit_id",
    "is_no_commit",
    "ref_problem",
    "sha_problem",
    "validate_ref",
    "validate_sha",
]

MAX_REF_LENGTH = 255
"""The longest ref name accepted (git allows longer ones; no forge sends them)."""

_COMMIT_ID_RE = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
_REF_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def is_commit_id(text: str) -> bool:
    """Whether a string has the shape of a full commit id (the all-zeros id included).

    For telling a commit id from a branch name, or reading git's own output; a value that is
    to name a commit is checked with :func:`sha_problem` instead.
    """
    return isinstance(text, str) and _COMMIT_ID_RE.match(text) is not None


def is_no_commit(sha: str) -> bool:
    """Whether a payload's commit id says "no commit": empty, or the all-zeros id."""
    return not sha or (len(sha) in (40, 64) and set(sha) == {"0"})


def sha_problem(sha: str) -> str:
    """Say why a payload value cannot name a commit, or ``""`` when it can.

    Args:
        sha: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits are expected.

    Returns:
        The reason: not such a string, or all zeros (the "no commit" marker of deletions).
    """
    if not is_commit_id(sha):
        return f"not a commit id: {sha[:80]!r}" if isinstance(sha, str) else "not a commit id"
    if sha.strip("0") == "":
        return "the all-zeros commit id names no commit"
    return ""


def validate_sha(sha: str) -> None:
    """Check a commit id from a payload (see :func:`sha_problem`).

    Raises:
        ValueError: With the reason.
    """
    problem = sha_problem(sha)
    if problem:
        raise ValueError(problem)


def ref_problem(ref: str) -> str:
    """Say why a full ref name from a payload must never reach git, or ``""`` when it may.

    Accepted refs start with ``refs/``, have a name below their namespace
    (``refs/heads/main``) and follow ``git check-ref-format``: no control character, space,
    ``~ ^ : ? * [ \\``, no ``..`` or ``@{``, no empty component, no component starting with
    ``.`` or ending with ``.lock``, no trailing ``.``. On top of git's rules, no component may
    start with ``-`` and the length is capped at :data:`MAX_REF_LENGTH`. Shell
    metacharacters (``$``, ``;``, ``|``, quotes, backticks) are allowed because git allows
    them in branch names and no shell ever sees a ref.

    Args:
        ref: A full ref name, e.g. ``refs/heads/main``.

    Returns:
        The reason, or ``""``.
    """
    if not isinstance(ref, str) or not ref:
        return "empty ref"
    if len(ref) > MAX_REF_LENGTH:
        return f"ref longer than {MAX_REF_LENGTH} characters"
    if not ref.startswith("refs/"):
        return f"ref does not start with refs/: {ref!r}"
    if _REF_FORBIDDEN_RE.search(ref):
        return f"ref contains a space, control or forbidden character: {ref!r}"
    if ".." in ref or "@{" in ref:
        return f"ref contains '..' or '@{{': {ref!r}"
    if ref.endswith(("/", ".")) or "//" in ref:
        return f"ref has an empty component or ends with '.': {ref!r}"
    parts = ref.split("/")
    for part in parts:
        if part.startswith((".", "-")):
            return f"ref component starts with '.' or '-': {ref!r}"
        if part.endswith(".lock"):
            return f"ref component ends with '.lock': {ref!r}"
    if len(parts) < 3:
        return f"ref has no name below its namespace: {ref!r}"
    return ""


def validate_ref(ref: str) -> None:
    """Check a full ref name from a payload (see :func:`ref_problem`).

    Raises:
        ValueError: With the reason.
    """
    problem = ref_problem(ref)
    if problem:
        raise ValueError(problem)
