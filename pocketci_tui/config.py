"""User configuration (``config.yaml``) and repository specs (``pocketci.yaml``).

Both are parsed into frozen dataclasses. Every problem raises :class:`ConfigError` whose message
names the file and the key, so the user knows exactly what to fix.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

import yaml

from pocketci_tui.keys import keymap_problem
from pocketci_tui.model import VENDORS, bounded, webhook_path

ForkMode = Literal["approve", "no-secrets", "skip"]
"""How pull requests from forks are handled (``fork-pull-requests``)."""
FORK_MODES: tuple[ForkMode, ...] = get_args(ForkMode)
SecretBackend = Literal["auto", "keyring", "file", "plaintext", "memory"]
"""Where secrets are kept (``secrets.backend``)."""
SECRET_BACKENDS: tuple[SecretBackend, ...] = get_args(SecretBackend)
SPEC_FILE = "pocketci.yaml"
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ARG_NAME_RE = re.compile(r"^[a-z][A-Za-z0-9]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REPO_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+/[A-Za-z0-9_.*?\[\]-]+$")
_NESTED_REPO_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+(?:/[A-Za-z0-9_.*?\[\]-]+){1,20}$")
NESTED_VENDORS = ("gitlab",)
"""Forges whose repository names may hold groups in groups (``group/sub/project``)."""
FORGE_DEFAULT_URLS = {"github": "https://github.com", "gitlab": "https://gitlab.com"}
"""Where a forge's repositories live when ``forges.<vendor>.url`` is not set; Gitea and
Forgejo are always someone's own server, so they have no default."""
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

MAX_SPEC_BYTES = 256 * 1024
"""The largest ``pocketci.yaml`` read; a bigger one is refused before it is read."""

MAX_SPEC_VALUES = 10_000
"""The most values (scalars, lists, mappings) a ``pocketci.yaml`` may hold, aliases expanded."""

MAX_SPEC_DEPTH = 32
"""The deepest nesting of lists and mappings in a ``pocketci.yaml``."""

MAX_SPEC_PATHS = 1000
"""The most ``paths`` patterns a ``pocketci.yaml`` may list."""

MAX_SPEC_SECRETS = 100
"""The most ``secrets`` a ``pocketci.yaml`` may list."""

MAX_PATTERN_LENGTH = 1024
"""The longest single path pattern (in ``paths``)."""

MAX_SHOWN = 60
"""Characters of a value quoted in an error message; longer values are cut with a marker."""


class ConfigError(Exception):
    """A configuration file is missing something or holds a wrong value.

    Attributes:
        fix: What to do about it, when the message alone does not say.
    """

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


YAML_FIX = (
    "correct the YAML at that line: indent with spaces (never tabs), close every [ and {, "
    "and quote values holding ': ' or starting with a special character such as * & ! | > %"
)


def yaml_error(source: str, exc: yaml.YAMLError) -> ConfigError:
    """One line naming the file, line and column of a YAML syntax error, with a fix.

    PyYAML's own message spans several lines, quotes the source as ``<unicode string>`` and
    draws a caret; none of that survives being printed on one line.

    Args:
        source: The file name to show.
        exc: What ``yaml.safe_load`` raised.

    Returns:
        The error to raise.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if problem:
        text = f"{problem} ({context})" if context else problem
    else:
        # A reader error (a control character, bad encoding) has no mark, only its message.
        text = str(exc).replace(' in "<unicode string>"', "").replace("<unicode string>", source)
    text = " ".join(text.split())
    return ConfigError(f"{source}{where}: not valid YAML: {text}", YAML_FIX)


class FileTooLarge(ConfigError):
    """A file from a repository is larger than pocketci-tui reads."""


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """Quote a value read from a file for an error message, in bounded space.

    Text longer than ``limit`` is cut and says how long it was; a list or a mapping is named,
    never written out (a YAML alias bomb would make it exponentially long).

    Args:
        value: Any parsed YAML value.
        limit: The most characters of text to quote.

    Returns:
        A short description such as ``'main'``, ``'aaaa…' (5000 characters)`` or ``a list``.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value)} characters)"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        text = str(value) if value.bit_length() < 200 else "a very large number"
        return text
    return f"a {type(value).__name__}"


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
    """

    name: str
    vendor: str = "github"
    clone_url: str = ""
    token: str = ""
    secrets: tuple[str, ...] = ()
    env: tuple[str, ...] = ()

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
    source: Path | None = None

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
            if repo.token:
                own.setdefault(repo.token, f"the clone token of {repo.name}")
        if self.dagger.cloud_token:
            own.setdefault(self.dagger.cloud_token, "the Dagger Cloud token")
        return own

    def forge_url(self, vendor: str) -> str:
        """A forge's base URL: ``forges.<vendor>.url``, else its public host, else ``""``."""
        forge = self.forges.get(vendor)
        return (forge.url if forge else "") or FORGE_DEFAULT_URLS.get(vendor, "")

    def webhook_secret_of(self, vendor: str) -> str:
        """NAME of the secret-store entry a forge's deliveries are verified with."""
        forge = self.forges.get(vendor)
        return (forge.webhook_secret if forge else "") or self.webhook_secret

    def webhook_secrets(self) -> dict[str, str]:
        """The webhook secret's NAME of every forge, by vendor (most share the top-level one)."""
        return {vendor: self.webhook_secret_of(vendor) for vendor in VENDORS}

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


