"""The main states of the UI, built the same way for snapshots and for the README screenshots.

Every scene uses a real store seeded with a fixed history, a scripted engine, a fixed clock and
fixed run ids, so that two renderings are identical.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from textual.pilot import Pilot

from pocketci_tui.config import ForgeSettings, RepoConfig, Settings
from pocketci_tui.model import RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.secrets import MemorySecretStore, SecretStoreUnavailable
from pocketci_tui.services import ServicesError
from pocketci_tui.store import Store
from pocketci_tui.tui.app import PocketCIApp, make_app
from pocketci_tui.tui.dialogs.details import EventDetails
from pocketci_tui.tui.dialogs.fire import FireDialog
from pocketci_tui.tui.dialogs.help import HelpDialog
from pocketci_tui.tui.dialogs.repositories import RepositoriesDialog
from pocketci_tui.tui.dialogs.secrets import PassphraseDialog
from pocketci_tui.tui.dialogs.setup import SetupDialog
from pocketci_tui.tui.dialogs.webhook import WebhookDialog
from pocketci_tui.tui.screens.main import MainScreen
from pocketci_tui.tui.widgets.events_table import EventsTable
from pocketci_tui.tui.widgets.output_pane import OutputPane
from pocketci_tui.tui.widgets.run_log import RunLog
from pocketci_tui.tui.widgets.runs_table import RunsTable
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .day import API_TEST_LOG, WEB_BUILD_LOG, seed_day
from .fakes import ScriptedEngine, ScriptedServices, run, seed_history
from .harness import fixed_clock, wait_for

RunBefore = Callable[[Pilot[int]], Awaitable[None]]


@dataclass
class Scene:
    """An app in a given state: build it, then run ``run_before`` in the pilot."""

    app: PocketCIApp
    run_before: RunBefore


def _paths(folder: Path) -> AppPaths:
    return AppPaths(config_file=folder / "config.yaml", data_dir=folder / "data")


Seeder = Callable[[Store, AppPaths, ScriptedEngine], Awaitable[dict[str, int]]]


def _seed(paths: AppPaths, engine: ScriptedEngine, seeder: Seeder = seed_history) -> dict[str, int]:
    async def seed() -> dict[str, int]:
        paths.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(paths.db_file)
        try:
            return await seeder(store, paths, engine)
        finally:
            await store.close()

    return asyncio.run(seed())


async def _settle(app: PocketCIApp, pilot: Pilot[int], events: int) -> MainScreen:
    """Wait until the seeded history is shown and the first run's output is in; return the
    main screen."""
    assert app.main_screen is not None
    main = app.main_screen
    status = main.query_one(StatusBar)
    await wait_for(lambda: not status.starting, pilot)
    table = main.query_one(EventsTable)
    await wait_for(lambda: len(table.events) == events, pilot)
    await wait_for(lambda: "dispatched" not in table.states.values(), pilot)
    if events:
        log = main.query_one(RunLog)
        await wait_for(lambda: main.run_id is not None and log.line_count > 0, pilot)
    await pilot.pause(0.1)
    return main


def _select_event(main: MainScreen, event_id: int) -> None:
    table = main.query_one(EventsTable)
    table.move_cursor(row=[e.event.id for e in table.events].index(event_id))


def _app(paths: AppPaths, services: ScriptedServices, *, first_start: bool = False) -> PocketCIApp:
    return make_app(
        Settings(), paths=paths, services=services, clock=fixed_clock, first_start=first_start
    )


def empty(folder: Path) -> Scene:
    """First start with nothing stored; setup skipped."""
    paths = _paths(folder)
    app = _app(paths, ScriptedServices(paths))

    async def run_before(pilot: Pilot[int]) -> None:
        await _settle(app, pilot, 0)
        assert app.main_screen is not None
        log = app.main_screen.query_one(RunLog)
        await wait_for(lambda: any("No events yet" in line for line in log.lines), pilot)

    return Scene(app, run_before)


FIXED_SECRET = "5f2b9c0e7a4d1e8f3b6a9c2d5e8f1a4b7c0d3e6f9a2b5c8d1e4f7a0b3c6d9e2f"
"""The webhook secret the setup scene generates, so that the picture does not change."""


def setup(folder: Path) -> Scene:
    """First start: the setup dialog, after Enter, showing what to paste into GitHub.

    The dialog runs for real (it writes config.yaml and stores the secret); only the secret is
    fixed. The config goes where it would for a user whose home is ``folder/home``, which is
    ``HOME`` in the tests (tests/conftest.py) and in tests/make_screenshots.py.
    """
    paths = AppPaths(
        config_file=folder / "home" / ".config" / "pocketci-tui" / "config.yaml",
        data_dir=folder / "data",
    )
    secrets = MemorySecretStore()
    services = ScriptedServices(paths, secrets=secrets)
    app = _app(paths, services, first_start=True)

    async def run_before(pilot: Pilot[int]) -> None:
        await _settle(app, pilot, 0)
        await wait_for(lambda: isinstance(app.screen, SetupDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, SetupDialog)
        dialog.new_secret = lambda: FIXED_SECRET
        await pilot.press("enter")
        await wait_for(lambda: dialog.step == 2, pilot)
        assert await secrets.get("webhook-secret") == FIXED_SECRET
        assert paths.config_file.is_file()

    return Scene(app, run_before)


def running(folder: Path) -> Scene:
    """A build running: the newest event selected, its live output following."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 5)
        await wait_for(lambda: main.run_id == "run-rel-build", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.line_count == 40, pilot)

    return Scene(app, run_before)


