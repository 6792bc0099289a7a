"""Where a configured repository's commits come from, and how an event's commit is checked out.

Everything forge-specific (the clone URL derived from the forge's base URL, the refs that
hold a pull/merge request's head, the form a token takes over HTTP(S)) is asked of the
repository's :class:`~pocketci_tui.forges.base.Forge`.
"""

from __future__ import annotations

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.engine.git import Checkout, Workspace
from pocketci_tui.forges.base import Forge
from pocketci_tui.forges.registry import UnknownVendor, forge_for
from pocketci_tui.model import Event


def repo_key(repo: RepoConfig, repository: str) -> str:
    """The workspace key of a repository: its own name (config globs can cover several)."""
    return f"{repo.vendor}/{repository.lower()}"


def forge_of(repo: RepoConfig) -> Forge:
    """The forge of a configured repository (a ValueError, like any unusable value, if none)."""
    try:
        return forge_for(repo.vendor)
    except UnknownVendor as exc:
        raise ValueError(str(exc)) from None


def clone_url(settings: Settings, repo: RepoConfig, repository: str) -> str:
    """Where a repository is fetched from: its ``clone-url``, else derived by its forge.

    Never a URL from the payload: only the event's repository name, which the configured
    repository matched, is used, with the forge's base URL from the config.
    """
    if repo.clone_url:
        return repo.clone_url
    return forge_of(repo).clone_url(settings.forge_url(repo.vendor), repository)


def git_auth(repo: RepoConfig, token: str | None) -> tuple[str | None, str]:
    """The clone token as the repository's forge wants it over HTTP(S): (password, user)."""
    forge = forge_of(repo)
    if not token:
        return None, forge.git_auth("").username
    auth = forge.git_auth(token)
    return auth.password, auth.username


async def check_out(
    workspace: Workspace, settings: Settings, repo: RepoConfig, token: str | None, event: Event
) -> Checkout:
    """Check an event's commit out, fetched the way its forge serves git.

    The forge decides the user sent with the token and where a pull/merge request's head is
    kept on the base repository (a fork's commits included).
    """
    secret, user = git_auth(repo, token)
    number = event.pr_number
    refs = forge_of(repo).pull_request_refs(number) if number is not None and number > 0 else ()
    return await workspace.checkout(
        repo_key(repo, event.repository),
        clone_url(settings, repo, event.repository),
        secret,
        event,
        username=user,
        change_refs=refs,
    )
