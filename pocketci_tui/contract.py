"""The one contract between the terminal UI and the core: notices in, async actions out.

The UI (:mod:`pocketci_tui.tui`) uses the running instance only through :class:`CoreClient`,
and imports from the core only this module and the plain data of :mod:`pocketci_tui.model`.
:class:`pocketci_tui.services.Services` implements it in process (the store, secret store,
engine and listener of this process); the UI's test fakes implement it too, checked by mypy, so
neither can offer the UI something the other lacks.

It is shaped so that a second implementation can live across a socket (a UI attached to a
running ``serve``):

- What changes reaches the UI as notices, pushed by the core: the engine's
  :data:`~pocketci_tui.model.Notice` values, plus :class:`CountsChanged` and
  :class:`ProblemsChanged`, whose current values are delivered to each new subscriber at once,
  and :class:`~pocketci_tui.intake.rejections.RejectionSummary` for refused requests. Nothing the
  UI shows is pulled on a timer.
- Every read and action is a coroutine with plain, frozen values in and out, so it can be one
  request and one reply on a connection.
- A run's output is read as an :class:`OutputTail` that says where it ends, and live output
  notices say where each batch ends (:attr:`pocketci_tui.model.RunOutput.end`): the UI joins
  them by position, so a stream continued from a tail neither repeats nor loses a line, however
  long the reply took.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pocketci_tui.engine.dispatch import ForkApproval, HeadSecrets, fork_approval
from pocketci_tui.intake.rejections import Rejection, RejectionSummary
from pocketci_tui.model import Notice

if TYPE_CHECKING:
    from pocketci_tui.config import Settings
    from pocketci_tui.model import MatchResult, RepoSummary, Run, StoredEvent
    from pocketci_tui.problems import Problem
    from pocketci_tui.secrets import SecretStore

__all__ = [
    "ClientNotice",
    "CoreClient",
    "CountsChanged",
    "EngineLoadInfo",
    "ForkApproval",
    "HeadSecrets",
    "LinkChanged",
    "NotStarted",
    "OutputTail",
    "ProblemsChanged",
    "Rejection",
    "RejectionSummary",
    "SecretChanged",
    "StatusDelivery",
    "fork_approval",
]


class NotStarted(Exception):
    """The core is not running (not started yet, failed to start, or stopped)."""


class EngineLoadInfo(NamedTuple):
    """One engine of the pool as the status bar shows it."""

    name: str
    busy: int
    capacity: int
    up: bool


@dataclass(frozen=True, slots=True)
class CountsChanged:
    """How many runs are queued and running, and each engine's load, published whenever one
    of them changes.

    Attributes:
        queued: Runs waiting for a slot.
        running: Runs running.
        engines: Each engine of ``dagger.engines`` with its load, in configuration order;
            empty when no pool is configured (the counts then say it all).
    """

    queued: int
    running: int
    engines: tuple[EngineLoadInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class ProblemsChanged:
    """What the engine currently finds wrong (dagger or git missing...), published whenever
    the list changes (an empty tuple: nothing is wrong any more)."""

    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class StatusDelivery:
    """Whether a run's latest commit status reached the forge, published whenever that changes
    (claimed for sending, sent, refused, put back to retry).

    Attributes:
        run_id: The run.
        event_id: Its event.
        delivery: ``queued`` (not tried yet, or waiting for a retry), ``sending``, ``sent``,
            ``superseded`` (a newer status of the same context went instead) or ``failed``.
        detail: Why it failed, or how the last try went (``retrying in 2.0s: 502...``).
    """

    run_id: str
    event_id: int
    delivery: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """An attached client's link to the owner of the data folder went down or came back.

    Never published by the in-process core (it has no link); a client across a socket
    publishes it so the UI can say so, and re-read what it shows when told to.

    Attributes:
        up: True when the link works (again).
        owner: Who owns the data folder (``pocketci-tui serve (pid 123)``).
        detail: Why it went down, or when the next try is (``reconnecting in 4s``).
        resync: Up again, and what the UI shows must be read again (notices were missed).
    """

    up: bool
    owner: str
    detail: str = ""
    resync: bool = False


@dataclass(frozen=True, slots=True)
class SecretChanged:
    """An entry of the owner's secret store was set or deleted (the name only, never a value),
    so that every attached client's view of the store follows a change made by another."""

    name: str


@dataclass(frozen=True, slots=True)
class SettingsChanged:
    """The owner of the data folder applied new settings (its config.yaml reloaded, by its
    own watcher, a signal or a client's request), so that every attached client shows what
    the owner now runs with (keymap, forges...)."""

    settings: Settings


ClientNotice = (
    Notice
    | CountsChanged
    | ProblemsChanged
    | StatusDelivery
    | LinkChanged
    | SecretChanged
    | SettingsChanged
)
"""Everything the core pushes to a subscriber."""


