"""Settings followed by every attached client: when the owner applies a reloaded config.yaml
(its own watcher, SIGHUP for ``serve``, or one client's reload request), every client attached
to its control socket takes the new settings and tells its subscribers, without a resync.
Real services, their real control socket, two real clients."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from controlkit import running
from corekit import Told
from enginekit import EngineKit

from pocketci_tui.config_reload import ConfigReloader
from pocketci_tui.contract import LinkChanged, SettingsChanged
from pocketci_tui.control.client import SocketClient
from pocketci_tui.services import Services


def write_config(kit: EngineKit, timeout: str, keymap: str) -> None:
    repo = kit.settings.repos[0]
    kit.paths.config_file.write_text(
        f"timeout: {timeout}\n"
        f"keymap: {{{keymap}}}\n"
        f"repos: [{{name: {repo.name}, clone-url: '{repo.clone_url}'}}]\n"
        f"dagger: {{cli: '{kit.settings.dagger.cli}'}}\n"
    )


def changes(told: Told) -> list[SettingsChanged]:
    return [n for n in told.notices if isinstance(n, SettingsChanged)]


def told_once(told: Told) -> bool:
    return len(changes(told)) == 1


async def reloader_of(services: Services, kit: EngineKit) -> ConfigReloader:
    reloader = ConfigReloader(kit.paths.config_file, services.settings, services.apply_settings)
    await reloader.prime()

    async def reload() -> tuple[bool, str]:
        result = await reloader.reload()
        return result.ok, result.describe(kit.paths.config_file)

    services.reload_config = reload
    return reloader


async def test_every_attached_client_follows_the_owners_reload(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    write_config(kit, "1m", "")
    async with running(kit) as (services, _):
        assert services.control is not None
        reloader = await reloader_of(services, kit)
        in_process = Told()
        services.subscribe(in_process)
        first, second = SocketClient(services.control.path), SocketClient(services.control.path)
        await first.start()
        await second.start()
        try:
            told = [Told(), Told()]
            first.subscribe(told[0])
            second.subscribe(told[1])
            assert first.settings.timeout == second.settings.timeout == 60.0

            # The owner's file changes and the owner reloads it (its watcher, SIGHUP).
            write_config(kit, "2m", "run-rerun: x")
            result = await reloader.reload()
            assert result.ok, result
            assert "timeout" in result.applied, result
            for client, seen in zip((first, second), told, strict=True):
                await seen.wait_for(partial(told_once, seen))
                [change] = changes(seen)
                assert change.settings.timeout == 120.0
                assert dict(change.settings.keymap) == {"run-rerun": "x"}
                assert client.settings == change.settings == services.settings
            assert changes(in_process) == [SettingsChanged(services.settings)]

            # One client asks the owner to reload: the other follows too.
            write_config(kit, "3m", "run-rerun: y")
            ok, message = await first.reload_config()
            assert ok, message
            await told[1].wait_for(lambda: len(changes(told[1])) == 2)
            assert second.settings.timeout == 180.0
            assert dict(second.settings.keymap) == {"run-rerun": "y"}
            assert first.settings == second.settings == services.settings
            # Told in order with the rest, and never as a lost link.
            assert not any(isinstance(n, LinkChanged) for n in told[1].notices)
        finally:
            await first.stop()
            await second.stop()
            await reloader.stop()
