"""Bindings, dialogs and views over a real store, with a scripted engine so that states and
engine calls are exact (the engine-driven flows are in test_engine_actions.py)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import yaml
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from pocketci_tui.config import Settings
from pocketci_tui.model import EventStatus, Run, RunOutput, RunState, RunUpdated
from pocketci_tui.paths import AppPaths
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import ENCRYPTED_FILE, MemorySecretStore, SecretStoreUnavailable
from pocketci_tui.store import Store
from pocketci_tui.tui.app import PocketCIApp, make_app
from pocketci_tui.tui.dialogs.approve import ApproveDialog
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
from pocketci_tui.tui.dialogs.fire import FireDialog
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.dialogs.secrets import SecretsDialog, SecretValueDialog
from pocketci_tui.tui.dialogs.setup import SetupDialog
from pocketci_tui.tui.dialogs.webhook import HIDDEN, WebhookDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .fakes import ScriptedEngine, ScriptedServices, run, seed_history
from .harness import fixed_clock, wait_for


async def seeded(app_paths: AppPaths) -> tuple[ScriptedServices, dict[str, int]]:
    """Scripted services over a store holding the fixed history."""
    app_paths.data_dir.mkdir(parents=True, exist_ok=True)
    engine = ScriptedEngine()
    store = await Store.open(app_paths.db_file)
    ids = await seed_history(store, app_paths, engine)
    await store.close()
    return ScriptedServices(app_paths, engine), ids


def build(
    services: ScriptedServices,
    paths: AppPaths,
    settings: Settings | None = None,
    **kw: object,
) -> tuple[PocketCIApp, list[list[str]]]:
    pager_calls: list[list[str]] = []
    settings = settings or Settings()
    services.settings = settings  # the scripted services run with the app's configuration
    app = make_app(
        settings,
        paths=paths,
        services=services,
        clock=fixed_clock,
        pager=pager_calls.append,
        first_start=kw.pop("first_start", False),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    return app, pager_calls


def screen(app: PocketCIApp) -> MainScreen:
    assert app.main_screen is not None
    return app.main_screen


async def ready(app: PocketCIApp, pilot: Pilot[int], events: int | None = None) -> None:
    status = screen(app).query_one(StatusBar)
    await wait_for(lambda: not status.starting, pilot)
    if events:
        table = screen(app).query_one(EventsTable)
        await wait_for(lambda: len(table.events) == events, pilot)
    await pilot.pause(0.1)


async def select_event(app: PocketCIApp, pilot: Pilot[int], event_id: int) -> None:
    table = screen(app).query_one(EventsTable)
    ids = [e.event.id for e in table.events]
    table.focus()
    table.move_cursor(row=ids.index(event_id))
    await wait_for(lambda: screen(app).event_id == event_id, pilot)
    await wait_for(lambda: bool(screen(app).query_one(RunsTable).runs), pilot)


async def test_status_bar_shows_url_counts_and_problems(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    services.engine.problem_list = [
        Problem("dagger", "dagger not found", "dagger CLI not found (dagger on PATH)")
    ]
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        text = str(screen(app).query_one(StatusBar).render())
        assert "http://127.0.0.1:8080" in text
        assert "1 running" in text
        assert "1 queued" in text
        assert "dagger not found" in text


async def test_the_status_bar_follows_the_counts_and_problems_it_is_told(
    app_paths: AppPaths,
) -> None:
    """Counts and problems are notices: a change the engine tells reaches the status bar."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        status = screen(app).query_one(StatusBar)
        services.engine.set_state(
            2, 3, [Problem("git", "git not found", "git is not on PATH", fix="install git")]
        )
        await wait_for(lambda: "git not found" in str(status.render()), pilot)
        text = str(status.render())
        assert "3 running" in text
        assert "2 queued" in text

        services.engine.set_state(0, 0, [])
        await wait_for(lambda: "git not found" not in str(status.render()), pilot)
        assert "0 running · 0 queued" in str(status.render())


