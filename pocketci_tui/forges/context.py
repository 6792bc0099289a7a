"""The context a person reads an event by: who sent it, how many commits, and its page.

Each forge names these differently; the functions here read them from a decoded payload into
the :class:`~pocketci_tui.model.Event` fields ``author``, ``commits`` and ``url``. Payload text
is untrusted: every value is cut to a bound, kept to one line, stripped of control and
bidirectional characters, and a URL is kept only when it is a plain ``http(s)`` address, so
that what reaches the store and the screen cannot move the cursor, reorder text or smuggle a
``javascript:`` link.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

AUTHOR_MAX = 100
"""The longest author or sender name kept (forge user names are far shorter)."""
URL_MAX = 500
"""The longest page address kept (a compare URL of two full shas is about 120 characters)."""
_MAX_COMMITS = 1_000_000
"""A commit count beyond this is not plausible (forges cap pushes far below)."""

_UNSAFE_RE = re.compile(
    "[\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]"
)
"""Control characters and the bidirectional controls (as the UI's ``clean`` replaces them)."""
_URL_RE = re.compile(r"https?://[!-~]+")
"""An address of printable ASCII without spaces: anything else is not kept."""


def one_line(text: str, limit: int) -> str:
    """The first line of ``text``, without control or bidi characters, at most ``limit`` long.

    Args:
        text: Untrusted text from a payload.
        limit: The most characters kept.

    Returns:
        Safe single-line text (empty when there is none).
    """
    stripped = text.strip()
    if not stripped:
        return ""
    return _UNSAFE_RE.sub("", stripped.splitlines()[0]).strip()[:limit]


def web_url(text: str) -> str:
    """``text`` when it is a plain ``http(s)`` address with a host, else ``""``.

    Args:
        text: An address from a payload.

    Returns:
        The address, or ``""`` when it is too long, has another scheme, spaces, control or
        non-ASCII characters, or credentials.
    """
    if len(text) > URL_MAX or not _URL_RE.fullmatch(text):
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:  # a malformed IPv6 host (``http://[x``)
        return ""
    if not parts.hostname or "@" in parts.netloc:
        return ""
    return text


def _obj(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is dict else {}


def _str(data: Any, key: str) -> str:
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is str else ""


def _count(data: Any, key: str) -> int | None:
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is int and 0 <= value <= _MAX_COMMITS else None


def _commit_list_length(payload: dict[str, Any]) -> int | None:
    commits = payload.get("commits")
    return len(commits) if type(commits) is list else None


def _fields(author: str, commits: int | None, url: str) -> dict[str, Any]:
    return {"author": one_line(author, AUTHOR_MAX), "commits": commits, "url": web_url(url)}


def github(event_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Author, commit count and page of a GitHub delivery.

    The sender (who pushed or acted) is the author; a push counts the commits its payload lists
    (GitHub lists at most 2,048) and links to its compare page; pull requests and releases link
    to their own page, anything else to the repository.

    Args:
        event_name: The ``X-GitHub-Event`` header.
        payload: The decoded body.

    Returns:
        ``author``, ``commits`` and ``url`` for :class:`~pocketci_tui.model.Event`.
    """
    author = _str(_obj(payload, "sender"), "login") or _str(_obj(payload, "pusher"), "name")
    repo_page = _str(_obj(payload, "repository"), "html_url")
    if event_name == "push":
        url = _str(payload, "compare") or _str(_obj(payload, "head_commit"), "url")
        return _fields(author, _commit_list_length(payload), url or repo_page)
    if event_name == "pull_request":
        page = _str(_obj(payload, "pull_request"), "html_url")
        return _fields(author, None, page or repo_page)
    if event_name == "release":
        page = _str(_obj(payload, "release"), "html_url")
        return _fields(author, None, page or repo_page)
    return _fields(author, None, repo_page)


def gitea(event_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Author, commit count and page of a Gitea or Forgejo delivery.

    Args:
        event_name: The event header (``push``, ``pull_request``, ``release``, ``create``...).
        payload: The decoded body.

    Returns:
        ``author``, ``commits`` and ``url`` for :class:`~pocketci_tui.model.Event`.
    """
    author = _str(_obj(payload, "sender"), "login") or _str(_obj(payload, "pusher"), "login")
    repo_page = _str(_obj(payload, "repository"), "html_url")
    if event_name == "push":
        commits = _count(payload, "total_commits")
        if commits is None:
            commits = _commit_list_length(payload)
        return _fields(author, commits, _str(payload, "compare_url") or repo_page)
    if event_name == "pull_request":
        page = _str(_obj(payload, "pull_request"), "html_url")
        return _fields(author, None, page or repo_page)
    if event_name == "release":
        page = _str(_obj(payload, "release"), "html_url")
        return _fields(author, None, page or repo_page)
    return _fields(author, None, repo_page)


def gitlab(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Author, commit count and page of a GitLab delivery.

    A push or tag push names its user by ``user_username`` and counts its commits in
    ``total_commits_count``; it links to the head commit (or the tag) under the project's page.
    A merge request links to itself.

    Args:
        kind: The normalized event type (``push``, ``tag``, ``merge_request``, ``release``...).
        payload: The decoded body.

    Returns:
        ``author``, ``commits`` and ``url`` for :class:`~pocketci_tui.model.Event`.
    """
    project_page = _str(_obj(payload, "project"), "web_url")
    user = _obj(payload, "user")
    author = (
        _str(payload, "user_username")
        or _str(user, "username")
        or _str(payload, "user_name")
        or _str(user, "name")
    )
    if kind in ("push", "tag"):
        commits = _count(payload, "total_commits_count")
        ref = _str(payload, "ref")
        after = _str(payload, "checkout_sha") or _str(payload, "after")
        if kind == "tag" and ref.startswith("refs/tags/"):
            tail = "/-/tags/" + quote(ref.removeprefix("refs/tags/"), safe="")
        elif re.fullmatch(r"[0-9a-f]{40,64}", after) and set(after) != {"0"}:
            tail = f"/-/commit/{after}"
        else:
            tail = ""
        return _fields(author, commits, project_page + tail if project_page else "")
    if kind == "merge_request":
        page = _str(_obj(payload, "object_attributes"), "url")
        return _fields(author, None, page or project_page)
    if kind == "release":
        return _fields(author, None, _str(payload, "url") or project_page)
    return _fields(author, None, project_page)
