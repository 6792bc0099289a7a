"""Reloading config.yaml in the UI that owns the builds: when the file changes, on ctrl+l, and
when a UI attached to this one asks (its ctrl+l), each said in a notification.

A UI attached to another process has none of this: the owner reads its own file (see
:mod:`.attach`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from textual.app import App

from pocketci_tui.config import Settings
from pocketci_tui.config_reload import ConfigReloader, Reload
from pocketci_tui.paths import AppPaths

log = logging.getLogger(__name__)

NOT_YET = "config.yaml can be reloaded once the listener and engine have started"


class ConfigReloads:
    """The owner's config.yaml reloads, for the app.

    Args:
        app: Shows what each reload did.
        paths: Where config.yaml is.
        apply: Hands a reloaded configuration to the services and the screens.
    """

    def __init__(self, app: App[Any], paths: AppPaths, apply: Callable[[Settings], None]) -> None:
        self._app = app
        self._paths = paths
        self._apply = apply
        self.reloader: ConfigReloader | None = None
        """The reloader once the services run (None before, and when attached)."""

    async def start(self, running: Settings) -> None:
        """Watch config.yaml from now on, as it is now (after a start, or a start again)."""
        await self.stop()
        reloader = ConfigReloader(self._paths.config_file, running, self._apply)
        await reloader.prime()
        reloader.watch(self.report)
        self.reloader = reloader

    async def stop(self) -> None:
        """Stop watching (idempotent)."""
        reloader, self.reloader = self.reloader, None
        if reloader is not None:
            await reloader.stop()

    async def reload_now(self) -> None:
        """Read config.yaml again (ctrl+l) and say what that did."""
        if self.reloader is None:
            self._app.notify(NOT_YET, severity="warning")
            return
        self.report(await self.reloader.reload())

    async def for_clients(self) -> tuple[bool, str]:
        """A UI attached to this one asked for a reload (its ctrl+l): the same reload, said
        here too, answered with whether the file loaded and what the reload did."""
        if self.reloader is None:
            return False, NOT_YET
        result = await self.reloader.reload()
        self.report(result)
        return result.ok, result.describe(self._paths.config_file)

    def report(self, result: Reload) -> None:
        """Say what a reload did: in the log, and in a notification."""
        text = result.describe(self._paths.config_file)
        app = self._app
        if not result.ok:
            log.warning("%s", text)
            app.notify(text, title="config.yaml not reloaded", severity="error", timeout=30)
        elif result.restart:
            log.warning("%s", text)
            app.notify(text, title="config.yaml reloaded", severity="warning", timeout=20)
        else:
            log.info("%s", text)
            app.notify(text, title="config.yaml reloaded", timeout=8)
