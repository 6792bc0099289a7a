"""User configuration (``config.yaml``) and repository specs (``pocketci.yaml``).

Both are parsed into frozen dataclasses. Every problem raises :class:`ConfigError` whose message
names the file and the key, so the user knows exactly what to fix. This module reads the user's
``config.yaml``; :mod:`~pocketci_tui.config.repo_spec` a repository's ``pocketci.yaml`` and
:mod:`~pocketci_tui.config.reading` what both share. Every name stays importable from here.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import yaml

from pocketci_tui.config.reading import (
    ENV_NAME_RE,
    MAX_SHOWN,
    SECRET_NAME_RE,
    YAML_FIX,
    ConfigError,
    FileTooLarge,
    Reader,
    shown,
    yaml_error,
)
from pocketci_tui.config.repo_spec import (
    MAX_PATTERN_LENGTH,
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    MAX_SPEC_PATHS,
    MAX_SPEC_SECRETS,
    MAX_SPEC_VALUES,
    SPEC_FILE,
    RepoSpec,
    SecretRef,
    load_bounded_yaml,
    load_repo_spec,
    parse_repo_spec,
    read_bounded_file,
    resolve_module_dir,
)
from pocketci_tui.keys import keymap_problem
from pocketci_tui.model import VENDORS, Vendor, webhook_path

__all__ = [
    "DEFAULT_STATUS_CONTEXT",
    "FORGE_DEFAULT_URLS",
    "FORK_MODES",
    "MAX_PATTERN_LENGTH",
    "MAX_SHOWN",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "MAX_SPEC_PATHS",
    "MAX_SPEC_SECRETS",
    "MAX_SPEC_VALUES",
    "MIN_POLL_SECONDS",
    "NESTED_VENDORS",
    "SECRET_BACKENDS",
    "SECRET_NAME_RE",
    "SPEC_FILE",
    "STATUS_CONTEXT_FIELDS",
    "YAML_FIX",
    "ConfigError",
    "DaggerSettings",
    "FileTooLarge",
    "ForgeSettings",
    "ForkMode",
    "RepoConfig",
    "RepoSpec",
    "SecretBackend",
    "SecretRef",
    "Settings",
    "check_base_url",
    "default_config_text",
    "load_bounded_yaml",
    "load_repo_spec",
    "load_settings",
    "parse_duration",
    "parse_repo_spec",
    "parse_settings",
    "read_bounded_file",
    "resolve_module_dir",
    "shown",
    "yaml_error",
]

ForkMode = Literal["approve", "no-secrets", "skip"]
"""How pull requests from forks are handled (``fork-pull-requests``)."""
FORK_MODES: tuple[ForkMode, ...] = get_args(ForkMode)
SecretBackend = Literal["auto", "keyring", "file", "plaintext", "memory"]
"""Where secrets are kept (``secrets.backend``)."""
SECRET_BACKENDS: tuple[SecretBackend, ...] = get_args(SecretBackend)
_REPO_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+/[A-Za-z0-9_.*?\[\]-]+$")
_NESTED_REPO_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+(?:/[A-Za-z0-9_.*?\[\]-]+){1,20}$")
NESTED_VENDORS = ("gitlab",)
"""Forges whose repository names may hold groups in groups (``group/sub/project``)."""
FORGE_DEFAULT_URLS = {"github": "https://github.com", "gitlab": "https://gitlab.com"}
"""Where a forge's repositories live when ``forges.<vendor>.url`` is not set; Gitea and
Forgejo are always someone's own server, so they have no default."""
DEFAULT_STATUS_CONTEXT = "pocketci/{function}"
"""The commit status context of a run when ``status-context`` is not set."""
STATUS_CONTEXT_FIELDS = ("function", "event")
"""The fields a ``status-context`` template may use."""
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, *, where: str) -> float:
    """Parse ``90``, ``90s``, ``60m``, ``1.5h`` or ``2d`` into seconds.

    Args:
        value: The raw YAML value.
        where: ``file: key`` for the error message.

    Returns:
        The duration in seconds, greater than zero.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like 90s, 60m or 2h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ConfigError(f"{where}: expected a duration like 90s, 60m or 2h, got {value!r}")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{where}: the duration must be greater than zero")
    return seconds


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


@dataclass(frozen=True, slots=True)
class ForgeSettings:
    """One forge's entry under ``forges:``; every field is optional.

    Attributes:
        url: The forge's base URL (``https://git.example.org``), without a trailing slash;
            clone URLs are derived from it. Empty: the forge's public host, if it has one.
        api_url: The forge's API URL, for talking back to it; empty when not needed.
        webhook_secret: NAME of the secret-store entry holding this forge's webhook secret;
            empty means the top-level ``webhook-secret``.
    """

    url: str = ""
    api_url: str = ""
    webhook_secret: str = ""


@dataclass(frozen=True, slots=True)
class DaggerSettings:
    """How the ``dagger`` CLI and engine are reached.

    Attributes:
        cli: Path of the ``dagger`` CLI; empty means ``dagger`` on PATH, else the SDK's download.
        runner_host: A shared or remote engine (``tcp://...``, ``kube-pod://...``), or empty.
        cloud_token: NAME of the secret-store entry holding a Dagger Cloud token, or empty.
    """

    cli: str = ""
    runner_host: str = ""
    cloud_token: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    """The user's configuration, loaded once and passed to every part.

    Attributes:
        host: The webhook listener's address.
        port: The webhook listener's port.
        webhook_secret: NAME of the secret-store entry holding the webhook secret.
        concurrency: How many ``dagger call`` processes run at once, across all events.
        timeout: Seconds one ``dagger call`` may take.
        repos: The repositories to build.
        forges: Each forge's settings by vendor (only the forges the file names).
        fork_pull_requests: ``approve``, ``no-secrets`` or ``skip``.
        dagger: How Dagger is reached.
        retention_events: How many events to keep.
        retention_days: How many days to keep events.
        secrets_backend: ``auto``, ``keyring``, ``file``, ``plaintext`` or ``memory``.
        keymap: Binding id to keys, to remap the UI.
        status_context: The commit status context of each run (``{function}``, ``{event}``).
        public_url: Where people reach this instance (``public-url``), without a trailing
            slash; each commit status links there (:meth:`status_target`) when it is set, and
            carries no link when it is empty.
        source: The file this was read from, if any.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    webhook_secret: str = "webhook-secret"
    concurrency: int = 2
    timeout: float = 3600.0
    repos: tuple[RepoConfig, ...] = ()
    forges: Mapping[str, ForgeSettings] = field(default_factory=dict)
    fork_pull_requests: ForkMode = "approve"
    dagger: DaggerSettings = field(default_factory=DaggerSettings)
    retention_events: int = 5000
    retention_days: float = 90.0
    secrets_backend: SecretBackend = "auto"
    keymap: Mapping[str, str] = field(default_factory=dict)
    status_context: str = DEFAULT_STATUS_CONTEXT
    public_url: str = ""
    source: Path | None = None

    def status_target(self, event_id: int) -> str | None:
        """The ``target_url`` of an event's commit statuses, or None without ``public-url``.

        Nothing serves a page per event yet, so the link is the public URL itself with the
        event named in the fragment (``https://ci.example.org/#event-42``): it opens what is
        served there and says which event, and a page served later can read the fragment.
        """
        if not self.public_url:
            return None
        return f"{self.public_url}/#event-{event_id}"

    def own_secrets(self) -> dict[str, str]:
        """pocketci-tui's own secret-store entries, by name, with what each one is.

        The webhook secret, every clone token and the Dagger Cloud token: a repository's
        ``pocketci.yaml`` gets one of them only when the user grants it explicitly, and
        ``check`` warns about such a grant.
        """
        own = {self.webhook_secret: "the webhook secret (anyone holding it can sign deliveries)"}
        for vendor, name in self.webhook_secrets().items():
            own.setdefault(name, f"the webhook secret of {vendor}")
        for repo in self.repos:
            if repo.webhook_secret:
                own.setdefault(repo.webhook_secret, f"the webhook secret of {repo.name}")
        for repo in self.repos:
            if repo.token:
                own.setdefault(repo.token, f"the clone token of {repo.name}")
            if repo.status_token:
                own.setdefault(repo.status_token, f"the status token of {repo.name}")
        if self.dagger.cloud_token:
            own.setdefault(self.dagger.cloud_token, "the Dagger Cloud token")
        return own

    def forge_url(self, vendor: str) -> str:
        """A forge's base URL: ``forges.<vendor>.url``, else its public host, else ``""``."""
        forge = self.forges.get(vendor)
        return (forge.url if forge else "") or FORGE_DEFAULT_URLS.get(vendor, "")

    def api_url(self, vendor: str) -> str:
        """A forge's API base URL: ``forges.<vendor>.api-url``, else derived from its URL.

        ``https://api.github.com`` for github.com, ``<url>/api/v3`` for another GitHub host
        (Enterprise Server), ``<url>/api/v1`` for Gitea and Forgejo, ``<url>/api/v4`` for
        GitLab; ``""`` when the forge has no URL either.
        """
        forge = self.forges.get(vendor)
        if forge and forge.api_url:
            return forge.api_url
        url = self.forge_url(vendor)
        if not url:
            return ""
        if vendor == "github":
            return "https://api.github.com" if url == "https://github.com" else url + "/api/v3"
        return url + ("/api/v4" if vendor == "gitlab" else "/api/v1")

    def webhook_secret_of(self, vendor: str) -> str:
        """NAME of the secret-store entry a forge's deliveries are verified with."""
        forge = self.forges.get(vendor)
        return (forge.webhook_secret if forge else "") or self.webhook_secret

    def webhook_secrets(self) -> dict[str, str]:
        """The webhook secret's NAME of every forge, by vendor (most share the top-level one)."""
        return {vendor: self.webhook_secret_of(vendor) for vendor in VENDORS}

    def forges_in_use(self) -> tuple[str, ...]:
        """The forges the file names under ``forges:`` or as a repository's vendor, in order.

        GitHub alone when it names none (the first start, a file with no repositories).
        """
        used = dict.fromkeys([*self.forges, *(r.vendor for r in self.repos)])
        return tuple(used) or ("github",)

    def webhook_secrets_in_use(self) -> dict[str, str]:
        """Every webhook secret deliveries are verified with, by NAME, with whose it is.

        The top-level one first (``""``: every forge without its own), then each forge that
        the file names or a repository uses with a secret of its own (``gitea``), then each
        repository's own (``acme/api``). A name used twice is listed once, first come.
        """
        names = {self.webhook_secret: ""}
        for vendor in self.forges_in_use():
            names.setdefault(self.webhook_secret_of(vendor), vendor)
        for repo in self.repos:
            if repo.webhook_secret:
                names.setdefault(repo.webhook_secret, repo.name)
        return names

    def repo_for(self, vendor: str, repository: str) -> RepoConfig | None:
        """Return the first configured repository matching an event, or None."""
        for repo in self.repos:
            if repo.matches(vendor, repository):
                return repo
        return None

    @property
    def listen_url(self) -> str:
        """The base URL of the listener (``http://127.0.0.1:8080``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        """The URL to paste into GitHub's webhook settings (before any tunnel)."""
        return self.listen_url + webhook_path("github")


def parse_settings(data: Any, source: str = "config.yaml") -> Settings:
    """Build :class:`Settings` from parsed YAML.

    Args:
        data: What ``yaml.safe_load`` returned (None for an empty file).
        source: The file name, for error messages.

    Returns:
        The validated settings.
    """
    r = Reader(source, data)
    r.check_keys(
        (
            "listen",
            "webhook-secret",
            "concurrency",
            "timeout",
            "repos",
            "forges",
            "fork-pull-requests",
            "dagger",
            "retention",
            "secrets",
            "keymap",
            "status-context",
            "public-url",
        )
    )
    listen = r.sub("listen")
    listen.check_keys(("host", "port"))
    dagger = r.sub("dagger")
    dagger.check_keys(("cli", "runner-host", "cloud-token"))
    retention = r.sub("retention")
    retention.check_keys(("events", "days"))
    secrets = r.sub("secrets")
    secrets.check_keys(("backend",))
    keymap = r.sub("keymap")
    for key, value in keymap.data.items():
        if not isinstance(value, str):
            raise ConfigError(
                f"{keymap.where(str(key))}: expected keys like 'ctrl+r', got {value!r}"
            )
    culprit, problem = keymap_problem({str(k): v for k, v in keymap.data.items()})
    if culprit:
        raise ConfigError(f"{keymap.where(culprit)}: {problem}")

    repos_raw = r.data.get("repos") or []
    if not isinstance(repos_raw, list):
        raise ConfigError(f"{r.where('repos')}: expected a list of repositories")
    forges = _parse_forges(r.sub("forges"))
    repos = tuple(_parse_repo(source, i, item, forges) for i, item in enumerate(repos_raw))

    host = listen.text("host", "127.0.0.1")
    if not host:
        raise ConfigError(f"{listen.where('host')}: must not be empty")
    return Settings(
        host=host,
        port=listen.integer("port", 8080, low=0, high=65535),
        webhook_secret=r.secret_name("webhook-secret", "webhook-secret") or "webhook-secret",
        concurrency=r.integer("concurrency", 2, low=1, high=256),
        timeout=parse_duration(r.data.get("timeout", "60m"), where=r.where("timeout")),
        repos=repos,
        forges=forges,
        fork_pull_requests=r.choice("fork-pull-requests", "approve", FORK_MODES),
        dagger=DaggerSettings(
            cli=dagger.text("cli", ""),
            runner_host=dagger.text("runner-host", ""),
            cloud_token=dagger.secret_name("cloud-token", ""),
        ),
        retention_events=retention.integer("events", 5000, low=1, high=10_000_000),
        retention_days=retention.number("days", 90.0),
        secrets_backend=secrets.choice("backend", "auto", SECRET_BACKENDS),
        keymap={str(k): str(v) for k, v in keymap.data.items()},
        status_context=_status_context(r),
        public_url=_public_url(r),
        source=Path(source) if source else None,
    )


def check_base_url(url: str, key: str = "url") -> str:
    """Check a forge's base URL and return it without a trailing slash.

    Args:
        url: ``https://git.example.org`` or ``https://example.org/gitea`` (http for a forge
            on the local network).
        key: The config key, for messages.

    Raises:
        ValueError: Not http(s), no host, a user name or password, a query or a fragment.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{key}: {url!r} is not an http(s) URL with a host")
    if "@" in parts.netloc:
        raise ValueError(
            f"{key}: {url!r} holds a user name or password; keep tokens in the secret store"
        )
    if parts.query or parts.fragment or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise ValueError(f"{key}: {url!r} has a query, a fragment, spaces or control characters")
    return url.rstrip("/")


def _parse_forges(r: Reader) -> dict[str, ForgeSettings]:
    """Read ``forges:``: vendor -> {url, api-url, webhook-secret}, every field optional."""
    r.check_keys(VENDORS)
    forges: dict[str, ForgeSettings] = {}
    for vendor in VENDORS:
        if vendor not in r.data:
            continue
        f = r.sub(vendor)
        f.check_keys(("url", "api-url", "webhook-secret"))
        urls = {}
        for key in ("url", "api-url"):
            value = f.text(key, "")
            try:
                urls[key] = check_base_url(value, f.where(key)) if value else ""
            except ValueError as exc:
                raise ConfigError(
                    str(exc), "give the forge's address, like https://git.example.org"
                ) from None
        forges[vendor] = ForgeSettings(
            url=urls["url"],
            api_url=urls["api-url"],
            webhook_secret=f.secret_name("webhook-secret", ""),
        )
    return forges


def _parse_repo(
    source: str, index: int, item: Any, forges: Mapping[str, ForgeSettings]
) -> RepoConfig:
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


def _status_context(r: Reader) -> str:
    """Read ``status-context``: a template of at most 100 characters, known fields only."""
    template = r.text("status-context", DEFAULT_STATUS_CONTEXT)
    unknown = set(re.findall(r"\{([^{}]*)\}", template)) - set(STATUS_CONTEXT_FIELDS)
    if not template or len(template) > 100 or unknown or any(ord(c) < 0x20 for c in template):
        fields = ", ".join("{" + f + "}" for f in STATUS_CONTEXT_FIELDS)
        raise ConfigError(
            f"{r.where('status-context')}: expected a context of at most 100 characters using "
            f"only {fields}, got {shown(template)}",
            'like status-context: "pocketci/{function}"',
        )
    return template


def _public_url(r: Reader) -> str:
    """Read ``public-url``: an http(s) address with no credentials, query or fragment."""
    value = r.text("public-url", "")
    try:
        return check_base_url(value, r.where("public-url")) if value else ""
    except ValueError as exc:
        raise ConfigError(
            str(exc), "give the address people open this instance at, like https://ci.example.org"
        ) from None


MIN_POLL_SECONDS = 10.0
"""The shortest ``repos[].poll``: each check is a request to the forge, and forges limit them."""


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


def load_settings(path: Path) -> Settings:
    """Read the user configuration; a missing file gives the defaults.

    Args:
        path: The ``config.yaml`` to read.

    Returns:
        The validated settings.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(source=None)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise yaml_error(str(path), exc) from exc
    settings = parse_settings(data, str(path))
    return settings


DEFAULT_CONFIG = """\
# pocketci-tui configuration. Every key is documented in the README.
listen:
  host: 127.0.0.1        # keep it on loopback; put a tunnel or reverse proxy in front
  port: {port}
webhook-secret: webhook-secret   # NAME of the secret-store entry, never the value
concurrency: 2           # dagger calls at once, across all events
timeout: 60m             # per dagger call
fork-pull-requests: approve      # approve | no-secrets | skip
repos: []
#  - name: acme/api               # owner/name; globs allowed: acme/*
#    token: github-token          # secret-store entry used for cloning
#    secrets: [gh-password]       # secret-store entries its pocketci.yaml may use
#    env: []                      # runner environment variables its pocketci.yaml may use
dagger:
  cli: ""                # empty: dagger on PATH, else the SDK's own download
  runner-host: ""
  cloud-token: ""
retention: {{events: 5000, days: 90}}
secrets:
  backend: auto          # auto | keyring | file | plaintext
"""


def default_config_text(port: int = 8080) -> str:
    """Return a commented starter ``config.yaml``."""
    return DEFAULT_CONFIG.format(port=port)
