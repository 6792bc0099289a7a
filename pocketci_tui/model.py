"""Plain data shared by every layer: events, runs, Dagger functions and match decisions.

Nothing here does I/O. Every class is a frozen dataclass or an enum, so values can cross
threads and tasks freely.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, get_args

ZERO_SHA = "0" * 40

Vendor = Literal["github", "gitea", "forgejo", "gitlab"]
"""A forge pocketci-tui speaks, as a type, so a configuration holds only names it knows."""

VENDORS: tuple[Vendor, ...] = get_args(Vendor)
"""Every forge pocketci-tui speaks, by the name used in ``config.yaml``, the route and events."""


def webhook_path(vendor: str) -> str:
    """The path a forge posts its deliveries to (``/webhooks/github``).

    The route, not the headers, decides which forge a delivery comes from, so every place that
    shows or sends to a webhook URL derives it from here.

    Args:
        vendor: A forge name from :data:`VENDORS`.

    Returns:
        ``/webhooks/`` followed by the forge name.
    """
    return f"/webhooks/{vendor}"


def change_request_noun(vendor: str) -> str:
    """What the forge calls a proposed change: GitLab's ``merge request``, the others'
    ``pull request``, so that messages about one read in the words its forge shows."""
    return "merge request" if vendor == "gitlab" else "pull request"


def change_request_ref(vendor: str, number: int | None) -> str:
    """How the forge writes a change request's number (GitLab ``!7``, the others ``#7``)."""
    if number is None:
        return ""
    return f"{'!' if vendor == 'gitlab' else '#'}{number}"


MAX_DETAIL = 2000
"""The longest event detail or run reason kept (stored, published, shown)."""


def bounded(text: str, limit: int = MAX_DETAIL) -> str:
    """Cut ``text`` to at most ``limit`` characters, with a marker saying how much was cut.

    Args:
        text: Any text, for example an error message that quotes what a repository holds.
        limit: The most characters to keep, the marker included.

    Returns:
        ``text`` itself when short enough, else its start and ``… [N more characters]``.
    """
    if len(text) <= limit:
        return text
    marker = f"… [{len(text) - limit} more characters]"
    return text[: max(0, limit - len(marker))] + marker


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class EventStatus(StrEnum):
    """Where a stored event stands in its life."""

    RECEIVED = "received"
    """Stored, not yet looked at by the dispatcher."""
    IGNORED = "ignored"
    """Stored but never to be run (ping, unknown repository, branch deletion...)."""
    DISPATCHING = "dispatching"
    """Cloning, reading the spec, introspecting or matching."""
    WAITING = "waiting"
    """A pull request from a fork waiting for approval."""
    DISPATCHED = "dispatched"
    """Its runs were created; their states tell the rest."""
    SKIPPED = "skipped"
    """Looked at, nothing matched (the detail says why)."""
    ERROR = "error"
    """Could not be dispatched (clone failed, bad pocketci.yaml...); the detail says why."""


class RunState(StrEnum):
    """The state of one ``dagger call``."""

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        """True for the states a run never leaves."""
        return self not in (RunState.QUEUED, RunState.RUNNING)


@dataclass(frozen=True, slots=True)
class Event:
    """A verified delivery from a forge, normalized (SPEC 4.5).

    Attributes:
        vendor: The forge, lower case (``github``).
        event_type: ``push``, ``pull_request``, ``tag``, ``release`` or the forge's own name.
        filter: Branch for pushes, tag name for tags, the action for the rest (may be empty).
        repository: ``owner/name`` as the forge reports it.
        ref: The full ref (``refs/heads/main``), empty when the event has none.
        sha: The commit to build (head sha for pull requests), empty when none.
        base_ref: The pull request's base branch; empty for pushes.
        base_sha: The pull request's base sha, or a push's ``before`` sha.
        pr_number: The pull request number, or None.
        is_fork: True when the pull request's head lives in another repository.
        delivery_id: The forge's delivery id (``X-GitHub-Delivery``).
        received_at: When the delivery arrived.
        body: The raw payload bytes exactly as signed.
        deleted: True for a branch or tag deletion (never run).
        title: A human label (pull request title or head commit message), untrusted text.
        author: Who sent it (the forge's user name of the pusher or the pull request's
            actor), one line, bounded; empty when the payload names nobody.
        commits: How many commits a push carries, or None when not a push or not told.
        url: The event's page on the forge (compare view, pull request, release...), a plain
            ``http(s)`` address, or empty.
        hook_id: The forge's hook id, if it sent one.
        event_name: The forge's own event header (``push``, ``pull_request``, ``ping``...).
        id: The store's row id once stored, else None.
    """

    vendor: str
    event_type: str
    filter: str
    repository: str
    ref: str
    sha: str
    base_ref: str
    base_sha: str
    pr_number: int | None
    is_fork: bool
    delivery_id: str
    received_at: datetime
    body: bytes = field(repr=False)
    deleted: bool = False
    title: str = ""
    hook_id: str = ""
    event_name: str = ""
    id: int | None = None
    author: str = ""
    commits: int | None = None
    url: str = ""

    def payload(self) -> Any:
        """Decode and return the raw payload (it was validated as JSON at intake)."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the store holds it, with its processing status."""

    event: Event
    status: EventStatus
    detail: str = ""
    redeliveries: int = 0
    approved_sha: str = ""


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument of a Dagger function, as introspection reports it.

    Attributes:
        name: lowerCamelCase name (``onChanges``).
        type_name: ``String``, ``Int``, ``Boolean``, ``Directory``, ``File``, ``Secret``,
            ``[String]`` ... (object names for objects, ``[T]`` for lists).
        optional: The type is nullable.
        default_json: The default value JSON-encoded as the engine returns it, or None when the
            argument has no default (the engine answers null or "").
    """

    name: str
    type_name: str
    optional: bool = False
    default_json: str | None = None

    @property
    def has_default(self) -> bool:
        """True when the argument declares a default value."""
        return self.default_json not in (None, "")

    @property
    def default(self) -> Any:
        """The decoded default value, or None."""
        if not self.has_default:
            return None
        assert self.default_json is not None
        return json.loads(self.default_json)

    @property
    def required(self) -> bool:
        """True when a caller must supply it (not optional and no default)."""
        return not self.optional and not self.has_default


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A function of the module's main object."""

    name: str
    args: tuple[ArgSpec, ...] = ()
    description: str = ""

    def arg(self, name: str) -> ArgSpec | None:
        """Return the argument called ``name``, or None."""
        for a in self.args:
            if a.name == name:
                return a
        return None


