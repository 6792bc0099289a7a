"""The fire picker's "would match" preview comes from the real engine (no fake involved)."""

from __future__ import annotations

from textual.widgets import Input

from pocketci_tui.tui.dialogs.fire import FireDialog

from .harness import Rig, make_flaky_pass, wait_for
from .test_engine_actions import main, push_and_finish, runs, start_app, started


async def test_fire_picker_previews_what_the_real_engine_would_match(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        await push_and_finish(rig, app, pilot, "flaky")
        make_flaky_pass()
        failed = next(r for r in runs(app).runs if r.function == "onGithubPushFlaky")
        await pilot.press("tab", "r")  # a re-run must not change what the picker says
        await wait_for(
            lambda: any(r.attempt == 2 and r.state.finished for r in runs(app).runs), pilot
        )
        await pilot.press("shift+tab", "f")
        await wait_for(
            lambda: isinstance(app.screen, FireDialog) and isinstance(app.focused, Input), pilot
        )
        preview = app.screen.query_one("#fire-preview")
        await wait_for(lambda: "would match" in str(preview.render()), pilot)
        text = str(preview.render())
        considered = len({r.function for r in runs(app).runs})
        assert f"would match 1 of {considered} functions" in text
        assert "✓ onGithubPushFlaky" in text
        assert f"1 of {considered} functions matched" in text  # the event's status detail
        assert main(app).event_id == failed.event_id
