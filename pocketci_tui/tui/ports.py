"""What the UI needs from the services it is handed (structural types, no implementation).

The UI depends on these small protocols rather than on concrete classes, so tests can hand it
any object with the same shape, and the production :class:`pocketci_tui.services.Services`
satisfies them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pocketci_tui.model import Notice, Run, StoredEvent
from pocketci_tui.secrets import SecretStore


class StorePort(Protocol):
    """Reading stored events and runs."""

    async def list_events(
        self, *, limit: int = ..., before_id: int | None = ..., text: str = ...
    ) -> list[StoredEvent]:
        """Return stored events, newest first."""
        ...

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """Return one stored event (with its body), or None."""
        ...

    async def count_events(self) -> int:
        """Return how many events are stored."""
        ...

    async def list_runs(self, event_id: int) -> list[Run]:
        """Return the runs of an event, oldest first."""
        ...


class EnginePort(Protocol):
    """Acting on events and runs, and hearing what happens."""

    def subscribe(self, callback: Callable[[Notice], None]) -> Callable[[], None]:
        """Call ``callback`` with every notice; return a function that unsubscribes."""
        ...

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again."""
        ...

    async def rerun(self, run_id: str) -> Run:
        """Run a function of an event again."""
        ...

    async def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run."""
        ...

    async def cancel_event(self, event_id: int) -> int:
        """Cancel every unfinished run of an event; return how many."""
        ...

    async def approve(self, event_id: int) -> None:
        """Approve a waiting pull request from a fork (pinned to its head commit)."""
        ...

    def tail(self, run_id: str) -> list[str]:
        """Return the in-memory tail of a run's output."""
        ...

    def counts(self) -> tuple[int, int]:
        """Return (queued, running)."""
        ...

    def problems(self) -> list[str]:
        """Return human-readable problems (dagger not found, ...)."""
        ...


class ServicesPort(Protocol):
    """Everything the UI drives: store, engine, secret store and the listener's lifecycle."""

    store: Any
    engine: Any
    secrets: SecretStore

    async def start(self) -> Any:
        """Open the store, start the engine and the listener."""
        ...

    async def stop(self) -> None:
        """Stop the listener and the engine (killing children) and close the store."""
        ...
