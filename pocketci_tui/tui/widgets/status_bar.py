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
        """Build the line: whose builds (when attached), problems, the listener and the counts,
        then the refusals and the engines as far as they fit. The counts always show: the
        other parts give way first (see :func:`fit`)."""
        parts = fit(
            self.content_size.width,
            owner=self._owner_forms(),
            problems=self._problem_forms(),
            listener=self._listener_forms(),
            counts=self._counts(),
        )
        text = Text(no_wrap=True, overflow="ellipsis")
        rest = Text(no_wrap=True)
        for name, part in parts:
            if name in ("brand", "owner"):
                text.append_text(part)
            else:
                rest.append_text(part)
        if self.refused:
            rest.append("  ")
            rest.append(f"✗ {self.refused} refused", style="bold yellow")
            if self.refused_last:
                rest.append(f" {clean(self.refused_last)}", style="yellow")
        if self.owner and self.link_down:
            rest.stylize("dim")  # as they were when the link went down
        text.append_text(rest)
        if self.engines:
            # Last, and only what fits: the engines never push the rest of the line out.
            room = self.content_size.width - text.cell_len - 2
            part = engine_loads(self.engines, room)
            if part.cell_len:
                text.append("  ")
                text.append_text(part)
        return text

    def _owner_forms(self) -> list[Text]:
        """Whose builds these are, from the fullest form to the shortest; none when this
        process owns them."""
        if not self.owner:
            return []
        if self.link_down:
            gone = f"{clean(owner_short(self.owner))} gone · {clean(self.link_down)}"
            return [Text.assemble(("⚠ ", "bold red"), (gone, "bold red"))]
        return [Text(form, style="bold cyan") for form in owner_forms(self.owner)]

    def _problem_forms(self) -> list[Text]:
        """The problems each in a few words, else only how many there are; none without."""
        if not self.problems:
            return []
        full = Text(no_wrap=True)
        for index, problem in enumerate(self.problems):
            colour = "yellow" if problem.warning else "red"
            if index:
                full.append("  ")
            full.append("⚠ ", style=f"bold {colour}")
            full.append(short_problem(problem), style=colour)
        colour = "yellow" if all(p.warning for p in self.problems) else "red"
        many = len(self.problems)
        count = Text(f"⚠ {many} problem{'s' if many > 1 else ''}", style=f"bold {colour}")
        return [full, count]

    def _listener_forms(self) -> list[Text]:
        """Where webhooks go (without its scheme when short of room), or why nowhere."""
        if self.starting:
            return [Text("starting…", style="dim")]
        if not self.url:
            return [Text("listener down", style="bold red")]
        url = clean(self.url)
        short = url.split("://", 1)[-1]
        return [Text(url, style="underline"), Text(short, style="underline")]

    def _counts(self) -> Text:
        text = Text(no_wrap=True)
        text.append(f"{self.running} running", style="bold yellow" if self.running else "dim")
        text.append(" · ")
        text.append(f"{self.queued} queued", style="bold" if self.queued else "dim")
        return text


GIVE_WAY = (("owner", 1), ("listener", 1), ("owner", 2), ("brand", 1), ("problems", 1))
"""What gives way, in this order, when the status bar is short of room: the owner's name
shortens, the listener loses its scheme, the owner's name loses its pid, the program's name
goes, and the problems collapse to their count (the Output pane lists them in full); what a
later step made needless comes back. The counts never give way."""


def fit(
    room: int,
    *,
    owner: list[Text],
    problems: list[Text],
    listener: list[Text],
    counts: Text,
) -> list[tuple[str, Text]]:
    """Choose a form of each part of the status bar so that the line fits in ``room`` cells.

    Args:
        room: The cells available.
        owner, problems, listener: Each part's forms, the fullest first (empty: not shown).
        counts: The running and queued counts, always shown in full.

    Returns:
        (part name, text) in the order shown, separators included; the parts that cannot
        shrink further are kept even when the line is still too long (it is cut at its end).
    """
    forms: dict[str, list[Text]] = {
        "brand": [Text("pocketci ", style="bold"), Text("")],
        "owner": owner,
        "problems": problems,
        "listener": listener,
        "counts": [counts],
    }
    chosen = dict.fromkeys(forms, 0)

    def line() -> list[tuple[str, Text]]:
        shown = [(name, options[chosen[name]]) for name, options in forms.items() if options]
        shown = [(name, text) for name, text in shown if text.cell_len]
        result: list[tuple[str, Text]] = []
        for index, (name, text) in enumerate(shown):
            if index and result[-1][0] != "brand":  # its own space follows the name
                text = Text.assemble("  ", text)
            result.append((name, text))
        return result

    def fits() -> bool:
        return sum(text.cell_len for _, text in line()) <= room

    given: list[tuple[str, int]] = []
    for name, form in GIVE_WAY:
        if fits():
            break
        if len(forms[name]) > form:
            given.append((name, chosen[name]))
            chosen[name] = form
    # Take back what a later step made needless (the name, once the problems collapsed).
    for name, before in reversed(given[:-1]):
        shorter = chosen[name]
        chosen[name] = before
        if not fits():
            chosen[name] = shorter
    return line()


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


def owner_forms(owner: str) -> tuple[str, str, str]:
    """Say whose builds these are, fullest first: ``attached to pocketci-tui serve (pid 123)``,
    ``⇄ serve (pid 123)``, ``⇄ serve``."""
    short = clean(owner_short(owner))
    return (clean(f"attached to {owner}"), f"⇄ {short}", f"⇄ {short.split(' (')[0]}")


def short_problem(problem: Problem) -> str:
    """The problem's short text, cut to fit beside the others (the Output pane says it all)."""
    head = clean(problem.short)
    return head if len(head) <= 32 else head[:31] + "…"
