"""The status bar: listener URL, queued and running builds, problems, refused requests, each
engine's load when a pool of engines is configured, and, when the UI is attached to another
process, whose builds these are and whether the link to it works."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from pocketci_tui.contract import EngineLoadInfo
from pocketci_tui.problems import Problem

from ..text import clean


class StatusBar(Static):
    """One line at the top: where webhooks go, how busy the engine is, what is wrong."""

    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    url: reactive[str] = reactive("")
    """The listener's webhook URL, or empty while starting."""
    queued: reactive[int] = reactive(0)
    """Builds waiting for a slot."""
    running: reactive[int] = reactive(0)
    """Builds running."""
    problems: reactive[tuple[Problem, ...]] = reactive(())
    """Problems to show (keyring unavailable, dagger not found, port in use), errors first."""
    starting: reactive[bool] = reactive(True)
    """True until the services have started."""
    refused: reactive[int] = reactive(0)
    """Requests the listener refused since start (bad signature, wrong content type...)."""
    refused_last: reactive[str] = reactive("")
    """The last refusal: its time and reason, short."""
    engines: reactive[tuple[EngineLoadInfo, ...]] = reactive(())
    """Each engine of the pool with its load (empty without ``dagger.engines``)."""
    owner: reactive[str] = reactive("")
    """Who owns the builds shown (``pocketci-tui serve (pid 123)``) when the UI is attached to
    another process; empty when this process owns them."""
    link_down: reactive[str] = reactive("")
    """Attached, and the link to the owner is down: why, or when the next try is; empty while
    it works."""

    def render(self) -> Text:
        """Build the line: whose builds (when attached), problems (short), then the listener
        and the counts."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("pocketci ", style="bold")
        rest = self._problems_and_counts()
        if self.owner and self.link_down:
            rest.stylize("dim")  # as they were when the link went down
            text.append("⚠ ", style="bold red")
            text.append(
                f"{clean(owner_short(self.owner))} gone · {clean(self.link_down)}",
                style="bold red",
            )
            text.append("  ")
        elif self.owner:
            room = self.content_size.width - text.cell_len - rest.cell_len - 2
            text.append(owner_label(self.owner, room), style="bold cyan")
            text.append("  ")
        text.append_text(rest)
        if self.engines:
            # Last, and only what fits: the engines never push the rest of the line out.
            room = self.content_size.width - text.cell_len - 2
            part = engine_loads(self.engines, room)
            if part.cell_len:
                text.append("  ")
                text.append_text(part)
        return text

    def _problems_and_counts(self) -> Text:
        """Problems first (short), then the listener, the counts and the refusals."""
        text = Text(no_wrap=True)
        for problem in self.problems:
            colour = "yellow" if problem.warning else "red"
            text.append("⚠ ", style=f"bold {colour}")
            text.append(short_problem(problem), style=colour)
            text.append("  ")
        if self.starting:
            text.append("starting…", style="dim")
        elif self.url:
            text.append(clean(self.url), style="underline")
        else:
            text.append("listener down", style="bold red")
        text.append("  ")
        text.append(f"{self.running} running", style="bold yellow" if self.running else "dim")
        text.append(" · ")
        text.append(f"{self.queued} queued", style="bold" if self.queued else "dim")
        if self.refused:
            text.append("  ")
            text.append(f"✗ {self.refused} refused", style="bold yellow")
            if self.refused_last:
                text.append(f" {clean(self.refused_last)}", style="yellow")
        return text


def engine_loads(engines: tuple[EngineLoadInfo, ...], room: int) -> Text:
    """Each engine's load (``here 1/2 · rack down``), as many as fit in ``room`` cells, with
    ``…`` for those left out; empty when not even one fits."""
    part = Text(no_wrap=True)
    for index, engine in enumerate(engines):
        item = Text(clean(engine.name)[:16])
        if engine.up:
            item.append(f" {engine.busy}/{engine.capacity}")
            item.stylize("bold yellow" if engine.busy else "dim")
        else:
            item.append(" down")
            item.stylize("bold red")
        sep = " · " if index else ""
        last = index == len(engines) - 1
        need = part.cell_len + len(sep) + item.cell_len + (0 if last else 2)
        if need > room:
            if part.cell_len and part.cell_len + 2 <= room:
                part.append(" …", style="dim")
            return part
        part.append(sep, style="dim")
        part.append_text(item)
    return part


def owner_short(owner: str) -> str:
    """The owner without the program's name: ``serve (pid 123)``."""
    return owner.removeprefix("the ").removeprefix("pocketci-tui ")


def owner_label(owner: str, room: int) -> str:
    """Say whose builds these are in ``room`` cells, as fully as fits: ``attached to
    pocketci-tui serve (pid 123)``, else ``⇄ serve (pid 123)``, else ``⇄ serve`` (the rest of
    the line, problems, listener and counts, comes first)."""
    short = clean(owner_short(owner))
    forms = (clean(f"attached to {owner}"), f"⇄ {short}", f"⇄ {short.split(' (')[0]}")
    return next((form for form in forms if len(form) <= room), forms[-1])


def short_problem(problem: Problem) -> str:
    """The problem's short text, cut to fit beside the others (the Output pane says it all)."""
    head = clean(problem.short)
    return head if len(head) <= 32 else head[:31] + "…"
