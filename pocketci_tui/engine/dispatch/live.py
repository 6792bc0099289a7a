"""The engine's live state: the runs it is executing, their output tails, and its problems.

One object owns it, so the rules live in one place: a run is live from the moment its task is
created until it ends, then its tail is kept among the recently finished ones for a while; a
problem is raised and cleared only through :meth:`LiveState.raise_problem` and
:meth:`LiveState.clear_problems`, whichever part of the engine found it. Whoever shows the run
counts or the problems is told when they may have changed (:meth:`LiveState.watch`), so nobody
has to ask on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pocketci_tui.model import Run, RunState
from pocketci_tui.problems import GIT_MISSING, Problem, Problems
from pocketci_tui.stamps import now_ms

log = logging.getLogger(__name__)

TAIL_LINES = 2000
"""Lines of output kept in memory per run for the UI; the full log is on disk."""

TAIL_BYTES = 1024 * 1024
"""The most memory the tail of one run takes (its lines as Python strings): a line may be up
to :data:`~pocketci_tui.engine.proc.MAX_LINE` long, so a build printing long lines keeps fewer
than :data:`TAIL_LINES` of them (the newest), never more than this."""

RECENT_RUNS = 200
"""Finished runs whose tail stays in memory, so a run selected just after it ends still shows."""

RECENT_BYTES = 8 * 1024 * 1024
"""The most memory the tails of the recently finished runs take together: the oldest finished
are forgotten first (a finished run's output is read from its log file anyway)."""


def held(line: str) -> int:
    """The memory one kept line takes, in bytes (the string object, header included)."""
    return sys.getsizeof(line)


@dataclass(slots=True)
class LiveRun:
    """A run the engine is executing (or about to).

    Attributes:
        run: The run as last published.
        task: The task executing it, once started.
        tail: Its last output lines: at most :data:`TAIL_LINES`, and :data:`TAIL_BYTES`.
        times: When each line of the tail arrived (seconds since the epoch).
        published: Output lines published so far (the position after the last one).
        size: The memory the tail's lines take (see :func:`held`).
    """

    run: Run
    task: asyncio.Task[None] | None = None
    tail: deque[str] = field(default_factory=deque)
    times: deque[float] = field(default_factory=deque)
    published: int = 0
    size: int = 0

    def add_output(self, lines: Sequence[str], times: Sequence[float] = ()) -> int:
        """Keep ``lines`` in the tail, with when they arrived (now, when not given); return the
        position after the last of them. The oldest lines are dropped beyond
        :data:`TAIL_LINES` or :data:`TAIL_BYTES` (the newest line is always kept)."""
        count = len(lines)
        if len(times) != count:
            times = [now_ms() / 1000] * count
        # A batch longer than the tail only leaves its last lines.
        kept = lines[-TAIL_LINES:] if count > TAIL_LINES else lines
        self.tail.extend(kept)
        self.times.extend(times[len(times) - len(kept) :])
        self.size += sum(map(held, kept))
        while len(self.tail) > TAIL_LINES or (self.size > TAIL_BYTES and len(self.tail) > 1):
            self.size -= held(self.tail.popleft())
            self.times.popleft()
        self.published += count
        return self.published


class LiveState:
    """The live runs, the tails of recently finished ones, and the problems found."""

    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}
        self._recent_tails: dict[str, deque[str]] = {}
        self._recent_times: dict[str, deque[float]] = {}
        self._recent_ends: dict[str, int] = {}
        self._recent_sizes: dict[str, int] = {}
        self._recent_size = 0
        self._watchers: list[Callable[[], None]] = []
        self._problems = Problems()
        self._problems.watch(self._changed)

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` whenever the counts or problems may have changed: a run was added
        or ended, a problem raised or cleared (a live run's state changes with a
        :class:`~pocketci_tui.model.RunUpdated` notice instead). It is called in the middle of
        the engine's work, so it should only note or schedule. Returns a function that stops
        the calls."""
        self._watchers.append(callback)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.remove(callback)

        return stop

    def changed(self) -> None:
        """Tell the watchers that something they show may have changed (the engines' loads)."""
        self._changed()

    def _changed(self) -> None:
        for callback in list(self._watchers):
            try:
                callback()
            except Exception:
                log.exception("a watcher of the live state failed")

    # -- runs -----------------------------------------------------------------------------------

    def add(self, run: Run) -> LiveRun:
        """Make ``run`` live (its task is set by whoever executes it)."""
        live = LiveRun(run)
        self._runs[run.id] = live
        self._changed()
        return live

    def get(self, run_id: str) -> LiveRun | None:
        """The live run with this id, or None once it ended (or never was)."""
        return self._runs.get(run_id)

    def ended(self, live: LiveRun) -> None:
        """Forget a run that ended, keeping its tail among the recently finished ones."""
        run_id = live.run.id
        self._runs.pop(run_id, None)
        self._recent_tails[run_id] = live.tail
        self._recent_times[run_id] = live.times
        self._recent_ends[run_id] = live.published
        self._recent_size += live.size - self._recent_sizes.get(run_id, 0)
        self._recent_sizes[run_id] = live.size
        while len(self._recent_tails) > RECENT_RUNS or (
            self._recent_size > RECENT_BYTES and len(self._recent_tails) > 1
        ):
            oldest = next(iter(self._recent_tails))
            self._recent_tails.pop(oldest)
            self._recent_times.pop(oldest, None)
            self._recent_ends.pop(oldest, None)
            self._recent_size -= self._recent_sizes.pop(oldest, 0)
        self._changed()

    def runs(self) -> list[LiveRun]:
        """Every live run."""
        return list(self._runs.values())

    def of_event(self, event_id: int) -> list[LiveRun]:
        """The live runs of one event."""
        return [live for live in self._runs.values() if live.run.event_id == event_id]

    def tail(self, run_id: str) -> list[str]:
        """The last lines of output of a live or recently finished run."""
        live = self._runs.get(run_id)
        if live is not None:
            return list(live.tail)
        return list(self._recent_tails.get(run_id, ()))

    def tail_times(self, run_id: str) -> list[float]:
        """When each line :meth:`tail` returns arrived (seconds since the epoch)."""
        live = self._runs.get(run_id)
        if live is not None:
            return list(live.times)
        return list(self._recent_times.get(run_id, ()))

    def tail_end(self, run_id: str) -> int | None:
        """The position right after the last line :meth:`tail` returns; None when unknown."""
        live = self._runs.get(run_id)
        if live is not None:
            return live.published
        return self._recent_ends.get(run_id)

    def counts(self) -> tuple[int, int]:
        """How many live runs are (queued, running)."""
        queued = sum(1 for live in self._runs.values() if live.run.state is RunState.QUEUED)
        running = sum(1 for live in self._runs.values() if live.run.state is RunState.RUNNING)
        return queued, running

    # -- problems -------------------------------------------------------------------------------

    def raise_problem(self, problem: Problem) -> None:
        """Record ``problem``, replacing an earlier one about the same thing."""
        self._problems.raise_problem(problem)

    def clear_problems(self, *keys: str) -> None:
        """Forget the problems about these things: they work again."""
        self._problems.clear(*keys)

    def problems(self) -> list[Problem]:
        """Every problem recorded, oldest key first."""
        return self._problems.list()

    def check_git(self) -> None:
        """Raise the problem of a missing ``git`` when it is not on PATH."""
        if shutil.which("git") is None:
            self.raise_problem(GIT_MISSING)