_Choice = TypeVar("_Choice", bound=str)


class _Reader:
    """Helpers that check one mapping and name the file and key in every error."""

    def __init__(self, source: str, data: Any, prefix: str = "") -> None:
        self.source = source
        self.prefix = prefix
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.where('')}: expected a mapping of keys to values")
        self.data: dict[str, Any] = data

    def where(self, key: str) -> str:
        name = f"{self.prefix}{key}" if key else self.prefix.rstrip(".") or "top level"
        return f"{self.source}: {name}"

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                hint = ", ".join(allowed)
                name = key if isinstance(key, str) and len(key) <= MAX_SHOWN else shown(key)
                raise ConfigError(f"{self.where(str(name))}: unknown key (known keys: {hint})")

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self.where(key)}: expected text, got {shown(value)}")
        return value.strip()

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.where(key)}: expected a whole number, got {shown(value)}")
        if not low <= value <= high:
            raise ConfigError(f"{self.where(key)}: must be between {low} and {high}, got {value}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(
                f"{self.where(key)}: expected a number above zero, got {shown(value)}"
            )
        return float(value)

    def choice(self, key: str, default: _Choice, choices: tuple[_Choice, ...]) -> _Choice:
        value = self.text(key, default)
        for choice in choices:
            if value == choice:
                return choice
        raise ConfigError(
            f"{self.where(key)}: must be one of {', '.join(choices)}, got {shown(value)}"
        )

    def secret_name(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if value and not SECRET_NAME_RE.fullmatch(value):
            raise ConfigError(
                f"{self.where(key)}: a secret NAME (letters, digits, . _ -), not a value; "
                f"store the value with `pocketci-tui secrets set NAME`"
            )
        return value

    def sub(self, key: str) -> _Reader:
        return _Reader(self.source, self.data.get(key), f"{self.prefix}{key}.")


def parse_settings(data: Any, source: str = "config.yaml") -> Settings:
    """Build :class:`Settings` from parsed YAML.

    Args:
        data: What ``yaml.safe_load`` returned (None for an empty file).
        source: The file name, for error messages.

    Returns:
        The validated settings.
    """
    r = _Reader(source, data)
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


def _parse_forges(r: _Reader) -> dict[str, ForgeSettings]:
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
    r = _Reader(source, item, f"repos[{index}].")
    r.check_keys(("name", "vendor", "clone-url", "token", "secrets", "env"))
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
        env=_name_list(r, "env", _ENV_NAME_RE, "environment variable names, like [GITHUB_TOKEN]"),
    )


