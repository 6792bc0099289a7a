"""The owner's secret store, as an attached client uses it: every call one request.

An attached UI never opens a secret store of its own (the owner's may be an encrypted file
whose passphrase only the owner holds, or a keyring in another session): listing, setting and
deleting go to the owner, and a value is read only when the user asks for it (the webhook
dialog's "show secret"). Changes made by any client, or by the owner's own UI, come back as
:class:`~pocketci_tui.contract.SecretChanged` notices on the client's stream, so
:meth:`RemoteSecretStore.watch` sees them all, unlike a local store's.

Failures are the secret store's own errors, as the UI's dialogs expect: a link that is down is
:class:`~pocketci_tui.secrets.SecretStoreUnavailable`, no answer in time
:class:`~pocketci_tui.secrets.SecretStoreTimeout`, a refused name or value
:class:`~pocketci_tui.secrets.SecretValueError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote

from pocketci_tui.contract import NotStarted
from pocketci_tui.secrets import (
    SecretStoreError,
    SecretStoreTimeout,
    SecretStoreUnavailable,
    SecretValueError,
    validate_name,
)
from pocketci_tui.secrets.base import Watchers

from .transport import RemoteError


class Call(Protocol):
    """One request to the owner (:meth:`pocketci_tui.control.client.SocketClient.call`)."""

    def __call__(
        self, method: str, route: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> Awaitable[Any]:
        """Send it; return the answer's JSON."""
        ...


class RemoteSecretStore:
    """The owner's :class:`~pocketci_tui.secrets.SecretStore`, through its control socket.

    Args:
        call: Sends one request to the owner.
        backend_name: Where the owner keeps the values, as last heard.
        warning: The owner store's warning (the plaintext store's), as last heard.
    """

    kind = "remote"

    def __init__(
        self,
        call: Call,
        *,
        backend_name: str = "the owner's secret store",
        warning: str | None = None,
    ) -> None:
        self._call = call
        self.backend_name = backend_name
        self.warning = warning
        self._watchers = Watchers()

    async def _request(self, method: str, route: str, body: Any = None) -> Any:
        """One request, with its failures as secret store errors."""
        try:
            return await self._call(method, route, body=body)
        except SecretStoreError:
            raise
        except NotStarted as exc:
            raise SecretStoreUnavailable(
                f"the owner's secret store cannot be reached: {exc}"
            ) from exc
        except TimeoutError as exc:
            raise SecretStoreTimeout(str(exc)) from exc
        except ValueError as exc:
            raise SecretValueError(str(exc)) from exc
        except RemoteError as exc:
            raise SecretStoreError(str(exc)) from exc

    @staticmethod
    def _route(name: str) -> str:
        return f"/v1/secrets/{quote(validate_name(name), safe='')}"

    async def refresh(self) -> list[str]:
        """Ask the owner for its store's names, and where and how it keeps them.

        Returns:
            The stored names, sorted.
        """
        data = await self._request("GET", "/v1/secrets")
        if not isinstance(data, dict) or not isinstance(data.get("names"), list):
            raise SecretStoreError("the owner's list of secrets cannot be read")
        backend, warning = data.get("backend"), data.get("warning")
        if isinstance(backend, str) and backend:
            self.backend_name = backend
        self.warning = warning if isinstance(warning, str) and warning else None
        return sorted(str(name) for name in data["names"])

    async def get(self, name: str) -> str | None:
        """Return the value the owner stores under ``name``, or None."""
        data = await self._request("GET", self._route(name))
        value = data.get("value") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    async def set(self, name: str, value: str) -> None:
        """Store ``value`` under ``name`` in the owner's store."""
        await self._request("PUT", self._route(name), {"value": value})

    async def delete(self, name: str) -> None:
        """Remove ``name`` from the owner's store; no error when absent."""
        await self._request("DELETE", self._route(name))

    async def names(self) -> list[str]:
        """Return the names the owner stores, sorted."""
        return await self.refresh()

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback`` with the name of each entry set or deleted through the owner, by
        any client; return a function that stops the calls."""
        return self._watchers.add(callback)

    def changed(self, name: str) -> None:
        """Tell the watchers that ``name`` changed (a notice from the owner said so)."""
        self._watchers.tell(name)
