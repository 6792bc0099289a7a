"""What the Output pane says while it shows no run: how to start, the selected event, or why
the filter shows nothing. Plain lines, cleaned for the terminal; the main screen shows them."""

from __future__ import annotations

from collections.abc import Iterable

from pocketci_tui.eventquery import STATES
from pocketci_tui.eventquery import parse as parse_query
from pocketci_tui.model import EventStatus, StoredEvent, change_request_noun, webhook_path
from pocketci_tui.problems import Problem

from ..text import clean, clean_lines


def welcome_note(
    problems: Iterable[Problem], listening: str, forges: Iterable[tuple[str, str]]
) -> list[str]:
    """How to start while there are no events: what is wrong, and where to point each forge.

    Args:
        problems: What is wrong now, in full with the fix.
        listening: The listener's base URL, empty while it does not listen.
        forges: (name, vendor) of each forge the config names.
    """
    point: list[str] = []
    for name, vendor in forges:
        url = (
            listening.rstrip("/") + webhook_path(vendor)
            if listening
            else "the webhook URL (once it listens)"
        )
        point += [f"Point a {name} webhook at", f"  {clean(url)}"]
    wrong: list[str] = []
    for problem in problems:
        wrong.append(f"⚠ {clean(problem.detail)}")  # the pane wraps notes
        if problem.fix:
            wrong.append(f"  → {clean(problem.fix)}")
    return [
        *wrong,
        *([" "] if wrong else []),
        "No events yet.",
        "",
        *point,
        "w shows the URL and secret,",
        "s manages secrets, ? lists the keys.",
        "",
        "Test it from another terminal:",
        "  pocketci-tui fire --example push",
    ]


def awaits_approval(stored: StoredEvent) -> bool:
    """Whether the event is a fork's pull or merge request waiting for approval.

    Not every waiting event is one: an event held while the secret store does not answer
    waits too, and approving it would only be refused (only forks need approval).
    """
    return stored.status is EventStatus.WAITING and stored.event.is_fork


def event_note(stored: StoredEvent) -> list[str]:
    """The selected event while none of its runs is shown: what it is and where it stands."""
    event = stored.event
    lines = [
        f"{clean(event.repository)}  {clean(event.event_type)} {clean(event.filter)}",
        f"ref {clean(event.ref)}  sha {clean(event.sha[:12])}",
        f"status: {stored.status}",
    ]
    if event.title:
        lines.insert(0, clean(event.title))
    if event.author or event.commits is not None:
        commits = f"{event.commits} commit{'s' if event.commits != 1 else ''}"
        who = [f"by {clean(event.author)}"] if event.author else []
        lines.insert(2, "  ".join(who + ([commits] if event.commits is not None else [])))
    if stored.detail:
        lines.extend(clean_lines(stored.detail.splitlines()))
    if awaits_approval(stored):
        noun = change_request_noun(event.vendor)
        lines.append(f"A {noun} from a fork: press a to approve its head commit.")
    return lines


def no_match_note(filter_text: str) -> list[str]:
    """What the Output pane says when no event passes the filter."""
    query = parse_query(filter_text)
    return [
        f"No event matches /{clean(filter_text)[:60]}",
        *(f"⚠ {clean(problem)}" for problem in query.problems),
        "The filter takes free text (repository,",
        "branch, sha, title, author) and terms:",
        "  state:failed  state:running,queued",
        "  event:tag  event:pr  repo:acme/*",
        f"states: {', '.join(state.replace(' ', '-') for state in STATES)}",
        "Esc clears it.",
    ]
