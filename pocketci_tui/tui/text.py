"""Turning untrusted strings (payload fields, build output) into literal screen text.

Nothing that arrives from outside may reach the terminal as a control sequence or as Rich
markup, nor reorder what surrounds it (bidirectional controls such as U+202E). Every label built
from payload text goes through :func:`literal`, which returns a :class:`rich.text.Text` (never
parsed as markup) with control characters made visible; output lines go through
:func:`clean_lines`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.cells import cell_len, set_cell_size
from rich.text import Text

_CSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_OSC_RE = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""Characters that reorder the text around them (Arabic letter mark, LRM/RLM, the embeddings and
overrides U+202A-U+202E, the isolates U+2066-U+2069): a branch named U+202E followed by
``gnp.exe`` would show as ``exe.png``. They are replaced like control characters, so what is
shown is what is stored."""
_CONTROL_RE = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}]")
_CONTROL_NL_RE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}]")


def clean(value: str, *, keep_newlines: bool = False) -> str:
    """Remove escape sequences and replace other control and bidi characters with ``?``.

    Args:
        value: Untrusted text.
        keep_newlines: Keep ``\\n`` and tabs (for multi-line previews).

    Returns:
        Text that is safe to put on the screen.
    """
    value = _OSC_RE.sub("", _CSI_RE.sub("", value))
    if keep_newlines:
        return _CONTROL_RE.sub("?", value.replace("\t", "    "))
    return _CONTROL_NL_RE.sub("?", value)


def clean_lines(lines: list[str] | tuple[str, ...]) -> list[str]:
    """Clean a batch of output lines in one pass (cheaper than line by line)."""
    if not lines:
        return []
    joined = "\n".join(lines)
    if "\x1b" in joined:
        joined = _OSC_RE.sub("", _CSI_RE.sub("", joined))
    joined = _CONTROL_RE.sub("?", joined.replace("\t", "    "))
    return joined.split("\n")


def literal(value: str, style: str = "", *, limit: int | None = None) -> Text:
    """Return untrusted text as a Rich ``Text`` that is never parsed as markup.

    Args:
        value: Untrusted text.
        style: A style for the whole text.
        limit: Cut the text to this many characters, with an ellipsis.

    Returns:
        A literal ``Text``.
    """
    value = clean(value)
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)] + "…"
    return Text(value, style=style, no_wrap=True, overflow="ellipsis")


def short_sha(sha: str) -> str:
    """Return the first seven characters of a commit id."""
    return clean(sha[:7])


def format_time(moment: datetime | None, now: datetime) -> str:
    """Format a time compactly: ``14:03:22`` today, ``11-26 14:03`` before.

    Args:
        moment: The time to show (None gives an empty string).
        now: The current time, for deciding whether it is today.

    Returns:
        The label, in the local time zone of ``now``.
    """
    if moment is None:
        return ""
    tz = now.tzinfo or UTC
    local = moment.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M")


def format_duration(seconds: float | None) -> str:
    """Format a duration: ``4.2s``, ``3m05s``, ``1h02m``."""
    if seconds is None:
        return ""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{(whole % 3600) // 60:02d}m"


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``... ``11th``, ``21st``."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def queue_note(run_id: str, queue: list[str]) -> str:
    """Where a queued run stands in the queue (``2nd in line``), or ``""`` when not in it."""
    if run_id not in queue:
        return ""
    position = queue.index(run_id) + 1
    return "next to start" if position == 1 else f"{ordinal(position)} in line"


@dataclass(frozen=True)
class Part:
    """A piece of a border's text: what it says, and how it gives way when space lacks."""

    text: str
    short: str | None = None
    """A shorter form, used before anything is cut or left out (``End`` for ``End follows``)."""
    drop: int = 0
    """Left out when space lacks, highest first (0: never left out)."""
    cut: bool = False
    """May be cut with ``…`` (free text, such as the searched text)."""
    glued: bool = False
    """Follows the part before it after a blank, not a separator (``2/3 /needle``)."""


SEPARATOR = " · "


def fit_parts(parts: list[Part], width: int) -> str:
    """Join ``parts`` to fit ``width`` cells, giving up the least important first.

    A border cut at its end loses what comes last, and at 80x24 that was the search's count
    or the state. Here the parts keep their order and give way in turn: the short forms
    first, then the part that may be cut (down to a few characters), then the parts that
    may be left out, highest :attr:`Part.drop` first; the text is cut at its end only when
    even that is not enough.
    """
    texts = [part.text for part in parts]
    if _fits(parts, texts, width):
        return _join(parts, texts)
    texts = [part.short if part.short is not None else part.text for part in parts]
    kept = list(range(len(parts)))
    for dropped in [
        None,
        *sorted((i for i, p in enumerate(parts) if p.drop), key=lambda i: -parts[i].drop),
    ]:
        if dropped is not None:
            kept.remove(dropped)
        shown = [texts[i] for i in kept]
        kept_parts = [parts[i] for i in kept]
        cuttable = [n for n, i in enumerate(kept) if parts[i].cut]
        if cuttable:
            n = cuttable[0]
            room = width - cell_len(_join(kept_parts, shown)) + cell_len(shown[n])
            if room >= min(cell_len(shown[n]), 6):
                shown[n] = cut_to(shown[n], room)
        if _fits(kept_parts, shown, width):
            return _join(kept_parts, shown)
    return cut_to(_join([parts[i] for i in kept], [texts[i] for i in kept]), width)


def _join(parts: list[Part], texts: list[str]) -> str:
    joined = ""
    for part, text in zip(parts, texts, strict=True):
        if not text:
            continue
        joined += (" " if part.glued else SEPARATOR) + text if joined else text
    return joined


def _fits(parts: list[Part], texts: list[str], width: int) -> bool:
    return cell_len(_join(parts, texts)) <= width


def cut_to(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending with ``…`` when cut."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + "…" if width > 0 else ""
