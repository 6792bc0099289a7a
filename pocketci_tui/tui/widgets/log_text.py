"""Text for the Output pane: the notes it shows instead of output, wrapped to its width, and
the marks of the searched text in its lines."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

from rich.highlighter import Highlighter
from rich.text import Text

from ..logscan import smart_case

__all__ = ["NeedleHighlighter", "wrap_note"]


def wrap_note(lines: Iterable[str], width: int) -> list[str]:
    """Wrap paragraphs to ``width`` columns, keeping each line's indent (and hanging the lines
    of a ``⚠``/``→``/``•``/``-`` item under its text).

    Args:
        lines: One paragraph per line.
        width: The columns available.

    Returns:
        The wrapped lines; an empty paragraph stays an empty line.
    """
    out: list[str] = []
    for line in lines:
        if not line.strip():
            out.append("")
            continue
        body = line.lstrip(" ")
        indent = " " * (len(line) - len(body))
        hang = indent + ("  " if body[:1] in "⚠→•-✗" and body[1:2] == " " else "")
        out.extend(
            textwrap.wrap(
                line,
                max(width, len(hang) + 8),
                subsequent_indent=hang,
                break_on_hyphens=False,
                replace_whitespace=False,
                drop_whitespace=True,
            )
            or [""]
        )
    return out


class NeedleHighlighter(Highlighter):
    """Marks every occurrence of the searched text (smart case, as the search finds them)."""

    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None

    def set_needle(self, needle: str) -> None:
        """Mark ``needle`` from now on (nothing when empty)."""
        flags = 0 if smart_case(needle) else re.IGNORECASE
        self.pattern = re.compile(re.escape(needle), flags) if needle else None

    def highlight(self, text: Text) -> None:
        """Style the occurrences in ``text``."""
        if self.pattern is None:
            return
        for match in self.pattern.finditer(text.plain):
            text.stylize("reverse yellow", match.start(), match.end())
