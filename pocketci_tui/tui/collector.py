"""Short garbage-collection pauses for the UI process.

Textual draws by making many small objects per frame, some of them in reference cycles (a
strip whose cache refers to itself), so CPython's cyclic collector runs its full, oldest-
generation pass every second or so while output streams. Each such pass walks every tracked
object in the process: after start-up that is some 150,000 objects of imported modules,
classes and the widget tree, which never become garbage, and the pass took 100-400 ms on a
busy machine. A key press arriving meanwhile waited for it.

:class:`QuietCollector` moves the objects that exist once the UI is up into the permanent
generation (``gc.freeze()``), so a full pass only walks what was made since (about 20,000
objects while a build floods the Output pane: 10-20 ms). When many long-lived objects
appeared later (the Dagger SDK is imported and the module's catalog read at the first
build), they are frozen as well. Objects frozen while part of a cycle are never freed, so
freezing is rare and bounded: only when :data:`REFREEZE_OBJECTS` objects survived a full
collection, and at most :data:`MAX_FREEZES` times.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

REFREEZE_OBJECTS = 40_000
"""Objects surviving a full collection (outside the frozen ones) from which they are frozen
too. While a build floods the Output pane some 15,000-25,000 survive."""

MAX_FREEZES = 8
"""Freezes after start-up at most (a bound on what freezing may keep alive)."""


@dataclass
class FreezeRecord:
    """One freeze: when, how long it took and how many objects it moved."""

    at: float
    """Monotonic time."""
    seconds: float
    """Time of the collection and the freeze."""
    frozen: int
    """Objects in the permanent generation afterwards."""


@dataclass
class QuietCollector:
    """Freezes long-lived objects so that full collections stay short.

    After :meth:`watch`, every full collection counts its survivors (the objects it will
    walk again next time); :meth:`check` freezes them when they are many.

    Args:
        refreeze_objects: Survivors of a full collection from which :meth:`check` freezes.
        max_freezes: Freezes after the first at most.
    """

    refreeze_objects: int = REFREEZE_OBJECTS
    max_freezes: int = MAX_FREEZES
    freezes: list[FreezeRecord] = field(default_factory=list)
    """Every freeze so far (for tests and diagnostics)."""
    survivors: int = 0
    """Objects that survived the last full collection, outside the permanent generation."""

    def freeze(self) -> FreezeRecord:
        """Collect what is garbage now, then freeze every surviving object."""
        started = time.monotonic()
        gc.collect()
        gc.freeze()
        self.survivors = 0
        record = FreezeRecord(started, time.monotonic() - started, gc.get_freeze_count())
        self.freezes.append(record)
        return record

    def watch(self) -> None:
        """Count the survivors of every full collection from now on."""
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def unwatch(self) -> None:
        """Stop counting."""
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            # Right after a full collection the oldest generation holds survivors only.
            self.survivors = len(gc.get_objects(generation=2))

    def begin(self) -> Callable[[], None]:
        """Freeze what start-up made and watch from now on; return the look to take every
        second or so (each freeze is logged, as ``froze N objects``)."""
        first = self.freeze()
        self.watch()
        log.info("froze %d objects in %.0f ms", first.frozen, first.seconds * 1000)

        def look() -> None:
            again = self.check()
            if again is not None:
                log.info("froze %d objects in %.0f ms", again.frozen, again.seconds * 1000)

        return look

    def check(self) -> FreezeRecord | None:
        """Freeze again when many objects survived the last full collection.

        Cheap (reads a number); call it every second or so, on the event loop.
        """
        if len(self.freezes) > self.max_freezes or self.survivors < self.refreeze_objects:
            return None
        return self.freeze()