def failed(folder: Path) -> Scene:
    """A failed build: its reason above the output, the Functions pane focused."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 5)
        _select_event(main, ids["failed"])
        await wait_for(lambda: main.run_id == "run-main-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: "Error: exit status 1" in log.lines, pilot)
        await wait_for(lambda: log.current is not None, pilot)  # opened at its failure
        await pilot.press("tab")
        await wait_for(lambda: isinstance(app.focused, RunsTable), pilot)
        await pilot.pause(0.2)  # the scrollbars settle after the jump to the failure

    return Scene(app, run_before)


def fire(folder: Path) -> Scene:
    """The fire picker on the failed event, with its preview."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 5)
        _select_event(main, ids["failed"])
        await wait_for(lambda: main.event_id == ids["failed"], pilot)
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        preview = app.screen.query_one("#fire-preview")
        await wait_for(lambda: "deployOnGithubPushRelease" in str(preview.render()), pilot)

    return Scene(app, run_before)


def webhook(folder: Path) -> Scene:
    """The webhook dialog, secret hidden."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        await _settle(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, WebhookDialog)
        await wait_for(lambda: dialog.exists is not None, pilot)

    return Scene(app, run_before)


def webhook_forges(folder: Path) -> Scene:
    """The webhook dialog of a config with GitHub, Gitea and GitLab repositories (issue 13):
    a section per forge with its URL, its form and what keeps it from delivering here."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine)
    settings = Settings(
        repos=(
            RepoConfig(name="acme/api"),
            RepoConfig(name="me/app", vendor="gitea"),
            RepoConfig(name="team/sub/api", vendor="gitlab"),
        ),
        forges={"gitea": ForgeSettings(url="https://git.example.org")},
    )
    app = make_app(
        settings,
        paths=paths,
        services=ScriptedServices(paths, engine),
        clock=fixed_clock,
        first_start=False,
    )

    async def run_before(pilot: Pilot[int]) -> None:
        await _settle(app, pilot, 5)
        await pilot.press("w")
        await wait_for(lambda: isinstance(app.screen, WebhookDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, WebhookDialog)
        await wait_for(lambda: dialog.exists is not None, pilot)

    return Scene(app, run_before)


def keys(folder: Path) -> Scene:
    """The help dialog: keys and binding ids."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        await _settle(app, pilot, 5)
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpDialog), pilot)

    return Scene(app, run_before)


def day_running(folder: Path) -> Scene:
    """The README's hero: a realistic day, a build of acme/web's main running."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        await wait_for(lambda: main.run_id == "day-web-build", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.line_count == len(WEB_BUILD_LOG), pilot)

    return Scene(app, run_before)


def day_failed(folder: Path) -> Scene:
    """A realistic day: a pull request whose tests failed, the reason above the output."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.run_id == "day-pr-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: "Error: exit status 1" in log.lines, pilot)
        await wait_for(lambda: log.current is not None, pilot)  # opened at its failure
        await pilot.press("tab")
        await wait_for(lambda: isinstance(app.focused, RunsTable), pilot)
        await pilot.pause(0.2)  # the scrollbars settle after the jump to the failure

    return Scene(app, run_before)


def day_fire(folder: Path) -> Scene:
    """A realistic day: the fire picker on the failed pull request, with its preview."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.event_id == ids["failing"], pilot)
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, FireDialog), pilot)
        preview = app.screen.query_one("#fire-preview")
        await wait_for(lambda: "testOnGithubPullRequest" in str(preview.render()), pilot)

    return Scene(app, run_before)


