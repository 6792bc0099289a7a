"""The dispatch queue: what the engine's workers take, one typed request at a time.

Intake, the user's actions (fire, re-run, approve), recovery after a restart and an event held
for an unreachable secret store all ask for the same thing: dispatch this stored event, maybe
only some of its functions, maybe as a re-run of an earlier run. A :class:`DispatchRequest` says
which, so a worker never has to guess what the fields of an anonymous tuple mean.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DispatchRequest:
    """One stored event to dispatch.

    Attributes:
        event_id: The stored event.
        only: The functions to run again (a re-run), or None for every function it matches.
        parent_id: The run a re-run repeats, or None.
        spec: The ``pocketci.yaml`` spec of the functions a re-run repeats (two specs may have
            functions of the same name), or None for every spec.
    """

    event_id: int
    only: frozenset[str] | None = None
    parent_id: str | None = None
    spec: str | None = None


class DispatchQueue:
    """Unbounded FIFO of dispatch requests, shared by the dispatch workers.

    Putting never blocks (intake hands an event over and returns at once); the number of
    events worked on at a time is bounded by the number of workers taking from it.
    """

    def __init__(self) -> None:
        self._requests: asyncio.Queue[DispatchRequest] = asyncio.Queue()

    def put(self, request: DispatchRequest) -> None:
        """Queue ``request`` behind the ones already waiting."""
        self._requests.put_nowait(request)

    async def get(self) -> DispatchRequest:
        """Wait for the oldest request and take it."""
        return await self._requests.get()

    def __len__(self) -> int:
        return self._requests.qsize()
