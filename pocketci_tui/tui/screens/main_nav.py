"""Moving within the main screen's panes: a row, half a page, the first or last one.

The keys (``j``/``k``, ``ctrl+d``/``ctrl+u``, ``g``/``G``) act on the focused pane, whichever
it is: the Events and Functions tables move their cursor, the Output pane scrolls (its own
``g``/``G`` come first while it is focused: ``G`` follows the tail again).
"""

from __future__ import annotations

from textual.screen import Screen

from ..widgets import navigation


class PaneKeysScreen(Screen[None]):
    """A screen whose reading keys act on the focused pane (see :mod:`.main_keys`)."""

    def action_move(self, delta: int) -> None:
        """j/k: a row (a line of output) down or up within the focused pane."""
        navigation.move(self.focused, delta)

    def action_half_page(self, direction: int) -> None:
        """ctrl+d/ctrl+u: half the pane's height down or up."""
        navigation.half_page(self.focused, direction)

    def action_edge(self, bottom: bool) -> None:
        """g/G: the first or last row of the focused pane."""
        navigation.to_edge(self.focused, bottom=bottom)
