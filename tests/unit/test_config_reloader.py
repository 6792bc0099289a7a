"""Reloading config.yaml: what applies at once, what waits for a restart, bad edits (issue 10)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from pocketci_tui.config import Settings, load_settings
from pocketci_tui.config_reload import ConfigReloader, Reload


async def test_live_keys_apply_restart_keys_wait_and_overrides_stay(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("listen: {port: 8080}\nrepos: [{name: acme/api}]\nconcurrency: 2\n")
    # Started with --port 9000: the running port is not the file's.
    running = replace(load_settings(path), port=9000)
    applied: list[Settings] = []
    reloader = ConfigReloader(path, running, applied.append)
    await reloader.prime()
    assert not await reloader.changed()

    path.write_text(
        "listen: {port: 8081}\nrepos: [{name: acme/api}, {name: acme/web}]\nconcurrency: 4\n"
        "fork-pull-requests: skip\n"
    )
    assert await reloader.changed()
    result = await reloader.reload()
    assert result.ok
    assert result.applied == ("repos", "fork-pull-requests")
    assert result.restart == ("listen.port", "concurrency")
    [now] = applied
    assert [r.name for r in now.repos] == ["acme/api", "acme/web"]
    assert (now.port, now.concurrency, now.fork_pull_requests) == (9000, 2, "skip")
    assert "restart pocketci-tui to change listen.port, concurrency" in result.describe(path)
    assert not await reloader.changed()

    # The same file again: nothing to do, nothing applied.
    again = await reloader.reload()
    assert (again.applied, again.restart) == ((), ())
    assert "nothing changed" in again.describe(path)
    assert len(applied) == 1


async def test_a_first_config_file_is_compared_with_the_defaults_not_the_overrides(
    tmp_path: Path,
) -> None:
    """A first start with --port writes a config with the default port; that is no change."""
    path = tmp_path / "config.yaml"
    running = replace(Settings(source=None), port=18080)
    applied: list[Settings] = []
    reloader = ConfigReloader(path, running, applied.append)
    await reloader.prime()
    path.write_text("listen: {host: 127.0.0.1, port: 8080}\nrepos: []\n")
    assert await reloader.changed()
    result = await reloader.reload()
    assert (result.ok, result.applied, result.restart) == (True, (), ())
    assert not result.noteworthy
    assert applied == []
    # A port the user then writes does wait for a restart.
    path.write_text("listen: {host: 127.0.0.1, port: 8181}\nrepos: []\n")
    assert (await reloader.reload()).restart == ("listen.port",)


async def test_a_bad_edit_keeps_the_running_configuration(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("repos: [{name: acme/api}]\n")
    running = load_settings(path)
    applied: list[Settings] = []
    reloader = ConfigReloader(path, running, applied.append)
    await reloader.prime()
    path.write_text("repos: [{name: acme/api}\n")
    result = await reloader.reload()
    assert not result.ok
    assert result.error.startswith(f"{path}, line 2, column 1: not valid YAML")
    assert result.settings is running
    path.write_text("repos: [{name: acme/api, tocken: x}]\n")
    result = await reloader.reload()
    assert f"{path}: repos[0].tocken: unknown key" in result.describe(path)
    assert "running configuration is kept" in result.describe(path)
    assert applied == []
    assert reloader.running is running


async def test_a_missing_file_keeps_the_running_configuration(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("repos: [{name: acme/api}]\n")
    running = load_settings(path)
    reloader = ConfigReloader(path, running, lambda s: None)
    await reloader.prime()
    path.unlink()
    assert await reloader.changed()
    result = await reloader.reload()
    assert result.describe(path) == (f"{path}: no such file (the running configuration is kept)")
    assert reloader.running is running


async def test_a_file_created_while_running_is_compared_with_the_running_values(
    tmp_path: Path,
) -> None:
    """The first start writes config.yaml while the UI runs (here with the encrypted file
    chosen): only what differs from the running values is reported."""
    path = tmp_path / "config.yaml"
    running = Settings(port=18182, secrets_backend="file")
    reports: list[Reload] = []
    reloader = ConfigReloader(path, running, lambda s: None)
    await reloader.prime()
    watching = reloader.watch(reports.append, interval=0.01)
    path.write_text("listen: {port: 18182}\nsecrets: {backend: file}\n")
    try:
        async with asyncio.timeout(10):
            while await reloader.changed():
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert reports == []  # nothing differs: nothing to say
        path.write_text("listen: {port: 8080}\nsecrets: {backend: file}\n")
        async with asyncio.timeout(10):
            while not reports:
                await asyncio.sleep(0.01)
    finally:
        await reloader.stop()
    assert watching.done()
    [result] = reports
    assert (result.applied, result.restart) == ((), ("listen.port",))
