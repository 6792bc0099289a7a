"""Reloading ``config.yaml`` while pocketci-tui runs.

A reload reads and validates the file off the event loop. A file that does not parse keeps the
running configuration, and the error names the file and the key. A valid file is applied at
once for what can change while running: the repositories (and what each is granted), fork pull
request handling, the call timeout, retention, the Dagger Cloud token's name and the UI's
keymap. What the running parts were built with keeps its running value, and the reload says so:
the listen address, the secret store backend, the webhook secret's name, the concurrency and
the Dagger CLI and engines (``dagger.cli``, ``dagger.runner-host``, ``dagger.engines``) change
at the next start.

:class:`ConfigReloader` does the reading and comparing; :meth:`ConfigReloader.watch` polls the
file's identity (inode, size, modification time) with one ``stat`` in a thread every few
seconds and reloads when it changes. ``serve`` also reloads on SIGHUP, the UI on a key and a
palette entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pocketci_tui.config import ConfigError, ForgeSettings, Settings, load_settings

__all__ = ["RESTART_KEYS", "ConfigReloader", "Reload", "file_identity"]

log = logging.getLogger("pocketci_tui.config")

WATCH_INTERVAL = 2.0
"""Seconds between two looks at the config file's identity."""

SETTLE_SECONDS = 0.2
"""A changed file is read once it has stayed the same this long (an editor may still write)."""

RESTART_KEYS: dict[str, Callable[[Settings], object]] = {
    "listen.host": lambda s: s.host,
    "listen.port": lambda s: s.port,
    "secrets.backend": lambda s: s.secrets_backend,
    "webhook-secret": lambda s: s.webhook_secret,
    "forges.*.webhook-secret": lambda s: s.webhook_secrets(),
    "concurrency": lambda s: s.concurrency,
    "dagger.cli": lambda s: s.dagger.cli,
    "dagger.runner-host": lambda s: s.dagger.runner_host,
    "dagger.engines": lambda s: s.dagger.engines,
}
"""Keys the running parts were built with: a change waits for the next start."""

LIVE_KEYS: dict[str, Callable[[Settings], object]] = {
    "repos": lambda s: s.repos,
    "forges.*.url": lambda s: {v: (f.url, f.api_url) for v, f in s.forges.items()},
    "fork-pull-requests": lambda s: s.fork_pull_requests,
    "timeout": lambda s: s.timeout,
    "retention": lambda s: (s.retention_events, s.retention_days),
    "dagger.cloud-token": lambda s: s.dagger.cloud_token,
    "keymap": lambda s: dict(s.keymap),
    "status-context": lambda s: s.status_context,
    "public-url": lambda s: s.public_url,
}
"""Keys applied as soon as the file is reloaded."""


