"""Reloading config.yaml from the UI (issue 10): a key, a palette entry, and on file changes.

A repository added to config.yaml while the UI ran was refused as "not in the config" until a
restart. After ctrl+l its deliveries are stored for processing; a remapped key works at once; a
bad edit is shown with the file and key, and the running configuration stays.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.command import CommandPalette
from textual.widgets import Input

from pocketci_tui.tui.app import make_app
from pocketci_tui.tui.dialogs.secrets import SecretsDialog

from .harness import Rig, wait_for


def _config(rig: Rig, extra: str = "") -> str:
    url = rig.settings.repos[0].clone_url
    return (
        "repos:\n"
        f"  - {{name: acme/api, clone-url: '{url}'}}\n"
        f"  - {{name: owner/new, clone-url: '{url}'}}\n" + extra
    )


def _messages(app: object) -> list[str]:
    return [str(n.message) for n in app._notifications]  # type: ignore[attr-defined]


async def test_ctrl_l_reloads_repositories_and_keymap_a_bad_edit_is_shown(rig: Rig) -> None:
    app = make_app(rig.settings, paths=rig.paths, services=rig.make_services(), first_start=False)
    config: Path = rig.paths.config_file
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: bool(rig.services and rig.services.url), pilot)
        await wait_for(lambda: app.reloads.reloader is not None, pilot)
        reply = await rig.post_push("main", repository="owner/new")
        assert reply.json()["status"] == "ignored"

        await asyncio.to_thread(config.write_text, _config(rig, "keymap: {secrets-show: ctrl+s}\n"))
        await pilot.press("ctrl+l")
        await wait_for(lambda: any("applied repos, keymap" in m for m in _messages(app)), pilot)
        reply = await rig.post_push("main", repository="owner/new")
        assert reply.json()["status"] == "stored"
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        await pilot.press("escape")

        await asyncio.to_thread(config.write_text, _config(rig, "keymap: {secrets-show: f}\n"))
        await pilot.press("ctrl+l")
        await wait_for(
            lambda: any("running configuration is kept" in m for m in _messages(app)), pilot
        )
        [bad] = [m for m in _messages(app) if "running configuration is kept" in m]
        assert f"{config}: keymap.secrets-show:" in bad
        assert "'f' is also the key of event-fire" in bad
        reply = await rig.post_push("main", repository="owner/new")
        assert reply.json()["status"] == "stored"


async def test_the_palette_reloads_and_an_edit_is_noticed_by_itself(rig: Rig) -> None:
    app = make_app(rig.settings, paths=rig.paths, services=rig.make_services(), first_start=False)
    config: Path = rig.paths.config_file
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.reloads.reloader is not None, pilot)
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"Reload config")
        await wait_for(lambda: isinstance(app.focused, Input), pilot)
        await pilot.pause(0.3)
        await pilot.press("enter")
        # No config.yaml here yet: nothing is reloaded, and the running configuration stays.
        await wait_for(lambda: any("no such file" in m for m in _messages(app)), pilot)
        assert [r.name for r in app.settings.repos] == ["acme/api"]

        await asyncio.to_thread(config.write_text, _config(rig))
        await wait_for(lambda: any("applied repos" in m for m in _messages(app)), pilot, limit=30)
        reply = await rig.post_push("main", repository="owner/new")
        assert reply.json()["status"] == "stored"