def _name_list(r: _Reader, key: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
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


# -- pocketci.yaml ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A secret a repository's functions may receive.

    Attributes:
        name: The Dagger function argument it feeds (lowerCamelCase, e.g. ``ghPassword``).
        from_keyring: The secret-store entry holding the value, or empty.
        from_env: The runner's environment variable holding the value, or empty.
    """

    name: str
    from_keyring: str = ""
    from_env: str = ""


@dataclass(frozen=True, slots=True)
class RepoSpec:
    """A repository's ``pocketci.yaml``.

    Attributes:
        module_path: The Dagger module's folder, relative to the repository root.
        paths: If not empty, events whose changes match none of these are skipped.
        secrets: The secrets its functions may receive.
        found: False when the repository has no ``pocketci.yaml`` (defaults apply).
    """

    module_path: str = "./ci"
    paths: tuple[str, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    found: bool = True

    @property
    def secret_names(self) -> frozenset[str]:
        """The argument names that secrets feed."""
        return frozenset(s.name for s in self.secrets)


class _SpecLoader(yaml.SafeLoader):
    """A safe YAML loader for files a repository controls, with every size bounded.

    It counts the values it composes, an alias counting as many values as the node it
    repeats, and refuses a document past :data:`MAX_SPEC_VALUES` values or nested deeper
    than :data:`MAX_SPEC_DEPTH`: a few hundred bytes of nested aliases (a "billion laughs"
    document) stand for billions of values, which anything walking the result would pay for.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._depth = 0
        self._values = 0

    def _count(self, values: int) -> None:
        self._values += values
        if self._values > MAX_SPEC_VALUES:
            raise _TooBig(
                f"more than {MAX_SPEC_VALUES} values (an alias counts as the values it repeats)"
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if node is not None:
                self._count(self._sizes.get(id(node), 1))
            return node
        self._depth += 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                raise _TooBig(f"lists and mappings nested deeper than {MAX_SPEC_DEPTH} levels")
            self._count(1)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            return node  # a scalar: one value
        # What an alias of this node costs later: every value under it, aliases expanded.
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        return node


class _TooBig(Exception):
    """A bound of :class:`_SpecLoader` was passed."""


def load_bounded_yaml(text: str, source: str) -> Any:
    """Parse YAML from an untrusted file with its size, nesting and alias expansion bounded.

    Args:
        text: The file's content.
        source: The file name, for error messages.

    Returns:
        What the document holds (None for an empty one).

    Raises:
        ConfigError: Not valid YAML, or past a bound; the message says which.
    """
    if len(text) > MAX_SPEC_BYTES:
        raise FileTooLarge(
            f"{source}: {len(text)} characters, more than the {MAX_SPEC_BYTES // 1024} KiB "
            "pocketci-tui reads"
        )
    loader = _SpecLoader(text)
    try:
        return loader.get_single_data()
    except _TooBig as exc:
        raise ConfigError(f"{source}: refused: {exc}; keep the file short and plain") from None
    except yaml.YAMLError as exc:
        error = yaml_error(source, exc)
        raise ConfigError(bounded(str(error), 400), error.fix) from None
    except (ValueError, RecursionError) as exc:  # an integer of 5,000 digits, for example
        raise ConfigError(f"{source}: a value cannot be read: {bounded(str(exc), 200)}") from None
    finally:
        loader.dispose()


def parse_repo_spec(text: str, source: str = SPEC_FILE) -> RepoSpec:
    """Parse the text of a ``pocketci.yaml``, a file the repository (not the user) controls.

    Every size is bounded: the text (:data:`MAX_SPEC_BYTES`), the values once aliases are
    expanded, the nesting, the number of ``paths`` and ``secrets`` and the length of a
    pattern; error messages quote values in bounded space.

    Args:
        text: The file's content.
        source: The name to use in error messages.

    Returns:
        The validated spec.

    Raises:
        ConfigError: The file is not a valid spec; the message names the key.
    """
    data = load_bounded_yaml(text, source)
    r = _Reader(source, data)
    r.check_keys(("module-path", "paths", "secrets"))
    module_path = r.text("module-path", "./ci") or "./ci"
    if "\x00" in module_path:
        raise ConfigError(f"{r.where('module-path')}: contains a NUL byte")
    if len(module_path) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"{r.where('module-path')}: longer than {MAX_PATTERN_LENGTH} characters")
    if Path(module_path).is_absolute():
        raise ConfigError(f"{r.where('module-path')}: must be relative to the repository root")
    paths_raw = r.data.get("paths") or []
    if not isinstance(paths_raw, list) or not all(isinstance(p, str) and p for p in paths_raw):
        raise ConfigError(f"{r.where('paths')}: expected a list of path patterns")
    if len(paths_raw) > MAX_SPEC_PATHS:
        raise ConfigError(
            f"{r.where('paths')}: {len(paths_raw)} patterns, more than the {MAX_SPEC_PATHS} "
            "pocketci-tui accepts; use ** patterns to cover whole folders"
        )
    for i, pattern in enumerate(paths_raw):
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ConfigError(
                f"{r.where(f'paths[{i}]')}: a pattern longer than {MAX_PATTERN_LENGTH} "
                f"characters: {shown(pattern)}"
            )
    secrets_raw = r.data.get("secrets") or []
    if not isinstance(secrets_raw, list):
        raise ConfigError(f"{r.where('secrets')}: expected a list of secrets")
    if len(secrets_raw) > MAX_SPEC_SECRETS:
        raise ConfigError(
            f"{r.where('secrets')}: {len(secrets_raw)} secrets, more than the "
            f"{MAX_SPEC_SECRETS} pocketci-tui accepts"
        )
    secrets: list[SecretRef] = []
    for i, item in enumerate(secrets_raw):
        s = _Reader(source, item, f"secrets[{i}].")
        s.check_keys(("name", "from-keyring", "from-env"))
        name = s.text("name", "")
        if not _ARG_NAME_RE.fullmatch(name) or len(name) > MAX_SHOWN:
            raise ConfigError(
                f"{s.where('name')}: expected the function argument name in camelCase "
                f"(like ghPassword), got {shown(name)}"
            )
        from_keyring = s.secret_name("from-keyring", "")
        from_env = s.text("from-env", "")
        if bool(from_keyring) == bool(from_env):
            raise ConfigError(f"{s.where('')}: give exactly one of from-keyring or from-env")
        if from_env and (not _ENV_NAME_RE.fullmatch(from_env) or len(from_env) > 256):
            raise ConfigError(f"{s.where('from-env')}: not an environment variable name")
        if any(x.name == name for x in secrets):
            raise ConfigError(f"{s.where('name')}: {name} is listed twice")
        secrets.append(SecretRef(name=name, from_keyring=from_keyring, from_env=from_env))
    return RepoSpec(module_path=module_path, paths=tuple(paths_raw), secrets=tuple(secrets))


def read_bounded_file(path: Path, limit: int, what: str) -> str | None:
    """Read a small text file from a checkout, refusing it before reading when too large.

    Args:
        path: The file.
        limit: The most bytes to read.
        what: Its name in error messages.

    Returns:
        The text, or None when the file does not exist.

    Raises:
        FileTooLarge: The file is larger than ``limit`` (checked before reading).
        ConfigError: A symbolic link, not a regular file, not UTF-8, or unreadable.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            raise ConfigError(f"{what}: must be a regular file, not a symbolic link") from None
        raise ConfigError(f"{what}: cannot read it ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what}: must be a regular file")
        if st.st_size > limit:
            raise FileTooLarge(
                f"{what}: {st.st_size} bytes, more than the {limit // 1024} KiB pocketci-tui "
                "reads; keep it short"
            )
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"{what}: more than the {limit // 1024} KiB pocketci-tui reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: not UTF-8 text") from None


def load_repo_spec(checkout: Path) -> RepoSpec:
    """Read ``pocketci.yaml`` from a checkout; without one, the defaults apply.

    The file is refused unread when it is larger than :data:`MAX_SPEC_BYTES`.

    Args:
        checkout: The repository's working tree.

    Returns:
        The spec (``found`` is False when the file is absent).
    """
    text = read_bounded_file(checkout / SPEC_FILE, MAX_SPEC_BYTES, SPEC_FILE)
    if text is None:
        return RepoSpec(found=False)
    return parse_repo_spec(text, SPEC_FILE)


def resolve_module_dir(checkout: Path, module_path: str) -> Path:
    """Return the module folder inside a checkout, refusing anything that leaves it.

    Symbolic links are resolved before the check, so a link pointing outside is refused too.

    Args:
        checkout: The repository's working tree.
        module_path: ``module-path`` from the spec.

    Returns:
        The absolute, resolved module folder.
    """
    root = checkout.resolve()
    target = (root / module_path).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(
            f"{SPEC_FILE}: module-path {shown(module_path)} points outside the repository"
        )
    if not target.is_dir():
        raise ConfigError(
            f"{SPEC_FILE}: module-path {shown(module_path)} is not a folder in the repository"
        )
    return target
