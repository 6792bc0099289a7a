"""While output floods in, the UI takes the engine's batches at a calmer pace: every batch
redraws the Output pane, and a key press waits behind a redraw under way (SPEC 6: key press to
screen while output streams)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pocketci_tui.model import RunOutput
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.bridge import DEFAULT_INTERVAL, FLOOD_INTERVAL, MAX_PENDING_LINES
from pocketci_tui.tui.widgets.run_log import RunLog

from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event


async def test_batches_come_less_often_while_output_floods(
    app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: screen(app).run_id == "run-rel-build", pilot)
        log = screen(app).query_one(RunLog)
        bridge = app._bridge
        assert bridge is not None
        loop = asyncio.get_running_loop()
        delays: list[float] = []
        call_later = loop.call_later

        def recording(delay: float, callback: Callable[..., Any], *args: Any) -> Any:
            if callback == bridge.flush:
                delays.append(delay)
            return call_later(delay, callback, *args)

        monkeypatch.setattr(loop, "call_later", recording)

        def publish(count: int, start: int) -> None:
            lines = tuple(f"line {n}" for n in range(start, start + count))
            services.engine.publish(RunOutput("run-rel-build", lines))

        async def flushed(after: int) -> None:
            await wait_for(lambda: bridge.flushes > after, pilot)

        # A flood: more lines than one batch holds (the oldest are dropped, one marker says).
        done = bridge.flushes
        publish(MAX_PENDING_LINES + 500, 0)
        await flushed(done)
        await wait_for(lambda: log.lines[-1] == f"line {MAX_PENDING_LINES + 499}", pilot)
        # The next batch waits longer...
        done = bridge.flushes
        publish(10, 10_000)
        await flushed(done)
        # ... and once a batch holds every line again, the usual pace comes back.
        done = bridge.flushes
        publish(10, 20_000)
        await flushed(done)
        await wait_for(lambda: log.lines[-1] == "line 20009", pilot)
        assert delays == [DEFAULT_INTERVAL, FLOOD_INTERVAL, DEFAULT_INTERVAL]
        assert FLOOD_INTERVAL > DEFAULT_INTERVAL
