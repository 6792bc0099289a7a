"""The UI attached to a real owner over a real control socket: the owner's services (store,
engine, listener, stand-in dagger) run in this process with their control server, and the app
is given a SocketClient on the owner's socket, as ``pocketci-tui attach`` does."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot

from pocketci_tui.config_reload import ConfigReloader
from pocketci_tui.control.client import SocketClient
from pocketci_tui.control.location import socket_path
from pocketci_tui.model import RunState
from pocketci_tui.tui.app import PocketCIApp, make_app
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .harness import LocalServices, Rig, describe, wait_for

pytestmark = pytest.mark.timeout(240)

OWNER = f"pocketci-tui serve (pid {os.getpid()})"
"""The owner as the attached UI names it: the services of this test process."""


@pytest.fixture
def short_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder with a short path, as ``$XDG_RUNTIME_DIR`` (a pytest folder
    can be too long for a socket address)."""
    folder = Path(tempfile.mkdtemp(prefix="pcui-", dir="/tmp"))
    folder.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def owner(rig: Rig, short_runtime: Path) -> AsyncIterator[LocalServices]:
    """The owner of the data folder, started (its control socket open), stopped after."""
    services = rig.make_services()
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


def attached_app(rig: Rig) -> tuple[PocketCIApp, SocketClient]:
    """An app whose core is a client of the owner's control socket."""
    client = SocketClient(socket_path(rig.paths), backoff=(0.05, 0.2))
    app = make_app(rig.settings, paths=rig.paths, services=client, first_start=False)
    return app, client


def main(app: PocketCIApp) -> MainScreen:
    assert app.main_screen is not None
    return app.main_screen


def selected_state(table: RunsTable) -> RunState | None:
    return table.selected.state if table.selected is not None else None


def status(app: PocketCIApp) -> str:
    return str(main(app).query_one(StatusBar).render())


async def attached(app: PocketCIApp, pilot: Pilot[int]) -> None:
    await wait_for(lambda: not main(app).query_one(StatusBar).starting, pilot)


async def push_running(
    rig: Rig, owner: LocalServices, app: PocketCIApp, pilot: Pilot[int], branch: str = "slow"
) -> int:
    """Post a push whose build keeps running; wait until the attached UI shows it running.
    Returns the event id."""
    reply = await rig.post_push(branch)
    assert reply.status == 202
    table = main(app).query_one(RunsTable)

    async def explain() -> str:
        return await describe(rig)

    await wait_for(
        lambda: any(r.state is RunState.RUNNING for r in table.runs), pilot, explain=explain
    )
    event_id = main(app).event_id
    assert event_id is not None
    return event_id


async def test_the_status_bar_names_the_owner_and_its_listener(
    rig: Rig, owner: LocalServices
) -> None:
    app, _ = attached_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await attached(app, pilot)
        await wait_for(lambda: f"attached to {OWNER}" in status(app), pilot)
        assert owner.url in status(app)
        await pilot.resize_terminal(80, 24)
        await wait_for(lambda: f"⇄ serve (pid {os.getpid()})" in status(app), pilot)
        assert "0 running · 0 queued" in status(app)


async def test_q_detaches_at_once_and_the_owner_builds_on(rig: Rig, owner: LocalServices) -> None:
    app, client = attached_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await attached(app, pilot)
        event_id = await push_running(rig, owner, app, pilot)
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, pilot)
        assert not isinstance(app.screen, ConfirmDialog)
    assert not client.started
    assert owner.started
    assert (await owner.counts()).running == 1
    assert {r.state for r in await owner.runs(event_id)} >= {RunState.RUNNING}
    assert await owner.cancel_event(event_id) >= 1  # the test's own clean-up


async def test_fire_and_cancel_go_through_the_socket(rig: Rig, owner: LocalServices) -> None:
    app, _ = attached_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await attached(app, pilot)
        event_id = await push_running(rig, owner, app, pilot)
        await pilot.press("c")  # the Events pane has the focus: cancel the event's runs
        table = main(app).query_one(RunsTable)
        await wait_for(lambda: all(r.state.finished for r in table.runs), pilot)
        states = {r.state for r in await owner.runs(event_id) if r.state is not RunState.SKIPPED}
        assert states == {RunState.CANCELLED}

        await pilot.press("r")  # fire the event again: its functions run anew
        await wait_for(
            lambda: any(r.attempt == 2 and r.state is RunState.RUNNING for r in table.all_runs),
            pilot,
        )
        assert any(r.attempt == 2 for r in await owner.runs(event_id))
        assert await owner.cancel_event(event_id) >= 1


