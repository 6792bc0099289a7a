"""Git: one hardened way to run git, and the workspace built on it.

The workspace keeps a bare mirror per repository, fetches exactly the commits an event names and
makes disposable checkouts for runs. Nothing here knows about Dagger or dispatch.
"""

from pocketci_tui.engine.git.command import GitCommand, GitError, GitTimeoutError
from pocketci_tui.engine.git.workspace import (
    Checkout,
    Workspace,
    default_clone_url,
    validate_ref,
    validate_sha,
)

__all__ = [
    "Checkout",
    "GitCommand",
    "GitError",
    "GitTimeoutError",
    "Workspace",
    "default_clone_url",
    "validate_ref",
    "validate_sha",
]
