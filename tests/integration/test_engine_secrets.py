"""The engine when the secret store hangs (checklist K6) or lacks a value.

Builds that need a secret are held with a reason, never run without it, while other work goes on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from daggerstub import arg, fn
from enginekit import EngineKit
from keyring.backend import KeyringBackend

from pocketci_tui.config import RepoConfig
from pocketci_tui.model import EventStatus, RunState
from pocketci_tui.secrets import KeyringSecretStore


class HangingKeyring(KeyringBackend):
    """A keyring whose every call blocks until released (a locked Secret Service prompt)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring leaves it unannotated
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
        assert "secret-store" in {p.key for p in kit.engine.problems()}

        # A repository that needs no secret is built meanwhile.
        free = await kit.deliver(kit.push({"main.go": "2\n"}))
        assert free.event.id is not None
        runs = await kit.wait_runs_finished(free.event.id)
        assert RunState.PASSED in {r.state for r in runs}
        assert await kit.store.list_runs(held.event.id) == []
        assert all(c["event_trigger"]["repository_name"] == "owner/repo" for c in kit.calls())


async def test_a_missing_function_secret_fails_that_run_with_the_fix(tmp_path: Path) -> None:
    spec = {"secrets": [{"name": "ghPassword", "from-keyring": "gh-password"}]}
    async with EngineKit(tmp_path, spec=spec, grant_secrets=["gh-password"]) as kit:
        stored = await kit.deliver(kit.push({"main.go": "x\n"}))
        assert stored.event.id is not None
        runs = await kit.wait_runs_finished(stored.event.id)
        [run] = [r for r in runs if r.function == "onGithubPushMain"]
        assert run.state is RunState.FAILED
        assert "secrets set gh-password" in run.reason
        assert kit.calls() == []


# -- grants: a repository's pocketci.yaml gets only what the runner's user granted (R1) --------

WEBHOOK_VALUE = "the-webhook-secret-value"
OTHER_TOKEN = "other-repository-clone-token"
RUNNER_VALUE = "runner-environment-value"
NPM_VALUE = "granted-npm-token-value"
GRANTED_ENV_VALUE = "granted-environment-value"
BASE = [arg("src", "Directory"), arg("eventTrigger", "File")]


def _leaked(kit: EngineKit, *values: str) -> list[str]:
    """The values found anywhere in what the stand-in dagger recorded (argv, env, secrets)."""
    recorded = json.dumps(kit.calls())
    return [v for v in values if v in recorded]


async def test_an_ungranted_secret_is_refused_and_the_event_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_ONLY_VAR", RUNNER_VALUE)
    monkeypatch.setenv("GRANTED_VAR", GRANTED_ENV_VALUE)
    functions = [
        # Asks for the webhook secret (and a granted one: it gets neither).
        fn("onGithubPushMain", *BASE, arg("hookSecret", "Secret"), arg("npmToken", "Secret")),
        # Asks for another repository's clone token.
        fn("deployOnGithubPushMain", *BASE, arg("otherToken", "Secret")),
        # Asks for a variable of the runner's environment.
        fn("envOnGithubPushMain", *BASE, arg("runnerVar", "Secret")),
        # Asks only for what is granted.
        fn("buildOnGithubPushMain", *BASE, arg("npmToken", "Secret"), arg("ciVar", "Secret")),
    ]
    spec = {
        "secrets": [
            {"name": "hookSecret", "from-keyring": "webhook-secret"},
            {"name": "otherToken", "from-keyring": "other-token"},
            {"name": "runnerVar", "from-env": "RUNNER_ONLY_VAR"},
            {"name": "npmToken", "from-keyring": "npm-token"},
            {"name": "ciVar", "from-env": "GRANTED_VAR"},
        ]
    }
    kit = EngineKit(
        tmp_path,
        functions=functions,
        spec=spec,
        secrets={
            "webhook-secret": WEBHOOK_VALUE,
            "other-token": OTHER_TOKEN,
            "npm-token": NPM_VALUE,
        },
        grant_secrets=["npm-token"],
        grant_env=["GRANTED_VAR"],
    )
    kit.settings = replace(
        kit.settings,
        repos=(*kit.settings.repos, RepoConfig(name="owner/other", token="other-token")),
    )
    async with kit:
        stored = await kit.deliver(kit.push({"main.go": "x\n"}))
        assert stored.event.id is not None
        runs = {r.function: r for r in await kit.wait_runs_finished(stored.event.id, count=4)}

        # The granted secrets still arrive, through the environment, to the function that
        # asked only for them.
        [call] = kit.calls()
        assert "build-on-github-push-main" in call["argv"]
        assert call["secrets"] == {"npmToken": NPM_VALUE, "ciVar": GRANTED_ENV_VALUE}
        assert runs["buildOnGithubPushMain"].state is RunState.PASSED

        # The others were never called: no value of what they asked reached any child.
        assert _leaked(kit, WEBHOOK_VALUE, OTHER_TOKEN, RUNNER_VALUE) == []
        for function, source in (
            ("onGithubPushMain", "'webhook-secret'"),
            ("deployOnGithubPushMain", "'other-token'"),
            ("envOnGithubPushMain", "RUNNER_ONLY_VAR"),
        ):
            run = runs[function]
            assert run.state is RunState.FAILED, function
            assert run.reason.startswith("refused secret"), run.reason
            assert source in run.reason
            assert "not granted to owner/repo" in run.reason
            assert "config.yaml" in run.reason
        assert "npmToken" not in runs["onGithubPushMain"].reason  # granted, but not handed over

        event = await kit.store.get_event(stored.event.id)
        assert event is not None
        assert "refused" in event.detail
        for source in ("'webhook-secret'", "'other-token'", "RUNNER_ONLY_VAR"):
            assert source in event.detail
        assert "npm-token" not in event.detail
        assert "GRANTED_VAR" not in event.detail


async def test_an_approved_fork_cannot_take_the_webhook_secret(tmp_path: Path) -> None:
    """A fork's pull request adds ``from-keyring: webhook-secret`` to pocketci.yaml."""
    spec = {"secrets": [{"name": "ghPassword", "from-keyring": "gh-password"}]}
    async with EngineKit(
        tmp_path,
        spec=spec,
        secrets={"webhook-secret": WEBHOOK_VALUE, "gh-password": NPM_VALUE},
        grant_secrets=["gh-password"],
    ) as kit:
        forked = {"secrets": [{"name": "ghPassword", "from-keyring": "webhook-secret"}]}
        event = kit.pull_request(
            {"a.go": "package a\n", "pocketci.yaml": yaml.safe_dump(forked)}, fork=True
        )
        stored = await kit.deliver(event)
        assert stored.event.id is not None
        await kit.wait_status(stored.event.id, EventStatus.WAITING)
        await kit.engine.approve(stored.event.id)
        runs = {r.function: r for r in await kit.wait_runs_finished(stored.event.id)}

        asked = runs["testOnGithubPullRequest"]
        assert asked.state is RunState.FAILED
        assert "'webhook-secret'" in asked.reason
        assert "not granted" in asked.reason
        # The function that asked for nothing runs; no child saw the webhook secret.
        assert runs["lintOnGithubPullRequest"].state is RunState.PASSED
        assert [c["argv"][5] for c in kit.calls()] == ["lint-on-github-pull-request"]
        assert _leaked(kit, WEBHOOK_VALUE) == []
        final = await kit.store.get_event(stored.event.id)
        assert final is not None
        assert "'webhook-secret'" in final.detail
