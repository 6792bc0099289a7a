"""When each output line arrived: the stamp a run's log file puts before every line.

A log line reads ``15:09:01.123Z make: *** [build] Error 1``: the UTC time of day the line
arrived, to the millisecond, a ``Z`` and one blank, then the line as the build printed it
(masked). The prefix has a fixed width (:data:`STAMP_WIDTH`), so ``less -R`` shows the log in
tidy columns, and ``grep``, ``sort`` and ``cut -c15-`` work on it as they would on any log.

A line holds no date: a run lasts less than a day, and the date of each line is recovered from
a later moment known to follow it (the file's last change for a log's tail, see
:func:`resolve`). Live output carries the same moments as numbers (seconds since the epoch,
whole milliseconds, see :func:`now_ms`), so the screen shows the same stamp whether a line came
live or from the file.

Log files written before stamps existed have none: a line without one reads as before, with no
time (:func:`split` gives None).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

__all__ = [
    "DAY_MS",
    "MTIME_SLACK_MS",
    "STAMP_RE",
    "STAMP_WIDTH",
    "format_stamp",
    "now_ms",
    "resolve",
    "split",
    "split_lines",
    "stamp_lines",
]

STAMP_WIDTH = 14
"""Characters of a stamp, the blank after it included (``15:09:01.123Z ``)."""

STAMP_RE = re.compile(rb"\d\d:[0-5]\d:[0-5]\d\.\d\d\d[Zz] ")
"""A stamp at the start of a log line, in the file's bytes (its ``Z`` in either case: a search
that ignores case looks at the bytes lowered)."""

_STAMP_TEXT_RE = re.compile(r"(\d\d):([0-5]\d):([0-5]\d)\.(\d\d\d)Z ")

DAY_MS = 86_400_000
"""Milliseconds in a day."""

MTIME_SLACK_MS = 2_000
"""How far a file system's coarse modification time may lag behind the last line's stamp:
added to it before it dates the lines (see :func:`resolve`)."""


def now_ms() -> int:
    """The current time in whole milliseconds since the epoch (what a stamp keeps)."""
    return time.time_ns() // 1_000_000


def format_stamp(ms: int) -> str:
    """The stamp of a moment (milliseconds since the epoch), its trailing blank included."""
    seconds, milli = divmod(ms % DAY_MS, 1000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{milli:03d}Z "


def stamp_lines(lines: Sequence[str], ms: int) -> str:
    """The text a batch of lines that arrived together adds to a log file (each stamped, each
    ending with ``\\n``)."""
    stamp = format_stamp(ms)
    return stamp + ("\n" + stamp).join(lines) + "\n"


def split(line: str) -> tuple[int | None, str]:
    """A log line's time of day (milliseconds since midnight UTC) and its text; None and the
    whole line when it has no stamp (a log written before stamps)."""
    match = _STAMP_TEXT_RE.match(line)
    if match is None:
        return None, line
    hours, minutes, seconds, milli = (int(part) for part in match.groups())
    if hours > 23:
        return None, line
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + milli, line[STAMP_WIDTH:]


def resolve(times_of_day: Sequence[int | None], after_ms: int) -> list[float | None]:
    """Turn the times of day of consecutive log lines into moments (seconds since the epoch).

    Each line is put on the latest day that keeps it before the line after it (the last line:
    before ``after_ms``), so a run that went on past midnight keeps its order; a line without a
    stamp stays None.

    Args:
        times_of_day: Milliseconds since midnight UTC of each line, oldest first.
        after_ms: A moment no earlier than the last line (the file's last change), in
            milliseconds since the epoch.
    """
    moments: list[float | None] = [None] * len(times_of_day)
    limit = after_ms
    for index in range(len(times_of_day) - 1, -1, -1):
        of_day = times_of_day[index]
        if of_day is None:
            continue
        moment = limit - ((limit - of_day) % DAY_MS)
        moments[index] = moment / 1000
        limit = moment
    return moments


def split_lines(lines: Iterable[str], after_ms: int) -> tuple[list[str], list[float | None]]:
    """The texts of consecutive log lines and the moments they arrived (see :func:`resolve`)."""
    texts: list[str] = []
    of_day: list[int | None] = []
    for line in lines:
        when, text = split(line)
        of_day.append(when)
        texts.append(text)
    return texts, resolve(of_day, after_ms)
