"""The commit status outbox: what to tell the forge about each run, written with the run.

Every change of a run's state that the forge should hear of adds a row to ``status_outbox`` in
the same transaction that stores the change (:meth:`Store.add_runs`, :meth:`Store.update_run`,
:meth:`Store.mark_interrupted`, :meth:`Store.set_event_status`), so a status is never lost
between the run being stored and the status being queued, whatever stops the process. The
sender (:mod:`pocketci_tui.statuses`) then delivers the rows and marks each one.

States here are the forge-neutral ``pending``, ``running``, ``success``, ``failure``,
``error`` and ``canceled``; each forge's API maps them to its own (GitHub and Gitea have no
``running`` or ``canceled``).

A row's ``status`` is its delivery: ``queued`` (not tried yet, or being retried),
``sending`` (handed to the forge, answer not stored yet), ``sent``, ``superseded`` (a newer
state of the same context was queued before it went out, so only that one is sent) or
``failed`` (the forge refused it for good; ``detail`` says why).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Protocol

from pocketci_tui.model import Run, RunState, utcnow
from pocketci_tui.store.rows import _ts

MAX_DESCRIPTION = 140
"""The longest description a forge is sent (GitHub's limit, the tightest)."""

APPROVAL_FUNCTION = "approval"
"""The ``{function}`` of the status a fork pull request waiting for approval gets."""

WAITING_FOR_APPROVAL = "waiting for approval"
"""What the detail of an event waiting for a person's approval says (and one held for the
secret store does not)."""

DELIVERY_STATES = ("queued", "sending", "sent", "superseded", "failed")
"""Where one outbox row stands in its delivery."""


class StatusRouter(Protocol):
    """Which context a run's status goes to, or that its repository reports nothing."""

    def context(
        self, vendor: str, repository: str, event_type: str, function: str, spec: str = ""
    ) -> str | None:
        """Return the status context for a function's runs, or None for no status at all.

        Args:
            vendor: The event's forge.
            repository: ``owner/name``.
            event_type: The event's type (``push``...).
            function: The function (or :data:`APPROVAL_FUNCTION`).
            spec: The ``pocketci.yaml`` spec of the function (empty for a single spec).
        """
        ...


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One status to deliver (or delivered).

    Attributes:
        id: Its row id: the order statuses of one context are delivered in.
        event_id: The event it reports on.
        run_id: The run, or None for the approval status.
        vendor: The forge.
        repository: ``owner/name``.
        sha: The commit.
        context: The status context.
        state: The forge-neutral state.
        description: At most :data:`MAX_DESCRIPTION` characters.
        status: Its delivery (one of :data:`DELIVERY_STATES`).
        attempts: How many times it was handed to the forge.
        detail: Why it failed, or how the last try went.
    """

    id: int
    event_id: int
    run_id: str | None
    vendor: str
    repository: str
    sha: str
    context: str
    state: str
    description: str
    status: str = "queued"
    attempts: int = 0
    detail: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What orders and coalesces statuses: one forge's commit's context."""
        return (self.vendor, self.repository, self.sha, self.context)


_OUTBOX_COLUMNS = (
    "id, event_id, run_id, vendor, repository, sha, context, state, description, status, "
    "attempts, detail"
)


def _row(row: sqlite3.Row) -> OutboxRow:
    return OutboxRow(*(row[i] for i in range(12)))


def short_duration(seconds: float) -> str:
    """Say a duration the way a status does: ``4s``, ``1m 12s``, ``2h 5m``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _fit(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def run_status(run: Run) -> tuple[str, str] | None:
    """The state and description a run's state is reported with, or None for none.

    Args:
        run: The run as just stored.

    Returns:
        The forge-neutral state and a description of at most :data:`MAX_DESCRIPTION`
        characters; None for a skipped run.
    """
    took = ""
    if run.started_at is not None and run.finished_at is not None:
        took = short_duration((run.finished_at - run.started_at).total_seconds())
    match run.state:
        case RunState.QUEUED:
            return "pending", "queued"
        case RunState.RUNNING:
            return "running", "running"
        case RunState.PASSED:
            return "success", _fit(f"passed in {took}" if took else "passed")
        case RunState.FAILED:
            reason = _first_line(run.reason)
            if reason.startswith("timed out"):
                return "failure", _fit(reason.split(":", 1)[0])
            if run.exit_code is not None:
                return "failure", _fit(f"failed: exit {run.exit_code}")
            return "failure", _fit(f"failed: {reason}" if reason else "failed")
        case RunState.CANCELLED:
            return "canceled", _fit(f"cancelled after {took}" if took else "cancelled")
        case RunState.INTERRUPTED:
            reason = _first_line(run.reason)
            return "error", _fit(f"interrupted: {reason}" if reason else "interrupted")
    return None


def _event_target(conn: sqlite3.Connection, event_id: int) -> sqlite3.Row | None:
    return conn.execute(  # type: ignore[no-any-return]
        "SELECT vendor, repository, sha, event_type, is_fork FROM events WHERE id = ?",
        (event_id,),
    ).fetchone()


def _insert(
    conn: sqlite3.Connection,
    target: sqlite3.Row,
    event_id: int,
    run_id: str | None,
    context: str,
    state: str,
    description: str,
) -> None:
    conn.execute(
        "INSERT INTO status_outbox (event_id, run_id, vendor, repository, sha, context, state, "
        "description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event_id,
            run_id,
            target["vendor"],
            target["repository"],
            target["sha"],
            context,
            state,
            description,
            _ts(utcnow()),
        ),
    )


def queue_run_statuses(
    conn: sqlite3.Connection,
    router: StatusRouter | None,
    runs: list[Run],
    before: dict[str, RunState] | None = None,
) -> None:
    """Queue the status of each run whose state changed (inside the caller's transaction).

    Args:
        conn: The writer's connection, in the transaction storing the runs.
        router: Which contexts get statuses (None: statuses are off).
        runs: The runs as stored now.
        before: Each run's state before this change (absent for new runs): a run whose
            state did not change, or a stale ``running`` after it finished, queues nothing.
    """
    if router is None:
        return
    targets: dict[int, sqlite3.Row | None] = {}
    for run in runs:
        old = (before or {}).get(run.id)
        if old is run.state or (old is not None and old.finished and not run.state.finished):
            continue
        status = run_status(run)
        if status is None or not run.function:
            continue
        if run.event_id not in targets:
            targets[run.event_id] = _event_target(conn, run.event_id)
        target = targets[run.event_id]
        if target is None or not target["sha"]:
            continue
        context = router.context(
            target["vendor"], target["repository"], target["event_type"], run.function, run.spec
        )
        if context is not None:
            _insert(conn, target, run.event_id, run.id, context, *status)


def queue_approval_status(
    conn: sqlite3.Connection,
    router: StatusRouter | None,
    event_id: int,
    waiting: bool,
    detail: str,
) -> None:
    """Queue the status of a fork pull request waiting for approval, or approved since.

    Args:
        conn: The writer's connection, in the transaction storing the event's status.
        router: Which contexts get statuses (None: statuses are off).
        event_id: The event.
        waiting: Its new status is ``waiting``.
        detail: Its new detail.
    """
    if router is None:
        return
    target = _event_target(conn, event_id)
    if target is None or not target["sha"] or not target["is_fork"]:
        return
    context = router.context(
        target["vendor"], target["repository"], target["event_type"], APPROVAL_FUNCTION
    )
    if context is None:
        return
    last = conn.execute(
        "SELECT state FROM status_outbox WHERE event_id = ? AND run_id IS NULL AND context = ? "
        "AND sha = ? ORDER BY id DESC LIMIT 1",
        (event_id, context, target["sha"]),
    ).fetchone()
    if waiting and WAITING_FOR_APPROVAL in detail:
        if last is None or last["state"] != "pending":
            _insert(
                conn, target, event_id, None, context, "pending",
                "waiting for approval in pocketci-tui",
            )  # fmt: skip
    elif last is not None and last["state"] == "pending":
        _insert(conn, target, event_id, None, context, "success", "approved in pocketci-tui")


# -- what the sender and the commands read and write ------------------------------------------


def due_rows(conn: sqlite3.Connection, limit: int = 1000) -> list[OutboxRow]:
    """The rows still to deliver (queued or caught mid-send), oldest first."""
    rows = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM status_outbox WHERE status IN ('queued', 'sending') "
        "ORDER BY id LIMIT ?",
        (limit,),
    )
    return [_row(r) for r in rows]


def due_keys(conn: sqlite3.Connection, limit: int = 64) -> list[tuple[str, str, str, str]]:
    """The contexts with statuses still to deliver, the longest waiting first (at most limit).

    The sender asks this every time a context is done, so it reads the index, not the rows.
    """
    rows = conn.execute(
        "SELECT vendor, repository, sha, context FROM status_outbox "
        "WHERE status IN ('queued', 'sending') GROUP BY vendor, repository, sha, context "
        "ORDER BY min(id) LIMIT ?",
        (limit,),
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def claim_latest(conn: sqlite3.Connection, key: tuple[str, str, str, str]) -> OutboxRow | None:
    """Take the newest undelivered row of a context; mark the older ones superseded.

    The newest state is the one the forge must end with, so the older ones need not be sent.
    The row is marked ``sending`` and its attempts counted before it is handed to the forge,
    so a restart knows it may have reached it.

    Returns:
        The row to send, or None when nothing of that context is left.
    """
    rows = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM status_outbox WHERE status IN ('queued', 'sending') "
        "AND vendor = ? AND repository = ? AND sha = ? AND context = ? ORDER BY id",
        key,
    ).fetchall()
    if not rows:
        return None
    latest = _row(rows[-1])
    now = _ts(utcnow())
    older = [r["id"] for r in rows[:-1]]
    if older:
        marks = ", ".join("?" for _ in older)
        conn.execute(
            f"UPDATE status_outbox SET status = 'superseded', updated_at = ? WHERE id IN ({marks})",
            [now, *older],
        )
    conn.execute(
        "UPDATE status_outbox SET status = 'sending', attempts = attempts + 1, updated_at = ? "
        "WHERE id = ?",
        (now, latest.id),
    )
    return latest


def mark_row(conn: sqlite3.Connection, row_id: int, status: str, detail: str = "") -> None:
    """Record how a row's delivery went (``sent``, ``failed``, or ``queued`` to retry)."""
    conn.execute(
        "UPDATE status_outbox SET status = ?, detail = ?, updated_at = ? WHERE id = ?",
        (status, detail[:500], _ts(utcnow()), row_id),
    )


def run_deliveries(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, OutboxRow]:
    """The newest status row of each run (a run without one is absent)."""
    found: dict[str, OutboxRow] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM status_outbox WHERE run_id IN ({marks}) ORDER BY id",
            chunk,
        )
        for r in rows:
            found[r["run_id"]] = _row(r)
    return found


def all_rows(conn: sqlite3.Connection) -> list[OutboxRow]:
    """Every outbox row, oldest first (for tests and diagnostics)."""
    return [
        _row(r) for r in conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM status_outbox ORDER BY id")
    ]


def refused_repositories(conn: sqlite3.Connection) -> list[OutboxRow]:
    """Each repository whose last delivered-or-refused status was refused, with that row."""
    rows = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM status_outbox WHERE status = 'failed' AND id IN "
        "(SELECT max(id) FROM status_outbox WHERE status IN ('sent', 'failed') "
        "GROUP BY vendor, repository) ORDER BY id"
    )
    return [_row(r) for r in rows]
