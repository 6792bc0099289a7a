"""The whole flow against a real Dagger engine.

Skipped unless a real ``dagger`` CLI is on PATH and a container runtime answers (``docker info``
or ``podman info``), because the engine runs in a container and pulls images from the network.
Run it on a machine that has both::

    .venv/bin/python -m pytest tests/smoke -v

It creates a Python-SDK Dagger module with ``dagger init``, commits it into a local repository
with a ``pocketci.yaml``, and lets the real engine (not the stand-in) introspect the module and
run the matched function on a push to main.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from gitrepo import BareRepo, push_event

from pocketci_tui.config import DaggerSettings, RepoConfig, Settings
from pocketci_tui.engine.dispatch import Engine
from pocketci_tui.model import EventStatus, RunState, utcnow
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.store import Store


def _runtime_ready() -> str:
    """Return why the smoke test cannot run here, or "" when it can."""
    dagger = shutil.which("dagger")
    if dagger is None:
        return "no dagger CLI on PATH"
    if (
        "(fake)"
        in subprocess.run(
            [dagger, "version"], capture_output=True, text=True, timeout=60, check=False
        ).stdout
    ):
        return "the dagger on PATH is the test stand-in"
    for runtime in ("docker", "podman"):
        exe = shutil.which(runtime)
        if exe is None:
            continue
        probe = subprocess.run(
            [exe, "info"], capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL
        )
        if probe.returncode == 0:
            return ""
    return "no container runtime answers (docker info / podman info)"


REASON = _runtime_ready()
pytestmark = [pytest.mark.dagger, pytest.mark.skipif(bool(REASON), reason=REASON or "ready")]

MAIN_PY = '''\
import dagger
from dagger import dag, function, object_type


@object_type
class Ci:
    @function
    async def on_github_push_main(
        self, src: dagger.Directory, event_trigger: dagger.File
    ) -> str:
        """Runs on every push to main."""
        event = await event_trigger.contents()
        return await (
            dag.container()
            .from_("alpine:3.20")
            .with_mounted_directory("/src", src)
            .with_new_file("/event.json", event)
            .with_exec(["sh", "-c", "ls /src && cat /event.json"])
            .stdout()
        )

    @function
    def test_on_github_pull_request(
        self, src: dagger.Directory, event_trigger: dagger.File, filter: str = "opened"
    ) -> str:
        return "not for pushes"
'''


@pytest.mark.timeout(1800)
async def test_push_runs_a_real_dagger_function(tmp_path: Path) -> None:
    work = tmp_path / "init"
    work.mkdir()
    await asyncio.to_thread(
        subprocess.run,
        ["dagger", "init", "--sdk=python", "--name=ci", "ci"],
        cwd=work,
        check=True,
        capture_output=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    [main_py] = (work / "ci").rglob("main.py")
    main_py.write_text(MAIN_PY)
    files: dict[str, str | bytes | None] = {
        str(p.relative_to(work)): p.read_bytes() for p in work.rglob("*") if p.is_file()
    }
    files["pocketci.yaml"] = "module-path: ./ci\n"
    files["hello.txt"] = "hello\n"
    remote = BareRepo(tmp_path / "remote.git")
    sha = remote.commit(files, branch="main")

    paths = AppPaths(config_file=tmp_path / "config.yaml", data_dir=tmp_path / "data")
    settings = Settings(
        repos=(RepoConfig(name="owner/repo", clone_url=str(remote.path)),),
        dagger=DaggerSettings(cli=shutil.which("dagger") or "dagger"),
    )
    store = await Store.open(paths.db_file)
    engine = Engine(settings=settings, paths=paths, store=store, secrets=MemorySecretStore())
    await engine.start()
    try:
        event = push_event("refs/heads/main", sha, repository="owner/repo", received_at=utcnow())
        stored, _ = await store.record_event(event, EventStatus.RECEIVED)
        await engine.submit(stored, False)
        assert stored.event.id is not None
        async with asyncio.timeout(1500):
            while True:
                runs = await store.list_runs(stored.event.id)
                current = await store.get_event(stored.event.id)
                assert current is not None
                assert current.status is not EventStatus.ERROR, current.detail
                if runs and all(r.state.finished for r in runs):
                    break
                await asyncio.sleep(1)
        states = {r.function: r.state for r in runs}
        assert states["onGithubPushMain"] is RunState.PASSED, runs
        passed = next(r for r in runs if r.function == "onGithubPushMain")
        log = (paths.logs_dir / passed.log_path).read_text()
        assert "hello.txt" in log
        assert passed.id in log
    finally:
        await engine.shutdown()
        await store.close()
