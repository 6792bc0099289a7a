"""The pool of Dagger engines the runs are spread over, and the slots each one offers.

Runs wait in one first-come first-served line; each takes a slot of an engine that has one
free. A repository's calls prefer the engine that last took one of them, since Dagger's cache
lives in the engine and a second build there is fast; otherwise the least loaded engine (by
the share of its slots in use) wins. An engine marked down gets nothing until it is marked up
again. The choice is bookkeeping in memory: no I/O, no awaiting but for the slot itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from pocketci_tui.config import EngineSettings


@dataclass(slots=True)
class EngineLoad:
    """One engine as the scheduler sees it.

    Attributes:
        settings: Its name, runner host and capacity.
        busy: The slots in use.
        down: Why it cannot be reached, or empty when it takes calls.
        started: How many calls it was given since the start.
    """

    settings: EngineSettings
    busy: int = 0
    down: str = ""
    started: int = 0

    @property
    def free(self) -> bool:
        """Whether it can take one more call now."""
        return not self.down and self.busy < self.settings.concurrency


class EnginePool:
    """Hands out engine slots to runs, in the order they asked.

    Args:
        engines: The pool (at least one engine, unique names).
        on_change: Called (in the middle of the pool's work: only note or schedule) whenever an
            engine's load or health changed, so whoever shows the loads is told, not polling.
    """

    def __init__(
        self, engines: Sequence[EngineSettings], *, on_change: Callable[[], None] | None = None
    ) -> None:
        if not engines:
            raise ValueError("an engine pool needs at least one engine")
        self._on_change = on_change
        self._engines = {e.name: EngineLoad(e) for e in engines}
        self._affinity: dict[str, str] = {}
        self._waiting: deque[tuple[str, asyncio.Future[EngineLoad]]] = deque()
        self._up = asyncio.Event()

    # -- what callers read ----------------------------------------------------------------------

    def loads(self) -> list[EngineLoad]:
        """Every engine with its load, in configuration order."""
        return list(self._engines.values())

    def last_engine(self, repository: str) -> str:
        """The engine that last took a call of ``repository``, or empty."""
        return self._affinity.get(repository.lower(), "")

    @property
    def waiting(self) -> int:
        """How many runs wait for a slot."""
        return sum(1 for _, fut in self._waiting if not fut.done())

    async def wait_up(self) -> None:
        """Return once an engine is not marked down (at once when one is not)."""
        while all(e.down for e in self._engines.values()):
            await self._up.wait()

    # -- taking and giving back slots ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self, repository: str, *, first: bool = False) -> AsyncIterator[EngineSettings]:
        """Wait for a slot for a call of ``repository`` and hold it for the block.

        ``first`` puts the call at the head of the line: a call whose engine could not be
        reached was already given its turn once.
        """
        load = await self._acquire(repository, first)
        try:
            yield load.settings
        finally:
            self._release(load)

    async def _acquire(self, repository: str, first: bool) -> EngineLoad:
        key = repository.lower()
        fut: asyncio.Future[EngineLoad] = asyncio.get_running_loop().create_future()
        if first:
            self._waiting.appendleft((key, fut))
        else:
            self._waiting.append((key, fut))
        self._assign()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # Given a slot just as it was cancelled: hand the slot on.
                self._release(fut.result())
            else:
                with contextlib.suppress(ValueError):
                    self._waiting.remove((key, fut))
            raise

    def _release(self, load: EngineLoad) -> None:
        load.busy -= 1
        self._assign()
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _pick(self, key: str) -> EngineLoad | None:
        preferred = self._engines.get(self._affinity.get(key, ""))
        if preferred is not None and preferred.free:
            return preferred
        free = [e for e in self._engines.values() if e.free]
        if not free:
            return None
        return min(free, key=lambda e: e.busy / e.settings.concurrency)

    def _assign(self) -> None:
        """Give free slots to the runs at the head of the line, in order."""
        while self._waiting:
            key, fut = self._waiting[0]
            if fut.done():
                self._waiting.popleft()
                continue
            load = self._pick(key)
            if load is None:
                return
            self._waiting.popleft()
            load.busy += 1
            load.started += 1
            self._affinity[key] = load.settings.name
            fut.set_result(load)
            self._changed()

    # -- health --------------------------------------------------------------------------------

    def mark_down(self, name: str, reason: str) -> None:
        """Give ``name`` no more calls until :meth:`mark_up` (its running calls go on)."""
        self._engines[name].down = reason or "unreachable"
        self._changed()

    def mark_up(self, name: str) -> None:
        """Let ``name`` take calls again."""
        self._engines[name].down = ""
        # Wake whoever waits for an engine; later waiters wait on a fresh event.
        self._up.set()
        self._up = asyncio.Event()
        self._assign()
        self._changed()
