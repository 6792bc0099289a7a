"""Where a configured repository's commits come from, and how an event's commit is checked out."""

from __future__ import annotations

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.engine.git import Checkout, Workspace, default_clone_url
from pocketci_tui.forges.git_access import git_access
from pocketci_tui.model import Event


def repo_key(repo: RepoConfig, repository: str) -> str:
    """The workspace key of a repository: its own name (config globs can cover several)."""
    return f"{repo.vendor}/{repository.lower()}"


def clone_url(settings: Settings, repo: RepoConfig, repository: str) -> str:
    """Where a repository is fetched from: its ``clone-url``, else derived from its forge.

    Never a URL from the payload: only the event's repository name, which the configured
    repository matched, is used, with the forge's base URL from the config.
    """
    if repo.clone_url:
        return repo.clone_url
    return default_clone_url(repo.vendor, repository, _forge_url(settings, repo.vendor))


def _forge_url(settings: Settings, vendor: str) -> str:
    """The base URL configured for a forge (``forges.<vendor>.url``), or its public host."""
    return settings.forge_url(vendor)


async def check_out(
    workspace: Workspace, settings: Settings, repo: RepoConfig, token: str | None, event: Event
) -> Checkout:
    """Check an event's commit out, fetched the way its forge serves git.

    The forge decides the user sent with the token and where a pull/merge request's head is
    kept on the base repository (a fork's commits included).
    """
    access = git_access(repo.vendor)
    return await workspace.checkout(
        repo_key(repo, event.repository),
        clone_url(settings, repo, event.repository),
        token,
        event,
        username=access.username,
        change_refs=access.change_refs(event.pr_number),
    )
