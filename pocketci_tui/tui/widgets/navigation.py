"""The reading keys shared by every list and scrolled view: a line, half a page, an end.

The main screen's panes and the dialogs' lists answer ``j``/``k``, ``ctrl+d``/``ctrl+u`` and
``g``/``G`` alike; the widgets differ (a table moves its cursor, the log and the dialogs' text
scroll), so the keys call these functions with whatever widget they act on.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import DataTable, OptionList

from .run_log import RunLog
from .runs_table import RunsTable


def _view_height(widget: Widget) -> int:
    height = widget.scrollable_content_region.height
    if isinstance(widget, DataTable) and widget.show_header:
        height -= widget.header_height
    return max(height, 1)


def _half(widget: Widget) -> int:
    return max(_view_height(widget) // 2, 1)


def _uses_cursor(widget: Widget) -> bool:
    return isinstance(widget, DataTable) and widget.show_cursor and widget.cursor_type == "row"


def move(widget: Widget | None, delta: int) -> None:
    """Move ``delta`` rows (or scroll ``delta`` lines where there is no cursor).

    Args:
        widget: The list or view, or None (nothing happens).
        delta: Rows down (positive) or up (negative).
    """
    if widget is None:
        return
    if isinstance(widget, RunsTable):
        widget.pin()  # the user chose a run: the cursor stays where they put it
    if isinstance(widget, RunLog) and widget.selection is not None:
        widget.move_selection(delta)  # lines selected: the keys move the selection's end
        return
    if _uses_cursor(widget):
        assert isinstance(widget, DataTable)
        if widget.row_count:
            row = min(max(widget.cursor_row + delta, 0), widget.row_count - 1)
            widget.move_cursor(row=row)
    elif isinstance(widget, OptionList):
        if widget.option_count:
            current = widget.highlighted if widget.highlighted is not None else -1
            widget.highlighted = min(max(current + delta, 0), widget.option_count - 1)
    else:
        widget.scroll_to(y=widget.scroll_y + delta, animate=False, immediate=True)


def half_page(widget: Widget | None, direction: int) -> None:
    """Move half the view's height down (``direction`` 1) or up (-1), as ``ctrl+d`` and
    ``ctrl+u`` do in vi and ``less``.

    Args:
        widget: The list or view, or None (nothing happens).
        direction: 1 for down, -1 for up.
    """
    if widget is None:
        return
    move(widget, direction * _half(widget))


def to_edge(widget: Widget | None, *, bottom: bool) -> None:
    """Go to the first (``g``) or last (``G``) row or line. The last line of a run's output
    follows its tail again.

    Args:
        widget: The list or view, or None (nothing happens).
        bottom: True for the last, False for the first.
    """
    if widget is None:
        return
    if isinstance(widget, RunsTable):
        widget.pin()
    if isinstance(widget, RunLog):
        if bottom:
            widget.action_follow()
        else:
            widget.scroll_home(animate=False, immediate=True)
    elif _uses_cursor(widget):
        assert isinstance(widget, DataTable)
        if widget.row_count:
            widget.move_cursor(row=widget.row_count - 1 if bottom else 0)
    elif isinstance(widget, OptionList):
        if widget.option_count:
            widget.highlighted = widget.option_count - 1 if bottom else 0
    elif bottom:
        widget.scroll_end(animate=False, immediate=True)
    else:
        widget.scroll_home(animate=False, immediate=True)
