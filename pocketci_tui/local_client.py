"""The in-process client: the UI's reads and actions answered by this process's own parts.

:class:`~pocketci_tui.services.Services` owns the store and engine of a running instance and is
also the :class:`~pocketci_tui.contract.CoreClient` of a UI in the same process. Most of that
contract is a plain call to the store or the engine, or a read of the listener's refusals;
those calls live here, apart from the starting, stopping and wiring of the parts, so each can
be read alone. What they need of the running instance is :meth:`LocalClient._running`, which
says when it is not started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pocketci_tui.contract import (
    CoreClient,
    CountsChanged,
    HeadSecrets,
    OutputTail,
    Rejection,
    RejectionSummary,
    StatusDelivery,
)
from pocketci_tui.core_feed import counts_of, delivery_of, read_stamped_tail
from pocketci_tui.engine.dispatch.client import EngineClient
from pocketci_tui.intake.rejections import RejectionLog
from pocketci_tui.model import RepoSummary, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store

if TYPE_CHECKING:
    from pocketci_tui.model import MatchResult, Run


class LocalClient(CoreClient):
    """The store's and the engine's answers to a client in the same process.

    A subclass owns the parts: it sets :attr:`paths` and :attr:`rejections` and implements
    :meth:`_running`.
    """

    paths: AppPaths
    rejections: RejectionLog

    def _running(self) -> tuple[Store, EngineClient]:
        """The store and the engine, or :class:`~pocketci_tui.contract.NotStarted`."""
        raise NotImplementedError

    def subscribe_refusals(
        self, callback: Callable[[RejectionSummary], None]
    ) -> Callable[[], None]:
        """Tell ``callback`` of the listener's refusals."""
        return self.rejections.subscribe(callback)

    async def events_page(
        self, *, limit: int, before_id: int | None = None, text: str = ""
    ) -> list[StoredEvent]:
        """A page of stored events, newest first."""
        store, _ = self._running()
        return await store.list_events(limit=limit, before_id=before_id, text=text)

    async def event(self, event_id: int) -> StoredEvent | None:
        """One stored event with its payload."""
        store, _ = self._running()
        return await store.get_event(event_id)

    async def runs(self, event_id: int) -> list[Run]:
        """Every run of an event."""
        store, _ = self._running()
        return await store.list_runs(event_id)

    async def queue_order(self) -> list[str]:
        """The queued runs, first to start first."""
        store, _ = self._running()
        return await store.queued_runs()

    async def repositories(self) -> list[RepoSummary]:
        """How each repository stands."""
        store, _ = self._running()
        return await store.repositories()

    async def status_deliveries(self, run_ids: Sequence[str]) -> dict[str, StatusDelivery]:
        """Whether each run's latest commit status reached the forge."""
        store, _ = self._running()
        rows = await store.run_statuses(run_ids)
        return {run_id: delivery_of(row) for run_id, row in rows.items()}

    async def counts(self) -> CountsChanged:
        """How many runs are queued and running now."""
        return counts_of(self._running()[1])

    async def output_tail(self, run: Run, lines: int) -> OutputTail:
        """The log file's end once the run finished, else the engine's live tail."""
        _, engine = self._running()
        if run.state.finished and run.log_path:
            found = await asyncio.to_thread(
                read_stamped_tail, self.paths.logs_dir / run.log_path, lines
            )
            if found is not None:
                return OutputTail(tuple(found[0]), found[1], tuple(found[2]))
        # The tail and where it ends in one go (no await between): live batches are joined
        # to it by position.
        return OutputTail(
            tuple(engine.tail(run.id)[-lines:]),
            engine.tail_end(run.id),
            tuple(engine.tail_times(run.id)[-lines:]),
        )

    async def preview(self, event_id: int) -> MatchResult | None:
        """What firing the event again would match."""
        return await self._running()[1].preview(event_id)

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """The secrets a fork's head commit would get."""
        return await self._running()[1].head_secrets(event_id)

    async def refusals(self) -> tuple[list[Rejection], int]:
        """The listener's recent refusals, newest first, and how many in all."""
        return self.rejections.recent(), self.rejections.count

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again."""
        await self._running()[1].fire(event_id)

    async def rerun(self, run_id: str) -> None:
        """Re-run one function."""
        await self._running()[1].rerun(run_id)

    async def cancel(self, run_id: str) -> bool:
        """Cancel a run."""
        return await self._running()[1].cancel(run_id)

    async def cancel_event(self, event_id: int) -> int:
        """Cancel an event's active runs."""
        return await self._running()[1].cancel_event(event_id)

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Approve a fork's pull request at its head commit."""
        await self._running()[1].approve(event_id, sha)
