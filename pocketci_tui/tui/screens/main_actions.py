"""What the main screen's keys do to the selection: one place to read each action.

The main screen shows events, their runs and a run's output; the keys act on what is selected
(a run when the Functions or Output pane is focused, else the whole event) and say so when
nothing is. Keeping the actions apart from the loading and showing of the panes lets each be
read alone; the selection itself (the event, the run and the runs known per event) is declared
here, since every action starts from it.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.reactive import reactive
from textual.widgets import Input

from pocketci_tui.contract import CoreClient
from pocketci_tui.model import Run, StoredEvent

from ..messages import (
    Approve,
    CancelEvent,
    CancelRun,
    CopyText,
    Fire,
    OpenFirePicker,
    OpenLog,
    Rerun,
    ShowEventDetails,
    ShowRepositories,
)
from ..widgets.events_table import EventsTable
from ..widgets.run_log import RunLog
from ..widgets.runs_table import RunsTable, run_name
from .main_nav import PaneKeysScreen
from .notes import awaits_approval


class SelectionActionsScreen(PaneKeysScreen):
    """A screen whose keys act on the selected event or run (see :mod:`.main_keys`)."""

    event_id: reactive[int | None] = reactive(None, init=False)
    """The selected event."""
    run_id: reactive[str | None] = reactive(None, init=False)
    """The run whose output is shown."""

    services: CoreClient
    runs: dict[int, dict[str, Run]]
    queue_order: list[str]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer approve only for a waiting fork pull request, the pager only for a run's log,
        the filter's ``/`` only outside a text field (there it types a ``/``), and Esc's way out of
        the zoom only while zoomed."""
        if action == "filter":
            return not isinstance(self.focused, Input)
        if action == "unzoom":  # shown only while zoomed: the way back on a full screen
            return self.has_class("-zoom-output") or self.has_class("-zoom-events")
        if action == "approve":
            stored = self._selected_event()
            return stored is not None and awaits_approval(stored)
        if action == "pager":
            run = self._selected_run()
            return run is not None and bool(run.log_path)
        if action in ("details", "link"):
            return self._selected_event() is not None
        if action == "attempts":
            run = self._selected_run()
            return run is not None and self.query_one(RunsTable).older_attempts(run_name(run)) > 0
        return True

    def _selected_run(self) -> Run | None:
        if self.event_id is None or self.run_id is None:
            return None
        return self.runs.get(self.event_id, {}).get(self.run_id)

    def _selected_event(self) -> StoredEvent | None:
        if self.event_id is None:
            return None
        return self.query_one(EventsTable).event(self.event_id)

    def _act_on_run(self) -> bool:
        """True when the user means the selected run rather than the whole event."""
        return self.run_id is not None and isinstance(self.focused, RunsTable | RunLog)

    def action_fire(self) -> None:
        """Open the fire picker on the selected event."""
        self.post_message(OpenFirePicker(self.event_id))

    def action_rerun(self) -> None:
        """Re-run the selected run (Functions or Output focused) or the whole event."""
        if self._act_on_run():
            run = self._selected_run()
            assert self.run_id is not None
            if run is not None:
                self.query_one(RunsTable).follow_rerun(run_name(run))
            self.post_message(Rerun(self.run_id))
        elif self.event_id is not None:
            self.post_message(Fire(self.event_id))
        else:
            self.notify("Nothing selected", severity="warning")

    def action_cancel(self) -> None:
        """Cancel the selected run (Functions or Output focused) or the event's runs.

        The selection stays where it is: the user acted on it.
        """
        self.query_one(RunsTable).pin()
        if self._act_on_run():
            assert self.run_id is not None
            self.post_message(CancelRun(self.run_id))
        elif self.event_id is not None:
            self.post_message(CancelEvent(self.event_id))
        else:
            self.notify("Nothing selected", severity="warning")

    def action_approve(self) -> None:
        """Approve the selected event when it is a fork's pull request waiting for approval."""
        stored = self._selected_event()
        if stored is None or stored.event.id is None:
            self.notify("Nothing selected", severity="warning")
            return
        if not awaits_approval(stored):
            self.notify("This event is not waiting for approval", severity="warning")
            return
        self.post_message(Approve(stored))

    def action_attempts(self) -> None:
        """Show or hide the older attempts of the selected function."""
        table = self.query_one(RunsTable)
        if table.toggle_attempts():
            table.focus()

    def action_details(self) -> None:
        """Show the selected event in full."""
        stored = self._selected_event()
        if stored is not None:
            runs = self.runs.get(stored.event.id or -1)
            self.post_message(
                ShowEventDetails(
                    stored, list(runs.values()) if runs is not None else None, self.queue_order
                )
            )

    @work(group="repos", exclusive=True, exit_on_error=False)
    async def action_repositories(self) -> None:
        """Show how every repository stands."""
        if not self.services.started:
            return
        self.post_message(ShowRepositories(await self.services.repositories()))

    def action_link(self) -> None:
        """Copy the selected event's page on the forge and show it as a link."""
        stored = self._selected_event()
        if stored is None:
            return
        if stored.event.url:
            self.post_message(CopyText(stored.event.url, "the event's page"))
        else:
            self.notify("No page is known for this event", severity="warning")

    def action_pager(self) -> None:
        """Open the selected run's full log in $PAGER."""
        run = self._selected_run()
        if run is None or not run.log_path:
            self.notify("No log for the selection", severity="warning")
            return
        self.post_message(OpenLog(run.log_path))

    @on(Fire)
    def _follow_fired(self, message: Fire) -> None:
        """The user fired an event again: if it is selected, follow its new runs (the message
        goes on up to the app, which fires it)."""
        if message.event_id == self.event_id:
            self.query_one(RunsTable).follow_newest()

    def selection(self) -> dict[str, Any]:
        """What is selected (for commands and tests)."""
        return {"event_id": self.event_id, "run_id": self.run_id}
