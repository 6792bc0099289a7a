"""The Functions pane: every function considered for the selected event."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from pocketci_tui.contract import StatusDelivery
from pocketci_tui.model import Run, RunState, latest_attempts

from ..messages import EngineActivity
from ..text import format_duration, literal
from .status import state_label


def run_duration(run: Run, now: datetime) -> float | None:
    """Seconds a run took, or has been running, or None when it never started."""
    if run.started_at is None:
        return None
    end = run.finished_at or (now if run.state is RunState.RUNNING else None)
    if end is None:
        return None
    return (end - run.started_at).total_seconds()


TIME_WIDTH = 6
"""``12m05s``, ``1h02m``, ``4.2s``: a duration never loses its unit."""
MIN_REASON = 10
"""A reason column narrower than this is left out (the selected run's reason is shown in full
above its output)."""


def run_name(run: Run) -> str:
    """A run's function as shown and grouped: ``api/build`` for a function of the ``api`` spec
    of a ``pocketci.yaml`` listing several (two specs may have functions of the same name)."""
    if run.spec and run.function:
        return f"{run.spec}/{run.function}"
    return run.function


def group_attempts(runs: Iterable[Run], expanded: Collection[str] = ()) -> list[tuple[Run, int]]:
    """The rows of the Functions pane: each function's latest attempt, then (when its function
    is expanded) its older attempts, newest first.

    Re-runs and re-fires add attempts; a function skipped by every re-fire is still one row.
    Functions come in name order, those whose latest attempt was skipped last.

    Args:
        runs: Every run of an event.
        expanded: The functions whose older attempts are shown.

    Returns:
        (run, depth) per row: 0 for a function's latest attempt, 1 for an older one.
    """
    groups: dict[str, list[Run]] = {}
    for run in sorted(runs, key=_newness, reverse=True):
        groups.setdefault(run_name(run), []).append(run)
    rows: list[tuple[Run, int]] = []
    for function in sorted(groups, key=lambda f: (groups[f][0].state is RunState.SKIPPED, f)):
        latest, *older = groups[function]
        rows.append((latest, 0))
        if function in expanded:
            rows.extend((run, 1) for run in older)
    return rows


STATUS_MARKS = {
    "sent": ("↑", "green"),
    "queued": ("…", "yellow"),
    "sending": ("…", "yellow"),
    "failed": ("!", "bold red"),
    "superseded": ("·", "dim"),
}
"""The mark of each commit status delivery: sent to the forge, on its way, refused (the reason
is shown above the run's output), or replaced by a newer status of the same context."""


def runs_layout(
    width: int, name_width: int, *, compact: bool, state_width: int = 9, mark: bool = False
) -> tuple[tuple[str, int], ...]:
    """Size the Functions pane's columns for a table ``width`` cells wide.

    The state and the duration always fit; the function name takes what it needs (cut only
    when the pane is too narrow), and the reason takes the rest.

    Args:
        width: The table's width in cells (its vertical scrollbar included).
        name_width: The longest function label shown.
        compact: States as icons only.
        state_width: The longest state label shown (``- skipped``), when not compact.
        mark: Add the one-cell column that says whether the commit status reached the forge
            (only when a run of the event reports one).

    Returns:
        (column key, content width) in display order; each column also takes 2 cells of
        padding.
    """
    state = 1 if compact else state_width
    room = width - 1 - 3 * 2 - state - TIME_WIDTH  # the scrollbar, three paddings
    marks: tuple[tuple[str, int], ...] = ()
    if mark:
        room -= 3
        marks = (("commit", 1),)
    function = max(min(name_width, room), 4)  # a name is cut only when nothing else fits
    reason = room - function - 2
    if reason < MIN_REASON:
        return (("function", max(room, 4)), ("state", state), *marks, ("time", TIME_WIDTH))
    return (
        ("function", function),
        ("state", state),
        *marks,
        ("time", TIME_WIDTH),
        ("reason", reason),
    )


class RunsTable(DataTable[Text | str]):
    """Functions of the selected event: name, state, duration and, when skipped, the reason."""

    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """

    class RunSelected(Message):
        """The highlighted run changed.

        Attributes:
            run_id: The newly highlighted run, or None when there is none.
        """

        def __init__(self, run_id: str | None) -> None:
            super().__init__()
            self.run_id = run_id

    def __init__(self, clock: Callable[[], datetime], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._clock = clock
        self.compact = False
        """Show states as icons only (narrow screens)."""
        self._runs: list[Run] = []
        """The rows shown, in order."""
        self._all: dict[str, Run] = {}
        """Every run of the event, shown or collapsed, by id."""
        self._older: dict[str, int] = {}
        """How many older attempts each function has."""
        self.expanded: set[str] = set()
        """The functions whose older attempts are shown."""
        self._depth: dict[str, int] = {}
        self._index: dict[str, int] = {}
        self.pinned = False
        """True once the user chose a run (moved the cursor, clicked, cancelled it): then the
        cursor stays where they put it."""
        self.column_widths: tuple[tuple[str, int], ...] = ()
        """The columns shown, as (key, width), sized from the table's width."""
        self.following: str | None = None
        """The function the user re-ran: the cursor shows its newest attempt."""
        self.deliveries: dict[str, StatusDelivery] = {}
        """Whether each run's commit status reached the forge, by run id."""

    def on_mount(self) -> None:
        """Create the columns for the width there is."""
        self._apply_layout()

    def on_resize(self) -> None:
        """Size the columns to the new width."""
        self._apply_layout()

    def _apply_layout(self, *, rows: bool = True) -> None:
        """Rebuild the columns when their widths should change (and the rows, unless the caller
        adds them next)."""
        names = [len(self._row_label(run)) for run in self._runs]
        states = [len(state_label(str(run.state)).plain) for run in self._runs]
        layout = runs_layout(
            self.size.width or 36,
            max(names, default=8),
            compact=self.compact,
            state_width=max(states, default=5),
            mark=any(run.id in self.deliveries for run in self._runs),
        )
        if layout == self.column_widths:
            return
        self.column_widths = layout
        row = self.cursor_row
        self.clear(columns=True)
        for key, width in layout:
            self.add_column("↑" if key == "commit" else key, key=key, width=width)
        if rows:
            for run in self._runs:
                self.add_row(*self._cells(run), key=run.id)
            if 0 <= row < len(self._runs):
                self.move_cursor(row=row, animate=False)

    @property
    def runs(self) -> list[Run]:
        """The runs shown (each function's latest attempt, and the older ones expanded)."""
        return list(self._runs)

    @property
    def all_runs(self) -> list[Run]:
        """Every run of the event, collapsed attempts included."""
        return list(self._all.values())

    def older_attempts(self, function: str) -> int:
        """How many attempts of ``function`` come before its latest."""
        return self._older.get(function, 0)

    def _prefix(self, run: Run) -> str:
        """``▸``/``▾`` before a function with older attempts, ``└`` before an older attempt;
        nothing at all while no function of the event has more than one attempt."""
        if not any(self._older.values()):
            return ""
        if self._depth.get(run.id, 0):
            return "  └ "
        if self._older.get(run_name(run)):
            return "▾ " if run_name(run) in self.expanded else "▸ "
        return "  "

    def _row_label(self, run: Run) -> str:
        suffix = f" #{run.attempt}" if run.attempt > 1 else ""
        if self._depth.get(run.id, 0):
            return self._prefix(run) + f"#{run.attempt}"
        return self._prefix(run) + (run_name(run) or "(event)") + suffix

    @property
    def selected(self) -> Run | None:
        """The highlighted run."""
        if not self._runs or not 0 <= self.cursor_row < len(self._runs):
            return None
        return self._runs[self.cursor_row]

    def _cells(self, run: Run) -> tuple[Text | str, ...]:
        widths = dict(self.column_widths)
        prefix = self._prefix(run)
        if self._depth.get(run.id, 0):
            name = Text(prefix, no_wrap=True, overflow="ellipsis")
            name.append(f"#{run.attempt}")
        else:
            suffix = f" #{run.attempt}" if run.attempt > 1 else ""
            room = max(widths.get("function", 32) - len(suffix) - len(prefix), 4)
            name = literal(run_name(run) or "(event)", limit=room)
            if prefix:
                name = Text(prefix, no_wrap=True, overflow="ellipsis") + name
            name.append(suffix)
        reason = run.reason.strip().splitlines()[-1] if run.reason.strip() else ""
        if run.state is RunState.FAILED and run.exit_code is not None and not reason:
            reason = f"exit {run.exit_code}"
        cells: dict[str, Text | str] = {
            "function": name,
            "state": state_label(str(run.state), icon_only=self.compact),
            "time": format_duration(run_duration(run, self._clock())),
            "reason": literal(reason, style="dim", limit=widths.get("reason", 0)),
            "commit": self._mark(run.id),
        }
        return tuple(cells[key] for key, _ in self.column_widths)

    def _mark(self, run_id: str) -> Text:
        delivery = self.deliveries.get(run_id)
        if delivery is None:
            return Text(" ")
        mark, style = STATUS_MARKS.get(delivery.delivery, ("?", "dim"))
        return Text(mark, style=style)

    def set_deliveries(self, deliveries: Mapping[str, StatusDelivery]) -> None:
        """Show whether runs' commit statuses reached the forge (news of some runs, or of
        every run of the event when it is first shown)."""
        changed = [run_id for run_id, d in deliveries.items() if self.deliveries.get(run_id) != d]
        self.deliveries.update(deliveries)
        if not changed:
            return
        before = self.column_widths
        self._apply_layout()  # the first status adds the mark column
        if self.column_widths == before:
            for run_id in changed:
                if run_id in self._index and "commit" in dict(self.column_widths):
                    self.update_cell(run_id, "commit", self._mark(run_id))

    def set_compact(self, compact: bool) -> None:
        """Switch between icon-only and worded states, redrawing the rows."""
        if compact != self.compact:
            self.compact = compact
            self.set_runs(list(self._runs))

    def set_runs(
        self, runs: Iterable[Run], *, select: str | None = None, new_event: bool = False
    ) -> None:
        """Replace every row; keep the cursor on ``select`` or the same run when possible.

        Until the user chooses a run, the cursor goes to the run to show (see
        :meth:`follow_interesting`).
        """
        if new_event:
            self.pinned = False
            self.following = None
        if new_event:
            self.expanded = set()
            self.deliveries = {}
        keep = select or (self.selected.id if self.selected and self.pinned else None)
        self._all = {run.id: run for run in runs}
        if keep is not None and keep in self._all:
            # A run chosen among the older attempts keeps its group open.
            chosen = self._all[keep]
            rows = group_attempts(self._all.values(), self.expanded)
            if all(run.id != keep for run, _ in rows):
                self.expanded.add(run_name(chosen))
        self._show_rows()
        if keep is None or keep not in self._index:
            keep = self._target()
        if keep is not None:
            self.move_cursor(row=self._index[keep], animate=False)
        if not self._runs:
            self.post_message(self.RunSelected(None))

    def _show_rows(self) -> None:
        """Lay out the rows from :attr:`_all` and :attr:`expanded` (the cursor is the caller's)."""
        rows = group_attempts(self._all.values(), self.expanded)
        counts: dict[str, int] = {}
        for run in self._all.values():
            counts[run_name(run)] = counts.get(run_name(run), 0) + 1
        self._older = {function: count - 1 for function, count in counts.items()}
        self._runs = [run for run, _ in rows]
        self._depth = {run.id: depth for run, depth in rows}
        self._apply_layout(rows=False)
        self.clear()
        self._index = {}
        for position, run in enumerate(self._runs):
            self._index[run.id] = position
            self.add_row(*self._cells(run), key=run.id)

    def toggle_attempts(self) -> bool:
        """Show or hide the older attempts of the selected run's function.

        Returns:
            False when the function has no older attempt (nothing to show).
        """
        selected = self.selected
        if selected is None or not self._older.get(run_name(selected)):
            return False
        function = run_name(selected)
        if function in self.expanded:
            self.expanded.discard(function)
            keep = self._runs[self._first_row(function)].id
        else:
            self.expanded.add(function)
            keep = selected.id
        self.pin()
        self._show_rows()
        self.move_cursor(row=self._index[keep], animate=False)
        return True

    def _first_row(self, function: str) -> int:
        return next(i for i, run in enumerate(self._runs) if run_name(run) == function)

    def update_run(self, run: Run) -> bool:
        """Refresh a shown run; return False when it is not shown (the caller re-sets rows)."""
        index = self._index.get(run.id)
        if index is None:
            return False
        self._all[run.id] = run
        self._runs[index] = run
        for (key, _), value in zip(self.column_widths, self._cells(run), strict=True):
            self.update_cell(run.id, key, value)
        self._apply_layout()  # a longer state ("■ interrupted") widens its column
        return True

    def follow_interesting(self) -> None:
        """Unless the user chose a run, move to the run to show.

        That is the newest attempt of the function the user re-ran, if they did; else, among
        the latest attempt of each function, a running one, else a failed one, else the first.
        Older attempts are history: a failure that a re-run has since fixed is never shown
        first.
        """
        if self.pinned:
            return
        target = self._target()
        if target is not None and (self.selected is None or self.selected.id != target):
            self.move_cursor(row=self._index[target], animate=False)

    def follow_rerun(self, function: str) -> None:
        """The user re-ran ``function``: show its newest attempt (the new run once it exists)."""
        self.pinned = False
        self.following = function
        self.follow_interesting()

    def follow_newest(self) -> None:
        """The user fired the event again: show the run to show among the newest attempts."""
        self.pinned = False
        self.following = None
        self.follow_interesting()

    def pin(self) -> None:
        """Keep the cursor where it is: the user chose this run."""
        self.pinned = True

    def _target(self) -> str | None:
        if self.following is not None:
            attempts = [run for run in self._all.values() if run_name(run) == self.following]
            if attempts:
                return max(attempts, key=_newness).id  # a latest attempt: always shown
        return _most_interesting(self._runs)

    def _pin(self) -> None:
        self.pin()

    def on_click(self) -> None:
        """A click chooses a run like the keys do."""
        self._pin()

    def action_cursor_up(self) -> None:
        """Move up (the user chose)."""
        self._pin()
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        """Move down (the user chose)."""
        self._pin()
        super().action_cursor_down()

    def action_page_up(self) -> None:
        """Page up (the user chose)."""
        self._pin()
        super().action_page_up()

    def action_page_down(self) -> None:
        """Page down (the user chose)."""
        self._pin()
        super().action_page_down()

    def action_scroll_top(self) -> None:
        """First row (the user chose)."""
        self._pin()
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        """Last row (the user chose)."""
        self._pin()
        super().action_scroll_bottom()

    def tick(self) -> None:
        """Refresh the durations of running runs."""
        for run in self._runs:
            if run.state is RunState.RUNNING:
                self.update_cell(run.id, "time", format_duration(run_duration(run, self._clock())))

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        """Tell the screen which run is highlighted."""
        message.stop()
        selected = self.selected
        self.post_message(self.RunSelected(selected.id if selected else None))

    def apply_activity(
        self, activity: EngineActivity, event_id: int | None, known: Mapping[str, Run]
    ) -> None:
        """Show the changed runs of the shown event, and follow the one worth watching.

        Args:
            activity: The engine's batch of notices.
            event_id: The event whose runs are shown, or None.
            known: Every known run of that event (after the batch), by id.
        """
        news = {k: d for k, d in activity.deliveries.items() if d.event_id == event_id}
        if news:
            self.set_deliveries(news)
        mine = [run for run in activity.runs.values() if run.event_id == event_id]
        if not mine:
            return
        missing = [run for run in mine if not self.update_run(run)]
        if missing:
            self.set_runs(known.values())
        self.follow_interesting()


def _newness(run: Run) -> tuple[int, float]:
    return (run.attempt, run.created_at.timestamp() if run.created_at else 0.0)


def _most_interesting(runs: list[Run]) -> str | None:
    """The run to show first, among the latest attempt of each function (in display order):
    a running one, else a failed one, else the first that ran, else the first."""
    latest = {run.id for run in latest_attempts(sorted(runs, key=_newness))}
    current = [run for run in runs if run.id in latest]
    for state in (RunState.RUNNING, RunState.FAILED):
        for run in current:
            if run.state is state:
                return run.id
    for run in current:
        if run.state is not RunState.SKIPPED:
            return run.id
    return runs[0].id if runs else None
