"""What the engine's parts share without sharing state: notices out, event statuses, tasks.

Each part of the engine (:mod:`~pocketci_tui.engine.dispatch.pipeline`,
:mod:`~pocketci_tui.engine.dispatch.executor`, the engine itself) is handed these in its
constructor: a ``publish`` callable that reaches every subscriber, an :class:`EventStatuses` that
records an event's status and tells the subscribers, and a ``spawn`` callable for work that runs
in the background. None of them owns another's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from pocketci_tui.model import EventStatus, EventUpdated, Notice, bounded
from pocketci_tui.store import Store

log = logging.getLogger(__name__)

Subscriber = Callable[[Notice], None]
"""Receives every notice the engine publishes."""

Publish = Callable[[Notice], None]
"""Hands a notice to every subscriber."""

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs a coroutine as a named background task the engine cancels at shutdown."""


class EngineError(Exception):
    """An engine action cannot be done; the message says why."""


class Publisher:
    """The engine's subscribers, and the one way to reach them.

    A subscriber that raises is logged and skipped: one broken listener never stops a notice
    reaching the others, nor the engine.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every notice from now on; return a function that stops it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, notice: Notice) -> None:
        """Hand ``notice`` to every subscriber, in the order they subscribed."""
        for callback in list(self._subscribers):
            try:
                callback(notice)
            except Exception:
                log.exception("a subscriber failed on %s", type(notice).__name__)


class EventStatuses:
    """Records how an event's dispatch stands, and tells the subscribers.

    Args:
        store: Where outcomes are committed.
        publish: Reaches the subscribers.
    """

    def __init__(self, store: Store, publish: Publish) -> None:
        self._store = store
        self._publish = publish

    def progress(self, event_id: int, detail: str) -> None:
        """Publish a step of a dispatch without writing it.

        Steps are transient: a restart dispatches a RECEIVED event again from the start, so
        only outcomes are committed, and the first ``dagger call`` is not held up by a commit
        per step.
        """
        self._publish(EventUpdated(event_id, EventStatus.DISPATCHING, detail))

    async def set(self, event_id: int, status: EventStatus, detail: str = "") -> None:
        """Commit an event's status and detail, then publish them."""
        detail = bounded(detail)  # it can quote what a repository holds
        await self._store.set_event_status(event_id, status, detail)
        self._publish(EventUpdated(event_id, status, detail))


class Background:
    """Tasks the engine starts and forgets (saves, retries, settling), until shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task named ``name``; it is dropped once done."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel every task still running; return them, to wait for."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks
