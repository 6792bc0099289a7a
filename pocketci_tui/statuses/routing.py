"""Which runs get a commit status, under which context, from the configuration.

The store asks :class:`SettingsRouter` inside the transaction that stores a run's state (see
:mod:`pocketci_tui.store.outbox`), so it is cheap and pure: a lookup of the repository and a
template filled in.
"""

from __future__ import annotations

from pocketci_tui.config import DEFAULT_STATUS_CONTEXT, Settings
from pocketci_tui.statuses.apis import APIS

MAX_CONTEXT = 255
"""The longest status context a forge takes (GitHub's limit)."""


SPEC_STATUS_CONTEXT = "pocketci/{spec}/{function}"
"""The default context of a run of one of several ``pocketci.yaml`` specs: two applications of
a monorepo may well have functions of the same name."""


def render_context(template: str, function: str, event_type: str, spec: str = "") -> str:
    """Fill in a ``status-context`` template (``{function}``, ``{event}``, ``{spec}``).

    A run of a named spec under the default template gets :data:`SPEC_STATUS_CONTEXT`; an
    empty ``{spec}`` goes with the ``/`` after it.
    """
    if spec and template == DEFAULT_STATUS_CONTEXT:
        template = SPEC_STATUS_CONTEXT
    text = template.replace("{spec}/", f"{spec}/" if spec else "").replace("{spec}", spec)
    text = text.replace("{function}", function).replace("{event}", event_type)
    return text[:MAX_CONTEXT]


class SettingsRouter:
    """Routes statuses by the configuration; replace :attr:`settings` on a reload.

    Args:
        settings: The configuration.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def context(
        self, vendor: str, repository: str, event_type: str, function: str, spec: str = ""
    ) -> str | None:
        """The context of a function's statuses, or None when its repository reports nothing."""
        settings = self.settings
        if vendor not in APIS:
            return None
        repo = settings.repo_for(vendor, repository)
        if repo is None or not repo.posts_statuses:
            return None
        return render_context(settings.status_context, function, event_type, spec)
