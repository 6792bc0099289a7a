"""What the UI shows and does differently when another process owns the builds, with the
scripted client saying who owns them and how the link to it goes (the same UI over a real
control socket is in test_attached.py)."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from pocketci_tui.config import Settings
from pocketci_tui.contract import LinkChanged
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.dialogs.secrets import SecretsDialog
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .fakes import ScriptedEngine, ScriptedServices
from .harness import wait_for
from .test_ui_actions import build, ready, screen, seeded

OWNER = "pocketci-tui serve (pid 4242)"


def status_text(app: PocketCIApp) -> str:
    return str(screen(app).query_one(StatusBar).render())


def tell(services: ScriptedServices, link: LinkChanged) -> None:
    for callback in list(services.subscribers):
        callback(link)


async def test_the_status_bar_says_whose_builds_these_are(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    services.owner = OWNER
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        text = status_text(app)
        assert f"attached to {OWNER}" in text
        assert "http://127.0.0.1:8080" in text
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.1)
        text = status_text(app)
        assert "⇄ serve (pid 4242)" in text
        assert "1 running" in text  # the counts still fit at 80 columns


async def test_q_detaches_without_asking_while_builds_run(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths, ScriptedEngine(running=2, queued=1))
    services.owner = OWNER
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("q")
        await wait_for(lambda: not app.is_running, pilot)
        assert not isinstance(app.screen, ConfirmDialog)
    assert app.return_code == 0


async def test_link_down_is_shown_actions_say_so_and_the_link_back_clears_it(
    app_paths: AppPaths,
) -> None:
    services, ids = await seeded(app_paths)
    services.owner = OWNER
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot, 5)
        tell(services, LinkChanged(up=False, owner=OWNER, detail="reconnecting in 2s"))
        await wait_for(lambda: "gone" in status_text(app), pilot)
        assert "serve (pid 4242) gone · reconnecting…" in status_text(app)

        # Actions tried meanwhile say why they cannot be done, and do nothing.
        before = len(app._notifications)
        await pilot.press("r")  # fire the selected event again
        await pilot.press("s")
        await pilot.pause(0.2)
        said = [n.message for n in list(app._notifications)[before:]]
        assert any(f"{OWNER} is gone: try again" in text for text in said), said
        assert not isinstance(app.screen, SecretsDialog)
        assert services.engine.calls == []

        tell(services, LinkChanged(up=True, owner=OWNER, resync=True))
        await wait_for(lambda: "gone" not in status_text(app), pilot)
        assert f"attached to {OWNER}" in status_text(app)
        await pilot.press("r")
        await wait_for(lambda: bool(services.engine.calls), pilot)
        assert services.engine.calls[0][0] == "fire"
        assert ids


def footer_keys(app: PocketCIApp) -> dict[str, str]:
    """The footer's hints: key shown to description."""
    return {key.key_display: key.description for key in screen(app).query(FooterKey) if key.display}


def help_rows(app: PocketCIApp) -> dict[str, tuple[str, str]]:
    """The help's rows by binding id: (keys, what it does)."""
    return {row[2]: (row[0], row[1]) for row in app.key_rows() if row[2]}


async def test_footer_and_help_say_detach_when_attached(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths)
    services.owner = OWNER
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        assert footer_keys(app).get("q") == "Detach"
        rows = help_rows(app)
        assert rows["detach"][0] == "q"
        assert "quit" not in rows
        assert "detach" in rows["quit-now"][1]
        titles = {c.title for c in app.get_system_commands(screen(app))}
        assert "Detach" in titles
        assert "Quit" not in titles


async def test_footer_and_help_say_quit_when_embedded(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        assert footer_keys(app).get("q") == "Quit"
        rows = help_rows(app)
        assert rows["quit"][0] == "q"
        assert "detach" not in rows
        titles = {c.title for c in app.get_system_commands(screen(app))}
        assert "Quit" in titles
        assert "Detach" not in titles


async def test_a_remapped_quit_key_detaches_when_attached(app_paths: AppPaths) -> None:
    """``keymap: {quit: x}`` written before attaching existed still leaves with x."""
    services = ScriptedServices(app_paths, ScriptedEngine(running=1))
    services.owner = OWNER
    app, _ = build(services, app_paths, Settings(keymap={"quit": "x"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        assert footer_keys(app).get("x") == "Detach"
        assert "q" not in footer_keys(app)
        assert help_rows(app)["detach"][0] == "x"
        await pilot.press("x")
        await wait_for(lambda: not app.is_running, pilot)
        assert not isinstance(app.screen, ConfirmDialog)
    assert app.return_code == 0


async def test_detach_has_its_own_remappable_key(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths)
    services.owner = OWNER
    app, _ = build(services, app_paths, Settings(keymap={"detach": "d"}))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(app, pilot)
        assert footer_keys(app).get("d") == "Detach"
        await pilot.press("q")  # quit keeps q, but does not apply while attached
        await pilot.pause(0.2)
        assert app.is_running
        await pilot.press("d")
        await wait_for(lambda: not app.is_running, pilot)


async def test_ctrl_q_detaches_when_attached_even_from_a_dialog(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths, ScriptedEngine(running=2))
    services.owner = OWNER
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)
        await pilot.press("ctrl+q")
        await wait_for(lambda: not app.is_running, pilot)
    assert app.return_code == 0


async def test_ctrl_q_still_asks_before_quitting_running_builds(app_paths: AppPaths) -> None:
    services = ScriptedServices(app_paths, ScriptedEngine(running=2))
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        await pilot.press("ctrl+q")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: not app.is_running, pilot)
