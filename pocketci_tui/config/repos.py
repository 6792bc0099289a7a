"""The ``repos:`` section of ``config.yaml``: the repositories to build and what each may use.

Each entry's name, clone URL, grants and poll interval are checked here, so a repository that
cannot be cloned or polled is refused when the file is read, not when its first event arrives.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pocketci_tui.config.forges import FORGE_DEFAULT_URLS, ForgeSettings
from pocketci_tui.config.reading import (
    ENV_NAME_RE,
    SECRET_NAME_RE,
    ConfigError,
    Reader,
    parse_duration,
    shown,
)
from pocketci_tui.model import VENDORS, Vendor

_REPO_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+/[A-Za-z0-9_.*?\[\]-]+$")
_NESTED_REPO_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+(?:/[A-Za-z0-9_.*?\[\]-]+){1,20}$")
NESTED_VENDORS = ("gitlab",)
"""Forges whose repository names may hold groups in groups (``group/sub/project``)."""
MIN_POLL_SECONDS = 10.0
"""The shortest ``repos[].poll``: each check is a request to the forge, and forges limit them."""


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """A repository pocketci-tui builds.

    Attributes:
        name: ``owner/name`` as the forge reports it; shell globs allowed (``acme/*``).
        vendor: The forge (``github``).
        clone_url: Where to clone from; empty means derived from the vendor.
        token: The NAME of the secret-store entry used for cloning, or empty for public repos.
        secrets: The secret-store entries its ``pocketci.yaml`` may hand to functions
            (``from-keyring``); any other name is refused.
        env: The runner's environment variables its ``pocketci.yaml`` may hand to functions
            (``from-env``); any other variable is refused.
        webhook_secret: NAME of the secret-store entry its deliveries must be signed with;
            empty means its forge's webhook secret.
        statuses: Whether each run's state is posted back to the forge as a commit status;
            None (not set) means on when a token is configured (:attr:`posts_statuses`).
        status_token: NAME of the secret-store entry statuses are posted with; empty means
            ``token``.
        poll: Seconds between two checks of its branches and tags (``git ls-remote``), for a
            server no webhook reaches; 0 means it is not polled.
    """

    name: str
    vendor: Vendor = "github"
    clone_url: str = ""
    token: str = ""
    secrets: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    webhook_secret: str = ""
    statuses: bool | None = None
    status_token: str = ""
    poll: float = 0.0

    @property
    def status_token_name(self) -> str:
        """NAME of the secret-store entry commit statuses are posted with (may be empty)."""
        return self.status_token or self.token

    @property
    def posts_statuses(self) -> bool:
        """True when runs are reported back: ``statuses``, else whether a token is set.

        Without a token no forge accepts a status, so the default follows the token: a
        repository cloned with a token reports back, a public one cloned without does not.
        ``statuses: true`` without any token is kept on, so the missing token is reported.
        """
        if self.statuses is not None:
            return self.statuses
        return bool(self.status_token_name)

    def matches(self, vendor: str, repository: str) -> bool:
        """Tell whether an event's repository is this entry (case-insensitive, like GitHub)."""
        return vendor == self.vendor and fnmatch.fnmatchcase(repository.lower(), self.name.lower())


def parse_repo(
    source: str, index: int, item: Any, forges: Mapping[str, ForgeSettings]
) -> RepoConfig:
    """Read ``repos[index]``; ``forges`` tells whether its vendor has an address to clone from."""
    r = Reader(source, item, f"repos[{index}].")
    r.check_keys(
        (
            "name",
            "vendor",
            "clone-url",
            "token",
            "secrets",
            "env",
            "webhook-secret",
            "statuses",
            "status-token",
            "poll",
        )
    )
    statuses = r.data.get("statuses")
    if statuses is not None and not isinstance(statuses, bool):
        raise ConfigError(f"{r.where('statuses')}: expected true or false, got {shown(statuses)}")
    vendor = r.choice("vendor", "github", VENDORS)
    name = r.text("name", "")
    nested = vendor in NESTED_VENDORS
    pattern = _NESTED_REPO_PATTERN_RE if nested else _REPO_PATTERN_RE
    if not name or not pattern.fullmatch(name) or ".." in name:
        shape = "group/…/project" if nested else "owner/name"
        raise ConfigError(f"{r.where('name')}: expected {shape} (globs allowed), got {name!r}")
    clone_url = r.text("clone-url", "")
    if clone_url and any(c in name for c in "*?["):
        raise ConfigError(
            f"{r.where('clone-url')}: a clone URL fits one repository, not the pattern {name!r}"
        )
    if clone_url and ("@" in clone_url.split("://", 1)[-1].split("/", 1)[0]):
        raise ConfigError(
            f"{r.where('clone-url')}: must not carry credentials; name a secret in `token`"
        )
    if clone_url.startswith("-") or clone_url.lower().startswith("ext::"):
        raise ConfigError(f"{r.where('clone-url')}: not a clone URL: {clone_url!r}")
    forge = forges.get(vendor)
    if not clone_url and not (forge and forge.url) and vendor not in FORGE_DEFAULT_URLS:
        pattern_fix = "" if not any(c in name for c in "*?[") else " (a pattern needs the URL)"
        raise ConfigError(
            f"{r.where('vendor')}: pocketci-tui cannot tell where {name} is cloned from: "
            f"{vendor} has no public host",
            f"set forges.{vendor}.url to your server's address (like https://git.example.org)"
            f", or give this repository a clone-url{pattern_fix}",
        )
    return RepoConfig(
        name=name,
        vendor=vendor,
        clone_url=clone_url,
        token=r.secret_name("token", ""),
        secrets=_name_list(
            r,
            "secrets",
            SECRET_NAME_RE,
            "secret-store entry NAMES (letters, digits, . _ -), like [gh-password]",
        ),
        env=_name_list(r, "env", ENV_NAME_RE, "environment variable names, like [GITHUB_TOKEN]"),
        webhook_secret=r.secret_name("webhook-secret", ""),
        statuses=statuses,
        status_token=r.secret_name("status-token", ""),
        poll=_poll_interval(r, name),
    )


def _poll_interval(r: Reader, name: str) -> float:
    """Read ``repos[].poll``: a duration of at least :data:`MIN_POLL_SECONDS`, or 0 (absent)."""
    raw = r.data.get("poll")
    if raw is None:
        return 0.0
    seconds = parse_duration(raw, where=r.where("poll"))
    if seconds < MIN_POLL_SECONDS:
        raise ConfigError(
            f"{r.where('poll')}: {shown(raw)} is too often; poll at most every "
            f"{MIN_POLL_SECONDS:.0f}s",
            "use a duration like 60s or 5m (each check is a request to the forge)",
        )
    if any(c in name for c in "*?["):
        raise ConfigError(
            f"{r.where('poll')}: a pattern ({name!r}) cannot be polled: list each repository "
            "to poll by its own name",
        )
    return seconds


def _name_list(r: Reader, key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """Read a grant list (``repos[].secrets`` or ``repos[].env``): names, each once."""
    raw = r.data.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{r.where(key)}: expected a list of {what}")
    names: list[str] = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not pattern.fullmatch(item.strip()):
            raise ConfigError(f"{r.where(f'{key}[{i}]')}: expected one of {what}, got {item!r}")
        if item.strip() not in names:
            names.append(item.strip())
    return tuple(names)
