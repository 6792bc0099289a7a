"""Each forge's commit status API: where a status goes, in which words, and what an answer means.

Nothing here does I/O: :class:`StatusApi` builds requests and reads answers, and the sender
(:mod:`pocketci_tui.statuses.sender`) sends them. The forges differ in four ways only:

- the path: GitHub and Gitea/Forgejo ``/repos/{owner}/{repo}/statuses/{sha}``, GitLab
  ``/projects/{url-encoded path}/statuses/{sha}`` (a project is named by its path, so no lookup
  of its numeric id is needed);
- the token's header: ``Authorization: Bearer`` (GitHub), ``Authorization: token`` (Gitea,
  Forgejo), ``PRIVATE-TOKEN`` (GitLab);
- the states: GitHub and Gitea have ``pending``, ``success``, ``failure`` and ``error`` only,
  so ``running`` is sent as ``pending`` and ``canceled`` as ``error`` (the description says
  cancelled); GitLab has ``pending``, ``running``, ``success``, ``failed`` and ``canceled``;
- the context's field: ``context``, or GitLab's ``name``.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pocketci_tui.store.outbox import OutboxRow

Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """One HTTP request to a forge's API.

    Attributes:
        method: ``GET`` or ``POST``.
        url: The full URL, already percent-encoded.
        headers: Every header, the token's included (never log them).
        body: The JSON body, or None.
    """

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an answer means for the status.

    Attributes:
        outcome: ``sent`` (applied), ``retry`` (try again later) or ``failed`` (for good).
        reason: Why, in words for the user (``403, the token lacks ...``).
        wait: Seconds the forge asked to wait before the next try (Retry-After, rate limit),
            or None to use the backoff.
        ambiguous: The status may have been applied although no 2xx was read (a 5xx or a
            network error): check the forge before sending it again.
    """

    outcome: Outcome
    reason: str = ""
    wait: float | None = None
    ambiguous: bool = False


MAX_RATE_LIMIT_WAIT = 3600.0
"""The longest a rate limit's reset time is waited for in one go."""


