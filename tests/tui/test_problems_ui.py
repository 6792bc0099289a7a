"""The status bar shows typed problems and drops each once the part that raised it sees it fixed;
the promised warnings (plaintext secret store, no git) are among them. Real services."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from pocketci_tui.config import DaggerSettings
from pocketci_tui.secrets import plaintext_store
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .harness import WEBHOOK_SECRET, Rig, wait_for
from .test_engine_actions import main, push_and_finish, start_app, started


def bar(app: object) -> StatusBar:
    from pocketci_tui.tui.app import PocketCIApp

    assert isinstance(app, PocketCIApp)
    return main(app).query_one(StatusBar)


async def test_cloud_token_problem_leaves_the_status_bar_once_the_token_works(rig: Rig) -> None:
    rig.settings = replace(
        rig.settings,
        dagger=DaggerSettings(cli=rig.settings.dagger.cli, cloud_token="dagger-cloud"),
    )
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        status = bar(app)
        await wait_for(lambda: "cloud-token" in {p.key for p in status.problems}, pilot)
        assert "cloud token missing" in str(status.render())

        await rig.secrets.set("dagger-cloud", "dagger-cloud-token-value")
        await push_and_finish(rig, app, pilot, "main")
        await wait_for(lambda: "cloud-token" not in {p.key for p in status.problems}, pilot)
        assert "cloud token" not in str(status.render())


async def test_plaintext_secret_store_is_a_warning_in_the_ui(rig: Rig, tmp_path: Path) -> None:
    store = plaintext_store(tmp_path / "secrets-plaintext.json")
    await store.set("webhook-secret", WEBHOOK_SECRET)
    rig.secrets = store  # type: ignore[assignment]
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        status = bar(app)
        await wait_for(lambda: "plaintext-secrets" in {p.key for p in status.problems}, pilot)
        [warning] = [p for p in status.problems if p.key == "plaintext-secrets"]
        assert warning.warning
        assert "secrets unencrypted" in str(status.render())
        log = main(app).query_one(RunLog)
        await wait_for(lambda: any("UNENCRYPTED" in line for line in log.lines), pilot)


async def test_missing_git_is_shown_with_its_fix(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-git"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert os.environ["PATH"] == str(empty)
    app, _ = start_app(rig)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        status = bar(app)
        await wait_for(lambda: "git" in {p.key for p in status.problems}, pilot)
        assert "git not found" in str(status.render())
        log = main(app).query_one(RunLog)
        await wait_for(lambda: any("install git" in line for line in log.lines), pilot)


async def test_webhook_secret_problem_leaves_once_a_delivery_proves_it_set(rig: Rig) -> None:
    """The secret set from another terminal while the UI runs: the next delivery clears it."""
    await rig.secrets.delete("webhook-secret")
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        status = bar(app)
        await wait_for(lambda: "webhook-secret" in {p.key for p in status.problems}, pilot)
        assert "webhook secret not set" in str(status.render())

        await rig.secrets.set("webhook-secret", WEBHOOK_SECRET)
        await push_and_finish(rig, app, pilot, "main")
        await wait_for(lambda: "webhook-secret" not in {p.key for p in status.problems}, pilot)
        assert "webhook secret" not in str(status.render())
