"""Every action against the real engine: signed deliveries posted to the embedded listener,
the stand-in ``dagger`` doing the calls, a real git repository being cloned."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from pocketci_tui.model import EventStatus, RunState
from pocketci_tui.tui.app import PocketCIApp, make_app
from pocketci_tui.tui.dialogs.approve import ApproveDialog
from pocketci_tui.tui.dialogs.confirm import ConfirmDialog
from pocketci_tui.tui.dialogs.fire import FireDialog
from pocketci_tui.tui.dialogs.secrets import SecretsDialog, SecretValueDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .harness import WEBHOOK_SECRET, Rig, dagger_call_groups, describe, live_in_groups, wait_for


def start_app(rig: Rig, **kw: object) -> tuple[PocketCIApp, list[list[str]]]:
    """An app over fresh real services; pager calls are recorded, not run."""
    pager_calls: list[list[str]] = []
    app = make_app(
        rig.settings,
        paths=rig.paths,
        services=rig.make_services(),
        first_start=False,
        pager=pager_calls.append,
        **kw,  # type: ignore[arg-type]
    )
    return app, pager_calls


def main(app: PocketCIApp) -> MainScreen:
    assert app.main_screen is not None
    return app.main_screen


def runs(app: PocketCIApp) -> RunsTable:
    return main(app).query_one(RunsTable)


async def started(rig: Rig, pilot: Pilot[int]) -> None:
    await wait_for(lambda: bool(rig.services and rig.services.url), pilot)


async def push_and_finish(rig: Rig, app: PocketCIApp, pilot: Pilot[int], branch: str) -> None:
    """Post a push and wait until the event's matched runs are finished."""
    reply = await rig.post_push(branch)
    assert reply.status == 202
    table = runs(app)
    await wait_for(
        lambda: (
            any(r.state is not RunState.SKIPPED for r in table.runs)
            and all(r.state.finished for r in table.runs)
        ),
        pilot,
    )


async def test_fire_picker_fires_the_stored_event_again(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "main")
        before = len(runs(app).all_runs)
        await pilot.press("f")
        await wait_for(
            lambda: isinstance(app.screen, FireDialog) and isinstance(app.focused, Input), pilot
        )
        await pilot.press(*"acme")
        await pilot.pause(0.3)
        picker = app.screen
        assert isinstance(picker, FireDialog)
        await wait_for(lambda: picker.highlighted is not None, pilot)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
        await wait_for(
            lambda: (
                len(runs(app).all_runs) > before
                and all(r.state.finished for r in runs(app).all_runs)
            ),
            pilot,
        )
        attempts = {r.attempt for r in runs(app).all_runs if r.function == "onGithubPushMain"}
        assert len(attempts) == 2 or len(runs(app).all_runs) >= 2 * before - 1


async def test_rerun_selected_run(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "main")
        await pilot.press("tab")
        assert isinstance(app.focused, RunsTable)
        selected = runs(app).selected
        assert selected is not None
        assert selected.function == "testOnGithubPushMain"  # the failed one is shown first
        await pilot.press("r")
        await wait_for(
            lambda: any(
                r.function == "testOnGithubPushMain" and r.attempt == 2 and r.state.finished
                for r in runs(app).runs
            ),
            pilot,
        )
        rerun = next(r for r in runs(app).runs if r.attempt == 2)
        assert rerun.state is RunState.FAILED
        assert rerun.parent_id == selected.id


async def test_rerun_with_events_focused_refires_the_event(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "main")
        assert isinstance(app.focused, EventsTable)
        before = len(runs(app).all_runs)
        await pilot.press("r")
        await wait_for(
            lambda: (
                len(runs(app).all_runs) > before
                and all(r.state.finished for r in runs(app).all_runs)
            ),
            pilot,
        )
        # The re-fire's attempts are grouped: one row per function, skipped ones included,
        # each the newest attempt, the first attempts collapsed under it.
        shown = runs(app).runs
        assert len(shown) == before
        assert len({r.function for r in shown}) == before
        assert {r.attempt for r in shown} == {2}
        assert all(runs(app).older_attempts(r.function) == 1 for r in shown)


