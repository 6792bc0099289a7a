"""How each forge is reached with git: clone URLs, pull/merge request refs, token users.

A webhook payload names a repository, never where to fetch it from: the clone URL is built
from the forge's base URL in the user config (``forges.<vendor>.url``: GitHub's own host, a
self-hosted ``https://git.example.org``, a Gitea under a sub-path) and the repository's full
name, or it is the repository's ``clone-url``. Each forge also keeps the head of a pull or
merge request under its own ref, on the base (target) repository, where a fork's commits can
be fetched without knowing the fork; and each forge expects a token in its own basic-auth
form over HTTPS.

| forge           | pull/merge request head        | token as basic auth            |
|-----------------|--------------------------------|--------------------------------|
| GitHub          | ``refs/pull/<n>/head``         | ``x-access-token:<token>``     |
| Gitea, Forgejo  | ``refs/pull/<n>/head``         | any user, the token as password|
| GitLab          | ``refs/merge-requests/<n>/head`` | ``oauth2:<token>``           |

Everything here is pure: the engine turns these facts into git commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pocketci_tui.config import FORGE_DEFAULT_URLS, check_base_url

__all__ = [
    "GIT_ACCESS",
    "GitAccess",
    "check_base_url",
    "git_access",
]

_GITHUB_OWNER_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\Z")
_GITHUB_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")
_PATH_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}\Z")
"""One segment of a Gitea or GitLab path: what both forges allow in user, group and
repository names, and never a leading ``-`` or ``.`` (an option, a hidden or parent path)."""

MAX_GROUP_DEPTH = 20
"""GitLab nests subgroups at most 20 deep; a longer path is no repository of any forge."""


@dataclass(frozen=True, slots=True)
class GitAccess:
    """The git facts of one forge.

    Attributes:
        vendor: The forge (``github``, ``gitea``, ``forgejo``, ``gitlab``).
        default_url: The forge's base URL when the config names none (``github.com``,
            ``gitlab.com``); empty for Gitea and Forgejo, which are always someone's own.
        username: The basic-auth user sent with a clone token.
        change_ref: The ref of a pull/merge request's head, with ``{number}``.
        nested: Whether repository names may have more than two parts (GitLab's subgroups).
        label: How the forge is named in messages.
    """

    vendor: str
    default_url: str
    username: str
    change_ref: str
    nested: bool = False
    label: str = ""

    def change_refs(self, number: int | None) -> tuple[str, ...]:
        """The refs holding the head of pull/merge request ``number`` on the base repository.

        Args:
            number: The pull/merge request number (``!7``, ``#7``), or None.

        Returns:
            The refs to fetch when the server refuses commit ids (empty without a number).
        """
        if number is None or number <= 0:
            return ()
        return (self.change_ref.format(number=number),)

    def check_name(self, repository: str) -> None:
        """Check a repository's full name against the forge's naming rules.

        Raises:
            ValueError: A name the forge would not allow (so no URL is built from it).
        """
        if self.vendor == "github":
            owner, sep, name = repository.partition("/")
            if not sep or not _GITHUB_OWNER_RE.match(owner) or not _GITHUB_NAME_RE.match(name):
                raise ValueError(f"not a GitHub owner/name: {repository!r}")
            if name in (".", "..") or name.lower().endswith(".git"):
                raise ValueError(f"not a GitHub repository name: {repository!r}")
            return
        parts = repository.split("/")
        most = MAX_GROUP_DEPTH + 1 if self.nested else 2
        if not 2 <= len(parts) <= most:
            shape = "group/…/project" if self.nested else "owner/name"
            raise ValueError(f"not a {self.label} repository ({shape}): {repository!r}")
        for part in parts:
            if not _PATH_PART_RE.match(part) or part.endswith(".") or ".." in part:
                raise ValueError(f"not a {self.label} repository name: {repository!r}")
        if parts[-1].lower().endswith((".git", ".atom")):
            raise ValueError(f"not a {self.label} repository name: {repository!r}")

    def clone_url(self, base_url: str, repository: str) -> str:
        """The HTTPS clone URL of a repository, from the forge's base URL and its full name.

        Args:
            base_url: ``forges.<vendor>.url`` from the config, or empty for the default.
            repository: The full name (``owner/name``; GitLab ``group/sub/project``), as the
                event reports it and a configured repository matched it.

        Returns:
            ``<base>/<repository>.git`` (a Gitea under a sub-path keeps it).

        Raises:
            ValueError: No base URL for a self-hosted forge, an unusable base URL, or a name
                the forge would not allow; the message says what to configure.
        """
        base = base_url or self.default_url
        if not base:
            raise ValueError(
                f"no URL for {self.label}: set forges.{self.vendor}.url in the config "
                f"(e.g. https://git.example.org) or the repository's clone-url"
            )
        base = check_base_url(base, f"forges.{self.vendor}.url")
        self.check_name(repository)
        return f"{base}/{repository}.git"


GIT_ACCESS: dict[str, GitAccess] = {
    "github": GitAccess(
        vendor="github",
        default_url=FORGE_DEFAULT_URLS["github"],
        username="x-access-token",
        change_ref="refs/pull/{number}/head",
        label="GitHub",
    ),
    "gitea": GitAccess(
        vendor="gitea",
        default_url="",
        username="pocketci-tui",
        change_ref="refs/pull/{number}/head",
        label="Gitea",
    ),
    "forgejo": GitAccess(
        vendor="forgejo",
        default_url="",
        username="pocketci-tui",
        change_ref="refs/pull/{number}/head",
        label="Forgejo",
    ),
    "gitlab": GitAccess(
        vendor="gitlab",
        default_url=FORGE_DEFAULT_URLS["gitlab"],
        username="oauth2",
        change_ref="refs/merge-requests/{number}/head",
        nested=True,
        label="GitLab",
    ),
}
"""The git facts of every forge pocketci-tui speaks."""


def git_access(vendor: str) -> GitAccess:
    """The git facts of a forge.

    Raises:
        ValueError: A forge pocketci-tui does not speak.
    """
    try:
        return GIT_ACCESS[vendor]
    except KeyError:
        raise ValueError(f"unknown forge {vendor!r}") from None