async def test_the_owner_going_away_is_shown_and_the_screen_comes_back(
    rig: Rig, owner: LocalServices
) -> None:
    app, _ = attached_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await attached(app, pilot)
        event_id = await push_running(rig, owner, app, pilot)
        await pilot.press("tab")  # the Functions pane: its selected run's output is shown
        table = main(app).query_one(RunsTable)
        run_id = main(app).run_id
        assert run_id is not None
        log = main(app).query_one(RunLog)
        await wait_for(lambda: "working on it..." in log.lines, pilot)

        # The owner stops (its running build is interrupted): its notices stop first, so
        # what this screen shows is what it was, until it is read again.
        first_url = owner.url
        await owner.stop()
        await wait_for(lambda: "gone" in status(app), pilot)
        assert "gone · reconnecting…" in status(app)
        assert selected_state(table) is RunState.RUNNING
        await pilot.press("r")
        await pilot.pause(0.2)
        said = [str(n.message) for n in app._notifications]
        assert any("is gone" in text and "try again" in text for text in said), said

        # A new owner (its notices numbered anew), started with another keymap.
        rig.settings = replace(rig.settings, keymap={"run-rerun": "x"})
        again = rig.make_services()
        await again.start()
        try:
            await wait_for(lambda: "gone" not in status(app), pilot)
            assert f"attached to {OWNER}" in status(app)
            assert again.url != first_url  # it listens elsewhere now (port 0): shown so
            await wait_for(lambda: again.url in status(app), pilot)
            assert app.webhook_url == f"{again.url}/webhooks/github"
            # Read again: the run as the new owner has it, the selection kept, the output
            # from its log file, once.
            await wait_for(
                lambda: table.selected is not None and table.selected.state.finished, pilot
            )
            assert selected_state(table) is RunState.INTERRUPTED
            assert (main(app).event_id, main(app).run_id) == (event_id, run_id)
            await wait_for(lambda: "working on it..." in log.lines, pilot)
            assert log.lines.count("working on it...") == 1
            await wait_for(lambda: "0 running" in status(app), pilot)

            assert dict(app.settings.keymap) == {"run-rerun": "x"}  # the new owner's
            await pilot.press("x")  # the link works again: the re-run reaches the new owner
            await wait_for(lambda: any(r.attempt == 2 for r in table.all_runs), pilot)
            assert any(r.attempt == 2 for r in await again.runs(event_id))
            await again.cancel_event(event_id)
        finally:
            await again.stop()


async def test_ctrl_l_has_the_owner_reload_and_shows_its_settings(
    rig: Rig, owner: LocalServices
) -> None:
    """The owner reads its own config.yaml (as ``serve`` does on SIGHUP); the attached UI
    says what the reload did and takes the owner's settings, its keymap included."""
    repo = rig.settings.repos[0]
    rig.paths.config_file.write_text(
        "listen: {host: 127.0.0.1, port: 0}\n"
        "webhook-secret: webhook-secret\n"
        "concurrency: 2\n"
        "timeout: 2m\n"
        "keymap: {run-rerun: x}\n"
        f"repos: [{{name: {repo.name}, clone-url: '{repo.clone_url}'}}]\n"
        f"dagger: {{cli: '{rig.settings.dagger.cli}'}}\n"
    )
    reloader = ConfigReloader(rig.paths.config_file, owner.settings, owner.apply_settings)

    async def reload() -> tuple[bool, str]:
        result = await reloader.reload()
        return result.ok, result.describe(rig.paths.config_file)

    owner.reload_config = reload
    app, _ = attached_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await attached(app, pilot)
        assert app.reloads.reloader is None  # the owner watches its file, not this UI
        await pilot.press("ctrl+l")
        await wait_for(lambda: app.settings.timeout == 120, pilot)
        assert owner.settings.timeout == 120
        said = [str(n.message) for n in app._notifications]
        assert any("applied timeout, keymap" in text for text in said), said
        assert dict(app.settings.keymap) == {"run-rerun": "x"}


async def test_the_owners_own_reload_is_followed_without_a_key(
    rig: Rig, owner: LocalServices
) -> None:
    """The owner reloads its config.yaml by itself (its watcher, SIGHUP for ``serve``): the
    attached UI takes its settings, its keymap included, as a local reload would."""
    repo = rig.settings.repos[0]
    reloader = ConfigReloader(rig.paths.config_file, owner.settings, owner.apply_settings)
    await reloader.prime()
    app, _ = attached_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await attached(app, pilot)
        rig.paths.config_file.write_text(
            "listen: {host: 127.0.0.1, port: 0}\n"
            "webhook-secret: webhook-secret\n"
            "concurrency: 2\n"
            "timeout: 3m\n"
            "keymap: {run-rerun: x}\n"
            f"repos: [{{name: {repo.name}, clone-url: '{repo.clone_url}'}}]\n"
            f"dagger: {{cli: '{rig.settings.dagger.cli}'}}\n"
        )
        result = await reloader.reload()
        assert result.ok, result
        await wait_for(lambda: app.settings.timeout == 180, pilot)
        assert dict(app.settings.keymap) == {"run-rerun": "x"}
        assert app.services.settings == owner.settings


async def test_an_owner_gone_before_the_ui_attached_is_said(rig: Rig, short_runtime: Path) -> None:
    client = SocketClient(short_runtime / "pocketci-tui" / "gone" / "control.sock")
    app = make_app(rig.settings, paths=rig.paths, services=client, first_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await attached(app, pilot)
        assert "not attached" in status(app)
        log = main(app).query_one(RunLog)
        shown = " ".join(" ".join(log.lines).split())
        assert "start the owner (`pocketci-tui serve`), then attach again" in shown, shown
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, pilot)
    assert not (rig.paths.data_dir / "pocketci.db").exists()
