"""Polling: the branches and tags of repositories no webhook reaches, turned into events.

:class:`Poller` lists each polled repository's refs on a timer and stores every change as the
event a webhook would have given (:mod:`pocketci_tui.polling.changes`), through the same store
and engine as a delivery.
"""

from pocketci_tui.polling.changes import RefChange, delivery_id, diff_refs, parse_listing
from pocketci_tui.polling.poller import (
    Poller,
    PollError,
    PollTiming,
    ProblemBoard,
    StoredSink,
    polled_repos,
    problem_key,
)

__all__ = [
    "PollError",
    "PollTiming",
    "Poller",
    "ProblemBoard",
    "RefChange",
    "StoredSink",
    "delivery_id",
    "diff_refs",
    "parse_listing",
    "polled_repos",
    "problem_key",
]
