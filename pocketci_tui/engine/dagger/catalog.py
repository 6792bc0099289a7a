"""The module catalog: which functions a Dagger module offers, cached by module content.

Introspection asks the Dagger engine through the dagger-io SDK. Loading a module costs
seconds on a warm engine and much more on a cold one, so the answer is cached in memory and
in JSON files, keyed by the module's content (:func:`module_content_key`): an unchanged
module is never loaded twice, not even across restarts.

This module is the cache and the order of the steps of an introspection. The steps live
beside it: the query and its parsing in :mod:`~pocketci_tui.engine.dagger.query`, content
keys in :mod:`~pocketci_tui.engine.dagger.module_key`, and the CLI and ``dagger session`` child in
:mod:`~pocketci_tui.engine.dagger.session`. Their public names are importable from here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO

from pocketci_tui.engine.dagger.module_key import module_content_key
from pocketci_tui.engine.dagger.query import (
    CatalogError,
    catalog_from_json,
    catalog_query,
    catalog_to_json,
    main_object_name,
    parse_catalog,
)
from pocketci_tui.engine.dagger.session import (
    ABORT_GRACE,
    SESSION_CLOSE_GRACE,
    Session,
    cli_fingerprint,
    download_cli,
    query_session,
    read_session_params,
    resolve_dagger_cli,
    session_env,
    spawn_session,
    stop_session,
)
from pocketci_tui.model import ModuleCatalog

__all__ = [
    "CACHE_FORMAT",
    "DISK_ENTRIES",
    "MEMORY_ENTRIES",
    "Catalog",
    "CatalogError",
    "catalog_from_json",
    "catalog_query",
    "catalog_to_json",
    "main_object_name",
    "module_content_key",
    "parse_catalog",
    "resolve_dagger_cli",
]

_log = logging.getLogger(__name__)

CACHE_FORMAT = 2
"""Bump when the cache files' shape or meaning changes: old files are then ignored.

