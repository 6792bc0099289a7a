"""Attributes down, messages up: the main screen asks for what the user wants with command
messages that bubble to the app, and the app answers by setting the screen's state."""

from __future__ import annotations

from textual.message import Message

from pocketci_tui.contract import CountsChanged, ProblemsChanged
from pocketci_tui.paths import AppPaths
from pocketci_tui.problems import Problem
from pocketci_tui.tui.messages import (
    CancelEvent,
    CancelRun,
    EngineActivity,
    Fire,
    OpenFirePicker,
    OpenLog,
    Rerun,
)
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

COMMANDS = (OpenFirePicker, Fire, Rerun, CancelRun, CancelEvent, OpenLog)


async def test_the_screens_commands_go_up_as_messages_and_the_app_carries_them_out(
    app_paths: AppPaths,
) -> None:
    services, ids = await seeded(app_paths)
    app, pager_calls = build(services, app_paths)
    seen: list[Message] = []
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("r", "c")  # Events focused: the whole event
        await pilot.press("tab", "r", "c", "p")  # Functions focused: the selected run
        await wait_for(lambda: len(services.engine.calls) == 4, pilot)
        await wait_for(lambda: bool(pager_calls), pilot)
        # The hook sees a message at each node it passes on its way up: once each.
        commands = list({id(m): m for m in seen if isinstance(m, COMMANDS)}.values())
        assert commands == [
            Fire(ids["failed"]),
            CancelEvent(ids["failed"]),
            Rerun("run-main-test"),
            CancelRun("run-main-test"),
            OpenLog(f"{ids['failed']}/run-main-test.log"),
        ]
        assert services.engine.calls == [
            ("fire", ids["failed"]),
            ("cancel_event", ids["failed"]),
            ("rerun", "run-main-test"),
            ("cancel", "run-main-test"),
        ]
        assert pager_calls[0][-1] == str(app_paths.logs_dir / f"{ids['failed']}/run-main-test.log")


async def test_the_app_sets_the_screens_listener_state_and_the_screen_shows_it(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        status = main.query_one(StatusBar)
        assert not main.starting
        assert main.listener_url == "http://127.0.0.1:8080"
        assert status.url == "http://127.0.0.1:8080"
        main.starting = True  # what the app does when it starts again after an unlock
        main.listener_url = ""
        assert status.starting
        assert status.url == ""
        assert status.problems == ()


async def test_the_status_bar_changes_when_told_and_is_not_polled(app_paths: AppPaths) -> None:
    """The counts and the engine's problems come as notices, the start's problems when the
    app says they changed: nothing redraws the bar on a timer any more."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        main = screen(app)
        status = main.query_one(StatusBar)
        main.post_message(
            EngineActivity(
                counts=CountsChanged(queued=3, running=2),
                problems=ProblemsChanged((Problem("dagger", "dagger not found", "no dagger"),)),
            )
        )
        await wait_for(lambda: (status.queued, status.running) == (3, 2), pilot)
        assert [p.key for p in status.problems] == ["dagger"]
        # A problem the app keeps but has not told the screen about is not picked up by a
        # clock tick (the screen's clock ticks every second)...
        app.problems.raise_problem(Problem("start", "start failed", "it did not start"))
        await pilot.pause(1.5)
        assert [p.key for p in status.problems] == ["dagger"]
        # ...it shows once the app says its problems changed.
        main.refresh_status()
        assert [p.key for p in status.problems] == ["start", "dagger"]
