"""What the UI shows and does differently when another process owns the builds, with the
scripted client saying who owns them and how the link to it goes (the same UI over a real
control socket is in test_attached.py)."""

from __future__ import annotations

from pocketci_tui.contract import LinkChanged
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
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
