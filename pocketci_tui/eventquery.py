"""The events filter: free text beside ``state:``, ``event:`` and ``repo:`` terms.

``state:failed event:tag repo:acme/* login`` keeps the events whose state is failed, whose
kind is a tag push, whose repository matches ``acme/*``, and whose repository, branch, event,
sha, title or author contains ``login``. A term may list several values (``state:running,queued``:
either). The store turns a query into SQL (``store/query.py``) and the UI applies the same
query to events that arrive live, so both agree.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from pocketci_tui.model import NOTHING_RAN, OUTCOME_ORDER, Event, EventStatus

STATES: tuple[str, ...] = (
    *(str(state) for state in OUTCOME_ORDER),
    *(str(s) for s in EventStatus if s is not EventStatus.DISPATCHED),
    NOTHING_RAN,
)
"""Every state an event is shown with, so every value ``state:`` accepts."""

_STATE_ALIASES = {
    "nothing-ran": NOTHING_RAN,
    "nothing_ran": NOTHING_RAN,
    "fail": "failed",
    "pass": "passed",
    "approval": "waiting",
    "canceled": "cancelled",
}
"""Other spellings a user may type; ``state:nothing-ran`` cannot hold a space."""

_KIND_ALIASES = {
    "pr": ("pull_request", "merge_request"),
    "mr": ("merge_request", "pull_request"),
}
"""Short names for the request events, across forges."""

KEYS = ("state", "event", "repo")
"""The terms the filter understands."""
MAX_TERMS = 20
"""Values kept per term: a filter is typed, and every value costs a clause."""


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A parsed events filter.

    Attributes:
        text: The free text, words joined by one space, matched as one substring (any case).
        states: Accepted states (empty: any), from :data:`STATES`.
        kinds: Accepted event kinds (``push``, ``tag``, ``pull_request``...), lower case.
        repos: Accepted repository patterns (``*`` and ``?`` wildcards), lower case.
        problems: What was not understood (``unknown state 'faild'``), to show the user.
    """

    text: str = ""
    states: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the query keeps every event."""
        return not (self.text or self.states or self.kinds or self.repos or self.problems)

    def matches(self, event: Event, state: str) -> bool:
        """Tell whether an event passes the query.

        Args:
            event: The event.
            state: How it stands (:func:`pocketci_tui.model.event_outcome`).

        Returns:
            True when every term accepts it.
        """
        if self.problems:
            return False  # as the store does: an unknown state keeps nothing
        if self.states and state not in self.states:
            return False
        if self.kinds and event.event_type.lower() not in self.kinds:
            return False
        repository = event.repository.lower()
        if self.repos and not any(repo_matches(p, repository) for p in self.repos):
            return False
        if self.text:
            fields = (event.repository, event.event_type, event.filter, event.ref, event.sha)
            haystack = " ".join((*fields, event.title, event.author)).lower()
            return self.text.lower() in haystack
        return True


def glob_pattern(pattern: str) -> str:
    """A repository pattern with only ``*`` and ``?`` as wildcards (``[`` is literal), in the
    form both :func:`fnmatch.fnmatchcase` and SQLite's ``GLOB`` read the same way."""
    return pattern.replace("[", "[[]")


def repo_matches(pattern: str, repository: str) -> bool:
    """Tell whether a lower-case repository matches a lower-case ``repo:`` pattern."""
    return fnmatch.fnmatchcase(repository, glob_pattern(pattern))


def _values(raw: str) -> list[str]:
    return [v for v in (part.strip().lower() for part in raw.split(",")) if v][:MAX_TERMS]


def parse(text: str) -> EventQuery:
    """Read a filter as typed.

    Args:
        text: What the user typed (``state:failed repo:acme/* login``).

    Returns:
        The query; a term with an unknown key (``foo:bar``) is free text, an unknown state is
        a problem.
    """
    words: list[str] = []
    states: list[str] = []
    kinds: list[str] = []
    repos: list[str] = []
    problems: list[str] = []
    for word in text.split():
        key, sep, raw = word.partition(":")
        key = key.lower()
        if not sep or key not in KEYS:
            words.append(word)
            continue
        for value in _values(raw):
            if key == "state":
                state = _STATE_ALIASES.get(value, value)
                if state in STATES:
                    states.append(state)
                else:
                    problems.append(f"unknown state {value!r}")
            elif key == "event":
                kinds.extend(_KIND_ALIASES.get(value, (value,)))
            else:
                repos.append(value)
    return EventQuery(
        text=" ".join(words),
        states=tuple(dict.fromkeys(states)),
        kinds=tuple(dict.fromkeys(kinds)),
        repos=tuple(dict.fromkeys(repos)),
        problems=tuple(problems),
    )
