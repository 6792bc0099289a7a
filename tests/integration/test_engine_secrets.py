"""The engine when the secret store hangs (checklist K6) or lacks a value.

Builds that need a secret are held with a reason, never run without it, while other work goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from enginekit import EngineKit
from keyring.backend import KeyringBackend

from pocketci_tui.model import EventStatus, RunState
from pocketci_tui.secrets import KeyringSecretStore


class HangingKeyring(KeyringBackend):
    """A keyring whose every call blocks until released (a locked Secret Service prompt)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(60)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(60)

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait(60)


@pytest.fixture
def hanging() -> Iterator[HangingKeyring]:
    backend = HangingKeyring()
    yield backend
    backend.release.set()


async def test_a_hung_keyring_holds_builds_that_need_it_and_nothing_else(
    tmp_path: Path, hanging: HangingKeyring
) -> None:
    kit = EngineKit(tmp_path)
    kit.secrets = KeyringSecretStore(hanging, timeout=0.3)  # type: ignore[assignment]
    kit.settings = replace(
        kit.settings,
        repos=(
            replace(kit.settings.repos[0], name="owner/private", token="gh-token"),
            kit.settings.repos[0],
        ),
    )
    async with kit:
        held_event = replace(kit.push({"main.go": "1\n"}), repository="owner/private")
        held = await kit.deliver(held_event)
        assert held.event.id is not None
        waiting = await kit.wait_status(held.event.id, EventStatus.WAITING)
        assert "held" in waiting.detail
        assert "secret store" in waiting.detail
        assert any("secret store" in p for p in kit.engine.problems())

        # A repository that needs no secret is built meanwhile.
        free = await kit.deliver(kit.push({"main.go": "2\n"}))
        assert free.event.id is not None
        runs = await kit.wait_runs_finished(free.event.id)
        assert RunState.PASSED in {r.state for r in runs}
        assert await kit.store.list_runs(held.event.id) == []
        assert all(c["event_trigger"]["repository_name"] == "owner/repo" for c in kit.calls())


async def test_a_missing_function_secret_fails_that_run_with_the_fix(tmp_path: Path) -> None:
    spec = {"secrets": [{"name": "ghPassword", "from-keyring": "gh-password"}]}
    async with EngineKit(tmp_path, spec=spec) as kit:
        stored = await kit.deliver(kit.push({"main.go": "x\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        [run] = [r for r in runs if r.function == "onGithubPushMain"]
        assert run.state is RunState.FAILED
        assert "secrets set gh-password" in run.reason
        assert kit.calls() == []
