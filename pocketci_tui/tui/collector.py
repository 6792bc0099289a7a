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
appeared later (the Dagger SDK is imported at the first build), they are frozen as well.
Objects frozen while part of a cycle are never freed, so freezing is rare and bounded: only
when the young heap has grown by :data:`REFREEZE_OBJECTS`.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

REFREEZE_OBJECTS = 50_000
"""Objects in the oldest collected generation from which they are frozen too."""

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

    Args:
        refreeze_objects: Young long-lived objects from which :meth:`check` freezes again.
        max_freezes: Freezes after the first at most.
    """

    refreeze_objects: int = REFREEZE_OBJECTS
    max_freezes: int = MAX_FREEZES
    freezes: list[FreezeRecord] = field(default_factory=list)
    """Every freeze so far (for tests and diagnostics)."""

    def freeze(self) -> FreezeRecord:
        """Collect what is garbage now, then freeze every surviving object."""
        started = time.monotonic()
        gc.collect()
        gc.freeze()
        record = FreezeRecord(started, time.monotonic() - started, gc.get_freeze_count())
        self.freezes.append(record)
        return record

    def check(self) -> FreezeRecord | None:
        """Freeze again when many long-lived objects appeared since the last freeze.

        Cheap (counts one generation); call it every few seconds.
        """
        if len(self.freezes) > self.max_freezes:
            return None
        if len(gc.get_objects(generation=2)) < self.refreeze_objects:
            return None
        return self.freeze()