@dataclass(frozen=True, slots=True)
class ModuleCatalog:
    """What a Dagger module offers: its name and its main object's functions."""

    module_name: str
    functions: tuple[FunctionSpec, ...]


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A matched function, ready to run.

    Attributes:
        function: lowerCamelCase function name.
        args: Plain string arguments by lowerCamelCase name (filter, event, vendor, onChanges).
        secrets: lowerCamelCase names of the secret arguments it declares that the spec feeds.
    """

    function: str
    args: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Why one function will or will not run for an event."""

    function: str
    tier: int | None
    matched: bool
    reason: str
    call: FunctionCall | None = None


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The outcome of matching a catalog against an event.

    Attributes:
        tier: The winning tier (1-4) or None when nothing matched.
        decisions: One decision for every function that was considered, in catalog order.
    """

    tier: int | None
    decisions: tuple[Decision, ...]

    @property
    def calls(self) -> tuple[FunctionCall, ...]:
        """The calls to make, in decision order."""
        return tuple(d.call for d in self.decisions if d.matched and d.call is not None)


@dataclass(frozen=True, slots=True)
class MatchInputs:
    """What an event was matched against, besides itself: enough to match it again.

    Attributes:
        module_key: The module's content key (the catalog cache's key for it).
        secret_names: The secret argument names the repository's spec fed (none for a fork
            run without secrets).
        changes: The changed files, or None when they could not be told.
    """

    module_key: str
    secret_names: tuple[str, ...] = ()
    changes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """One ``dagger call`` of one function for one event.

    Attributes:
        id: A unique id (hex).
        event_id: The stored event it belongs to.
        function: lowerCamelCase function name (empty for a skipped-event placeholder).
        state: Where it stands.
        attempt: 1 for the first run; re-runs count up.
        args: The call's plain arguments and the names (never values) of its secrets.
        reason: Why it is skipped or failed, or the last lines of output on failure.
        exit_code: The process's exit code once finished, else None.
        created_at: When it was queued.
        started_at: When its process was spawned.
        finished_at: When it finished.
        log_path: Its log file, relative to the data dir's ``logs`` folder.
        parent_id: The run it re-runs, if any.
        engine: The name of the Dagger engine it ran on (empty until it got one).
        spec: The name of the ``pocketci.yaml`` spec its function belongs to (empty when the
            file holds a single spec).
    """

    id: str
    event_id: int
    function: str
    state: RunState
    attempt: int = 1
    args: tuple[tuple[str, str], ...] = ()
    reason: str = ""
    exit_code: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    log_path: str = ""
    parent_id: str | None = None
    engine: str = ""
    spec: str = ""


def latest_attempts(runs: Iterable[Run]) -> list[Run]:
    """Return the newest attempt of each function, in the order functions first appear.

    A re-run or a re-fire adds runs with a higher attempt number; the older attempts stay in
    the history but no longer say how the function stands. Of two runs with the same attempt
    (two dispatches that raced), the one created later wins.

    Args:
        runs: An event's runs, in creation order.

    Returns:
        One run per function (of each spec, when ``pocketci.yaml`` lists several).
    """
    latest: dict[tuple[str, str], Run] = {}
    for run in runs:
        key = (run.spec, run.function)
        current = latest.get(key)
        if current is None or run.attempt >= current.attempt:
            latest[key] = run
    return list(latest.values())


OUTCOME_ORDER: tuple[RunState, ...] = (
    RunState.RUNNING,
    RunState.QUEUED,
    RunState.FAILED,
    RunState.INTERRUPTED,
    RunState.CANCELLED,
    RunState.PASSED,
)
"""Run states from the one that decides an event's outcome first to the one that decides it
last: one running function makes the event running, else one failed makes it failed..."""

NOTHING_RAN = "nothing ran"
"""The outcome of a dispatched event none of whose functions ran."""


def event_outcome(status: EventStatus, runs: Iterable[Run] | None) -> str:
    """Say how an event stands: its own status, or the outcome of its functions once dispatched.

    The outcome is that of the latest attempt of each function (:func:`latest_attempts`), so a
    function that failed and then passed on a re-run counts as passed. Functions that were
    skipped in their latest attempt do not count.

    Args:
        status: The stored event's status.
        runs: Its runs, in creation order (None when they are not known).

    Returns:
        A run state (``running``, ``queued``, ``failed``, ``interrupted``, ``cancelled``,
        ``passed``), :data:`NOTHING_RAN`, or the event's status when it was not dispatched
        (``received``, ``waiting``, ``error``...) or its runs are not known.
    """
    if status is not EventStatus.DISPATCHED or runs is None:
        return str(status)
    states = {run.state for run in latest_attempts(runs) if run.state is not RunState.SKIPPED}
    for state in OUTCOME_ORDER:
        if state in states:
            return str(state)
    return NOTHING_RAN


FINAL_OUTCOMES: tuple[str, ...] = ("passed", "failed", "cancelled", "interrupted")
"""The outcomes of an event whose functions all ran to an end."""


@dataclass(frozen=True, slots=True)
class RepoSummary:
    """How a repository stands: its newest event, and the last build that ended.

    Attributes:
        repository: ``owner/name``.
        vendor: The forge of its newest event.
        latest: Its newest event.
        latest_state: How that event stands (:func:`event_outcome`).
        outcome: The outcome of its newest event whose functions all ended
            (:data:`FINAL_OUTCOMES`), or empty when none did.
        outcome_at: When that build ended (its last run's end), or None.
        outcome_event_id: That event, or None.
    """

    repository: str
    vendor: str
    latest: StoredEvent
    latest_state: str
    outcome: str = ""
    outcome_at: datetime | None = None
    outcome_event_id: int | None = None


# -- What the engine publishes to its subscribers (the UI, the headless logger) ---------------


@dataclass(frozen=True, slots=True)
class EventStored:
    """A delivery was stored (or recorded again as a redelivery)."""

    stored: StoredEvent
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class EventUpdated:
    """A stored event changed status."""

    event_id: int
    status: EventStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EventMatched:
    """Matching finished for an event: every function considered, with its reason."""

    event_id: int
    result: MatchResult


@dataclass(frozen=True, slots=True)
class RunUpdated:
    """A run was created or changed state."""

    run: Run


@dataclass(frozen=True, slots=True)
class RunOutput:
    """A batch of masked, ANSI-free output lines of a running run.

    Attributes:
        run_id: The run.
        lines: The new lines, oldest first.
        end: How many lines the run had published once this batch is counted (the batch is
            lines ``end - len(lines)`` to ``end - 1``), so that a view that started from the
            engine's tail can tell which lines it already shows; None when unknown.
        times: When each line arrived, in seconds since the epoch (whole milliseconds, as the
            log file stamps them: see :mod:`pocketci_tui.stamps`), one per line; empty when
            unknown.
    """

    run_id: str
    lines: tuple[str, ...]
    end: int | None = None
    times: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class EventSettled:
    """Every run of an event has finished: how the event turned out.

    Attributes:
        event_id: The event.
        outcome: :func:`event_outcome` of its runs (``passed``, ``failed``, ``cancelled``,
            ``interrupted`` or :data:`NOTHING_RAN`).
        runs: The latest attempt of each function that ran (skipped ones left out).
    """

    event_id: int
    outcome: str
    runs: tuple[Run, ...] = ()


Notice = EventStored | EventUpdated | EventMatched | RunUpdated | RunOutput | EventSettled
"""Everything the engine publishes."""


@dataclass(frozen=True, slots=True)
class CallProcess:
    """The process group of a running ``dagger call``, as recorded when it started.

    A pid alone could be reused by an unrelated process after a crash; the start time (in
    clock ticks since boot, ``/proc/<pid>/stat`` field 22) and the boot id pin it to the one
    process that was started.

    Attributes:
        run_id: The run it executes.
        pgid: Its process group id (the call is a session leader: its pid).
        start_ticks: When the group's leader started, in clock ticks since boot.
        boot_id: The kernel's boot id at the time (``/proc/sys/kernel/random/boot_id``).
    """

    run_id: str
    pgid: int
    start_ticks: int
    boot_id: str
