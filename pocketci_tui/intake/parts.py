"""What the intake application is built from, besides the store and the secret store: the
sink it tells, its limits and the filter of configured repositories.

Apart from :mod:`pocketci_tui.intake.app` so that the typed state keys
(:mod:`pocketci_tui.intake.keys`) can name them without importing the application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.intake.budget import BudgetLimits
from pocketci_tui.model import StoredEvent

MAX_BODY = 25 * 1024 * 1024
"""The largest body accepted: GitHub's own cap of 25 MiB."""


class EventSink(Protocol):
    """What the intake tells about each stored delivery (the dispatcher)."""

    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        """Take note of a stored delivery; called after the commit, before the reply.

        It must return quickly: it only wakes the dispatcher.
        """
        ...


@dataclass(frozen=True, slots=True)
class IntakeLimits:
    """Size and time limits of the intake.

    Attributes:
        max_body: The largest body accepted, in bytes.
        body_timeout: Seconds a client has to send the whole body.
        body_idle_timeout: Seconds a body may pause between two chunks.
        budget: How many unverified body bytes may be held at once, across connections.
        header_timeout: Seconds a connection has to start a request (headers included);
            enforced by :class:`~pocketci_tui.intake.listener.Listener`.
        secret_ttl: Seconds a webhook secret is cached after a successful read.
        secret_timeout: Seconds to wait for the secret store.
    """

    max_body: int = MAX_BODY
    body_timeout: float = 30.0
    body_idle_timeout: float = 10.0
    budget: BudgetLimits = field(default_factory=BudgetLimits)
    header_timeout: float = 30.0
    secret_ttl: float = 30.0
    secret_timeout: float = 5.0


class RepoFilter:
    """Tells whether a repository is configured, remembering recent answers.

    ``Settings.repo_for`` tries every configured glob; the answers are cached (bounded), since
    deliveries come from a handful of repositories.
    """

    def __init__(self, settings: Settings, size: int = 4096) -> None:
        self._settings = settings
        self._size = size
        self._known: dict[tuple[str, str], RepoConfig | None] = {}
        self._secret_names: dict[str, tuple[str, ...]] = {}

    def use(self, settings: Settings) -> None:
        """Answer from a reloaded configuration from now on."""
        self._settings = settings
        self._known = {}
        self._secret_names = {}

    def repo(self, vendor: str, repository: str) -> RepoConfig | None:
        """The first configured entry matching this repository (globs included), or None."""
        key = (vendor, repository)
        if key in self._known:
            return self._known[key]
        found = self._settings.repo_for(vendor, repository)
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[key] = found
        return found

    def configured(self, vendor: str, repository: str) -> bool:
        """True when the configuration lists this repository (globs included)."""
        return self.repo(vendor, repository) is not None

    def secret_names(self, vendor: str) -> tuple[str, ...]:
        """The webhook secrets of a forge's repositories that have their own, each once."""
        names = self._secret_names.get(vendor)
        if names is None:
            own = (r.webhook_secret for r in self._settings.repos if r.vendor == vendor)
            names = self._secret_names[vendor] = tuple(dict.fromkeys(n for n in own if n))
        return names
