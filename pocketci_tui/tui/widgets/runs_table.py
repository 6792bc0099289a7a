"""The Functions pane: every function considered for the selected event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from pocketci_tui.model import Run, RunState

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
        self._index: dict[str, int] = {}
        self.pinned = False
        """True once the user moved the cursor: then it stays where they put it."""

    def on_mount(self) -> None:
        """Create the columns."""
        self.add_column("function", key="function")
        self.add_column("state", key="state")
        self.add_column("time", key="time")
        self.add_column("reason", key="reason")

    @property
    def runs(self) -> list[Run]:
        """The runs shown."""
        return list(self._runs)

    @property
    def selected(self) -> Run | None:
        """The highlighted run."""
        if not self._runs or not 0 <= self.cursor_row < len(self._runs):
            return None
        return self._runs[self.cursor_row]

    def _cells(self, run: Run) -> tuple[Text | str, ...]:
        suffix = f" #{run.attempt}" if run.attempt > 1 else ""
        width = (20 if self.compact else 32) - len(suffix)
        name = literal(run.function or "(event)", limit=width)
        name.append(suffix)
        reason = run.reason.strip().splitlines()[-1] if run.reason.strip() else ""
        if run.state is RunState.FAILED and run.exit_code is not None and not reason:
            reason = f"exit {run.exit_code}"
        return (
            name,
            state_label(str(run.state), icon_only=self.compact),
            format_duration(run_duration(run, self._clock())),
            literal(reason, style="dim", limit=60),
        )

    def set_compact(self, compact: bool) -> None:
        """Switch between icon-only and worded states, redrawing the rows."""
        if compact != self.compact:
            self.compact = compact
            self.set_runs(list(self._runs))

    def set_runs(
        self, runs: Iterable[Run], *, select: str | None = None, new_event: bool = False
    ) -> None:
        """Replace every row; keep the cursor on ``select`` or the same run when possible.

        Until the user moves the cursor, it goes to the most interesting run (running, else
        failed, else the first).
        """
        if new_event:
            self.pinned = False
        keep = select or (self.selected.id if self.selected and self.pinned else None)
        self._runs = sorted(runs, key=_run_order)
        self.clear()
        self._index = {}
        for position, run in enumerate(self._runs):
            self._index[run.id] = position
            self.add_row(*self._cells(run), key=run.id)
        if keep is None or keep not in self._index:
            keep = _most_interesting(self._runs)
        if keep is not None:
            self.move_cursor(row=self._index[keep], animate=False)
        if not self._runs:
            self.post_message(self.RunSelected(None))

    def update_run(self, run: Run) -> bool:
        """Refresh a shown run; return False when it is not shown (the caller re-sets rows)."""
        index = self._index.get(run.id)
        if index is None:
            return False
        self._runs[index] = run
        for key, value in zip(
            ("function", "state", "time", "reason"), self._cells(run), strict=True
        ):
            self.update_cell(run.id, key, value)
        return True

    def follow_interesting(self) -> None:
        """Unless the user chose a run, move to the most interesting one."""
        if self.pinned:
            return
        target = _most_interesting(self._runs)
        if target is not None and (self.selected is None or self.selected.id != target):
            self.move_cursor(row=self._index[target], animate=False)

    def _pin(self) -> None:
        self.pinned = True

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


def _run_order(run: Run) -> tuple[int, str, int]:
    skipped = 1 if run.state is RunState.SKIPPED else 0
    return (skipped, run.function, run.attempt)


def _most_interesting(runs: list[Run]) -> str | None:
    """The run to show first: a running one, else a failed one, else the first."""
    for state in (RunState.RUNNING, RunState.FAILED):
        for run in runs:
            if run.state is state:
                return run.id
    return runs[0].id if runs else None
