"""Following the newest event through a storm of deliveries: the cursor moves to the head at
most once per interval, so the Functions and Output panes are not loaded and rewritten for
every batch; the bridge calms its flushes for a steady storm too. With the UI embedded the
listener shares the event loop with these repaints: per batch they held intake up for
hundreds of milliseconds and key presses with it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from textual.app import App, ComposeResult
from textual.message import Message
from textual.message_pump import MessagePump

from pocketci_tui.model import EventStatus, EventStored, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.bridge import BURST_EVENTS, EngineBridge
from pocketci_tui.tui.widgets.events_table import MAX_ROWS, EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import ScriptedEngine, ScriptedServices, push
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded

HOUR = 3600.0
"""A follow interval no test outlasts: the cursor's next move to the head stays pending."""


def count_calls(owner: Any, name: str) -> list[int]:
    """Count the calls of ``owner.name`` from now on."""
    calls = [0]
    original = getattr(owner, name)

    def counting(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return original(*args, **kw)

    setattr(owner, name, counting)
    return calls


async def one_by_one(
    services: Any, table: EventsTable, pilot: Any, first: int, count: int
) -> list[int]:
    """Publish ``count`` new events, each shown before the next is published (one batch each,
    as a steady storm arrives); return their ids."""
    ids = []
    for n in range(count):
        event_id = first + n
        sha = f"{event_id:040x}"
        event = replace(push(f"follow-{event_id}", "acme/api", "main", sha, 1), id=event_id)
        services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        await wait_for(lambda e=event_id: table.event(e) is not None, pilot)  # type: ignore[misc]
        ids.append(event_id)
    return ids


async def test_following_the_head_through_a_storm_loads_the_panes_once_per_interval(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        table = main.query_one(EventsTable)
        table.focus()
        table.move_cursor(row=0)
        await wait_for(lambda: main.event_id == table.selected_id, pilot)
        await pilot.pause(0.2)
        table.follow_interval = HOUR
        loads = count_calls(main, "load_runs")
        rewrites = count_calls(main.query_one(RunLog), "clear")
        ids = await one_by_one(services, table, pilot, 9000, 20)
        await pilot.pause(0.3)
        # The first new event is followed at once; the next move waits for the interval.
        assert loads[0] == 1, loads[0]
        assert rewrites[0] <= 1, rewrites[0]
        assert table.follow_pending
        assert table.selected_id == ids[0]
        assert main.event_id == ids[0]  # the panes show what the cursor is on
        assert [e.event.id for e in table.events][:20] == ids[::-1]


async def test_the_cursor_reaches_the_newest_when_the_wait_is_over(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        table = main.query_one(EventsTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause(0.2)
        table.follow_interval = 0.5
        ids = await one_by_one(services, table, pilot, 9100, 6)
        await wait_for(lambda: main.event_id == ids[-1], pilot)
        assert table.selected_id == ids[-1]
        assert table.cursor_row == 0
        assert not table.follow_pending


async def test_moving_the_cursor_while_it_waits_stops_following(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        table = main.query_one(EventsTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause(0.2)
        table.follow_interval = HOUR
        ids = await one_by_one(services, table, pilot, 9200, 3)
        assert table.follow_pending
        assert table.selected_id == ids[0]
        await pilot.press("down")
        below = [e.event.id for e in table.events][table.cursor_row]
        await wait_for(lambda: main.event_id == below, pilot)
        assert below != ids[0]
        assert not table.follow_pending
        await one_by_one(services, table, pilot, 9300, 3)
        await pilot.pause(0.2)
        assert table.selected_id == below  # where the user put it
        assert main.event_id == below


class NoteApp(App[None]):
    """The Output pane's log alone."""

    def compose(self) -> ComposeResult:
        """Just the log."""
        yield RunLog(id="log")


async def test_the_same_note_again_is_not_written_again() -> None:
    async with NoteApp().run_test(size=(80, 20)) as pilot:
        log = pilot.app.query_one(RunLog)
        log.show_note(["first paragraph", "second paragraph"])
        await pilot.pause()
        shown = list(log.lines)
        rewrites = count_calls(log, "clear")
        log.show_note(["first paragraph", "second paragraph"])
        assert rewrites[0] == 0
        assert list(log.lines) == shown
        log.show_note(["another note"])
        assert rewrites[0] == 1
        assert log.lines[0].startswith("another note")


class Inbox(MessagePump):
    """Keeps the bridge's messages."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[Message] = []

    def post_message(self, message: Message) -> bool:
        """Keep it."""
        self.messages.append(message)
        return True


async def test_a_steady_storm_calms_the_bridges_flushes(app_paths: AppPaths) -> None:
    """One new event per flush, as at 17 deliveries a second, is a burst too: the next flush
    waits the burst's interval, not the usual 50 ms."""
    inbox = Inbox()
    engine = ScriptedEngine()
    services = ScriptedServices(app_paths, engine)
    app_paths.data_dir.mkdir(parents=True, exist_ok=True)
    await services.start()
    # A window no test outlasts: ten events spread over many flushes are counted together.
    bridge = EngineBridge(inbox, interval=0.05, burst_window=HOUR)
    bridge.attach(services)
    await asyncio.sleep(0.1)  # what a new subscriber is told at once (counts, problems)
    inbox.messages.clear()
    for n in range(BURST_EVENTS):
        event = replace(push(f"steady-{n}", "acme/api", "main", f"{n:040x}", 1), id=100 + n)
        engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
        # Each event its own batch, flushed before the next arrives.
        await wait_until(lambda n=n: len(inbox.messages) == n + 1)
    event = replace(push("steady-last", "acme/api", "main", "f" * 40, 1), id=999)
    engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
    # Timers fire in the order of their deadlines: a 50 ms flush would come before this wakes.
    await asyncio.sleep(0.1)
    assert len(inbox.messages) == BURST_EVENTS
    await wait_until(lambda: len(inbox.messages) == BURST_EVENTS + 1)
    bridge.detach()
    await services.stop()


async def wait_until(condition: Any, limit: float = 30.0) -> None:
    """Let the loop run until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_new_rows_replacing_old_ones_in_a_full_page_lay_nothing_out(
    app_paths: AppPaths,
) -> None:
    """Removing a row asks Textual for a layout of the whole screen; once the page is full,
    each new row replaces an old one and the table keeps its size, so a batch repaints the
    table only."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        table = main.query_one(EventsTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause(0.2)
        for start in range(0, MAX_ROWS, 50):
            for n in range(start, start + 50):
                event = replace(push(f"fill-{n}", "acme/api", "main", f"{n:040x}", 1), id=9500 + n)
                services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
            await wait_for(lambda n=n: table.event(9500 + n) is not None, pilot)  # type: ignore[misc]
        await wait_for(lambda: main.event_id == 9500 + MAX_ROWS - 1, pilot)
        assert table.row_count == MAX_ROWS
        table.move_cursor(row=2)  # not following: the other panes stay as they are
        await wait_for(lambda: main.event_id == table.selected_id, pilot)
        await pilot.pause(0.3)
        layouts = count_calls(main._compositor, "reflow")
        chosen = table.selected_id
        ids = await one_by_one(services, table, pilot, 9800, 5)
        await pilot.pause(0.3)
        assert layouts[0] == 0
        assert table.row_count == MAX_ROWS
        assert table.selected_id == chosen
        assert [e.event.id for e in table.events][:5] == ids[::-1]
        assert [int(str(row.key.value)) for row in table.ordered_rows][:5] == ids[::-1]
