"""Messages that cross the UI: what the engine did, batched by the bridge."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from pocketci_tui.intake.rejections import RejectionSummary
from pocketci_tui.model import EventMatched, EventStored, EventUpdated, Run


@dataclass
class EngineActivity(Message):
    """What the engine did since the last flush (at most every 50 ms).

    Attributes:
        stored: Newly stored events (and redeliveries), oldest first.
        updated: The latest status change per event id.
        matched: The latest match result per event id.
        runs: The latest state per run id.
        output: New output lines per run id, oldest first, already cleaned for the screen.
        dropped: Per run id, how many older lines were dropped from this batch to bound memory.
        ends: Per run id, the position right after the batch's last line in the run's output
            (see :attr:`pocketci_tui.model.RunOutput.end`), when the engine said.
    """

    stored: list[EventStored] = field(default_factory=list)
    updated: dict[int, EventUpdated] = field(default_factory=dict)
    matched: dict[int, EventMatched] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    output: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)


@dataclass
class ServicesStarted(Message):
    """The services are up (or failed to start, with the reason).

    Attributes:
        url: The listener's URL, or empty when it could not start.
        error: Why starting failed, or empty.
    """

    url: str = ""
    error: str = ""


@dataclass
class RefusalsChanged(Message):
    """The listener refused more requests (at most a few of these a second).

    Attributes:
        summary: How many so far, and the last one.
    """

    summary: RejectionSummary
