"""The webhook secrets, read from the secret store and cached briefly for the intake."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from pocketci_tui.forges.base import Forge, Verifier
from pocketci_tui.secrets import SecretStore, SecretStoreError

log = logging.getLogger("pocketci_tui.intake")


class SecretUnavailable(Exception):
    """The webhook secret cannot be read now (the intake answers 503)."""


class SecretCache:
    """Reads one webhook secret from the secret store, caching it for a short time.

    Args:
        secrets: The secret store.
        name: The entry holding the webhook secret.
        ttl: Seconds a value read is reused.
        timeout: Seconds to wait for the store.
    """

    def __init__(self, secrets: SecretStore, name: str, ttl: float, timeout: float) -> None:
        self._secrets = secrets
        self._name = name
        self._ttl = ttl
        self._timeout = timeout
        self._value = ""
        self._expires = 0.0
        self._refresh_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._verifiers: dict[str, Verifier] = {}
        self._verifier_secret = ""

    async def get(self) -> str:
        """Return the webhook secret.

        A value is never used past its time to live. While deliveries keep coming it is read
        again in the background during the last fifth of that time, so that no delivery waits
        for the secret store (a hung store would otherwise stall every connection at once).

        Raises:
            SecretUnavailable: The store failed, timed out or has no such entry.
        """
        now = time.monotonic()
        if self._value and now < self._expires:
            if now >= self._refresh_at and self._refresh is None:
                self._refresh = asyncio.create_task(
                    self._read_ahead(), name="pocketci-webhook-secret-refresh"
                )
            return self._value
        async with self._lock:
            if self._value and time.monotonic() < self._expires:
                return self._value
            return await self._read()

    async def _read(self) -> str:
        """Read the secret from the store and cache it; the caller holds the lock."""
        generation = self._generation
        try:
            value = await asyncio.wait_for(self._secrets.get(self._name), self._timeout)
        except TimeoutError as exc:
            raise SecretUnavailable("the secret store did not answer in time") from exc
        except SecretStoreError as exc:
            raise SecretUnavailable(f"the secret store failed: {exc}") from exc
        if not value:
            raise SecretUnavailable(
                f"the webhook secret {self._name!r} is not set; "
                f"run `pocketci-tui secrets set {self._name}`"
            )
        if generation == self._generation:  # not forgotten while the store was read
            now = time.monotonic()
            self._value = value
            self._expires = now + self._ttl
            self._refresh_at = now + self._ttl * 0.8
        return value

    async def _read_ahead(self) -> None:
        try:
            async with self._lock:
                if time.monotonic() >= self._refresh_at:
                    await self._read()
        except SecretUnavailable as exc:
            # The cached value stays valid until it expires; then a delivery reads the store
            # itself and is answered 503 if it still fails.
            log.warning("could not read the webhook secret ahead of time: %s", exc)
            self._refresh_at = self._expires
        finally:
            self._refresh = None

    async def close(self) -> None:
        """Stop a background read, if one is running."""
        task, self._refresh = self._refresh, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def verifier(self, forge: Forge) -> tuple[str, Verifier]:
        """Return the current webhook secret and a forge's verifier keyed with it.

        Raises:
            SecretUnavailable: As :meth:`get`.
        """
        value = await self.get()
        if value != self._verifier_secret:
            self._verifiers = {}
            self._verifier_secret = value
        verifier = self._verifiers.get(forge.vendor)
        if verifier is None:
            verifier = self._verifiers[forge.vendor] = forge.verifier(value)
        return value, verifier

    def forget(self) -> None:
        """Drop the cached value (after a rotation)."""
        self._value = ""
        self._expires = 0.0
        self._refresh_at = 0.0
        self._generation += 1
        self._verifiers = {}
        self._verifier_secret = ""


class WebhookSecrets:
    """The webhook secret of each forge: one :class:`SecretCache` per secret-store name.

    Forges that name the same entry (by default all of them: the top-level
    ``webhook-secret``) share its cache, so the store is read once for all of them.

    Args:
        secrets: The secret store.
        names: The secret-store entry of each forge, by vendor.
        ttl: Seconds a value read is reused.
        timeout: Seconds to wait for the store.
    """

    def __init__(
        self, secrets: SecretStore, names: Mapping[str, str], ttl: float, timeout: float
    ) -> None:
        self._names = dict(names)
        self._secrets = secrets
        self._ttl = ttl
        self._timeout = timeout
        self._caches = {
            name: SecretCache(secrets, name, ttl, timeout) for name in set(self._names.values())
        }
        # An entry set or deleted through this store (the UI's dialogs) is read again at the
        # next delivery; one changed by another process waits for the time to live.
        self._unwatch = secrets.watch(self.forget)

    def name(self, vendor: str) -> str:
        """The secret-store entry holding a forge's webhook secret."""
        return self._names[vendor]

    def cache(self, vendor: str) -> SecretCache:
        """The cache of a forge's webhook secret."""
        return self._caches[self._names[vendor]]

    def named(self, name: str) -> SecretCache:
        """The cache of any secret-store entry (a repository's own webhook secret)."""
        cache = self._caches.get(name)
        if cache is None:
            cache = self._caches[name] = SecretCache(self._secrets, name, self._ttl, self._timeout)
        return cache

    def forget(self, name: str) -> None:
        """Drop the cached value of one secret-store entry (after it changed)."""
        cache = self._caches.get(name)
        if cache is not None:
            cache.forget()

    async def close(self) -> None:
        """Stop watching the store and every background read."""
        self._unwatch()
        for cache in self._caches.values():
            await cache.close()
