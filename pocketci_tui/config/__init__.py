"""User configuration (``config.yaml``) and repository specs (``pocketci.yaml``).

Both are parsed into frozen dataclasses. Every problem raises :class:`ConfigError` whose message
names the file and the key, so the user knows exactly what to fix. This module reads the user's
``config.yaml`` into :class:`Settings`, with its ``forges:`` section read by
:mod:`~pocketci_tui.config.forges` and its ``repos:`` by :mod:`~pocketci_tui.config.repos`;
:mod:`~pocketci_tui.config.repo_spec` reads a repository's ``pocketci.yaml`` and
:mod:`~pocketci_tui.config.reading` what both share. Every name stays importable from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from pocketci_tui.config.engines import (
    LOCAL_ENGINE,
    EngineSettings,
    check_runner_host,
    parse_engines,
)
from pocketci_tui.config.forges import (
    FORGE_DEFAULT_URLS,
    ForgeSettings,
    check_base_url,
    parse_forges,
)
from pocketci_tui.config.reading import (
    MAX_SHOWN,
    SECRET_NAME_RE,
    YAML_FIX,
    ConfigError,
    FileTooLarge,
    Reader,
    parse_duration,
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
    MAX_SPECS,
    SPEC_FILE,
    RepoSpec,
    SecretRef,
    load_bounded_yaml,
    load_repo_specs,
    parse_repo_spec,
    parse_repo_specs,
    read_bounded_file,
    resolve_module_dir,
)
from pocketci_tui.config.repos import MIN_POLL_SECONDS, NESTED_VENDORS, RepoConfig, parse_repo
from pocketci_tui.keys import keymap_problem
from pocketci_tui.model import VENDORS, webhook_path

__all__ = [
    "DEFAULT_STATUS_CONTEXT",
    "FORGE_DEFAULT_URLS",
    "FORK_MODES",
    "LOCAL_ENGINE",
    "MAX_PATTERN_LENGTH",
    "MAX_SHOWN",
    "MAX_SPECS",
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
    "EngineSettings",
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
    "load_repo_specs",
    "load_settings",
    "parse_duration",
    "parse_repo_spec",
    "parse_repo_specs",
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
DEFAULT_STATUS_CONTEXT = "pocketci/{function}"
"""The commit status context of a run when ``status-context`` is not set."""
STATUS_CONTEXT_FIELDS = ("function", "event", "spec")
"""The fields a ``status-context`` template may use."""


@dataclass(frozen=True, slots=True)
class DaggerSettings:
    """How the ``dagger`` CLI and engine are reached.

    Attributes:
        cli: Path of the ``dagger`` CLI; empty means ``dagger`` on PATH, else the SDK's download.
        runner_host: A shared or remote engine (``tcp://...``, ``kube-pod://...``), or empty.
        cloud_token: NAME of the secret-store entry holding a Dagger Cloud token, or empty.
        engines: The pool of engines builds are spread over (``dagger.engines``); empty means
            the single ``runner_host``.
    """

    cli: str = ""
    runner_host: str = ""
    cloud_token: str = ""
    engines: tuple[EngineSettings, ...] = ()


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
        status_context: The commit status context of each run (``{function}``, ``{event}``,
            ``{spec}``).
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

    def engine_pool(self) -> tuple[EngineSettings, ...]:
        """The engines builds run on: ``dagger.engines``, else the single ``runner-host`` as a
        pool of one limited by the top-level ``concurrency``."""
        if self.dagger.engines:
            return self.dagger.engines
        return (EngineSettings(LOCAL_ENGINE, self.dagger.runner_host, self.concurrency),)

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
    dagger.check_keys(("cli", "runner-host", "cloud-token", "engines"))
    engines = parse_engines(dagger)
    runner_host = check_runner_host(dagger.text("runner-host", ""), dagger.where("runner-host"))
    if engines and runner_host:
        raise ConfigError(
            f"{dagger.where('runner-host')}: set either runner-host or engines, not both; "
            "list this engine under engines"
        )
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
    forges = parse_forges(r.sub("forges"))
    repos = tuple(parse_repo(source, i, item, forges) for i, item in enumerate(repos_raw))

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
            runner_host=runner_host,
            cloud_token=dagger.secret_name("cloud-token", ""),
            engines=engines,
        ),
        retention_events=retention.integer("events", 5000, low=1, high=10_000_000),
        retention_days=retention.number("days", 90.0),
        secrets_backend=secrets.choice("backend", "auto", SECRET_BACKENDS),
        keymap={str(k): str(v) for k, v in keymap.data.items()},
        status_context=_status_context(r),
        public_url=_public_url(r),
        source=Path(source) if source else None,
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
