"""``pocketci-tui events``: list stored events, newest first."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING, Any

from pocketci_tui.launch import CommandFailed, run_command, settings_from_args

if TYPE_CHECKING:
    from pocketci_tui.model import Run
    from pocketci_tui.store.outbox import OutboxRow


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``events`` subcommand."""
    parser = sub.add_parser(
        "events",
        parents=[common],
        help="list stored events and how they turned out, newest first",
        description="List stored events, newest first. OUTCOME is the event's status, or once "
        "its functions ran, the outcome of the latest attempt of each function (a failed "
        "function whose re-run passed counts as passed). --json adds every run: function, "
        "attempt, state, exit code, duration and whether its commit status reached the forge.",
    )
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="how many (20)")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list, with each event's runs"
    )
    parser.set_defaults(func=cmd_events)


def cmd_events(args: argparse.Namespace) -> int:
    """Print the newest stored events."""

    def body() -> int:
        if args.limit < 1:
            raise CommandFailed("--limit must be at least 1", 2)
        _, paths = settings_from_args(args)
        rows = asyncio.run(_load(paths.db_file, args.limit))
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(render_table(rows))
        return 0

    return run_command(body)


async def _load(db: Any, limit: int) -> list[dict[str, Any]]:
    from pocketci_tui.model import event_outcome
    from pocketci_tui.store import Store, StoreError

    try:
        # Read-only: this runs beside the data folder's owner and must change nothing.
        store = await Store.open_read_only(db)
    except FileNotFoundError:
        return []
    except StoreError as exc:
        raise CommandFailed(str(exc), 1) from exc
    try:
        events = await store.list_events(limit=limit)
        runs = await store.runs_by_event([s.event.id for s in events if s.event.id is not None])
        statuses = await store.run_statuses([r.id for rs in runs.values() for r in rs])
    finally:
        await store.close()
    rows: list[dict[str, Any]] = []
    for s in events:
        event_runs = runs.get(s.event.id or 0, [])
        rows.append(
            {
                "id": s.event.id,
                "delivery_id": s.event.delivery_id,
                "vendor": s.event.vendor,
                "event_type": s.event.event_type,
                "event_name": s.event.event_name,
                "filter": s.event.filter,
                "repository": s.event.repository,
                "ref": s.event.ref,
                "sha": s.event.sha,
                "pr_number": s.event.pr_number,
                "is_fork": s.event.is_fork,
                "title": s.event.title,
                "author": s.event.author,
                "commits": s.event.commits,
                "url": s.event.url,
                "status": s.status.value,
                "outcome": event_outcome(s.status, event_runs),
                "detail": s.detail,
                "redeliveries": s.redeliveries,
                "received_at": s.event.received_at.isoformat(),
                "runs": [_run_row(run, statuses.get(run.id)) for run in event_runs],
            }
        )
    return rows


def _run_row(run: Run, status: OutboxRow | None = None) -> dict[str, Any]:
    """One run of an event for ``--json``: what ran, which attempt, how it ended.

    ``commit_status`` says whether the forge got the run's last commit status: ``delivery``
    is ``sent``, ``queued`` (or ``sending``, being retried), ``failed`` (``detail`` says why)
    or ``superseded``; null when the run reports none.
    """
    duration = None
    if run.started_at is not None and run.finished_at is not None:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {
        "id": run.id,
        "function": run.function,
        "attempt": run.attempt,
        "state": run.state.value,
        "exit_code": run.exit_code,
        "duration_seconds": duration,
        "reason": run.reason,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "parent_id": run.parent_id,
        "engine": run.engine,
        "spec": run.spec,
        "commit_status": None
        if status is None
        else {
            "context": status.context,
            "state": status.state,
            "description": status.description,
            "delivery": status.status,
            "detail": status.detail,
        },
    }


def render_table(rows: list[dict[str, Any]]) -> str:
    """Render events as a plain text table; untrusted text has its control characters escaped."""
    from pocketci_tui.logging_setup import safe_text

    if not rows:
        return "no events stored yet"
    header = ("ID", "RECEIVED", "EVENT", "REPOSITORY", "FILTER", "SHA", "OUTCOME", "DETAIL")
    table = [header]
    for r in rows:
        table.append(
            (
                str(r["id"]),
                r["received_at"][:19].replace("T", " "),
                safe_text(r["event_type"], 20),
                safe_text(r["repository"], 40),
                safe_text(r["filter"], 30),
                safe_text(r["sha"][:12], 12),
                r["outcome"],
                safe_text(r["detail"], 60),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table
    )