def retry_after(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` or GitHub's rate-limit headers, or None.

    Args:
        headers: The answer's headers, names lower case.
        now: The current epoch time (for tests).
    """
    now = time.time() if now is None else now
    value = headers.get("retry-after", "").strip()
    if value:
        if value.isdigit():
            return min(float(value), MAX_RATE_LIMIT_WAIT)
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return min(max(0.0, when - now), MAX_RATE_LIMIT_WAIT)
    if headers.get("x-ratelimit-remaining", "").strip() == "0":
        reset = headers.get("x-ratelimit-reset", "").strip()
        if reset.isdigit():
            return min(max(1.0, float(reset) - now), MAX_RATE_LIMIT_WAIT)
    return None


def _message(text: str) -> str:
    """The forge's own error message from a JSON answer, or the start of the text."""
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        for key in ("message", "error", "errors"):
            value = data.get(key)
            if value:
                return " ".join(str(value).split())[:200]
    return " ".join(text.split())[:200]


class StatusApi:
    """A forge's status API, for the GitHub and Gitea shapes (GitLab overrides).

    Attributes:
        vendor: The forge's name (``github``).
        display: Its name for people.
        permission: What a token needs, for the 403 message.
    """

    vendor = "github"
    display = "GitHub"
    permission = "the Commit statuses permission (classic: repo:status)"
    states: ClassVar[dict[str, str]] = {
        "pending": "pending",
        "running": "pending",
        "success": "success",
        "failure": "failure",
        "error": "error",
        "canceled": "error",
    }
    context_field = "context"

    def headers(self, token: str) -> dict[str, str]:
        """The token's header and the ones the API asks for."""
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "pocketci-tui",
        }

    def repo_path(self, repository: str) -> str:
        """The repository's path under the API base."""
        owner, _, name = repository.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def post(
        self, base: str, row: OutboxRow, token: str, target: str | None = None
    ) -> StatusRequest:
        """The request that sets one status.

        Args:
            base: The API base URL.
            row: The status.
            token: The token.
            target: The status's link (``target_url``, every forge's name for it), or None
                for none.
        """
        body = {
            "state": self.states[row.state],
            self.context_field: row.context,
            "description": row.description,
        }
        if target:
            body["target_url"] = target
        url = f"{base}{self.repo_path(row.repository)}/statuses/{quote(row.sha, safe='')}"
        return StatusRequest("POST", url, self.headers(token), body)

    def listing(self, base: str, row: OutboxRow, token: str) -> StatusRequest:
        """The request that lists the commit's statuses (to tell whether one already went)."""
        return StatusRequest(
            "GET",
            f"{base}{self.repo_path(row.repository)}/commits/{quote(row.sha, safe='')}/statuses",
            self.headers(token),
        )

    def probe(self, base: str, repository: str, token: str) -> StatusRequest:
        """A harmless read that tells whether the token reaches the repository."""
        return StatusRequest("GET", f"{base}{self.repo_path(repository)}", self.headers(token))

    def already_there(self, row: OutboxRow, listing: Any) -> bool:
        """True when the forge's newest status of the row's context is this very status."""
        if not isinstance(listing, list):
            return False
        mine = [
            s for s in listing if isinstance(s, dict) and s.get(self.context_field) == row.context
        ]
        if not mine:
            return False
        newest = max(mine, key=lambda s: int(s.get("id") or 0))
        state = newest.get("state") or newest.get("status")
        return bool(
            state == self.states[row.state] and newest.get("description") == row.description
        )

    def verdict(self, status: int, headers: dict[str, str], text: str) -> Verdict:
        """Read the forge's answer to a status.

        Args:
            status: The HTTP status.
            headers: The headers, names lower case.
            text: The start of the body.
        """
        if 200 <= status < 300:
            return Verdict("sent")
        wait = retry_after(headers)
        message = _message(text)
        if status == 429 or (status == 403 and (wait is not None or "rate limit" in message)):
            return Verdict("retry", f"{status}, rate limited: {message}", wait)
        if status >= 500:
            return Verdict("retry", f"{status}, the forge failed: {message}", wait, ambiguous=True)
        if 300 <= status < 400:
            where = headers.get("location", "elsewhere")
            return Verdict(
                "failed",
                f"{status}, the API redirected to {where}; redirects are not followed: set "
                f"forges.{self.vendor}.api-url to the API's own address",
            )
        return Verdict("failed", self.refusal(status, message))

    def refusal(self, status: int, message: str) -> str:
        """Say why the forge refused a status for good."""
        if status == 401:
            return f"{status}, the token was refused (wrong or expired): {message}"
        if status == 403:
            return f"{status}, the token lacks {self.permission}"
        if status == 404:
            return (
                f"{status}, the repository or commit was not found, or the token cannot see "
                "the repository"
            )
        if status == 422:
            return f"{status}, the forge refused the status: {message}"
        return f"{status}, {message}"


class GiteaApi(StatusApi):
    """Gitea's status API (GitHub's paths under ``/api/v1``, ``token`` authorization)."""

    vendor = "gitea"
    display = "Gitea"
    permission = "the write:repository scope"

    def headers(self, token: str) -> dict[str, str]:
        """Gitea's token header."""
        return {
            "Authorization": f"token {token}",
            "Accept": "application/json",
            "User-Agent": "pocketci-tui",
        }

    def listing(self, base: str, row: OutboxRow, token: str) -> StatusRequest:
        """Gitea lists a commit's statuses at the path statuses are posted to."""
        return StatusRequest(
            "GET",
            f"{base}{self.repo_path(row.repository)}/statuses/{quote(row.sha, safe='')}",
            self.headers(token),
        )


class ForgejoApi(GiteaApi):
    """Forgejo speaks Gitea's API."""

    vendor = "forgejo"
    display = "Forgejo"


class GitLabApi(StatusApi):
    """GitLab's status API: projects by encoded path, ``PRIVATE-TOKEN``, its own states."""

    vendor = "gitlab"
    display = "GitLab"
    permission = "the api scope (and at least the Developer role)"
    states: ClassVar[dict[str, str]] = {
        "pending": "pending",
        "running": "running",
        "success": "success",
        "failure": "failed",
        "error": "failed",
        "canceled": "canceled",
    }
    context_field = "name"

    def headers(self, token: str) -> dict[str, str]:
        """GitLab's token header."""
        return {"PRIVATE-TOKEN": token, "Accept": "application/json", "User-Agent": "pocketci-tui"}

    def repo_path(self, repository: str) -> str:
        """``/projects/group%2Fsub%2Fproject``."""
        return f"/projects/{quote(repository, safe='')}"

    def listing(self, base: str, row: OutboxRow, token: str) -> StatusRequest:
        """GitLab lists a commit's statuses under the repository's commits."""
        sha = quote(row.sha, safe="")
        name = quote(row.context, safe="")
        return StatusRequest(
            "GET",
            f"{base}{self.repo_path(row.repository)}/repository/commits/{sha}/statuses"
            f"?name={name}&all=true",
            self.headers(token),
        )

    def verdict(self, status: int, headers: dict[str, str], text: str) -> Verdict:
        """GitLab: a repeated state is applied already; a conflict is retried."""
        if status == 400 and "cannot transition status" in text.lower():
            return Verdict("sent", "already applied")
        if status == 409:
            return Verdict("retry", f"409, conflict: {_message(text)}", retry_after(headers))
        return super().verdict(status, headers, text)


APIS: dict[str, StatusApi] = {
    api.vendor: api for api in (StatusApi(), GiteaApi(), ForgejoApi(), GitLabApi())
}
"""Each forge's status API by vendor name (the forge registry's names)."""
