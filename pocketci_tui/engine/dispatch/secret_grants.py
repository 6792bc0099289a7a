"""Which secrets a repository's functions receive: only what the runner's user granted.

A repository's ``pocketci.yaml`` (for a pull request, the head's) *asks* for secrets; the user
config *grants* them, per repository: ``repos[].secrets`` lists the secret-store entries its
``from-keyring`` may name, ``repos[].env`` the environment variables its ``from-env`` may name.
Anything else is refused before any value is read, with the reason and the fix, so a pushed or
forked ``pocketci.yaml`` can never take the webhook secret, another repository's clone token
or a variable of the runner's environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pocketci_tui.config import RepoConfig, RepoSpec, SecretRef, Settings
from pocketci_tui.secrets import SecretStore, SecretStoreError

DETAIL_NAMES = 5
"""How many refused secrets an event's detail names before it says how many more."""


@dataclass(frozen=True, slots=True)
class RunSecrets:
    """The secrets of one dispatched event, by function argument name.

    Attributes:
        values: The values handed over (granted and found).
        missing: Granted but not found: argument name to why, with the fix.
        refused: Not granted to the repository: argument name to why, with how to grant it.
    """

    values: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def refusal(ref: SecretRef, repo: RepoConfig) -> str | None:
    """Tell why ``ref`` is not granted to ``repo``, or None when it is.

    Args:
        ref: One secret of the repository's ``pocketci.yaml``.
        repo: The repository's entry in the user config.

    Returns:
        The reason and how to grant it, or None.
    """
    if ref.from_keyring and ref.from_keyring not in repo.secrets:
        return (
            f"pocketci.yaml asks for the secret-store entry {ref.from_keyring!r}, which is not "
            f"granted to {repo.name}; to grant it, add {ref.from_keyring} to `secrets:` of "
            f"that repository in config.yaml"
        )
    if ref.from_env and ref.from_env not in repo.env:
        return (
            f"pocketci.yaml asks for the environment variable {ref.from_env}, which is not "
            f"granted to {repo.name}; to grant it, add {ref.from_env} to `env:` of that "
            f"repository in config.yaml"
        )
    return None


async def resolve(
    spec: RepoSpec, repo: RepoConfig, store: SecretStore, environ: Mapping[str, str]
) -> RunSecrets:
    """Read the granted secrets of a spec; refuse the rest without reading them.

    Args:
        spec: The repository's ``pocketci.yaml``.
        repo: The repository's entry in the user config (its grants).
        store: The secret store.
        environ: The runner's environment (``from-env``).

    Returns:
        The values, and why the others are missing or refused.
    """
    out = RunSecrets()
    for ref in spec.secrets:
        why = refusal(ref, repo)
        if why is not None:
            out.refused[ref.name] = why
            continue
        if ref.from_env:
            value = environ.get(ref.from_env)
            if value:
                out.values[ref.name] = value
            else:
                out.missing[ref.name] = f"environment variable {ref.from_env} is not set"
            continue
        try:
            secret = await store.get(ref.from_keyring)
        except SecretStoreError as exc:
            out.missing[ref.name] = f"secret store: {exc}"
            continue
        if secret:
            out.values[ref.name] = secret
        else:
            out.missing[ref.name] = (
                f"{ref.from_keyring!r} is not in the secret store; "
                f"run `pocketci-tui secrets set {ref.from_keyring}`"
            )
    return out


def refused_detail(spec: RepoSpec, refused: Mapping[str, str]) -> str:
    """Say which secrets were refused, briefly, for an event's detail (empty if none)."""
    if not refused:
        return ""
    sources = {ref.name: ref for ref in spec.secrets}
    parts: list[str] = []
    for name in list(refused)[:DETAIL_NAMES]:
        ref = sources.get(name)
        if ref is None:
            parts.append(name)
        elif ref.from_keyring:
            parts.append(f"{name} (secret-store entry {ref.from_keyring!r})")
        else:
            parts.append(f"{name} (environment variable {ref.from_env})")
    more = len(refused) - DETAIL_NAMES
    tail = f" and {more} more" if more > 0 else ""
    return (
        "secrets not granted to this repository, refused: "
        + ", ".join(parts)
        + tail
        + " (grant them with repos[].secrets / repos[].env in config.yaml)"
    )


def granted(settings: Settings, repo: RepoConfig, *, fork_no_secrets: bool = False) -> list[str]:
    """Describe every secret a run of ``repo`` can receive, one line each.

    Used where a person decides (the fork approval dialog) and by ``check``.

    Args:
        settings: The user configuration (the Dagger Cloud token).
        repo: The repository's entry.
        fork_no_secrets: True for a run the fork policy gives no secrets at all.

    Returns:
        Lines such as ``secret-store entry 'gh-password'``; empty when it gets none.
    """
    if fork_no_secrets:
        return []
    own = settings.own_secrets()
    lines: list[str] = []
    for name in repo.secrets:
        note = f": {own[name]}" if name in own else ""
        lines.append(f"secret-store entry {name!r}{note}")
    lines += [f"environment variable {name}" for name in repo.env]
    if settings.dagger.cloud_token:
        lines.append(f"DAGGER_CLOUD_TOKEN (secret-store entry {settings.dagger.cloud_token!r})")
    return lines
