"""What firing a stored event again would match, told without running anything.

The fire picker shows it before the user confirms: the stored event is matched against the
catalog its last dispatch loaded (from the catalog cache, never introspected), with the changed
files and secret names that dispatch kept. No checkout, no ``dagger``.
"""

from __future__ import annotations

import asyncio

from pocketci_tui.config import Settings
from pocketci_tui.engine.dagger import Catalog
from pocketci_tui.engine.match import match
from pocketci_tui.model import MatchResult
from pocketci_tui.store import Store

MATCH_ON_LOOP = 500
"""Changed files a preview matches on the event loop; with more it matches in a thread."""


async def preview(
    event_id: int, *, settings: Settings, store: Store, catalog: Catalog
) -> MatchResult | None:
    """Match a stored event as its last dispatch did, without running anything.

    Args:
        event_id: The stored event.
        settings: The configuration in force (is the repository still configured?).
        store: Holds the event and what its last dispatch was matched against.
        catalog: Holds the cached catalogs.

    Returns:
        The match result, or None when it cannot be told without running something (the
        event never reached matching, its repository is no longer configured, or the
        catalog left the cache).
    """
    stored = await store.get_event(event_id)
    if stored is None or stored.event.deleted:
        return None
    event = stored.event
    if settings.repo_for(event.vendor, event.repository) is None:
        return None
    inputs = await store.match_inputs(event_id)
    if inputs is None:
        return None
    module = await catalog.cached(inputs.module_key)
    if module is None:
        return None
    changes = list(inputs.changes) if inputs.changes is not None else None
    if changes is not None and len(changes) > MATCH_ON_LOOP:
        return await asyncio.to_thread(match, module, event, changes, inputs.secret_names)
    return match(module, event, changes, inputs.secret_names)
