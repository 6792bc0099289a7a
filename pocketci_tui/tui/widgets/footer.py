"""The key hints at the bottom: Textual's footer, rebuilt only when the hints change."""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

DROP_FIRST = ("webhook", "secrets", "cancel", "fire", "pager", "rerun")
"""Actions whose keys give way first when the keys do not fit on one line (an 80-column screen
with the Output pane zoomed): those least needed while reading a build. Help and quit stay;
the help lists every key."""


class KeysFooter(Footer):
    """A :class:`~textual.widgets.Footer` that keeps its keys while the bindings stay the same.

    Textual rebuilds the footer (a widget per key, each restyled) whenever bindings *may*
    have changed, which includes every return from a dialog. Under a flood of output that
    rebuild competed with the key press being answered, and the dozen discarded widgets per
    rebuild were reference cycles that fed the slow full garbage collections. Here the shown
    bindings are compared first and the rebuild is skipped when nothing would change.

    The comparison is made when the rebuild would run (after the next refresh), not when it is
    asked for, and the requests made meanwhile share one look: a selection that changes the
    bindings several times in a row (the event, then its run) rebuilds the keys once, from the
    bindings as they are by then, instead of once per change.

    When the keys do change (the focus moves into a search field and back, say), the key
    widgets already there are given the new keys and those left over are hidden, rather than
    all of them removed and new ones mounted and styled: that rebuild was about a third of
    the time to open and close the search field, and it came on top of the key's own frame.
    Only a footer with more keys than widgets mounts new ones.
    """

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(compact=compact, id=id)
        self._shown: object | None = None
        self._fitted: tuple[int, int, bool] = (0, 0, False)
        """The width the keys were fitted to, theirs in full, and whether some were left out."""
        self.rebuilds = 0
        """How many times the keys were shown anew (for tests)."""
        self._queued = False
        """A look at the bindings is on its way (after the next refresh)."""
        self._force = False
        """The next look rebuilds even when the bindings are the same (a new width)."""
        self._rebuilding = False

    @property
    def current(self) -> bool:
        """Whether the keys shown are the screen's bindings now, with no rebuild on its way
        (what tests wait for before they count rebuilds)."""
        return (
            not self._queued
            and not self._rebuilding
            and self._shown is not None
            and self._hints() == self._shown
        )

    def _hints(self) -> object:
        """What the keys would show: the screen's bindings and the footer's own options."""
        bindings = tuple(
            (key, binding, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
        )
        return (bindings, self.show_command_palette, self.compact)

    def compose(self) -> ComposeResult:
        """The keys that fit on the line, remembering what they show."""
        self._shown = None
        self.rebuilds += 1
        children = list(super().compose())
        yield from self._fitting(children)
        if children:
            self._shown = self._hints()

    def _fitting(self, children: list[Widget]) -> list[Widget]:
        """``children`` without the keys of :data:`DROP_FIRST`, in that order, as long as the
        keys are wider than the screen."""
        pad = 2 if self.compact else 4

        def width(child: Widget) -> int:
            if not isinstance(child, FooterKey):
                return 0
            return cell_len(child.key_display) + cell_len(child.description) + pad

        full = sum(width(child) for child in children)
        spare = self.app.size.width - full
        self._fitted = (self.app.size.width, full, spare < 0)
        for action in DROP_FIRST:
            if spare >= 0:
                break
            for child in children:
                if isinstance(child, FooterKey) and child.action == action:
                    children.remove(child)
                    spare += width(child)
                    break
        return children

    def on_resize(self, event: events.Resize) -> None:
        """Fit the keys to the new width (only when some were, or now must be, left out)."""
        fitted_to, full, left_out = self._fitted
        width = self.app.size.width
        if self._shown is not None and width != fitted_to and (left_out or full > width):
            self._ask(force=True)

    def watch_show_command_palette(self) -> None:
        """Show or drop the palette's hint at once (Textual waits for a change of bindings)."""
        if self._shown is not None and self.is_attached:
            self._ask()

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Look again at the bindings after the next refresh (as Textual's footer would
        rebuild then); the look rebuilds only when they differ from the shown ones."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self._ask()

    def _ask(self, *, force: bool = False) -> None:
        """One look after the next refresh, whatever the number of requests until then."""
        self._force = self._force or force
        if not self._queued:
            self._queued = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        """Rebuild the keys when the bindings (or the width) changed since they were shown.

        Textual runs these looks one after another, each awaited, so a look asked for during
        a rebuild compares with what that rebuild showed.
        """
        self._queued = False
        force, self._force = self._force, False
        if not self.is_attached:
            return
        if not force and self._shown is not None and self._hints() == self._shown:
            return
        self._rebuilding = True
        try:
            if not self._update_in_place():
                await self.recompose()
        finally:
            self._rebuilding = False

    def _update_in_place(self) -> bool:
        """Show the new keys in the key widgets already mounted, hiding those left over;
        False (nothing changed) when they are too few or not alike (a group of keys)."""
        wanted = self._fitting(list(super().compose()))
        mounted = list(self.children)
        if not wanted or not all(isinstance(child, FooterKey) for child in (*wanted, *mounted)):
            return False

        def palette(widgets: list[Widget]) -> list[FooterKey]:
            return [w for w in widgets if isinstance(w, FooterKey) and w.has_class(_PALETTE)]

        def keys(widgets: list[Widget]) -> list[FooterKey]:
            return [w for w in widgets if isinstance(w, FooterKey) and not w.has_class(_PALETTE)]

        if len(keys(wanted)) > len(keys(mounted)) or len(palette(wanted)) > len(palette(mounted)):
            return False
        for kind in (keys, palette):
            slots = kind(mounted)
            shown = kind(wanted)
            for slot, key in zip(slots, shown, strict=False):
                _take(slot, key)
            for slot in slots[len(shown) :]:
                slot.display = False
        self.rebuilds += 1
        self._shown = self._hints()
        return True


_PALETTE = "-command-palette"
"""The class of the command palette's key (docked at the right)."""


def _take(slot: FooterKey, key: FooterKey) -> None:
    """Make the mounted ``slot`` show ``key`` (a key widget made, not mounted)."""
    changed = (slot.key_display, slot.description) != (key.key_display, key.description)
    slot.key = key.key
    slot.key_display = key.key_display
    slot.description = key.description
    slot.action = key.action
    slot._disabled = key._disabled
    slot.set_class(key._disabled, "-disabled")
    slot.tooltip = key.tooltip
    slot.display = True
    slot.refresh(layout=changed)
