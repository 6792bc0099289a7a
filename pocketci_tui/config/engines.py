"""``dagger.engines``: the pool of Dagger engines builds are scheduled over.

Each engine is reached through ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` and takes at most its own
``concurrency`` calls at once. Without ``engines`` the single ``dagger.runner-host`` is a pool of
one, limited by the top-level ``concurrency``, so existing configurations keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pocketci_tui.config.reading import ConfigError, Reader, shown

RUNNER_HOST_SCHEMES = (
    "tcp",
    "tls",
    "unix",
    "kube-pod",
    "docker-container",
    "podman-container",
    "container",
    "image",
    "ssh",
)
"""The engine addresses the Dagger CLI understands; empty means the engine on this machine."""

ENGINE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
MAX_ENGINES = 64
MAX_ENGINE_CONCURRENCY = 256
LOCAL_ENGINE = "local"
"""The name of the pool of one that a plain ``runner-host`` stands for."""


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """One engine of the pool.

    Attributes:
        name: How runs, logs and the status bar name it (unique in the pool).
        runner_host: Its ``_EXPERIMENTAL_DAGGER_RUNNER_HOST``; empty: the engine on this machine.
        concurrency: How many calls it runs at once.
    """

    name: str
    runner_host: str = ""
    concurrency: int = 2


def check_runner_host(value: str, where: str) -> str:
    """Return ``value`` if the Dagger CLI can take it as a runner host, else raise.

    A typo in the scheme would otherwise surface only when the first build fails to connect.
    """
    if not value:
        return value
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{where}: {shown(value)} holds spaces or control characters")
    scheme = urlsplit(value).scheme if "://" in value else ""
    if scheme not in RUNNER_HOST_SCHEMES:
        known = ", ".join(f"{s}://" for s in RUNNER_HOST_SCHEMES)
        raise ConfigError(
            f"{where}: {shown(value)} is not an engine address; "
            f'use "" for the engine on this machine or one of {known}'
        )
    return value


def parse_engines(dagger: Reader) -> tuple[EngineSettings, ...]:
    """Read ``dagger.engines`` (empty when absent), checking names, hosts and capacities."""
    raw = dagger.data.get("engines")
    if raw is None:
        return ()
    where = dagger.where("engines")
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: expected a list of engines like {{name, runner-host}}")
    if len(raw) > MAX_ENGINES:
        raise ConfigError(f"{where}: at most {MAX_ENGINES} engines, got {len(raw)}")
    engines: list[EngineSettings] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        r = Reader(dagger.source, item, f"{dagger.prefix}engines[{i}].")
        r.check_keys(("name", "runner-host", "concurrency"))
        name = r.text("name", "")
        if not ENGINE_NAME_RE.fullmatch(name):
            raise ConfigError(
                f"{r.where('name')}: an engine needs a short name (letters, digits, . _ -), "
                f"got {shown(name)}"
            )
        if name in seen:
            raise ConfigError(
                f"{r.where('name')}: {name!r} is already the name of engines[{seen[name]}]; "
                "give every engine its own name"
            )
        seen[name] = i
        engines.append(
            EngineSettings(
                name=name,
                runner_host=check_runner_host(r.text("runner-host", ""), r.where("runner-host")),
                concurrency=r.integer("concurrency", 2, low=1, high=MAX_ENGINE_CONCURRENCY),
            )
        )
    return tuple(engines)
