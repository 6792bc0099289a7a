"""The event's context: the details view (i), the forge page copied as a link (o), and the
author and commit count in the Events pane."""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console
from rich.style import Style
from textual.widgets import Static

from pocketci_tui.model import EventStatus, EventStored, StoredEvent
from pocketci_tui.paths import AppPaths
from pocketci_tui.tui.dialogs.details import EventDetails, page_link
from pocketci_tui.tui.widgets.events_table import EventsTable

from .fakes import push
from .harness import fixed_clock, wait_for
from .test_ui_actions import build, ready, screen, seeded

URL = "https://github.com/acme/api/compare/aaaaaaa...bbbbbbb"


def _context_event(event_id: int) -> StoredEvent:
    event = replace(
        push("ctx", "acme/api", "main", "b" * 40, 0.5, "Speed up the cache\nwith a long body"),
        id=event_id,
        author="octocat",
        commits=3,
        url=URL,
    )
    return StoredEvent(event, EventStatus.RECEIVED)


async def test_details_view_shows_context_and_copies_the_link(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign,assignment]
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        services.engine.publish(EventStored(_context_event(900)))
        await wait_for(lambda: screen(app).event_id == 900, pilot)
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, EventDetails), pilot)
        dialog = app.screen
        assert isinstance(dialog, EventDetails)
        console = Console(width=100, file=io.StringIO())
        console.print(dialog.fields_table())
        fields = console.file.getvalue()  # type: ignore[attr-defined]
        for expected in ("Speed up the cache", "octocat", "commits", "3", "refs/heads/main"):
            assert expected in fields
        link = app.screen.query_one("#details-link", Static)
        line = link.render_line(0).render(app.console)
        # What reaches the terminal: the address inside an OSC 8 hyperlink, so a click opens it.
        assert f";{URL}\x1b\\" in line
        assert "\x1b]8;;\x1b\\" in line
        await pilot.press("o")
        await wait_for(lambda: copied == [URL], pilot)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, EventDetails), pilot)
        assert table.has_focus
        # Without opening the view, o copies the selected event's page too.
        await pilot.press("o")
        await wait_for(lambda: copied == [URL, URL], pilot)


async def test_o_without_a_page_says_so_and_copies_nothing(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # type: ignore[method-assign,assignment]
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot, 5)
        await wait_for(lambda: screen(app).event_id is not None, pilot)
        await pilot.press("o")
        await wait_for(lambda: any("No page" in str(n.message) for n in app._notifications), pilot)
        assert copied == []


def test_page_link_is_an_osc8_link_only_for_plain_web_addresses() -> None:
    text = page_link(URL)
    assert text.plain == URL
    styles = [span.style for span in text.spans] + [text.style]
    assert any(isinstance(s, Style) and s.link == URL for s in styles)
    hostile = page_link("javascript:alert(1)\x1b]8;;x\x07")
    assert all(
        not (isinstance(s, Style) and s.link) for s in [span.style for span in hostile.spans]
    )
    assert "\x1b" not in hostile.plain
    assert "no page" in page_link("").plain


async def test_events_pane_shows_author_and_commits_when_wide(app_paths: AppPaths) -> None:
    services, _ = await seeded(app_paths)
    app, _ = build(services, app_paths)
    async with app.run_test(size=(160, 30)) as pilot:
        await ready(app, pilot, 5)
        table = screen(app).query_one(EventsTable)
        services.engine.publish(EventStored(_context_event(901)))
        await wait_for(lambda: len(table.events) == 6, pilot)
        cell = str(table.get_cell("901", "title"))
        assert cell == "Speed up the cache · octocat · 3 commits"


def test_details_number_a_merge_request_as_gitlab_does() -> None:
    event = replace(
        push("mr", "acme/api", "main", "c" * 40, 1),
        vendor="gitlab",
        event_type="merge_request",
        filter="open",
        pr_number=7,
        id=5,
    )
    dialog = EventDetails(StoredEvent(event, EventStatus.RECEIVED), None, fixed_clock)
    console = Console(width=100, file=io.StringIO())
    console.print(dialog.fields_table())
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "merge_request/open !7" in text
    assert "#7" not in text