def day_details(folder: Path) -> Scene:
    """A realistic day: the failed pull request in full, its page on the forge as a link."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.run_id == "day-pr-test", pilot)
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, EventDetails), pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


async def seed_attempts(store: Store, paths: AppPaths, engine: ScriptedEngine) -> dict[str, int]:
    """The fixed history, with acme/api's main fired twice more and its test re-run: three
    attempts of each function, the deploy skipped every time."""
    ids = await seed_history(store, paths, engine)
    failed = ids["failed"]
    later = [
        (2, "onGithubPushMain", RunState.PASSED, 30, 3.0, ""),
        (2, "testOnGithubPushMain", RunState.FAILED, 30, 8.4, "Error: exit status 1"),
        (2, "deployOnGithubPushRelease", RunState.SKIPPED, None, None, "filter: main"),
        (3, "onGithubPushMain", RunState.PASSED, 20, 2.9, ""),
        (3, "testOnGithubPushMain", RunState.PASSED, 20, 9.1, ""),
        (3, "deployOnGithubPushRelease", RunState.SKIPPED, None, None, "filter: main"),
    ]
    runs = [
        replace(
            run(f"run-{attempt}-{function}", failed, function, state, started=at, seconds=took),
            attempt=attempt,
            reason=reason,
            exit_code=1 if state is RunState.FAILED else (0 if at else None),
        )
        for attempt, function, state, at, took, reason in later
    ]
    await store.add_runs(runs)
    log = paths.logs_dir / f"{failed}" / "run-3-testOnGithubPushMain.log"
    log.write_text("running 42 tests\nok   acme/api/internal/http 0.241s\nPASS\n", "utf-8")
    return ids


def attempts(folder: Path) -> Scene:
    """Three attempts of each function, grouped: the latest first, the test's older ones
    expanded under it, the build's collapsed, the skipped deploy once."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_attempts)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 5)
        _select_event(main, ids["failed"])
        table = main.query_one(RunsTable)
        await wait_for(lambda: table.older_attempts("testOnGithubPushMain") == 2, pilot)
        await pilot.press("tab")
        await wait_for(lambda: isinstance(app.focused, RunsTable), pilot)
        table.move_cursor(row=[r.function for r in table.runs].index("testOnGithubPushMain"))
        await wait_for(lambda: main.run_id == "run-3-testOnGithubPushMain", pilot)
        await pilot.press("space")
        await wait_for(lambda: len(table.runs) == 5, pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


async def seed_day_attempts(
    store: Store, paths: AppPaths, engine: ScriptedEngine
) -> dict[str, int]:
    """A realistic day where the failing pull request's test was re-run twice: it failed
    again, then passed (a token's expiry was off by the clock's skew)."""
    ids = await seed_day(store, paths, engine)
    failing = ids["failing"]
    later = [
        (2, RunState.FAILED, 40, 37.2, "Error: exit status 1"),
        (3, RunState.PASSED, 12, 36.8, ""),
    ]
    runs = [
        replace(
            run(
                f"day-pr-test-{n}",
                failing,
                "testOnGithubPullRequest",
                state,
                started=at,
                seconds=took,
            ),
            attempt=n,
            reason=reason,
            exit_code=1 if state is RunState.FAILED else 0,
        )
        for n, state, at, took, reason in later
    ]
    await store.add_runs(runs)
    for name, lines in (
        ("day-pr-test-2", [*API_TEST_LOG[:7], "      auth_test.go:88: token expired 1s early"]),
        ("day-pr-test-3", [*API_TEST_LOG[:6], "  ok   acme/api/internal/auth    0.121s"]),
    ):
        (paths.logs_dir / f"{failing}" / f"{name}.log").write_text(
            "\n".join(lines) + "\n", encoding="utf-8"
        )
    return ids


def day_attempts(folder: Path) -> Scene:
    """A realistic day: the pull request's test run three times, the latest (passed) first,
    the two older ones shown under it (Space)."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day_attempts)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        table = main.query_one(RunsTable)
        await wait_for(lambda: table.older_attempts("testOnGithubPullRequest") == 2, pilot)
        await pilot.press("tab")
        await wait_for(lambda: isinstance(app.focused, RunsTable), pilot)
        table.move_cursor(row=[r.function for r in table.runs].index("testOnGithubPullRequest"))
        await wait_for(lambda: main.run_id == "day-pr-test-3", pilot)
        await pilot.press("space")
        await wait_for(lambda: len(table.runs) == 5, pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


def day_repos(folder: Path) -> Scene:
    """A realistic day: every repository, how it stands now and how its last build ended."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        await _settle(app, pilot, 6)
        await pilot.press("v")
        await wait_for(lambda: isinstance(app.screen, RepositoriesDialog), pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


def day_zoom(folder: Path) -> Scene:
    """A realistic day: the failed pull request's output zoomed to the full screen, at its
    failure, the title saying the function and its state."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.run_id == "day-pr-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.current is not None, pilot)
        log.focus()
        await pilot.press("z")
        await wait_for(lambda: not main.query_one("#runs-pane").display, pilot)
        await pilot.pause(0.1)

    return Scene(app, run_before)


def day_wrap(folder: Path) -> Scene:
    """A realistic day: the failed pull request's output with its long lines wrapped (w), the
    border saying so, the failure line marked over all its rows."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.run_id == "day-pr-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.current is not None, pilot)
        log.focus()
        await pilot.press("w")
        await wait_for(lambda: log.wrap, pilot)
        await pilot.pause(0.2)

    return Scene(app, run_before)


def day_search(folder: Path) -> Scene:
    """A realistic day: the failed pull request's output searched for ``acme/api``, the matches
    marked, the current one on its line, the count in the border once the whole file is read."""
    paths = _paths(folder)
    engine = ScriptedEngine()
    ids = _seed(paths, engine, seed_day)
    app = _app(paths, ScriptedServices(paths, engine))

    async def run_before(pilot: Pilot[int]) -> None:
        main = await _settle(app, pilot, 6)
        _select_event(main, ids["failing"])
        await wait_for(lambda: main.run_id == "day-pr-test", pilot)
        log = main.query_one(RunLog)
        await wait_for(lambda: log.current is not None, pilot)  # opened at its failure
        log.focus()
        await pilot.press("slash", *"acme/api", "enter")
        pane = main.query_one(OutputPane)
        # The whole file read, the second match current, the focus back on the output.
        await wait_for(lambda: pane.done and len(pane.hits) == 3 and log.has_focus, pilot)
        await pilot.press("n")
        await wait_for(lambda: log.current == pane.hits[1].line, pilot)
        await _still(app, pilot, log)

    return Scene(app, run_before)


async def _still(app: PocketCIApp, pilot: Pilot[int], log: RunLog) -> None:
    """Wait until the log's workers are done (it measures its widest line in one, and the
    scrollbar that width brings moves the view) and the screen has settled."""
    await wait_for(lambda: all(w.is_finished for w in app.workers if w.node is log), pilot)
    await pilot.pause(0.1)
    await pilot.pause()


class _NoKeyringServices(ScriptedServices):
    """Services whose secret store cannot open: no D-Bus session, as over SSH."""

    async def start(self) -> str:
        try:
            raise SecretStoreUnavailable("no OS keyring (no D-Bus session)")
        except SecretStoreUnavailable as exc:
            raise ServicesError(str(exc)) from exc


def passphrase(folder: Path) -> Scene:
    """What an SSH user sees first: no keyring, so a passphrase creates the encrypted file."""
    paths = _paths(folder)

    def with_passphrase(passphrase: str, use_file: bool) -> ScriptedServices:
        return ScriptedServices(paths)

    app = make_app(
        Settings(),
        paths=paths,
        services=_NoKeyringServices(paths),
        clock=fixed_clock,
        first_start=True,
        services_with_passphrase=with_passphrase,
    )

    async def run_before(pilot: Pilot[int]) -> None:
        await wait_for(lambda: isinstance(app.screen, PassphraseDialog), pilot)
        await pilot.press(*"hunter2", "enter")  # too short: the dialog says so
        dialog = app.screen
        error = dialog.query_one("#passphrase-error")
        await wait_for(lambda: "at least" in str(error.render()), pilot)

    return Scene(app, run_before)


SCENES: dict[str, Callable[[Path], Scene]] = {
    "empty": empty,
    "setup": setup,
    "running": running,
    "failed": failed,
    "fire": fire,
    "webhook": webhook,
    "webhook-forges": webhook_forges,
    "keys": keys,
    "day-running": day_running,
    "day-failed": day_failed,
    "day-fire": day_fire,
    "day-details": day_details,
    "attempts": attempts,
    "day-repos": day_repos,
    "day-zoom": day_zoom,
    "day-wrap": day_wrap,
    "day-search": day_search,
    "day-attempts": day_attempts,
    "passphrase": passphrase,
}
