"""Checking a repository's status token without changing anything: a read of the repository.

``pocketci-tui check`` calls :func:`probe_token` for each repository that reports statuses, so a
wrong, expired or under-scoped token is found before the first build, not after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp
from yarl import URL

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.statuses.apis import APIS
from pocketci_tui.statuses.sender import MAX_ANSWER, mask


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the read told.

    Attributes:
        level: ``ok``, ``WARN`` or ``FAIL``.
        message: What was found.
        fix: What to do, or empty.
    """

    level: str
    message: str
    fix: str = ""


async def probe_token(
    session: aiohttp.ClientSession, settings: Settings, repo: RepoConfig, token: str
) -> ProbeResult:
    """Read the repository with its status token and say whether statuses can be posted.

    Args:
        session: The HTTP session (no redirects are followed).
        settings: The configuration (the forge's API URL).
        repo: A repository without glob characters in its name.
        token: The status token's value.
    """
    api = APIS[repo.vendor]
    base = settings.api_url(repo.vendor)
    if not base:
        return ProbeResult(
            "FAIL",
            f"statuses of {repo.name}: no API address for {repo.vendor}",
            f"set forges.{repo.vendor}.url (or api-url)",
        )
    request = api.probe(base, repo.name, token)
    try:
        async with session.get(
            URL(request.url, encoded=True), headers=request.headers, allow_redirects=False
        ) as resp:
            status = resp.status
            text = (await resp.content.read(MAX_ANSWER)).decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in resp.headers.items()}
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return ProbeResult("FAIL", f"statuses of {repo.name}: cannot reach {base}: {exc}")
    where = f"statuses of {repo.name}"
    if 200 <= status < 300:
        if _cannot_push(text):
            return ProbeResult(
                "WARN",
                f"{where}: the token reads the repository but cannot write to it",
                f"give the token {api.permission}",
            )
        return ProbeResult("ok", f"{where}: the token reaches {base}")
    verdict = api.verdict(status, headers, text)
    return ProbeResult(
        "FAIL",
        mask(f"{where}: {verdict.reason}", token),
        f"give the token {api.permission}, or set another with `status-token`",
    )


def _cannot_push(text: str) -> bool:
    """True when the forge says the token's user may not push (GitHub's and Gitea's answer)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    permissions = data.get("permissions") if isinstance(data, dict) else None
    return isinstance(permissions, dict) and permissions.get("push") is False