@dataclass(frozen=True, slots=True)
class OutputTail:
    """The last lines of a run's output and where they end.

    Attributes:
        lines: The last lines, oldest first (raw: the UI cleans them for the screen).
        end: The position right after the last of ``lines`` in the run's whole output (how
            many lines came before, plus ``len(lines)``), or None when unknown. Live
            :class:`~pocketci_tui.model.RunOutput` notices carry the same kind of position, so
            the UI continues from here without a gap or a repeat.
        times: When each line arrived, in seconds since the epoch, one per line (None for a
            line of a log written before lines were stamped); empty when unknown.
    """

    lines: tuple[str, ...]
    end: int | None
    times: tuple[float | None, ...] = ()


class CoreClient(Protocol):
    """The running instance as the UI uses it: notices in, async actions out.

    Before :meth:`start` succeeded (and after :meth:`stop`), the reads and actions raise
    :class:`NotStarted`; :attr:`started` says which.
    """

    # -- the connection ----------------------------------------------------------------------

    async def start(self) -> str:
        """Start (or attach to) the instance; return the listener's base URL.

        Raises:
            Exception: It could not start; the chain says why (see ``tui.start_errors``).
        """
        ...

    async def stop(self) -> None:
        """Stop what :meth:`start` started (idempotent)."""
        ...

    @property
    def started(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        ...

    url: str
    """The listener's base URL, empty when not started."""

    settings: Settings
    """The configuration the instance runs with (address overrides included)."""

    secrets: SecretStore | None
    """The secret store (every method a coroutine), None when it is not open."""

    owner: str | None
    """Who owns the data folder when it is another process (``pocketci-tui serve (pid
    123)``), for the status bar and for quitting without stopping anything; None when this
    process owns it (the core runs in process)."""

    # -- notices -----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[ClientNotice], None]) -> Callable[[], None]:
        """Call ``callback`` with every notice from now on; return a function that stops it.

        The current :class:`CountsChanged` and :class:`ProblemsChanged` are delivered to the
        new subscriber at once, so it never needs to ask for them.

        Raises:
            NotStarted: Not started.
        """
        ...

    def subscribe_refusals(
        self, callback: Callable[[RejectionSummary], None]
    ) -> Callable[[], None]:
        """Call ``callback`` when the listener refused more requests (a few times a second at
        most); return a function that stops it."""
        ...

    # -- reads -------------------------------------------------------------------------------

    async def events_page(
        self, *, limit: int, before_id: int | None = None, text: str = ""
    ) -> list[StoredEvent]:
        """A page of stored events, newest first: older than ``before_id`` if given, and
        passing the events filter ``text`` if given (free text beside ``state:``, ``event:``
        and ``repo:`` terms, :mod:`pocketci_tui.eventquery`)."""
        ...

    async def event(self, event_id: int) -> StoredEvent | None:
        """One stored event with its payload, or None when it is gone."""
        ...

    async def runs(self, event_id: int) -> list[Run]:
        """Every run of an event, every attempt."""
        ...

    async def queue_order(self) -> list[str]:
        """The ids of the queued runs, first to start first (runs wait for a slot in the
        order they were queued)."""
        ...

    async def repositories(self) -> list[RepoSummary]:
        """How each repository stands: its newest event and the last build that ended, and
        when; the most recently active first."""
        ...

    async def status_deliveries(self, run_ids: Sequence[str]) -> dict[str, StatusDelivery]:
        """Whether each run's latest commit status reached the forge, by run id (runs that
        report none are absent); :class:`StatusDelivery` notices tell the changes after."""
        ...

    async def counts(self) -> CountsChanged:
        """How many runs are queued and running right now.

        For a decision that must not rest on a notice still on its way (quitting while builds
        run); what is shown follows the :class:`CountsChanged` notices instead.
        """
        ...

    async def output_tail(self, run: Run, lines: int) -> OutputTail:
        """The last ``lines`` lines of a run's output and where they end: from its log file
        once it finished, else from the engine's live tail."""
        ...

    async def preview(self, event_id: int) -> MatchResult | None:
        """What firing the stored event again would match, without running anything (None
        when the catalog is not known)."""
        ...

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """The secrets a waiting fork pull request's head commit would get, and those
        refused."""
        ...

    async def refusals(self) -> tuple[list[Rejection], int]:
        """The requests the listener refused lately (newest first) and how many in all."""
        ...

    async def webhook_secret_problem(self) -> str:
        """Why deliveries cannot be verified now (the webhook secret is missing...), or
        ``""``."""
        ...

    # -- actions -----------------------------------------------------------------------------

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again."""
        ...

    async def rerun(self, run_id: str) -> None:
        """Run one function of an event again, as a new run linked to ``run_id``."""
        ...

    async def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; False when it was not active."""
        ...

    async def cancel_event(self, event_id: int) -> int:
        """Cancel every active run of an event; return how many."""
        ...

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Approve a waiting fork pull request at its head commit (``sha``, if given, must
        still be it)."""
        ...

    def apply_settings(self, settings: Settings) -> None:
        """Use a reloaded configuration for each new event from now on (what the parts were
        built with, such as the address, is not changed).

        A one-way message: nothing is answered, so it needs no round trip over a connection.
        """
        ...