async def test_cancel_selected_run_kills_its_processes(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        assert (await rig.post_push("slow")).status == 202
        await wait_for(
            lambda: (
                any(r.state is RunState.RUNNING for r in runs(app).runs)
                and bool(dagger_call_groups(rig.settings.dagger.cli))
            ),
            pilot,
            explain=lambda: describe(rig),
        )
        groups = dagger_call_groups(rig.settings.dagger.cli)
        await wait_for(lambda: "working on it..." in main(app).query_one(RunLog).lines, pilot)
        await pilot.press("tab", "c")
        await wait_for(lambda: any(r.state is RunState.CANCELLED for r in runs(app).runs), pilot)
        await wait_for(lambda: not live_in_groups(groups), pilot)


async def test_cancel_with_events_focused_cancels_the_event(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        assert (await rig.post_push("slow")).status == 202
        await wait_for(lambda: any(r.state is RunState.RUNNING for r in runs(app).runs), pilot)
        assert isinstance(app.focused, EventsTable)
        await pilot.press("c")
        await wait_for(
            lambda: all(
                r.state is RunState.CANCELLED
                for r in runs(app).runs
                if r.state is not RunState.SKIPPED
            ),
            pilot,
        )
        assert main(app).query_one(EventsTable).states[main(app).event_id or 0] == "cancelled"


async def test_approve_waiting_fork_pull_request(rig: Rig) -> None:
    """``a`` shows the fork, author, title, head commit and secrets; Esc cancels, Enter runs."""
    rig.settings = replace(
        rig.settings,
        repos=(replace(rig.settings.repos[0], secrets=("gh-password",), env=("GITHUB_TOKEN",)),),
        dagger=replace(rig.settings.dagger, cloud_token="dagger-cloud"),
    )
    app, _ = start_app(rig)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        # The fork's pocketci.yaml asks for a granted secret and for the webhook secret.
        spec = (
            "module-path: ./ci\nsecrets:\n"
            "  - {name: ghPassword, from-keyring: gh-password}\n"
            "  - {name: hookSecret, from-keyring: webhook-secret}\n"
        )
        assert (await rig.post_fork_pr(files={"pocketci.yaml": spec})).status == 202
        table = main(app).query_one(EventsTable)
        await wait_for(
            lambda: bool(table.events) and table.events[0].status is EventStatus.WAITING, pilot
        )
        head = table.events[0].event.sha
        log = main(app).query_one(RunLog)
        await wait_for(lambda: "press a to approve" in " ".join(log.lines), pilot)

        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, ApproveDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, ApproveDialog)
        facts = "\n".join(str(v.render()) for v in dialog.query(".approve-value"))
        for expected in (
            "acme/api",
            "mallory/api",  # the fork
            "rate-limit",  # its branch
            "octocat",  # the author
            "Add rate limiting to the login endpoint",
            head,  # the full head commit the approval is pinned to
        ):
            assert expected in facts, expected
        # The repository's grants are the most it can get; the head commit's own pocketci.yaml
        # is read before anything runs, and the dialog then says what it gets and is refused.
        assert dialog.facts.secrets == (
            "secret-store entry 'gh-password'",
            "environment variable GITHUB_TOKEN",
            "DAGGER_CLOUD_TOKEN (secret-store entry 'dagger-cloud')",
        )

        def secrets() -> str:
            return "\n".join(
                str(v.render()) for v in dialog.query("#approve-secrets .approve-value")
            )

        await wait_for(lambda: "this commit receives:" in secrets(), pilot)
        assert secrets().splitlines() == [
            "this commit receives:",
            "• ghPassword: secret-store entry 'gh-password'",
            "• DAGGER_CLOUD_TOKEN (secret-store entry 'dagger-cloud')",
            "it asks for, and is refused (the functions asking fail):",
            "• hookSecret: secret-store entry 'webhook-secret', not granted to acme/api",
        ]
        await pilot.press("escape")
        await wait_for(lambda: app.screen is main(app), pilot)
        await pilot.pause(0.2)
        assert rig.services is not None
        assert rig.services.store is not None
        stored = await rig.services.store.get_event(table.events[0].event.id or 0)
        assert stored is not None
        assert (stored.status, stored.approved_sha) == (EventStatus.WAITING, "")

        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, ApproveDialog), pilot)
        await pilot.press("enter")
        await wait_for(
            lambda: any(
                r.function == "onGithubPullRequest" and r.state is RunState.PASSED
                for r in runs(app).runs
            ),
            pilot,
        )


async def test_pager_opens_the_full_log(rig: Rig) -> None:
    app, pager_calls = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "main")
        await pilot.press("tab", "p")
        await wait_for(lambda: bool(pager_calls), pilot)
        path = pager_calls[0][-1]
        assert path.startswith(str(rig.paths.logs_dir))
        assert "FAIL test_login" in Path(path).read_text(encoding="utf-8")  # noqa: ASYNC240


async def test_flood_is_batched_and_bounded(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "flood")
        log = main(app).query_one(RunLog)
        await wait_for(lambda: bool(log.lines) and log.lines[-1] == "line 200000", pilot)
        assert log.line_count <= 10_000
        bridge = app._bridge
        assert bridge is not None
        assert bridge.flushes < bridge.notices  # notices were coalesced into fewer messages


async def test_quit_asks_while_building_and_stops_cleanly(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(rig, pilot)
        assert rig.services is not None
        url = rig.services.url
        assert (await rig.post_push("slow")).status == 202
        await wait_for(lambda: bool(dagger_call_groups(rig.settings.dagger.cli)), pilot)
        groups = dagger_call_groups(rig.settings.dagger.cli)
        await pilot.press("q")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, MainScreen), pilot)
        assert app.is_running
        await pilot.press("q")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
    # After the app is gone: no dagger process (nor its grandchild), no listening socket.
    assert not live_in_groups(groups)
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", port)) != 0


async def test_a_webhook_secret_set_in_the_secrets_dialog_verifies_the_next_delivery(
    rig: Rig,
) -> None:
    """A webhook secret rotated in the secrets dialog is used at once: the next delivery signed
    with the new secret is stored, one signed with the old secret is refused, with no wait for
    the listener's cached copy to expire."""
    rotated = "rotated-webhook-secret-9876543210"
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        assert (await rig.post_push("main")).status == 202  # the old secret is now cached
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, SecretsDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, SecretsDialog)
        await wait_for(lambda: "webhook-secret" in dialog.names, pilot)
        dialog.query_one(OptionList).highlighted = dialog.names.index("webhook-secret")
        await pilot.press("e")
        await wait_for(
            lambda: isinstance(app.screen, SecretValueDialog) and isinstance(app.focused, Input),
            pilot,
        )
        await pilot.press(*rotated, "enter")
        await wait_for(lambda: app.screen is dialog, pilot)
        for _ in range(100):
            if await rig.secrets.get("webhook-secret") == rotated:
                break
            await pilot.pause(0.05)
        assert await rig.secrets.get("webhook-secret") == rotated
        assert (await rig.post_push("feature", secret=rotated)).status == 202
        assert (await rig.post_push("other", secret=WEBHOOK_SECRET)).status == 401
