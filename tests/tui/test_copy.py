"""Copying over SSH: output lines selected by keyboard, the log's path, the webhook URL and (once
confirmed) its secret reach the terminal as OSC 52 sequences, and the notification says what
was copied and how many bytes (never a secret's value)."""

from __future__ import annotations

import base64
from pathlib import Path

from textual.pilot import Pilot

from pocketci_tui.config import Settings
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
from pocketci_tui.tui.dialogs.webhook import WebhookDialog
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog

from .fakes import TEST_LOG
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded, select_event

FAILURE = TEST_LOG.index("--- FAIL: TestLogin (0.03s)")
SECRET = "0f" * 32  # the scripted services' webhook secret


def osc52(text: str) -> str:
    """What the terminal must receive to put ``text`` on the clipboard."""
    return "\x1b]52;c;" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "\a"


def capture(app: PocketCIApp) -> list[str]:
    """Everything the app writes to its terminal from now on."""
    driver = app._driver
    assert driver is not None
    written: list[str] = []
    write = driver.write

    def recording(data: str) -> None:
        written.append(data)
        write(data)

    driver.write = recording  # type: ignore[method-assign]
    return written


def copies(written: list[str]) -> list[str]:
    """The OSC 52 sequences among what was written."""
    return [data for data in written if data.startswith("\x1b]52;")]


def notes(app: PocketCIApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def _failed_run_in_focus(app: PocketCIApp, pilot: Pilot[int], event_id: int) -> RunLog:
    """Show the failed test run (opened at its failure) and focus its output."""
    await ready(app, pilot, 5)
    await select_event(app, pilot, event_id)
    main = screen(app)
    await wait_for(lambda: main.run_id == "run-main-test", pilot)
    log = main.query_one(RunLog)
    await wait_for(lambda: log.current == FAILURE, pilot)
    log.focus()
    await pilot.pause()
    return log


async def test_y_copies_the_line_in_focus_as_osc_52(app_paths: AppPaths) -> None:
    """Without a selection, y copies the marked line (here the failure line)."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        written = capture(app)
        await _failed_run_in_focus(app, pilot, ids["failed"])
        await pilot.press("y")
        line = TEST_LOG[FAILURE]
        await wait_for(lambda: copies(written) == [osc52(line)], pilot)
        assert app._clipboard == line
        size = len(line.encode())
        assert f"Copied a line of output ({size} bytes) to the clipboard (OSC 52): {line}" in (
            notes(app)
        )


async def test_v_selects_a_range_that_the_arrows_and_j_k_extend(app_paths: AppPaths) -> None:
    """V starts on the line in focus; ↓ and j extend the selection, k takes one back; y copies
    the lines (with the time column when it is shown) and ends the selection; Escape drops a
    selection without copying."""
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        written = capture(app)
        log = await _failed_run_in_focus(app, pilot, ids["failed"])
        await pilot.press("V")
        assert log.selected_range() == (FAILURE, FAILURE)
        await pilot.press("down", "j", "j", "k")
        assert log.selected_range() == (FAILURE, FAILURE + 2)
        await pilot.press("y")
        text = "\n".join(line.rstrip() for line in TEST_LOG[FAILURE : FAILURE + 3])
        await wait_for(lambda: copies(written) == [osc52(text)], pilot)
        assert log.selection is None
        size = len(text.encode())
        assert f"Copied 3 lines of output ({size} bytes) to the clipboard (OSC 52)" in notes(app)

        # Upwards from the line in focus, times shown: they are copied as shown.
        await pilot.press("t", "V", "up", "up", "y")
        shown = [
            log.stamp_text(i) + TEST_LOG[i] for i in range(FAILURE - 2, FAILURE + 1)
        ]  # an old log: a blank column
        await wait_for(lambda: len(copies(written)) == 2, pilot)
        assert copies(written)[1] == osc52("\n".join(line.rstrip() for line in shown))

        await pilot.press("V", "down", "escape")
        assert log.selection is None
        assert len(copies(written)) == 2
        assert isinstance(app.screen.focused, RunLog)  # Escape did nothing else


async def test_capital_y_copies_the_log_path(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        written = capture(app)
        log = await _failed_run_in_focus(app, pilot, ids["failed"])
        await pilot.press("Y")
        path = str(app_paths.logs_dir / str(ids["failed"]) / "run-main-test.log")
        assert log.log_file == Path(path)
        await wait_for(lambda: copies(written) == [osc52(path)], pilot)
        assert any(note.startswith("Copied the log's path (") for note in notes(app))


async def test_the_webhook_dialog_copies_the_url_and_the_secret_only_once_confirmed(
    app_paths: AppPaths,
) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        written = capture(app)
        await ready(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, WebhookDialog)
        await wait_for(lambda: dialog.exists is True, pilot)
        url = services.url.rstrip("/") + "/webhooks/github"
        await pilot.press("c")
        await wait_for(lambda: copies(written) == [osc52(url)], pilot)
        assert f"Copied the webhook URL ({len(url)} bytes) to the clipboard (OSC 52): {url}" in (
            notes(app)
        )
        # The secret: asked first; no leaves it where it is.
        await pilot.press("C")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("n")
        await wait_for(lambda: app.screen is dialog, pilot)
        await pilot.pause(0.1)
        assert len(copies(written)) == 1
        await pilot.press("C")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: len(copies(written)) == 2, pilot)
        assert copies(written)[1] == osc52(SECRET)
        said = notes(app)[-1]
        assert said == (
            f"Copied the webhook secret 'webhook-secret' ({len(SECRET)} bytes) to the clipboard "
            "(OSC 52)"
        )
        assert all(SECRET not in note for note in notes(app))
        assert SECRET not in str(dialog.query_one("#webhook-text").render())  # still hidden


async def test_copy_keys_follow_the_keymap(app_paths: AppPaths) -> None:
    """The copy keys are bindings with ids: a keymap moves them like any other."""
    services, ids = await seeded(app_paths)
    settings = Settings(keymap={"log-copy": "ctrl+y", "webhook-copy-url": "u"})
    app, _ = build(services, app_paths, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        written = capture(app)
        await _failed_run_in_focus(app, pilot, ids["failed"])
        await pilot.press("y")
        await pilot.pause(0.1)
        assert copies(written) == []
        await pilot.press("ctrl+y")
        await wait_for(lambda: copies(written) == [osc52(TEST_LOG[FAILURE])], pilot)
        screen(app).query_one(EventsTable).focus()  # w wraps the output while it is focused
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        await pilot.press("u")
        url = services.url.rstrip("/") + "/webhooks/github"
        await wait_for(lambda: copies(written)[-1:] == [osc52(url)], pilot)
