"""The fire picker's preview, from the real engine: the stored event matched again against the
cached catalog, with no checkout, no ``dagger session`` and no ``dagger call``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from enginekit import EngineKit

from pocketci_tui.engine.dispatch import Engine
from pocketci_tui.model import EventStatus, MatchInputs, RunState

SPEC = {"module-path": "./ci"}


async def test_preview_matches_the_stored_event_against_the_cached_catalog(
    tmp_path: Path,
) -> None:
    async with EngineKit(tmp_path, spec=SPEC) as kit:
        stored = await kit.deliver(kit.pull_request({"pkg/a.go": "package pkg\n"}))
        event_id = stored.event.id
        assert event_id is not None
        runs = await kit.wait_runs_finished(event_id)
        sessions, calls = kit.engine.catalog.sessions_started, len(kit.calls())

        result = await kit.engine.preview(event_id)

        assert result is not None
        ran = {r.function for r in runs if r.state is RunState.PASSED}
        assert {d.function for d in result.decisions if d.matched} == ran
        assert {d.function for d in result.decisions} == {r.function for r in runs}
        # onChanges was matched against the stored changed files, not every file.
        test = next(d for d in result.decisions if d.function == "testOnGithubPullRequest")
        assert test.call is not None
        assert dict(test.call.args)["onChanges"] == "pkg/a.go"
        # Nothing ran: no introspection session, no call.
        assert kit.engine.catalog.sessions_started == sessions
        assert len(kit.calls()) == calls

        # After a restart the catalog comes from the cache on disk; still nothing runs.
        again = Engine(settings=kit.settings, paths=kit.paths, store=kit.store, secrets=kit.secrets)
        assert await again.preview(event_id) == result
        assert again.catalog.sessions_started == 0


async def test_no_preview_without_a_dispatch_or_a_configured_repository(tmp_path: Path) -> None:
    async with EngineKit(tmp_path, spec=SPEC) as kit:
        other = replace(kit.push({"main.go": "1\n"}), repository="someone/else")
        ignored = await kit.deliver(other)
        assert ignored.event.id is not None
        await kit.wait_status(ignored.event.id, EventStatus.IGNORED)
        assert await kit.engine.preview(ignored.event.id) is None
        assert await kit.engine.preview(12345) is None

        stored = await kit.deliver(kit.push({"main.go": "2\n"}))
        assert stored.event.id is not None
        await kit.wait_runs_finished(stored.event.id)
        assert await kit.engine.preview(stored.event.id) is not None
        inputs = await kit.store.match_inputs(stored.event.id)
        assert inputs == MatchInputs(inputs.module_key if inputs else "", (), ("main.go",))
        # A catalog that left the cache is never loaded again just for a preview.
        for cached in (kit.paths.cache_dir / "catalog").glob("*.json"):
            cached.unlink()
        fresh = Engine(settings=kit.settings, paths=kit.paths, store=kit.store, secrets=kit.secrets)
        assert await fresh.preview(stored.event.id) is None
        assert fresh.catalog.sessions_started == 0
