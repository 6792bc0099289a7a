"""The command line around the control socket, as real processes: ``locate socket``, what
``check`` says of the owner and its socket, and ``attach`` with nothing there."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ServeProcess
from ownerkit import cli, slow_home

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def short_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime folder with a short path (a pytest folder can be too long for a
    socket address), as ``$XDG_RUNTIME_DIR``."""
    folder = Path(tempfile.mkdtemp(prefix="pcrt-", dir="/tmp"))
    folder.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _folder_name(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return f"{data_dir.name[:20]}-{digest}"


def test_locate_socket_prints_the_runtime_folders_socket(
    hermetic_home: Path, short_runtime: Path
) -> None:
    done = cli("locate", "socket")
    assert done.returncode == 0, done.stderr
    data = hermetic_home / "data"
    expected = short_runtime / "pocketci-tui" / _folder_name(data) / "control.sock"
    assert done.stdout.strip() == str(expected)
    assert not expected.parent.exists(), "locate created the socket's folder"

    other = cli("locate", "socket", "--data-dir", str(hermetic_home / "elsewhere"))
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() != done.stdout.strip()  # one socket per data folder


def test_locate_socket_without_a_runtime_folder_is_under_the_data_folder(
    hermetic_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    done = cli("locate", "socket")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(hermetic_home / "data" / "run" / "control.sock")


def test_locate_socket_with_a_runtime_folder_open_to_others_is_under_the_data_folder(
    hermetic_home: Path, short_runtime: Path
) -> None:
    short_runtime.chmod(0o755)
    done = cli("locate", "socket")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(hermetic_home / "data" / "run" / "control.sock")


def test_check_without_an_owner_says_where_the_socket_would_be(
    hermetic_home: Path, short_runtime: Path
) -> None:
    located = cli("locate", "socket").stdout.strip()
    done = cli("check")
    lines = [line for line in done.stdout.splitlines() if line.split()[1:2] == ["socket"]]
    assert lines == [
        f"ok    socket         {located} (nothing runs: an owner started now serves it there)"
    ], done.stdout
    data = hermetic_home / "data"
    assert f"ok    owner          nothing runs on {data} now\n" in done.stdout


def test_help_names_the_socket(hermetic_home: Path) -> None:
    done = cli("locate", "--help")
    assert done.returncode == 0
    assert "socket" in done.stdout
    assert "control socket" in " ".join(done.stdout.split())
    assert os.environ.get("POCKETCI_TUI_HOME") == str(hermetic_home)


async def test_check_names_a_running_owner_and_the_socket_it_answers_on(
    hermetic_home: Path, short_runtime: Path, tmp_path: Path
) -> None:
    slow_home(hermetic_home, tmp_path / "fixture")
    located = (await asyncio.to_thread(cli, "locate", "socket")).stdout.strip()
    serve = await ServeProcess.start()
    try:
        done = await asyncio.to_thread(cli, "check")
        owner = f"pocketci-tui serve (pid {serve.proc.pid}"
        data = hermetic_home / "data"
        lines = {line.split()[1]: line for line in done.stdout.splitlines() if line[:1] != " "}
        assert lines["owner"].startswith(f"ok    owner          {data} is in use by {owner}, since")
        assert f"listening on {serve.url})" in lines["owner"]
        assert lines["socket"] == (
            f"ok    socket         {located} answers (pocketci-tui serve (pid "
            f"{serve.proc.pid})): `pocketci-tui` attaches to it"
        ), done.stdout
    finally:
        assert await serve.terminate() == 0


async def test_a_system_service_without_a_runtime_folder_is_found_under_the_data_folder(
    hermetic_home: Path, short_runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system service has no $XDG_RUNTIME_DIR, an SSH session has one: `locate socket` and
    `check` in the session find the service's socket where it is."""
    slow_home(hermetic_home, tmp_path / "fixture")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    serve = await ServeProcess.start()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_runtime))
    try:
        there = hermetic_home / "data" / "run" / "control.sock"
        done = await asyncio.to_thread(cli, "locate", "socket")
        assert done.stdout.strip() == str(there), done.stderr
        check = await asyncio.to_thread(cli, "check")
        assert f"ok    socket         {there} answers" in check.stdout, check.stdout
    finally:
        assert await serve.terminate() == 0


def test_attach_with_nothing_there_says_how_to_start_an_owner(
    hermetic_home: Path, short_runtime: Path
) -> None:
    located = cli("locate", "socket").stdout.strip()
    done = cli("attach")
    assert done.returncode == 1
    assert done.stdout == ""
    message = " ".join(done.stderr.split())
    assert message.startswith(f"pocketci-tui: error: nothing answers at {located}:"), message
    assert "Start one with `pocketci-tui serve`" in message
    assert not (hermetic_home / "data" / "pocketci.db").exists(), "attach started an engine"

    missing = short_runtime / "elsewhere.sock"
    done = cli("attach", "--socket", str(missing))
    assert done.returncode == 1
    assert f"nothing answers at {missing}:" in " ".join(done.stderr.split())


def test_attach_help_says_what_it_does(hermetic_home: Path) -> None:
    done = cli("attach", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--socket PATH" in text
    assert "q detaches and stops nothing" in text
    top = " ".join(cli("--help").stdout.split())
    assert "attach" in top


async def test_an_owner_without_a_socket_is_named_and_nothing_attaches(
    hermetic_home: Path, short_runtime: Path
) -> None:
    """An owner that does not answer (an older version, or one whose socket could not open):
    `check` warns, `attach` says nothing answers, and `pocketci-tui` says who owns the
    folder, as before there were sockets."""
    from pocketci_tui.datalock import DataLock

    data = hermetic_home / "data"
    with DataLock.acquire(data / "pocketci.lock", "serve") as lock:
        lock.note_url("http://127.0.0.1:9")  # it listens: its socket would be open by now
        owner = f"pocketci-tui serve (pid {os.getpid()}"
        check = await asyncio.to_thread(cli, "check")
        assert f"WARN  socket         {owner}" in check.stdout, check.stdout
        assert "does not answer at" in check.stdout

        attach = await asyncio.to_thread(cli, "attach")
        assert attach.returncode == 1
        assert "nothing answers at" in attach.stderr

        ui = await asyncio.to_thread(cli, "--port", "0")
        assert ui.returncode == 2, ui.stderr
        assert f"is in use by {owner}" in " ".join(ui.stderr.split())


async def test_a_ui_attached_to_the_ui_that_owns_the_folder_has_it_reload(
    hermetic_home: Path, short_runtime: Path, tmp_path: Path
) -> None:
    """ctrl+l in a UI attached to another UI: the owning UI's reloader reads its config.yaml
    and answers what it did."""
    from ownerkit import PtyUI, until

    from pocketci_tui.control.client import SocketClient, find_owner
    from pocketci_tui.datalock import lock_owner
    from pocketci_tui.paths import AppPaths

    slow_home(hermetic_home, tmp_path / "fixture")
    paths = AppPaths(config_file=hermetic_home / "config.yaml", data_dir=hermetic_home / "data")
    ui = PtyUI.start()
    try:
        await until(
            lambda: bool((o := lock_owner(paths.lock_file)) and o.url), "the UI listening", 90
        )
        socket = await find_owner(paths, wait=30)
        assert socket is not None
        client = SocketClient(socket)
        await client.start()
        try:
            assert client.owner == f"the pocketci-tui terminal UI (pid {ui.proc.pid})"
            with paths.config_file.open("a") as config:
                config.write("timeout: 2m\n")
            ok, message = await client.reload_config()
            assert ok, message
            assert message == f"reloaded {paths.config_file}: applied timeout"
            assert client.settings.timeout == 120
        finally:
            await client.stop()
    finally:
        code = await asyncio.to_thread(ui.quit)
    assert code == 0, ui.screen[-2000:]
