"""Refused deliveries reach the UI: counted in the status bar with the last reason and time,
listed on request (never their bodies). Real listener, real HTTP."""

from __future__ import annotations

import aiohttp
from textual.command import CommandPalette
from textual.widgets import DataTable

from pocketci_tui.tui.dialogs.refused import RefusedDialog
from pocketci_tui.tui.widgets.status_bar import StatusBar

from .harness import Rig, wait_for
from .test_engine_actions import main, start_app, started

BODY_MARKER = "private-branch-name-in-the-body"


async def test_refusals_show_in_the_status_bar_and_on_request(rig: Rig) -> None:
    app, _ = start_app(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(rig, pilot)
        assert rig.services is not None
        url = f"{rig.services.url}/webhooks/github"
        body = b'{"ref": "refs/heads/' + BODY_MARKER.encode() + b'"}'
        async with aiohttp.ClientSession() as http:
            bad_signature = {
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "refused-1",
                "X-Hub-Signature-256": "sha256=" + "1" * 64,
            }
            async with http.post(url, data=body, headers=bad_signature) as resp:
                assert resp.status == 401
            form = dict(bad_signature, **{"Content-Type": "application/x-www-form-urlencoded"})
            form["X-GitHub-Delivery"] = "refused-2"
            async with http.post(url, data=body, headers=form) as resp:
                assert resp.status == 415
        status = main(app).query_one(StatusBar)
        await wait_for(lambda: status.refused == 2, pilot)
        line = status.render().plain
        assert "✗ 2 refused" in line
        assert "wrong content type" in line
        assert BODY_MARKER not in line

        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"refused deliveries")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, RefusedDialog), pilot)
        table = app.screen.query_one("#refused-table", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert [row[1] for row in rows] == ["415", "401"]
        assert [row[5] for row in rows] == ["refused-2", "refused-1"]
        assert "bad signature" in rows[1][2]
        assert "application/x-www-form-urlencoded" in rows[0][2]
        assert BODY_MARKER not in repr(rows)
        hints = str(app.screen.query_one("#refused-hints").render())
        assert "application/json" in hints
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, RefusedDialog), pilot)
