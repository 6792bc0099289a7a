"""The status bar at 80 and 120 columns, with 0, 1 and 3 problems, attached or not: the running
and queued counts always show whole; what gives way is the owner's name, the listener's scheme,
then the problems, collapsed to their count."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult

from pocketci_tui.problems import Problem
from pocketci_tui.tui.widgets.status_bar import StatusBar

PROBLEMS = (
    Problem("plaintext-secrets", "secrets unencrypted", "", warning=True),
    Problem("dagger", "dagger not found", ""),
    Problem("webhook-secret", "webhook secret not set", ""),
)
OWNER = "pocketci-tui serve (pid 1234567)"
COUNTS = "12 running · 140 queued"


class Bar(App[None]):
    """Only the status bar, given what it shows."""

    def __init__(self, problems: int, owner: str) -> None:
        super().__init__()
        self._problems = PROBLEMS[:problems]
        self._owner = owner

    def compose(self) -> ComposeResult:
        yield StatusBar()

    def on_mount(self) -> None:
        bar = self.query_one(StatusBar)
        bar.starting = False
        bar.url = "http://127.0.0.1:8080"
        bar.running, bar.queued = 12, 140
        bar.problems = self._problems
        bar.owner = self._owner


async def shown(width: int, problems: int, owner: str) -> str:
    app = Bar(problems, owner)
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause()
        bar = app.query_one(StatusBar)
        text = str(bar.render())
        assert cell_len(text) <= bar.content_size.width, text
        return text


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("problems", [0, 1, 3])
@pytest.mark.parametrize("owner", ["", OWNER])
async def test_the_counts_always_show_whole(width: int, problems: int, owner: str) -> None:
    text = await shown(width, problems, owner)
    assert COUNTS in text, text
    assert "127.0.0.1:8080" in text
    if owner:
        assert "⇄ serve" in text or f"attached to {OWNER}" in text
    if not problems:
        assert "⚠" not in text
    else:
        # Each problem whole, or how many there are.
        assert all(p.short in text for p in PROBLEMS[:problems]) or (
            f"⚠ {problems} problem" in text
        ), text


async def test_one_problem_stays_readable_where_it_fits() -> None:
    assert "⚠ secrets unencrypted" in await shown(80, 1, "")
    assert "⚠ secrets unencrypted" in await shown(120, 1, OWNER)
    # Attached at 80 columns, the owner's pid and the program's name give way to it.
    assert "⇄ serve  ⚠ secrets unencrypted" in await shown(80, 1, OWNER)


async def test_three_problems_collapse_to_their_count_at_80_columns() -> None:
    embedded = await shown(80, 3, "")
    assert "⚠ 3 problems" in embedded
    assert "pocketci" in embedded
    attached = await shown(80, 3, OWNER)
    assert "⚠ 3 problems" in attached
    assert "⇄ serve" in attached


async def test_the_owner_keeps_its_full_name_where_there_is_room() -> None:
    assert f"attached to {OWNER}" in await shown(120, 0, OWNER)
    assert "⇄ serve (pid 1234567)" in await shown(80, 0, OWNER)
