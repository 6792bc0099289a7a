"""Git: one hardened way to run git, and the workspace built on it.

The workspace keeps a bare mirror per repository, fetches exactly the commits an event names and
makes disposable checkouts for runs. It is made of parts, each with its own state: a
:class:`Mirror` per repository (the bare mirror and its upkeep), a :class:`Fetcher` (the only
way to the network) and the :class:`Checkouts`. Nothing here knows about Dagger or dispatch.
"""

from pocketci_tui.engine.git.checkout import Checkout, Checkouts
from pocketci_tui.engine.git.command import (
    Credentials,
    GitCommand,
    GitError,
    GitResult,
    GitTimeoutError,
)
from pocketci_tui.engine.git.fetch import Fetcher, FetchPlan, Remote
from pocketci_tui.engine.git.mirror import Mirror, MirrorLimits
from pocketci_tui.engine.git.refs import (
    GitInputError,
    default_clone_url,
    repo_dir_name,
    validate_ref,
    validate_sha,
)
from pocketci_tui.engine.git.workspace import Workspace

__all__ = [
    "Checkout",
    "Checkouts",
    "Credentials",
    "FetchPlan",
    "Fetcher",
    "GitCommand",
    "GitError",
    "GitInputError",
    "GitResult",
    "GitTimeoutError",
    "Mirror",
    "MirrorLimits",
    "Remote",
    "Workspace",
    "default_clone_url",
    "repo_dir_name",
    "validate_ref",
    "validate_sha",
]
