"""An event in full: what it is, who sent it, its commits, its page on the forge and its runs.

The Events pane shows as much context as its width allows; this view shows all of it, one field
a line, so that a user at 80x24 can tell what an event is without leaving the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import ClassVar

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from pocketci_tui.model import Run, RunState, StoredEvent, change_request_ref, latest_attempts

from ..messages import CopyText
from ..text import clean, format_time, literal, queue_note
from ..widgets.runs_table import run_name
from ..widgets.status import overall_state, state_label
from .list_keys import ListDialog, list_bindings

_LINK_RE = re.compile(r"https?://[!-~]+")
"""A page address that may become a terminal hyperlink (printable ASCII, no spaces)."""


def page_link(url: str) -> Text:
    """The event's page as a clickable link (OSC 8 in terminals that support it).

    The address is shown as it is, so the user sees where the link goes; anything that is not
    a plain ``http(s)`` address is shown as literal text without a link.

    Args:
        url: The event's page, as the store keeps it.

    Returns:
        The address, underlined and linked, or a dim "no page" note.
    """
    if not url:
        return Text("no page known for this event", style="dim")
    if not _LINK_RE.fullmatch(url):
        return literal(url)
    return Text(url, style=Style(underline=True, link=url))


def _duration(seconds: float) -> str:
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def event_duration(runs: Iterable[Run], now: datetime) -> float | None:
    """Seconds from the first start to the last finish of an event's latest attempts.

    Functions run in parallel, so this is the wall time the event took, not the sum of its
    runs; a run still running counts until ``now``.

    Args:
        runs: The event's runs.
        now: The current time.

    Returns:
        The seconds, or None when no run started.
    """
    started = [r for r in latest_attempts(runs) if r.started_at is not None]
    if not started:
        return None
    first = min(r.started_at for r in started if r.started_at is not None)
    last = max(r.finished_at or now for r in started)
    return (last - first).total_seconds()


def _event_rows(stored: StoredEvent, now: datetime) -> list[tuple[str, Text]]:
    event = stored.event
    kind = event.event_type or event.event_name
    what = f"{kind}/{event.filter}" if event.filter else kind
    if event.pr_number is not None:
        what += f" {change_request_ref(event.vendor, event.pr_number)}"
    if event.is_fork:
        what += " (fork)"
    rows: list[tuple[str, Text]] = [
        ("repository", literal(f"{event.repository}  ({event.vendor})")),
        ("event", literal(what)),
        ("title", Text(clean(event.title) or "-")),
        ("author", literal(event.author or "-")),
    ]
    if event.commits is not None:
        rows.append(("commits", Text(str(event.commits))))
    if event.ref:
        rows.append(("ref", literal(event.ref)))
    if event.sha:
        rows.append(("commit", literal(event.sha)))
    if event.base_ref or event.base_sha:
        rows.append(("base", literal(f"{event.base_ref} {event.base_sha[:12]}".strip())))
    rows.append(("received", Text(format_time(event.received_at, now))))
    if stored.redeliveries:
        rows.append(("redelivered", Text(f"{stored.redeliveries} times")))
    rows.append(("delivery", literal(event.delivery_id)))
    return rows


class EventDetails(ListDialog[None]):
    """One event in full, with its page on the forge as a link.

    Args:
        stored: The event.
        runs: Its runs, in creation order (None when not loaded).
        clock: The current time, for "received".
        queue: The queued runs' ids, first to start first (for a queued run's place).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i,q", "close", "Close", id="details-close", tooltip="close the details"),
        Binding("o", "copy_link", "Copy link", id="details-link", tooltip="copy the event's page"),
        Binding("j,down", "list_move(1)", "Down", show=False, id="details-down"),
        Binding("k,up", "list_move(-1)", "Up", show=False, id="details-up"),
        *list_bindings(rows=False),
    ]
    LIST = "#details-body"

    def __init__(
        self,
        stored: StoredEvent,
        runs: Iterable[Run] | None,
        clock: Callable[[], datetime],
        queue: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.queue = queue or []
        """The queued runs' ids, first to start first."""
        self.stored = stored
        """The event shown."""
        self.runs = list(runs) if runs is not None else None
        """Its runs, or None when unknown."""
        self._clock = clock

    def compose(self) -> ComposeResult:
        """The fields, the page link and the keys."""
        event = self.stored.event
        with Vertical(classes="dialog", id="details") as box:
            box.border_title = f"Event #{event.id}"
            with VerticalScroll(id="details-body"):
                yield Static(self.fields_table(), id="details-fields")
                yield Static(page_link(event.url), id="details-link")
            yield Label("o copies the link    Esc closes", classes="dialog-keys", markup=False)

    def fields_table(self) -> Table:
        """The event's fields, one a line, and its functions' latest attempts."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for name, value in _event_rows(self.stored, self._clock()):
            grid.add_row(name, value)
        state = overall_state(self.stored, self.runs)
        status = state_label(state)
        if self.stored.detail:
            status.append("  ")
            status.append(literal(self.stored.detail, limit=200))
        grid.add_row("status", status)
        now = self._clock()
        took = event_duration(self.runs or [], now)
        if took is not None:
            grid.add_row("took", Text(_duration(took)))
        latest = latest_attempts(self.runs or [])
        if latest:
            grid.add_row("functions", self._runs_table(latest, now))
        return grid

    def _runs_table(self, runs: list[Run], now: datetime) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(overflow="ellipsis", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, style="dim")
        for run in runs:
            took = ""
            if run.started_at is not None:
                end = run.finished_at or now
                took = _duration((end - run.started_at).total_seconds())
            if run.state is RunState.QUEUED:
                took = queue_note(run.id, self.queue)
            if run.attempt > 1:
                took = f"{took}  attempt {run.attempt}".strip()
            table.add_row(literal(run_name(run) or "(event)"), state_label(str(run.state)), took)
        return table

    def action_close(self) -> None:
        """Close the view."""
        self.dismiss(None)

    def action_copy_link(self) -> None:
        """Copy the event's page to the clipboard (through the terminal, so over SSH too)."""
        url = self.stored.event.url
        if url:
            self.post_message(CopyText(url, "the event's page"))
        else:
            self.notify("No page is known for this event", severity="warning")
