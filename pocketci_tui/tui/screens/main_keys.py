"""The main screen's keys: one place to read what each key does on the main screen.

Each binding has an id (:mod:`pocketci_tui.keys`) so the user's keymap can move it; the help
dialog lists them from here.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

MAIN_BINDINGS: list[BindingType] = [
    Binding("f", "fire", "Fire", id="event-fire", tooltip="fire a stored event (picker)"),
    Binding("r", "rerun", "Rerun", id="run-rerun", tooltip="re-run the run, or the event"),
    Binding("c", "cancel", "Cancel", id="run-cancel", tooltip="cancel the run, or the event"),
    Binding(
        "a",
        "approve",
        "Approve",
        id="event-approve",
        tooltip="approve a fork's pull or merge request",
    ),
    Binding("slash", "filter", "Filter", id="events-filter", tooltip="filter events"),
    Binding(
        "F",
        "quick_filter('state:failed,error')",
        "Failed",
        show=False,
        id="events-failed",
        tooltip="only failed or in error (again: all)",
    ),
    Binding(
        "R",
        "quick_filter('state:running,queued,dispatching')",
        "Running",
        show=False,
        id="events-running",
        tooltip="only events in progress (again: all)",
    ),
    Binding(
        "W",
        "quick_filter('state:waiting')",
        "Waiting",
        show=False,
        id="events-waiting",
        tooltip="only waiting for approval (again: all)",
    ),
    Binding("p", "pager", "Log", id="log-pager", tooltip="full log in $PAGER"),
    Binding(
        "space",
        "attempts",
        "Attempts",
        show=False,
        id="run-attempts",
        tooltip="a function's older attempts: show, hide",
    ),
    Binding(
        "v",
        "repositories",
        "Repos",
        show=False,
        id="repos-show",
        tooltip="every repository: now and last build",
    ),
    Binding("i", "details", "Details", show=False, id="event-details", tooltip="the event in full"),
    Binding(
        "o", "link", "Link", show=False, id="event-link", tooltip="copy the event's forge page"
    ),
    Binding(
        "z",
        "zoom",
        "Zoom",
        show=False,
        id="pane-zoom",
        tooltip="zoom: the focused pane full screen, and back",
    ),
    Binding(
        "escape",
        "unzoom",
        "Back",
        id="pane-unzoom",
        tooltip="zoomed: the other panes back (as z)",
    ),
    Binding(
        "j",
        "move(1)",
        "Down",
        show=False,
        id="cursor-down",
        tooltip="down within a pane (or ↓)",
    ),
    Binding("k", "move(-1)", "Up", show=False, id="cursor-up", tooltip="up within a pane (or ↑)"),
    Binding(
        "ctrl+d",
        "half_page(1)",
        "Half down",
        show=False,
        id="cursor-half-down",
        tooltip="half a page down within a pane",
    ),
    Binding(
        "ctrl+u",
        "half_page(-1)",
        "Half up",
        show=False,
        id="cursor-half-up",
        tooltip="half a page up within a pane",
    ),
    Binding("g", "edge(False)", "Top", show=False, id="cursor-top", tooltip="the pane's first row"),
    Binding(
        "G", "edge(True)", "Bottom", show=False, id="cursor-bottom", tooltip="the pane's last row"
    ),
]