@dataclass(frozen=True, slots=True)
class Reload:
    """What one reload did.

    Attributes:
        error: Why the file was refused (it names the file and the key); empty when it loaded.
        applied: Keys whose new values are in use now.
        restart: Keys that changed but keep their running value until the next start.
        settings: The configuration in use after the reload.
    """

    error: str
    applied: tuple[str, ...]
    restart: tuple[str, ...]
    settings: Settings

    @property
    def noteworthy(self) -> bool:
        """True when it refused the file, applied something or found a change that waits."""
        return bool(self.error or self.applied or self.restart)

    @property
    def ok(self) -> bool:
        """True when the file loaded (even if nothing changed)."""
        return not self.error

    def describe(self, path: Path) -> str:
        """One line for a log or a notification."""
        if self.error:
            return f"{self.error} (the running configuration is kept)"
        parts = []
        if self.applied:
            parts.append("applied " + ", ".join(self.applied))
        if self.restart:
            parts.append(
                "restart pocketci-tui to change " + ", ".join(self.restart) + " (kept as running)"
            )
        if not parts:
            parts.append("nothing changed")
        return f"reloaded {path}: " + "; ".join(parts)


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """(inode, size, mtime in ns, ctime in ns) of a file, or None when it is absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ConfigReloader:
    """Reloads one ``config.yaml`` into the running configuration.

    Args:
        path: The config file.
        running: The configuration in use (command-line overrides included).
        apply: Called with the new configuration once a reload changed something live; it
            hands the new value to the parts (engine, intake, UI).
    """

    def __init__(self, path: Path, running: Settings, apply: Callable[[Settings], None]) -> None:
        self.path = path
        self.running = running
        self._apply = apply
        self._loaded: Settings | None = None
        self._identity: tuple[int, int, int, int] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def prime(self) -> None:
        """Remember the file as it is now, so that the watcher reacts only to later edits."""
        self._identity = await asyncio.to_thread(file_identity, self.path)
        self._loaded = None
        if self._identity is None:
            # No file means the defaults. A file written later (the first-start setup writes
            # one) is compared with them, not with command-line overrides such as --port.
            self._loaded = Settings(source=None)
            return
        with contextlib.suppress(ConfigError):
            self._loaded = await asyncio.to_thread(load_settings, self.path)

    async def reload(self) -> Reload:
        """Read the file again and apply what can change while running.

        Returns:
            What happened; the caller shows it (a log line, a notification).
        """
        async with self._lock:
            self._identity = await asyncio.to_thread(file_identity, self.path)
            if self._identity is None:
                # Without a file the defaults would apply: no repositories at all. A file that
                # went away (or is being replaced) is not a wish to build nothing.
                return Reload(f"{self.path}: no such file", (), (), self.running)
            try:
                new = await asyncio.to_thread(load_settings, self.path)
            except ConfigError as exc:
                return Reload(str(exc), (), (), self.running)
            before = self._loaded if self._loaded is not None else self.running
            self._loaded = new
            # A key waits for a restart when the file changed it and the process does not
            # already run with that value (from a command-line override, or the backend the
            # first start chose and then wrote down).
            restart = tuple(
                k
                for k, get in RESTART_KEYS.items()
                if get(new) != get(before) and get(new) != get(self.running)
            )
            applied = tuple(k for k, get in LIVE_KEYS.items() if get(new) != get(self.running))
            running = self.running
            merged = replace(
                new,
                host=running.host,
                port=running.port,
                secrets_backend=running.secrets_backend,
                webhook_secret=running.webhook_secret,
                forges=_with_secrets_of(new, running),
                concurrency=running.concurrency,
                dagger=replace(
                    new.dagger,
                    cli=running.dagger.cli,
                    runner_host=running.dagger.runner_host,
                    engines=running.dagger.engines,
                ),
            )
            if applied:
                self.running = merged
                self._apply(merged)
            return Reload("", applied, restart, self.running)

    async def changed(self) -> bool:
        """Whether the file is not what the last (re)load saw."""
        return await asyncio.to_thread(file_identity, self.path) != self._identity

    async def _settle(self) -> None:
        """Wait (briefly, boundedly) until an editor has finished writing the file."""
        last = await asyncio.to_thread(file_identity, self.path)
        for _ in range(20):
            await asyncio.sleep(SETTLE_SECONDS)
            now = await asyncio.to_thread(file_identity, self.path)
            if now == last:
                return
            last = now

    def watch(
        self, report: Callable[[Reload], None], interval: float = WATCH_INTERVAL
    ) -> asyncio.Task[None]:
        """Reload whenever the file changes; ``report`` is told what a reload did (an edit that
        changes nothing, such as a saved but unchanged file, is not reported).

        Returns:
            The watching task (cancel it, or call :meth:`stop`).
        """

        async def loop() -> None:
            if self._identity is None and self._loaded is None:
                await self.prime()
            while True:
                await asyncio.sleep(interval)
                try:
                    if await self.changed():
                        await self._settle()
                        result = await self.reload()
                        if result.noteworthy:
                            report(result)
                except Exception:  # a watcher must outlive any one bad look
                    log.exception("watching %s failed", self.path)

        self._task = asyncio.create_task(loop(), name="pocketci-config-watch")
        return self._task

    async def stop(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _with_secrets_of(new: Settings, running: Settings) -> dict[str, ForgeSettings]:
    """The new file's forges, each keeping the webhook secret name the intake runs with."""
    forges = {}
    for vendor in {*new.forges, *running.forges}:
        fresh = new.forges.get(vendor, ForgeSettings())
        kept = running.forges.get(vendor, ForgeSettings())
        forges[vendor] = replace(fresh, webhook_secret=kept.webhook_secret)
    return forges
