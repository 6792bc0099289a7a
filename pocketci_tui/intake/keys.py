"""Typed keys for the state of the intake application (``web.AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import asyncio

    from pocketci_tui.config import Settings
    from pocketci_tui.forges.registry import Registry
    from pocketci_tui.intake.budget import ByteBudget
    from pocketci_tui.intake.parts import EventSink, IntakeLimits, RepoFilter
    from pocketci_tui.intake.rejections import RejectionLog
    from pocketci_tui.intake.secret_cache import WebhookSecrets
    from pocketci_tui.store import Store

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
"""The user configuration (repositories, webhook secret name)."""
REPOS: web.AppKey[RepoFilter] = web.AppKey("repos")
"""Which repositories are configured (cached answers)."""
STORE: web.AppKey[Store] = web.AppKey("store")
"""Where deliveries are stored before the reply."""
SINK: web.AppKey[EventSink] = web.AppKey("sink")
"""Told about every stored delivery (the dispatcher)."""
SECRET: web.AppKey[WebhookSecrets] = web.AppKey("secret")
"""The webhook secret of each forge, read from the secret store and cached briefly."""
FORGES: web.AppKey[Registry] = web.AppKey("forges")
"""The forges served under ``/webhooks/{vendor}``."""
LIMITS: web.AppKey[IntakeLimits] = web.AppKey("limits")
"""Body size and time limits."""
BUDGET: web.AppKey[ByteBudget] = web.AppKey("budget")
"""The unverified body bytes held at once, across connections."""
REJECTIONS: web.AppKey[RejectionLog] = web.AppKey("rejections")
"""Refused requests: counted, logged at a bounded rate, told to the UI."""
PARSING: web.AppKey[asyncio.Semaphore] = web.AppKey("parsing")
"""Lets one large body at a time be decoded (in a worker thread)."""
