"""The Functions pane says whether each run's commit status reached the forge, live, and the
Output pane says why the forge refused one."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Label

from pocketci_tui.model import RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store
from pocketci_tui.store.outbox import OutboxRow
from pocketci_tui.tui.app import PocketCIApp
from pocketci_tui.tui.widgets.runs_table import RunsTable

from .fakes import ScriptedEngine, ScriptedServices, run, seed_history
from .harness import wait_for
from .test_ui_actions import build, ready, screen, select_event

REFUSED = "403, the token lacks the Commit statuses permission (classic: repo:status)"


class Router:
    """Every function of every repository reports, as ``pocketci/<function>``."""

    def context(
        self, vendor: str, repository: str, event_type: str, function: str, spec: str = ""
    ) -> str:
        return f"pocketci/{function}"


async def _seeded(paths: AppPaths) -> tuple[ScriptedServices, int]:
    """The fixed history plus two runs of its failed event whose statuses are queued."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    engine = ScriptedEngine()
    store = await Store.open(paths.db_file)
    try:
        ids = await seed_history(store, paths, engine)
        store.status_router = Router()
        event_id = ids["failed"]
        await store.add_runs(
            [
                run("run-lint", event_id, "lintOnGithubPushMain", RunState.PASSED,
                    started=40, seconds=2.0, exit_code=0),
                run("run-vet", event_id, "vetOnGithubPushMain", RunState.PASSED,
                    started=40, seconds=3.0, exit_code=0),
            ]
        )  # fmt: skip
    finally:
        await store.close()
    return ScriptedServices(paths, engine), event_id


async def _deliver(services: ScriptedServices, run_id: str, status: str, detail: str) -> None:
    """Do what the sender does with a run's status: claim it, record the answer, tell."""
    assert services.store is not None
    [row] = [r for r in await services.store.all_statuses() if r.run_id == run_id]
    claimed = await services.store.claim_status(row.key)
    assert isinstance(claimed, OutboxRow)
    services.tell_delivery(replace(claimed, status="sending"))
    await services.store.settle_status(claimed.id, status, detail, None)
    services.tell_delivery(replace(claimed, status=status, detail=detail))


def _mark(table: RunsTable, run_id: str) -> str:
    return str(table.get_cell(run_id, "commit"))


def _reason(app: PocketCIApp) -> str:
    label = screen(app).query_one("#run-reason", Label)
    return str(label.render()) if label.display else ""


async def test_a_status_shows_queued_then_sent_then_refused_with_why(
    app_paths: AppPaths,
) -> None:
    services, event_id = await _seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await select_event(app, pilot, event_id)
        table = screen(app).query_one(RunsTable)
        await wait_for(lambda: "commit" in dict(table.column_widths), pilot)
        # Runs that report nothing get no mark; the two that do are queued.
        assert _mark(table, "run-lint") == "…"
        assert _mark(table, "run-vet") == "…"
        others = [r.id for r in table.runs if r.id not in ("run-lint", "run-vet")]
        assert others
        assert all(_mark(table, r) == " " for r in others)

        await _deliver(services, "run-lint", "sent", "")
        await wait_for(lambda: _mark(table, "run-lint") == "↑", pilot)
        assert _mark(table, "run-vet") == "…"

        await pilot.press("tab")
        table.move_cursor(row=[r.id for r in table.runs].index("run-vet"))
        await wait_for(lambda: screen(app).run_id == "run-vet", pilot)
        assert "not posted" not in _reason(app)
        await _deliver(services, "run-vet", "failed", REFUSED)
        await wait_for(lambda: _mark(table, "run-vet") == "!", pilot)
        # The reason is shown above the selected run's output, in full.
        await wait_for(lambda: "commit status not posted" in _reason(app), pilot)
        assert REFUSED in " ".join(_reason(app).split())
        assert screen(app).query_one("#run-reason", Label).has_class("-failed")
