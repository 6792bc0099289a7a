"""Problems are typed, raised by the part of the engine that finds them and cleared by it when the
thing works again: a secret store that answers again, a Dagger Cloud token set meanwhile, git back
on PATH. Real engine, git, SQLite, keyring backend and the stand-in ``dagger``."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from enginekit import EngineKit
from test_engine_secrets import HangingKeyring

from pocketci_tui.config import DaggerSettings
from pocketci_tui.model import EventStatus, RunState
from pocketci_tui.problems import GIT_MISSING, Problem
from pocketci_tui.secrets import KeyringSecretStore


class RecoveringKeyring(HangingKeyring):
    """Hangs until released, then answers with the clone token."""

    def get_password(self, service: str, username: str) -> str | None:
        super().get_password(service, username)
        return "clone-token-value"


def keys(problems: list[Problem]) -> set[str]:
    return {p.key for p in problems}


async def test_a_secret_store_problem_is_cleared_when_the_retry_succeeds(tmp_path: Path) -> None:
    backend = RecoveringKeyring()
    kit = EngineKit(tmp_path, secret_retry_seconds=0.5)
    kit.secrets = KeyringSecretStore(backend, timeout=0.3)  # type: ignore[assignment]
    kit.settings = replace(kit.settings, repos=(replace(kit.settings.repos[0], token="gh-token"),))
    try:
        async with kit:
            stored = await kit.deliver(kit.push({"main.go": "1\n"}))
            assert stored.event.id is not None
            await kit.wait_status(stored.event.id, EventStatus.WAITING)
            [problem] = [p for p in kit.engine.problems() if p.key == "secret-store"]
            assert problem.short == "secret store not answering"
            assert "tried again" in problem.detail
            assert problem.fix

            backend.release.set()  # the keyring answers again: the held event is retried
            runs = await kit.wait_runs_finished(stored.event.id)
            assert RunState.PASSED in {r.state for r in runs}
            assert "secret-store" not in keys(kit.engine.problems())
    finally:
        backend.release.set()


async def test_a_cloud_token_problem_is_cleared_once_the_token_is_set(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    kit.settings = replace(
        kit.settings,
        dagger=DaggerSettings(cli=kit.settings.dagger.cli, cloud_token="dagger-cloud"),
    )
    async with kit:
        [problem] = [p for p in kit.engine.problems() if p.key == "cloud-token"]
        assert problem.short == "cloud token missing"
        assert "pocketci-tui secrets set dagger-cloud" in problem.fix

        await kit.secrets.set("dagger-cloud", "dagger-cloud-token-value")
        stored = await kit.deliver(kit.push({"main.go": "2\n"}))
        assert stored.event.id is not None
        await kit.wait_runs_finished(stored.event.id)
        assert "cloud-token" not in keys(kit.engine.problems())
        [call] = kit.calls()
        assert call["env"]["DAGGER_CLOUD_TOKEN"] == "dagger-cloud-token-value"


async def test_missing_git_is_a_problem_until_a_checkout_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = EngineKit(tmp_path)
    event = kit.push({"main.go": "3\n"})  # committed with git, before it goes away
    empty = tmp_path / "no-git"
    empty.mkdir()
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(empty))
    async with kit:
        assert kit.engine.problems() == [GIT_MISSING]
        first = await kit.deliver(event)
        assert first.event.id is not None
        failed = await kit.wait_status(first.event.id, EventStatus.ERROR)
        assert "cannot start git" in failed.detail
        assert "git" in keys(kit.engine.problems())

        monkeypatch.setenv("PATH", path)
        second = await kit.deliver(kit.push({"main.go": "4\n"}))
        assert second.event.id is not None
        await kit.wait_runs_finished(second.event.id)
        assert kit.engine.problems() == []
