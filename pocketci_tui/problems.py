"""Problems the user should know about: typed, one per key, raised and cleared by the part that
knows.

The engine keeps the problems it finds (no ``dagger`` CLI, no ``git``, a secret store that does
not answer, a missing Dagger Cloud token) and clears each one itself when the thing it is about
works again; the UI keeps those of starting up (port in use, webhook secret not set, plaintext
secret store). The status bar shows the short text of each; the Output pane the detail and fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong, or worth a warning, that the user should know about.

    Attributes:
        key: What it is about (``dagger``, ``git``, ``secret-store``, ``cloud-token``...): at
            most one problem per key at a time, and only the part that raised it clears it.
        short: A few words for the status bar (``dagger not found``).
        detail: The full sentence, for the Output pane and logs.
        fix: What to do about it, or empty.
        warning: True for a warning (nothing is broken, but the user should know), False for an
            error.
    """

    key: str
    short: str
    detail: str
    fix: str = ""
    warning: bool = False


class Problems:
    """The problems one part currently has, by key.

    Args:
        problems: Problems to start with.
    """

    def __init__(self, problems: Iterable[Problem] = ()) -> None:
        self._by_key: dict[str, Problem] = {p.key: p for p in problems}
        self._watchers: list[Callable[[], None]] = []

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after each change (a problem raised or changed, one cleared), so
        whoever shows them is told instead of asking on a timer; return a function that stops
        the calls. It is called in the middle of the owner's work: it should only note or
        schedule."""
        self._watchers.append(callback)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._watchers.remove(callback)

        return stop

    def _changed(self) -> None:
        for callback in list(self._watchers):
            callback()

    def raise_problem(self, problem: Problem) -> None:
        """Record ``problem``, replacing any earlier one with the same key."""
        changed = self._by_key.get(problem.key) != problem
        self._by_key[problem.key] = problem
        if changed:
            self._changed()

    def clear(self, *keys: str) -> bool:
        """Forget the problems with these keys; return True when one was recorded."""
        found = False
        for key in keys:
            found = self._by_key.pop(key, None) is not None or found
        if found:
            self._changed()
        return found

    def get(self, key: str) -> Problem | None:
        """The problem recorded for ``key``, or None."""
        return self._by_key.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[Problem]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)

    def list(self) -> list[Problem]:
        """Every problem recorded, oldest key first."""
        return list(self._by_key.values())


def merge(*groups: Iterable[Problem]) -> tuple[Problem, ...]:
    """Problems of several parts, once per key (the first part's wins), errors first."""
    seen: dict[str, Problem] = {}
    for group in groups:
        for problem in group:
            seen.setdefault(problem.key, problem)
    ordered = sorted(seen.values(), key=lambda p: p.warning)
    return tuple(ordered)


GIT_MISSING = Problem(
    key="git",
    short="git not found",
    detail="git is not on PATH: no repository can be checked out, so no event can be built",
    fix="install git (apt install git) and make sure it is on the PATH pocketci-tui runs with",
)
"""No ``git`` executable: raised by the engine at start and when a checkout cannot start git."""
