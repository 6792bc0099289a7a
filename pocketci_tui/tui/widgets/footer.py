"""The key hints at the bottom: Textual's footer, rebuilt only when the hints change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """A :class:`~textual.widgets.Footer` that keeps its keys while the bindings stay the same.

    Textual rebuilds the footer (a widget per key, each restyled) whenever bindings *may*
    have changed, which includes every return from a dialog. Under a flood of output that
    rebuild competed with the key press being answered, and the dozen discarded widgets per
    rebuild were reference cycles that fed the slow full garbage collections. Here the shown
    bindings are compared first and the rebuild is skipped when nothing would change.
    """

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(compact=compact, id=id)
        self._shown: object | None = None
        self.rebuilds = 0
        """How many times the keys were composed (for tests)."""

    def _hints(self) -> object:
        """What the keys would show: the screen's bindings and the footer's own options."""
        bindings = tuple(
            (key, binding, enabled, tooltip)
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
        )
        return (bindings, self.show_command_palette, self.compact)

    def compose(self) -> ComposeResult:
        """The keys, remembering what they show."""
        self._shown = None
        self.rebuilds += 1
        composed = False
        for child in super().compose():
            composed = True
            yield child
        if composed:
            self._shown = self._hints()

    def watch_show_command_palette(self) -> None:
        """Show or drop the palette's hint at once (Textual waits for a change of bindings)."""
        if self._shown is not None and self.is_attached and self._hints() != self._shown:
            self.call_after_refresh(self.recompose)

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Rebuild only when the shown bindings differ from the last ones."""
        if (
            self._shown is not None
            and self.is_attached
            and screen is self.screen
            and self._hints() == self._shown
        ):
            return
        super().bindings_changed(screen)
