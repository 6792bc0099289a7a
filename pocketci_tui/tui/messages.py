"""Messages that cross the UI: what the engine did, batched by the bridge, and the commands the
main screen sends up to the app (attributes go down, messages go up)."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from pocketci_tui.config import Settings
from pocketci_tui.contract import (
    CountsChanged,
    LinkChanged,
    ProblemsChanged,
    RejectionSummary,
    StatusDelivery,
)
from pocketci_tui.model import (
    EventMatched,
    EventStored,
    EventUpdated,
    RepoSummary,
    Run,
    StoredEvent,
)


@dataclass
class EngineActivity(Message):
    """What the engine did since the last flush (at most every 50 ms).

    Attributes:
        stored: Newly stored events (and redeliveries), oldest first.
        updated: The latest status change per event id.
        matched: The latest match result per event id.
        runs: The latest state per run id.
        output: New output lines per run id, oldest first, already cleaned for the screen.
        times: Per run id, when each of its new lines arrived (seconds since the epoch; None
            where the engine did not say), one per line of ``output``.
        dropped: Per run id, how many older lines were dropped from this batch to bound memory.
        ends: Per run id, the position right after the batch's last line in the run's output
            (see :attr:`pocketci_tui.model.RunOutput.end`), when the engine said.
        counts: How many runs are queued and running, when that changed.
        problems: What the engine finds wrong, when that changed.
        deliveries: The latest news of each run's commit status, by run id.
    """

    stored: list[EventStored] = field(default_factory=list)
    updated: dict[int, EventUpdated] = field(default_factory=dict)
    matched: dict[int, EventMatched] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    output: dict[str, list[str]] = field(default_factory=dict)
    times: dict[str, list[float | None]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)
    counts: CountsChanged | None = None
    problems: ProblemsChanged | None = None
    deliveries: dict[str, StatusDelivery] = field(default_factory=dict)


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


@dataclass
class OwnerLinkChanged(Message):
    """The link to the process that owns the builds (the UI is attached to it) went down or
    came back; posted after the notices that came before it.

    Attributes:
        link: What the client said.
    """

    link: LinkChanged


@dataclass
class OwnerSettingsChanged(Message):
    """The owner of the builds applied new settings (its config.yaml reloaded); an attached
    UI shows them as a local reload does.

    Attributes:
        settings: What the owner runs with now.
    """

    settings: Settings


# -- commands the main screen sends up: the app carries them out --------------------------------


@dataclass
class OpenFirePicker(Message):
    """Open the fire picker.

    Attributes:
        event_id: The event to start on (the selected one), or None.
    """

    event_id: int | None


@dataclass
class Fire(Message):
    """Dispatch a stored event again (the screen follows its new runs on the way up).

    Attributes:
        event_id: The stored event.
    """

    event_id: int


@dataclass
class Rerun(Message):
    """Run one run's function again.

    Attributes:
        run_id: The run.
    """

    run_id: str


@dataclass
class CancelRun(Message):
    """Cancel one run.

    Attributes:
        run_id: The run.
    """

    run_id: str


@dataclass
class CancelEvent(Message):
    """Cancel every unfinished run of an event.

    Attributes:
        event_id: The event.
    """

    event_id: int


@dataclass
class Approve(Message):
    """Show a fork's waiting pull request and approve its head commit if the user confirms.

    Attributes:
        stored: The waiting event.
    """

    stored: StoredEvent


@dataclass
class OpenLog(Message):
    """Open a run's full log in the pager.

    Attributes:
        log_path: The log file, relative to the logs folder (as the run records it).
    """

    log_path: str


@dataclass
class CopyText(Message):
    """Copy a text to the user's clipboard (OSC 52, so it reaches it over SSH and tmux).

    Attributes:
        text: What to copy.
        what: What it is, for the notification ("the event's page").
        secret: The text is a secret: the notification never shows it.
    """

    text: str
    what: str
    secret: bool = False


@dataclass
class ShowEventDetails(Message):
    """Show an event in full.

    Attributes:
        stored: The event.
        runs: Its runs in creation order, or None when not loaded.
    """

    stored: StoredEvent
    runs: list[Run] | None
    queue: list[str] = field(default_factory=list)
    """The queued runs' ids, first to start first."""


@dataclass
class ShowRepositories(Message):
    """Show how every repository stands.

    Attributes:
        summaries: The repositories, most recently active first.
    """

    summaries: list[RepoSummary]


@dataclass
class RecheckProblems(Message):
    """Look at the secret store and the webhook secret again (a delivery got in, so the
    webhook secret may have been set meanwhile)."""
