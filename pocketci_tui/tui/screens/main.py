"""The main screen: Events, Functions of the selected event, Output of the selected run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Input, Label
from textual.worker import Worker, WorkerState

from pocketci_tui.config.engines import LOCAL_ENGINE
from pocketci_tui.contract import CoreClient, CountsChanged
from pocketci_tui.eventquery import parse as parse_query
from pocketci_tui.model import EventStatus, Run, RunState, StoredEvent
from pocketci_tui.problems import Problem, merge

from ..messages import (
    EngineActivity,
    RecheckProblems,
    RefusalsChanged,
    ServicesStarted,
)
from ..text import SEPARATOR, Part, clean, clean_lines, fit_parts, format_time, literal, queue_note
from ..widgets.events_table import MAX_ROWS, EventsTable
from ..widgets.field import Field
from ..widgets.footer import KeysFooter
from ..widgets.output_pane import OutputPane
from ..widgets.run_log import MAX_LINES, RunLog
from ..widgets.runs_table import RunsTable, run_name
from ..widgets.status import overall_state
from ..widgets.status_bar import StatusBar
from .main_actions import SelectionActionsScreen
from .main_keys import MAIN_BINDINGS
from .notes import event_note, no_match_note, welcome_note

PAGE_SIZE = 200
"""Events loaded per page."""
STATUS_PRELOAD = 40
"""Newest events whose runs are loaded in the background to show their overall state."""
FILTER_DELAY = 0.15
"""Seconds of typing quiet before the filter queries the store."""
NARROW_WIDTH = 110
"""Below this many columns, the Functions pane shows states as icons."""


class MainScreen(SelectionActionsScreen):
    """Three panes and a status bar; every action works on the selection."""

    BINDINGS: ClassVar[list[BindingType]] = MAIN_BINDINGS

    filter_text: reactive[str] = reactive("", init=False)
    """Text the Events pane is filtered by."""
    listener_url: reactive[str] = reactive("", init=False)
    """The listener's base URL, empty while it does not listen (set by the app)."""
    starting: reactive[bool] = reactive(True, init=False)
    """True while the services start (set by the app)."""
    counts: reactive[CountsChanged | None] = reactive(None, init=False)
    """How many runs are queued and running, as last told (None: not told yet)."""
    engine_problems: reactive[tuple[Problem, ...]] = reactive((), init=False)
    """What the engine finds wrong, as last told."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        services: CoreClient,
        logs_dir: Path,
        problems: Iterable[Problem] = (),
    ) -> None:
        super().__init__()
        self._clock = clock
        self.services = services
        """The running instance whose events, runs and output the panes show (set by the app
        once started)."""
        self.logs_dir = logs_dir
        """Where the runs' log files are."""
        self.start_problems = problems
        """The problems of starting the services, as the app keeps them (read when shown)."""
        self.runs: dict[int, dict[str, Run]] = {}
        """Known runs per event id."""
        self.queue_order: list[str] = []
        """The queued runs' ids, first to start first (read again as runs change)."""
        self.forges: tuple[tuple[str, str], ...] = (("GitHub", "github"),)
        """(name, vendor) of each forge the config names, whose webhook URL the empty Output
        pane gives (set by the app)."""
        self._more = True

    def compose(self) -> ComposeResult:
        """Status bar, the three panes and the footer."""
        yield StatusBar(id="status")
        with Vertical(id="events-pane", classes="pane") as pane:
            pane.border_title = "Events"
            yield Field(
                placeholder="filter: text state:failed event:tag repo:acme/* (Esc clears)",
                id="events-filter",
            )
            yield EventsTable(self._clock, id="events")
        with Horizontal(id="lower"):
            with Vertical(id="runs-pane", classes="pane") as runs:
                runs.border_title = "Functions"
                yield RunsTable(self._clock, id="runs")
            with OutputPane(id="log-pane", classes="pane") as log:
                log.border_title = "Output"
                yield Label("", id="run-reason", markup=False)
                yield Field(placeholder="search the whole log (Esc clears)", id="log-search")
                yield RunLog(id="log")
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        """Start the clock tick; show the empty state."""
        self.query_one("#events-filter", Input).cursor_blink = not self.app.is_headless
        self.query_one(EventsTable).focus()
        self.set_interval(1.0, self._tick)
        pane = self.query_one("#log-pane")

        def show_log_state(text: str) -> None:
            pane.border_subtitle = text

        self.watch(self.query_one(RunLog), "status_line", show_log_state)
        self.query_one(RunLog).stamp_zone = self._clock().tzinfo
        self._show_placeholder()

    def on_resize(self, event: events.Resize) -> None:
        """Icons instead of state words in the Functions pane on narrow screens."""
        narrow = event.size.width < NARROW_WIDTH
        self.query_one(RunsTable).set_compact(narrow)
        self.query_one(KeysFooter).show_command_palette = not narrow
        self.call_after_refresh(self._retitle)

    # -- loading -----------------------------------------------------------------------------

    def on_services_started(self, message: ServicesStarted) -> None:
        """Load the newest page once the store is open."""
        self.load_page()
        self.refresh_queue()
        self._tick()

    @work(group="db", exclusive=True, exit_on_error=False)
    async def load_page(self) -> None:
        """Show the newest page of events (filtered when a filter is set)."""
        services = self.services
        if not services.started:
            return
        text = self.filter_text
        events: list[StoredEvent] = await services.events_page(limit=PAGE_SIZE, text=text)
        self._more = len(events) >= PAGE_SIZE
        table = self.query_one(EventsTable)
        table.set_events(events, self._runs_lists())
        self._update_events_title(len(events))
        if not events:
            self._show_placeholder()
        self.preload_states([e.event.id for e in events[:STATUS_PRELOAD] if e.event.id is not None])

    @work(group="preload", exclusive=True, exit_on_error=False)
    async def preload_states(self, ids: list[int]) -> None:
        """Load the runs of the newest events so their overall state shows."""
        services = self.services
        table = self.query_one(EventsTable)
        if not services.started:
            return
        for event_id in ids:
            if event_id in self.runs:
                continue
            runs: list[Run] = await services.runs(event_id)
            self.runs[event_id] = {run.id: run for run in runs}
            table.refresh_event(event_id, self._runs_lists())

    @on(EventsTable.NearEnd)
    def _near_end(self) -> None:
        if self._more:
            self.load_older()

    @work(group="db-older", exclusive=True, exit_on_error=False)
    async def load_older(self) -> None:
        """Append the next older page."""
        table = self.query_one(EventsTable)
        shown = table.events
        services = self.services
        if not shown or shown[-1].event.id is None or not services.started:
            return
        events = await services.events_page(
            limit=PAGE_SIZE, before_id=shown[-1].event.id, text=self.filter_text
        )
        self._more = len(events) >= PAGE_SIZE
        table.append_events(events, self._runs_lists())
        self._update_events_title(len(table.events))

    def _update_events_title(self, shown: int) -> None:
        pane = self.query_one("#events-pane")
        title = "Events"
        if self.filter_text:
            title += f" · /{clean(self.filter_text)[:30]}"
        pane.border_title = title
        problems = parse_query(self.filter_text).problems
        if problems:
            pane.border_subtitle = clean(problems[0])[:50]
        else:
            pane.border_subtitle = f"{shown}{'+' if self._more else ''} shown" if shown else ""

    def _runs_lists(self) -> dict[int, list[Run]]:
        return {event_id: list(runs.values()) for event_id, runs in self.runs.items()}

    # -- selection ---------------------------------------------------------------------------

    @on(EventsTable.EventSelected)
    def _event_selected(self, message: EventsTable.EventSelected) -> None:
        self.event_id = message.event_id

    def watch_event_id(self, event_id: int | None) -> None:
        """Load the selected event's runs."""
        self.refresh_bindings()
        if event_id is None:
            self.query_one(RunsTable).set_runs([])
            self._show_placeholder()
            return
        self.load_runs(event_id)

    @work(group="runs-load", exclusive=True, exit_on_error=False)
    async def load_runs(self, event_id: int) -> None:
        """Fetch an event's runs and show them."""
        services = self.services
        if not services.started:
            return
        runs: list[Run] = await services.runs(event_id)
        deliveries = await services.status_deliveries([run.id for run in runs])
        known = self.runs.setdefault(event_id, {})
        for run in runs:
            current = known.get(run.id)
            if current is None or not (current.state.finished and not run.state.finished):
                known[run.id] = run
        if self.event_id != event_id:
            return
        table = self.query_one(RunsTable)
        table.set_runs(known.values(), new_event=True)
        table.set_deliveries(deliveries)
        selected = self._selected_run()
        if selected is not None:
            self._show_reason(selected)
        self.query_one(EventsTable).refresh_event(event_id, self._runs_lists())
        if not known:
            self.run_id = None
            self._show_placeholder()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place for failures of this screen's data workers: say so, keep running.

        A worker that finishes while the app tears the screen down finds its panes gone;
        that is not worth a word.
        """
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, NoMatches) or not self.is_attached:
            return
        self.notify(
            f"{event.worker.group}: {error}", title="Could not load", severity="error", markup=False
        )

    @on(RunsTable.RunSelected)
    def _run_selected(self, message: RunsTable.RunSelected) -> None:
        if message.run_id is None:
            self.run_id = None
            self._show_placeholder()
        else:
            if message.run_id == self.run_id:
                return
            self.run_id = message.run_id

    def watch_run_id(self, run_id: str | None) -> None:
        """Show the selected run's output."""
        self.refresh_bindings()
        if run_id is not None:
            self.show_run(run_id)

    def _show_placeholder(self) -> None:
        """With no run selected, the Output pane explains the event (or how to start)."""
        log = self.query_one(RunLog)
        reason = self.query_one("#run-reason", Label)
        stored = self._selected_event()
        pane = self.query_one("#log-pane")
        pane.border_title = "Output"
        reason.display = False
        if stored is None and self.filter_text:
            log.show_note(no_match_note(self.filter_text))
        elif stored is None:
            reason.update("")
            log.show_note(welcome_note(self._problems(), self.listener_url, self.forges))
        else:
            log.show_note(event_note(stored))

    @work(group="log", exclusive=True, exit_on_error=False)
    async def show_run(self, run_id: str, *, at_failure: bool = True) -> None:
        """Fill the Output pane with a run's output: live tail, or the log file's end (a failed
        run's opens at its failure line, unless ``at_failure`` is False)."""
        run = self._selected_run()
        if run is None:
            return
        log = self.query_one(RunLog)
        label = run_name(run) + (f" #{run.attempt}" if run.attempt > 1 else "")
        self._show_reason(run)
        if run.state is RunState.SKIPPED:
            log.show("", ["This function did not run (the reason is above)."])
            return
        # The tail says where it ends: the batches on their way are joined to it by position,
        # so a line is never shown twice (or lost), however long the answer took.
        tail = await self.services.output_tail(run, MAX_LINES)
        if self.run_id != run_id:
            return
        log_file = self.logs_dir / run.log_path if run.log_path else None
        failed = at_failure and run.state is RunState.FAILED
        log.show(
            label if run.log_path else "",
            clean_lines(tail.lines),
            tail.end,
            path=log_file,
            failed=failed,
            times=tail.times,
            started=run.started_at.timestamp() if run.started_at else None,
        )

    @on(RunLog.StampsChanged)
    def _stamps_changed(self) -> None:
        if (run := self._selected_run()) is not None:
            self._show_reason(run)

    @on(RunLog.TailWanted)
    def _tail_wanted(self) -> None:
        """End after reading an older part of the log: show (and follow) the tail again."""
        if self.run_id is not None:
            self.show_run(self.run_id, at_failure=False)

    def _names_engine(self, run: Run) -> bool:
        """Whether the title names the run's engine: with a pool configured, or when it ran
        on one (a single engine without a pool is always the implicit one, not worth saying)."""
        if not run.engine:
            return False
        return bool(self.services.settings.dagger.engines) or run.engine != LOCAL_ENGINE

    def _title_run(self, run: Run) -> None:
        """The Output pane's title: the stamps shown, the function, its attempt and, while
        zoomed, its state. A long name is what gives way (cut with ``…``): at 80 columns the
        end of the title, the attempt and state, was cut instead."""
        pane = self.query_one("#log-pane")
        times = self.query_one(RunLog).stamp_title.removeprefix(SEPARATOR)
        parts = [
            Part("Output"),
            *([Part(times)] if times else []),
            Part(clean(run_name(run)), cut=True),
            *([Part(f"#{run.attempt}", glued=True)] if run.attempt > 1 else []),
            *([Part(str(run.state))] if self.has_class("-zoom-output") else []),
            *([Part(f"on {clean(run.engine)}", drop=1)] if self._names_engine(run) else []),
        ]
        # The border keeps a corner, a line and a blank on either side of its title.
        pane.border_title = fit_parts(parts, pane.size.width - 6 if pane.size.width else 1000)

    def _retitle(self) -> None:
        """Fit the title again once the pane has its new width (zoom, a resized terminal)."""
        if (run := self._selected_run()) is not None:
            self._title_run(run)

    def _show_reason(self, run: Run) -> None:
        """The reason line above the output, and the pane's title: the function, its attempt,
        and, while zoomed (the Functions pane hidden), its state."""
        self._title_run(run)
        reason = self.query_one("#run-reason", Label)
        text = ""
        if run.state is RunState.FAILED:
            last = run.reason.strip().splitlines()[-1] if run.reason.strip() else ""
            code = f"exit {run.exit_code}" if run.exit_code is not None else "failed"
            text = f"✗ failed ({code}){': ' + last if last else ''}"
        elif run.state in (RunState.CANCELLED, RunState.INTERRUPTED):
            text = f"■ {run.state}{': ' + run.reason.strip() if run.reason.strip() else ''}"
        elif run.state is RunState.SKIPPED:
            text = f"- skipped: {run.reason.strip()}"
        elif run.state is RunState.QUEUED and (place := queue_note(run.id, self.queue_order)):
            text = f"· queued: {place}"
        delivery = self.query_one(RunsTable).deliveries.get(run.id)
        refused = delivery is not None and delivery.delivery == "failed"
        shown = literal(text, limit=300)
        if delivery is not None and refused:
            # Where the user looks at a run: why the forge did not get its status.
            why = literal(f"! commit status not posted: {delivery.detail}", limit=300)
            shown = Text.assemble(shown, "\n", why) if text else why
        stored = self._selected_event()
        broke = stored is not None and stored.status is EventStatus.ERROR and bool(stored.detail)
        if stored is not None and broke:
            # A later dispatch (a re-run, a re-fire) failed before any run: the runs shown are
            # older ones, and without this line only the Events pane's "! error" said so.
            why = literal(f"! event error: {stored.detail.strip().splitlines()[0]}", limit=300)
            shown = Text.assemble(shown, "\n", why) if text or refused else why
        shown.no_wrap, shown.overflow = False, "fold"  # wrapped (up to 3 lines), never cut
        reason.update(shown)
        reason.display = bool(text) or refused or broke
        reason.set_class(run.state is RunState.FAILED or refused or broke, "-failed")

    # -- live updates ------------------------------------------------------------------------

    def on_refusals_changed(self, message: RefusalsChanged) -> None:
        """Count the listener's refusals in the status bar, with the last one's time and why."""
        status = self.query_one(StatusBar)
        last = message.summary.last
        status.refused = message.summary.count
        status.refused_last = f"{format_time(last.at, self._clock())} {last.reason}"

    def on_engine_activity(self, activity: EngineActivity) -> None:
        """Apply a batch of engine notices: each pane takes what it shows."""
        table = self.query_one(EventsTable)
        was_empty = not table.events
        for run in activity.runs.values():
            self.runs.setdefault(run.event_id, {})[run.id] = run
        lists = self._runs_lists()  # once per batch: a burst must not cost per notice
        new = table.apply_activity(activity, lists, self._passes_filter)
        if activity.runs:
            self.refresh_queue()
        if activity.runs and parse_query(self.filter_text).states:
            # A state filter: events whose state changed may now pass or fail it; the store
            # tells (after the usual typing delay, so a burst asks once).
            self._filter_later()
        if new and len(table.events) >= MAX_ROWS:
            self._more = True  # the oldest rows left the pane; they page in again
        self._apply_to_selection(activity)
        if activity.stored and any(p.key == "webhook-secret" for p in self.start_problems):
            # A delivery got in, so the secret may have been set meanwhile (`pocketci-tui
            # secrets set` from another terminal): look again rather than keep saying it is not.
            self.post_message(RecheckProblems())
        if new or (was_empty and table.events):
            self._update_events_title(len(table.events))
        # The status bar follows these two (see the watchers); nothing polls the engine.
        if activity.counts is not None:
            self.counts = activity.counts
        if activity.problems is not None:
            self.engine_problems = activity.problems.problems

    def _apply_to_selection(self, activity: EngineActivity) -> None:
        """The Functions and Output panes follow the selected event and run."""
        event_id = self.event_id
        known = self.runs.get(event_id, {}) if event_id is not None else {}
        if event_id in activity.updated and not known and self._selected_event() is not None:
            self._show_placeholder()
        self.query_one(RunsTable).apply_activity(activity, event_id, known)
        if self.run_id is not None and self.run_id in activity.runs:
            self._show_reason(activity.runs[self.run_id])
        elif (self.run_id in activity.deliveries or event_id in activity.updated) and (
            run := self._selected_run()
        ) is not None:
            self._show_reason(run)  # the commit status, or the event's own error, changed
        if event_id is not None and event_id in activity.matched and not known:
            self.load_runs(event_id)
        self.query_one(RunLog).apply_activity(activity, self.run_id)

    def _passes_filter(self, stored: StoredEvent) -> bool:
        """Whether a live event passes the filter, read as the store reads it."""
        query = parse_query(self.filter_text)
        if query.empty:
            return True
        runs = self.runs.get(stored.event.id or -1)
        state = overall_state(stored, list(runs.values()) if runs is not None else None)
        return query.matches(stored.event, state)

    def watch_starting(self, starting: bool) -> None:
        """Starting again (after an unlock): the bar forgets the last start's problems."""
        status = self.query_one(StatusBar)
        status.starting = starting
        if starting:
            self.engine_problems = ()  # those of the engine just stopped
            status.problems = ()

    def watch_listener_url(self, url: str) -> None:
        """Show where webhooks go."""
        self.query_one(StatusBar).url = url.rstrip("/") if url else ""

    def watch_counts(self) -> None:
        """Show the new counts."""
        self._update_status()

    def watch_engine_problems(self) -> None:
        """Show what the engine finds wrong now."""
        self._update_status()

    def refresh_status(self) -> None:
        """Show the start's problems as the app keeps them now: in the status bar, and in
        full in the Output pane while no event is selected (the app calls this when they
        changed)."""
        self._update_status()
        self._tick()
        if self.event_id is None:
            self._show_placeholder()

    def _tick(self) -> None:
        """The clock: the running runs' durations (the status bar changes only when told)."""
        self.query_one(RunsTable).tick()

    def _update_status(self) -> None:
        status = self.query_one(StatusBar)
        if self.counts is not None:
            status.queued, status.running = self.counts.queued, self.counts.running
            status.engines = self.counts.engines
        status.problems = self._problems()

    def _problems(self) -> tuple[Problem, ...]:
        """The app's problems and the engine's (as told), once per key, errors first."""
        return merge(self.start_problems, self.engine_problems)

    # -- actions -----------------------------------------------------------------------------

    def action_zoom(self) -> None:
        """z: the Output pane (or the Events pane, when focused) fills the screen; z again
        brings the other panes back. The run shown stays the one chosen while zoomed."""
        if self.has_class("-zoom-output") or self.has_class("-zoom-events"):
            self.remove_class("-zoom-output", "-zoom-events")
        elif self.focused is not None and self.query_one("#events-pane") in (
            self.focused,
            *self.focused.ancestors,
        ):
            self.add_class("-zoom-events")
        else:
            self.add_class("-zoom-output")
            self.query_one(RunsTable).pin()
            self.query_one(RunLog).focus()
        self.refresh_bindings()  # Esc's way back shows in the footer only while zoomed
        self.call_after_refresh(self._retitle)
        run = self._selected_run()
        if run is not None:
            self._show_reason(run)

    def action_unzoom(self) -> None:
        """Esc while zoomed (once the search, the selection and the filter have had theirs):
        the other panes back, as z does."""
        if self.has_class("-zoom-output") or self.has_class("-zoom-events"):
            self.action_zoom()

    def action_filter(self) -> None:
        """Show the filter input."""
        field = self.query_one("#events-filter", Input)
        field.display = True
        field.focus()

    def action_quick_filter(self, terms: str) -> None:
        """Filter the events by ``terms`` at once, or show them all when that filter is on."""
        field = self.query_one("#events-filter", Input)
        if field.value.strip() == terms:
            field.value = ""
            field.display = False
        else:
            field.value = terms
            field.display = True
        self.query_one(EventsTable).focus()

    @on(Input.Changed, "#events-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip()

    def watch_filter_text(self) -> None:
        """Re-query the store shortly after typing stops."""
        self._filter_later()

    @work(group="db", exclusive=True, exit_on_error=False)
    async def _filter_later(self) -> None:
        await asyncio.sleep(FILTER_DELAY)
        self.load_page()

    @on(Input.Submitted, "#events-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(EventsTable).focus()
        if not event.value.strip():
            event.input.display = False

    def key_escape(self) -> None:
        """Escape in the filter clears and hides it."""
        field = self.query_one("#events-filter", Input)
        if field.display and (self.focused is field or field.value):
            field.value = ""
            field.display = False
            self.query_one(EventsTable).focus()

    @work(group="queue", exclusive=True, exit_on_error=False)
    async def refresh_queue(self) -> None:
        """Read the queue's order again (a queued run shows its place in it)."""
        if not self.services.started:
            return
        self.queue_order = await self.services.queue_order()
        run = self._selected_run()
        if run is not None and run.state is RunState.QUEUED:
            self._show_reason(run)