2: catalogs are bounded when parsed (functions, arguments, names, defaults); files written
before could hold a catalog past those bounds.
"""

MEMORY_ENTRIES = 256
"""Catalogs kept in memory (least recently used dropped first)."""

DISK_ENTRIES = 1000
"""Cache files kept on disk (oldest removed first); a hit reads one small file."""


class Catalog:
    """Introspects Dagger modules and caches what they offer by module content.

    Args:
        cache_dir: Where cache files (one JSON file per module content) are kept.
        dagger_cli: The configured CLI (see :func:`resolve_dagger_cli`); empty for PATH.
        runner_host: ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` for the session, when set (and part
            of the cache key).
        pick_host: When given, chooses the engine of each session instead (a pool's engine
            that is up); the cache key keeps ``runner_host``, since any engine of the pool
            gives the same catalog.
        log_path: Where the session's own messages go (default: ``cache_dir/session.log``).
        timeout: Seconds one introspection may take in all (starting the engine included).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        dagger_cli: str = "",
        runner_host: str = "",
        pick_host: Callable[[], str] | None = None,
        log_path: Path | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.cache_dir = cache_dir
        self.dagger_cli = dagger_cli
        self.runner_host = runner_host
        self.pick_host = pick_host
        self.log_path = log_path or cache_dir / "session.log"
        self.timeout = timeout
        self.sessions_started = 0
        """How many ``dagger session`` children this instance started (for tests, stats)."""
        self.cli_used: str | None = None
        """The CLI of the last session (a downloaded one included), once one ran."""
        self._memory: dict[str, ModuleCatalog] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _cache_file(self, cache_key: str) -> Path:
        return self.cache_dir / f"{hashlib.sha256(cache_key.encode()).hexdigest()[:40]}.json"

    async def cached(self, content_key: str) -> ModuleCatalog | None:
        """Return the catalog of a module content from the cache, or None: never introspects.

        Args:
            content_key: The module's :func:`module_content_key`.

        Returns:
            The catalog when this CLI loaded that content before (in memory or on disk).
        """
        cli = resolve_dagger_cli(self.dagger_cli)
        if cli is None and self.dagger_cli:
            return None
        cache_key = self._cache_key(cli, content_key)
        if (hit := self._remember(cache_key)) is not None:
            return hit
        stored = await asyncio.to_thread(self._read_cache, self._cache_file(cache_key), cache_key)
        if stored is not None:
            self._remember(cache_key, stored)
        return stored

    def _cache_key(self, cli: str | None, content_key: str) -> str:
        return "\n".join((str(CACHE_FORMAT), cli_fingerprint(cli), self.runner_host, content_key))

    async def load(self, module_dir: Path, content_key: str) -> ModuleCatalog:
        """Return the catalog of the module in ``module_dir``, from the cache when possible.

        Args:
            module_dir: The module directory (absolute, holding ``dagger.json``).
            content_key: Its :func:`module_content_key`.

        Raises:
            CatalogError: No CLI, the session did not start, or the module failed to load.
        """
        cli = resolve_dagger_cli(self.dagger_cli)
        if cli is None and self.dagger_cli:
            raise CatalogError(
                f"the configured dagger CLI {self.dagger_cli!r} was not found or is not "
                "executable; fix dagger.cli in the config"
            )
        cache_key = self._cache_key(cli, content_key)
        if (hit := self._remember(cache_key)) is not None:
            return hit
        lock = self._locks.setdefault(cache_key, asyncio.Lock())
        try:
            async with lock:
                if (hit := self._remember(cache_key)) is not None:
                    return hit
                path = self._cache_file(cache_key)
                stored = await asyncio.to_thread(self._read_cache, path, cache_key)
                if stored is None:
                    absolute = await asyncio.to_thread(module_dir.absolute)
                    stored = await self._introspect(absolute, cli)
                    try:
                        await asyncio.to_thread(self._write_cache, path, cache_key, stored)
                    except OSError as exc:
                        _log.warning("cannot write the catalog cache file %s: %s", path, exc)
                self._remember(cache_key, stored)
                return stored
        finally:
            if not lock.locked() and self._locks.get(cache_key) is lock:
                del self._locks[cache_key]

    def _remember(
        self, cache_key: str, catalog: ModuleCatalog | None = None
    ) -> ModuleCatalog | None:
        """Look ``cache_key`` up in memory (most recently used last), or store ``catalog``."""
        if catalog is None:
            hit = self._memory.pop(cache_key, None)
            if hit is not None:
                self._memory[cache_key] = hit
            return hit
        self._memory[cache_key] = catalog
        while len(self._memory) > MEMORY_ENTRIES:
            del self._memory[next(iter(self._memory))]
        return catalog

    @staticmethod
    def _read_cache(path: Path, cache_key: str) -> ModuleCatalog | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != cache_key:
                return None
            catalog = catalog_from_json(data["catalog"])
            os.utime(path)  # recently used: pruned last
            return catalog
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, path: Path, cache_key: str, catalog: ModuleCatalog) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"key": cache_key, "catalog": catalog_to_json(catalog)}, indent=1),
            encoding="utf-8",
        )
        os.replace(tmp, path)
        files = list(path.parent.glob("*.json"))
        if len(files) > DISK_ENTRIES:
            by_age = sorted(files, key=lambda f: f.stat().st_mtime_ns)
            for old in by_age[: len(files) - DISK_ENTRIES]:
                with suppress(OSError):
                    old.unlink()

    async def _introspect(self, module_dir: Path, cli: str | None) -> ModuleCatalog:
        try:
            async with asyncio.timeout(self.timeout):
                if cli is None:
                    cli = await download_cli()
                self.cli_used = cli
                return await self._introspect_with(module_dir, cli)
        except TimeoutError:
            raise CatalogError(
                f"loading the Dagger module at {module_dir} took longer than "
                f"{self.timeout:.0f}s; check the engine ({cli or 'dagger'} core version)"
            ) from None

    def _session_host(self) -> str:
        return self.pick_host() if self.pick_host is not None else self.runner_host

    async def _start_session(self, cli: str, log: IO[str] | None) -> Session:
        session = await spawn_session(
            cli, log, cwd=self.cache_dir, env=session_env(cli, self._session_host())
        )
        self.sessions_started += 1
        await read_session_params(session)
        return session

    async def _introspect_with(self, module_dir: Path, cli: str) -> ModuleCatalog:
        log: IO[str] | None
        try:
            await asyncio.to_thread(self.log_path.parent.mkdir, parents=True, exist_ok=True)
            log = await asyncio.to_thread(open, self.log_path, "a", encoding="utf-8")
        except OSError:
            log = None
        try:
            session = await self._start_session(cli, log)
            try:
                data = await query_session(
                    session,
                    catalog_query(str(module_dir)),
                    module_dir,
                    execute_timeout=self.timeout,
                    log_path=self.log_path,
                )
            except BaseException:
                await stop_session(session, grace=ABORT_GRACE)
                raise
            await stop_session(session, grace=SESSION_CLOSE_GRACE)
        finally:
            if log is not None:
                log.close()
        return parse_catalog(data, module_dir)