async def test_an_exposed_listener_is_a_problem_with_the_way_out(app_paths: AppPaths) -> None:
    """R8: listening on 0.0.0.0 is said in the status bar, and how to avoid it in full."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths, Settings(host="0.0.0.0"))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        assert "listener exposed" in str(screen(app).query_one(StatusBar).render())
        details = " ".join(p.detail for p in app.problems)
        assert "exposed to other machines" in details
        assert "tunnel" in details


async def test_port_in_use_and_keyring_unavailable_are_shown(
    app_paths: AppPaths, tmp_path: Path
) -> None:
    from .harness import LocalServices

    class BrokenSecrets(MemorySecretStore):
        async def names(self) -> list[str]:
            raise SecretStoreUnavailable("no D-Bus session")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(port=port)
        services = LocalServices(settings, app_paths, BrokenSecrets())
        app = make_app(settings, paths=app_paths, services=services, first_start=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await ready(app, pilot)
            text = str(screen(app).query_one(StatusBar).render())
            assert f"port {port} in use" in text
            assert "keyring unavailable" in text
            assert "listener down" in text
            # At 80 columns both do not fit beside the counts: they collapse to their count.
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.1)
            text = str(screen(app).query_one(StatusBar).render())
            assert "⚠ 2 problems  listener down  0 running · 0 queued" in text


async def test_tab_and_j_k_move_between_and_within_panes(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        assert app.focused is table
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("down")
        await wait_for(lambda: screen(app).event_id == table.events[2].event.id, pilot)
        await pilot.press("tab")
        assert isinstance(app.focused, RunsTable)
        await pilot.press("tab")
        assert isinstance(app.focused, RunLog)
        await pilot.press("shift+tab", "shift+tab")
        assert app.focused is table
        assert ids


async def test_failed_run_shows_reason_and_output(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, pager_calls = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: "Error: exit status 1" in log.lines, pilot)
        reason = screen(app).query_one("#run-reason")
        assert "failed (exit 1)" in str(reason.render())
        await pilot.press("tab", "p")
        assert pager_calls
        assert pager_calls[0][-1].endswith("run-main-test.log")


async def test_rerun_cancel_and_fire_call_the_engine(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("r")  # Events focused: the whole event
        await pilot.press("c")
        await pilot.press("tab", "r", "c")  # Functions focused: the selected run
        await wait_for(lambda: len(services.engine.calls) == 4, pilot)
        assert services.engine.calls == [
            ("fire", ids["failed"]),
            ("cancel_event", ids["failed"]),
            ("rerun", "run-main-test"),
            ("cancel", "run-main-test"),
        ]


async def test_approve_only_when_waiting(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("a")
        await pilot.pause(0.1)
        assert services.engine.calls == []
        table = screen(app).query_one(EventsTable)
        table.move_cursor(row=[e.event.id for e in table.events].index(ids["waiting"]))
        await wait_for(lambda: screen(app).event_id == ids["waiting"], pilot)
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: "press a to approve" in " ".join(log.lines), pilot)
        # One key is not enough: a dialog shows whose code it is and asks first.
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, ApproveDialog), pilot)
        assert services.engine.calls == []
        await pilot.press("escape")
        await wait_for(lambda: app.screen is screen(app), pilot)
        await pilot.pause(0.1)
        assert services.engine.calls == []
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, ApproveDialog), pilot)
        await pilot.press("y")
        head = "77aa0c1d" + "0" * 32
        await wait_for(lambda: services.engine.calls == [("approve", ids["waiting"], head)], pilot)


async def test_fire_picker_searches_previews_and_fires(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        picker = app.screen
        assert isinstance(picker, FireDialog)
        await wait_for(
            lambda: picker.highlighted is not None and picker.highlighted.event.id == ids["failed"],
            pilot,
        )
        preview = picker.query_one("#fire-preview")
        await wait_for(lambda: "testOnGithubPushMain" in str(preview.render()), pilot)
        await wait_for(lambda: isinstance(app.focused, Input), pilot)
        await pilot.press(*"release")
        await wait_for(
            lambda: (
                picker.highlighted is not None and picker.highlighted.event.id == ids["running"]
            ),
            pilot,
        )
        await pilot.press("enter")
        await wait_for(lambda: services.engine.calls == [("fire", ids["running"])], pilot)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
        assert len(services.engine.calls) == 1


async def test_filter_events(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        await pilot.press("slash")
        field = screen(app).query_one("#events-filter", Input)
        assert field.has_focus
        await pilot.press(*"acme/web")
        await wait_for(lambda: len(table.events) == 2, pilot)
        assert {e.event.repository for e in table.events} == {"acme/web"}
        await pilot.press("enter")
        assert table.has_focus
        await pilot.press("slash", "escape")
        await wait_for(lambda: len(table.events) == 5, pilot)
        assert not field.display
        assert ids


async def test_webhook_secret_revealed_only_on_request(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        text = app.screen.query_one("#webhook-text")
        await wait_for(lambda: HIDDEN in str(text.render()), pilot)
        assert "0f0f" not in str(text.render())
        assert "http://127.0.0.1:8080/webhooks/github" in str(text.render())
        await pilot.press("r")
        await wait_for(lambda: "0f" * 32 in str(text.render()), pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)


async def test_secrets_list_set_masked_and_delete(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, SecretsDialog)
        await wait_for(lambda: dialog.names == ["github-token", "webhook-secret"], pilot)
        await pilot.press("n")
        await wait_for(
            lambda: isinstance(app.screen, SecretValueDialog) and isinstance(app.focused, Input),
            pilot,
        )
        await pilot.press(*"cloud-token", "enter")
        value_input = app.screen.query_one("#secret-input", Input)
        assert value_input.password
        await pilot.press(*"dag_0123456789", "enter")
        await wait_for(lambda: "cloud-token" in dialog.names, pilot)
        assert await services.secrets.get("cloud-token") == "dag_0123456789"
        options = dialog.query_one(OptionList)
        options.highlighted = dialog.names.index("github-token")
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: "github-token" not in dialog.names, pilot)
        assert await services.secrets.get("github-token") is None
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)


async def test_secrets_unavailable_offers_passphrase(app_paths: AppPaths) -> None:
    class Locked(MemorySecretStore):
        backend_name = "encrypted file"

        async def names(self) -> list[str]:
            raise SecretStoreUnavailable("the encrypted file is locked")

    unlocked = MemorySecretStore({"github-token": "x" * 20})
    seen: list[str] = []

    async def unlock(passphrase: str) -> MemorySecretStore:
        seen.append(passphrase)
        return unlocked

    # The file exists (locked): the dialog unlocks it rather than creating one.
    app_paths.config_dir.mkdir(parents=True, exist_ok=True)
    (app_paths.config_dir / ENCRYPTED_FILE).write_bytes(b"[keyring_2.0]\n")
    services = ScriptedServices(app_paths, secrets=Locked())
    app, _ = build(services, app_paths, unlock_secrets=unlock)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, SecretsDialog)
        error = dialog.query_one("#secrets-error")
        await wait_for(lambda: "Press u" in str(error.render()), pilot)
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.focused, Input), pilot)
        field = app.screen.query_one(Input)
        assert field.password
        await pilot.press(*"hunter2hunter2", "enter")
        await wait_for(lambda: dialog.names == ["github-token"], pilot)
        assert seen == ["hunter2hunter2"]


async def test_help_lists_binding_ids_with_remapped_keys(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    settings = Settings(keymap={"run-rerun": "ctrl+r", "event-fire": "F"})
    app, _ = build(services, app_paths, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["failed"])
        await pilot.press("r")  # no longer bound
        await pilot.press("ctrl+r")
        await wait_for(lambda: services.engine.calls == [("fire", ids["failed"])], pilot)
        await pilot.press("F")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)
        rows = app.key_rows()
        assert ("ctrl+r", "re-run the run, or the event", "run-rerun") in rows
        ids_shown = {row[2] for row in rows}
        for binding_id in (
            "event-fire",
            "run-rerun",
            "run-cancel",
            "event-approve",
            "events-filter",
            "secrets-show",
            "webhook-show",
            "log-pager",
            "help",
            "quit",
        ):
            assert binding_id in ids_shown
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)


async def test_every_action_is_in_the_palette(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        titles = {c.title for c in app.get_system_commands(screen(app))}
        for title in (
            "Fire a stored event",
            "Re-run",
            "Cancel",
            "Approve pull/merge request",
            "Filter events",
            "Open log in pager",
            "Webhook URL and secret",
            "Secrets",
            "Keys",
            "Quit",
        ):
            assert title in titles
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"webhook url")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)


async def test_quit_without_builds_exits_at_once(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, pilot)
    assert services.stopped
    assert services.engine.shut_down


async def test_quit_enter_confirms_while_builds_run(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths, ScriptedEngine(running=2))
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("q")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
        await pilot.press("q")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("enter")
        await wait_for(lambda: not app.is_running, pilot)
    assert services.stopped


async def test_first_start_setup_writes_config_and_secret(app_paths: AppPaths) -> None:
    secrets = MemorySecretStore()
    services = ScriptedServices(app_paths, secrets=secrets)
    app, _ = build(services, app_paths, first_start=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: isinstance(app.screen, SetupDialog), pilot)
        await pilot.press("enter")
        dialog = app.screen
        assert isinstance(dialog, SetupDialog)
        await wait_for(lambda: dialog.step == 2, pilot)
        secret = await secrets.get("webhook-secret")
        assert secret is not None
        assert len(secret) == 64
        shown = str(dialog.query_one("#setup-text").render())
        assert secret in shown
        assert "/webhooks/github" in shown
        assert "application/json" in shown
        config = yaml.safe_load(app_paths.config_file.read_text())
        assert config["webhook-secret"] == "webhook-secret"
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)


def test_make_app_offers_setup_only_without_config(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths)
    assert make_app(Settings(), paths=app_paths, services=services)._first_start
    app_paths.config_file.write_text("listen: {port: 8080}\n")
    assert not make_app(Settings(), paths=app_paths, services=services)._first_start


HOSTILE = "\x1b]8;;http://evil\x07[bold red]pwned[/] \x1b[2J\x1b[31m$(id)`id`\x07\x08"


async def test_payload_and_output_text_is_literal(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        row = [e.event.id for e in table.events].index(ids["hostile"])
        cell = table.get_row_at(row)[3]
        assert "$(touch /tmp/x)[bold" in str(cell)
        assert "\x1b" not in str(cell)
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: screen(app).run_id == "run-rel-build", pilot)
        services.engine.publish(RunOutput("run-rel-build", (HOSTILE,)))
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: any("pwned" in line for line in log.lines), pilot)
        line = next(line for line in log.lines if "pwned" in line)
        assert "[bold red]pwned[/]" in line
        assert "\x1b" not in line
        assert "\x07" not in line
        assert "\x08" not in line
        svg = app.export_screenshot()
        assert "[bold red]pwned[/]" in svg.replace("&#160;", " ")


async def test_live_output_follows_pauses_and_counts(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        await wait_for(lambda: screen(app).run_id == "run-rel-build", pilot)
        log = screen(app).query_one(RunLog)
        await wait_for(lambda: log.line_count == 40, pilot)
        for i in range(100):
            services.engine.publish(RunOutput("run-rel-build", (f"more {i}",)))
        await wait_for(lambda: log.line_count == 140, pilot)
        assert log.is_vertical_scroll_end
        log.focus()
        await pilot.press("pageup")
        await wait_for(lambda: not log.follow, pilot)
        services.engine.publish(RunOutput("run-rel-build", tuple(f"x{i}" for i in range(7))))
        await wait_for(lambda: log.paused_lines == 7, pilot)
        assert "7 new lines" in log.status_line
        assert "7 new lines" in str(screen(app).query_one("#log-pane").border_subtitle)
        assert not log.is_vertical_scroll_end
        await pilot.press("end")
        await wait_for(lambda: log.follow and log.paused_lines == 0, pilot)
        assert log.is_vertical_scroll_end


async def test_run_updates_reach_the_panes(app_paths: AppPaths) -> None:
    services, ids = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, ids["running"])
        done = run(
            "run-rel-build",
            ids["running"],
            "onGithubPush",
            RunState.FAILED,
            started=0.75,
            seconds=30,
            reason="boom",
            exit_code=2,
        )
        services.engine.publish(RunUpdated(done))
        runs = screen(app).query_one(RunsTable)
        await wait_for(
            lambda: any(r.id == "run-rel-build" and r.state is RunState.FAILED for r in runs.runs),
            pilot,
        )
        reason = screen(app).query_one("#run-reason")
        await wait_for(lambda: "exit 2" in str(reason.render()), pilot)
        table = screen(app).query_one(EventsTable)
        assert table.states[ids["running"]] == "queued"  # the lint run is still queued
        assert EventStatus.DISPATCHED


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_dialog_fits(app_paths: AppPaths, size: tuple[int, int]) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=size) as pilot:
        await ready(app, pilot, 5)
        for key, dialog in (
            ("question_mark", HelpDialog),
            ("w", WebhookDialog),
            ("s", SecretsDialog),
            ("f", FireDialog),
        ):
            await pilot.press(key)
            await wait_for(lambda d=dialog: isinstance(app.screen, d), pilot)  # type: ignore[misc]
            region = app.screen.query_one(".dialog").region
            assert region.right <= size[0]
            assert region.bottom <= size[1]
            await pilot.press("escape")
            await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
        await asyncio.sleep(0)


async def test_a_burst_of_deliveries_is_shown_newest_first_and_bounded(
    app_paths: AppPaths,
) -> None:
    """A burst far larger than the pane keeps the newest events on top, at most MAX_ROWS rows,
    with the cursor following the head (regression: one full redraw per delivery)."""
    from dataclasses import replace

    from pocketci_tui.model import EventStored, StoredEvent
    from pocketci_tui.tui.widgets.events_table import MAX_ROWS

    from .fakes import push

    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        table.focus()
        table.move_cursor(row=0)
        total = MAX_ROWS + 300
        for n in range(total):
            event = replace(push(f"burst-{n}", "acme/api", "main", f"{n:040x}", 1), id=1000 + n)
            services.engine.publish(EventStored(StoredEvent(event, EventStatus.RECEIVED)))
            if n % 250 == 0:
                await pilot.pause()
        newest = 1000 + total - 1
        await wait_for(lambda: bool(table.events) and table.events[0].event.id == newest, pilot)
        ids = [e.event.id for e in table.events if e.event.id is not None]
        assert len(ids) == MAX_ROWS
        assert ids == sorted(ids, reverse=True)
        assert table.selected_id == newest
        assert table.row_count == MAX_ROWS


async def test_a_failing_load_is_reported_and_the_app_keeps_running(
    app_paths: AppPaths,
) -> None:
    """A data worker that fails (the database went away) shows a notification; nothing exits."""
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        store = services.store
        assert store is not None

        async def broken(event_id: int) -> list[Run]:
            raise RuntimeError("the database went away")

        store.list_runs = broken  # type: ignore[method-assign]
        table = screen(app).query_one(EventsTable)
        table.focus()
        table.move_cursor(row=1)
        await wait_for(
            lambda: any("went away" in str(n.message) for n in app._notifications), pilot
        )
        assert app.is_running
