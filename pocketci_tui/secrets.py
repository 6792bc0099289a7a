"""Secret storage behind a small interface: the OS keyring in production, memory in tests."""

from __future__ import annotations

from typing import Protocol

MIN_SECRET_LENGTH = 6
"""Shorter values are refused by ``secrets set`` (unless forced) and never masked."""


class SecretStoreError(Exception):
    """The secret store failed; the message says what to do."""


class SecretStoreUnavailable(SecretStoreError):
    """No usable backend (no keyring, locked, or explicitly disabled)."""


class SecretStoreTimeout(SecretStoreError):
    """The backend did not answer in time (a locked or hung keyring)."""


class SecretStore(Protocol):
    """Where secret values live, addressed by name. Every method is safe on the event loop."""

    backend_name: str
    """A human name of where values live (``SecretService``, ``encrypted file``, ``memory``)."""

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None."""
        ...

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``."""
        ...

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        ...

    async def names(self) -> list[str]:
        """Return the stored names, sorted."""
        ...


class MemorySecretStore:
    """A secret store in memory, for tests.

    Args:
        values: Initial values by name.
    """

    backend_name = "memory"

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self._values = dict(values or {})

    async def get(self, name: str) -> str | None:
        """Return the value stored under ``name``, or None."""
        return self._values.get(name)

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``."""
        self._values[name] = value

    async def delete(self, name: str) -> None:
        """Remove ``name``; no error when absent."""
        self._values.pop(name, None)

    async def names(self) -> list[str]:
        """Return the stored names, sorted."""
        return sorted(self._values)
