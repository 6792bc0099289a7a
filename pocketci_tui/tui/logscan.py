"""Reading a run's log file for the Output pane: search it, find the failure, read a window.

A log can hold millions of lines while the pane keeps the last ten thousand, so these work on
the file in large binary chunks (a search of a million lines takes a fraction of a second) and
run in a worker thread, never on the event loop. A hit is a line number (0-based, counted in
``\\n``, as the engine writes lines) with the byte offset where the line starts, so the pane can
read the lines around it without reading the file again from the top.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CHUNK",
    "FAILURE_RE",
    "Hit",
    "failure_line",
    "find",
    "read_window",
    "smart_case",
]

CHUNK = 1 << 22
"""Bytes read at a time (4 MiB)."""

FAILURE_RE = re.compile(
    r"(?:^|[\s|:])(?:Error:|ERROR\b|FAIL(?:ED)?\b|panic:|fatal:|error(?:\[\w+\])?:|npm ERR!"
    r"|Traceback \(most recent call last\))"
)
"""What a failure line looks like (README, "Jump to the failure"): the first line holding
``Error:``, ``ERROR``, ``FAIL``/``FAILED`` (``--- FAIL: TestX``, ``FAIL pkg``), ``panic:``,
``fatal:``, a compiler's ``error:``/``error[E0308]:``, ``npm ERR!`` or a Python traceback, as a
word of its own (after a blank, ``|`` or ``:``, so Dagger's plain progress prefix
``7   : [1.2s] | `` and ``ERROR`` span markers count; ``NO_ERRORS`` and ``stderr:`` do not)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A line of the log: its number (0-based) and the byte offset where it starts."""

    line: int
    offset: int


def smart_case(needle: str) -> bool:
    """Search case-sensitively only when the needle has a capital letter (as ``less -i``)."""
    return needle != needle.lower()


def find(
    path: Path,
    needle: str,
    on_hits: Callable[[list[Hit]], None],
    stop: threading.Event,
    *,
    limit: int = 100_000,
) -> int:
    """Find the lines of a log file holding ``needle``, reporting them in batches as found.

    The first hit is reported alone and at once (the pane shows it while the rest is read);
    the others in one batch per chunk.

    Args:
        path: The log file (UTF-8, lines ending with ``\\n``).
        needle: The text searched for (smart case: see :func:`smart_case`).
        on_hits: Called (in this thread) with each batch of hits, in file order.
        stop: Set to abandon the search (a new needle, another run).
        limit: Hits kept at most (a needle like ``e`` would otherwise fill memory).

    Returns:
        The number of lines read (the file's line count when not stopped).
    """
    pattern = needle.encode("utf-8")
    fold = not smart_case(needle)
    if fold:
        pattern = pattern.lower()
    found = 0
    line = 0
    offset = 0
    carry = b""
    with path.open("rb") as handle:
        while not stop.is_set():
            chunk = handle.read(CHUNK)
            if not chunk:
                if carry:
                    line += 1
                break
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            body, carry = data[:cut], data[cut:]
            folded = body.lower() if fold else body
            if found == 0:
                # The first match is shown before the rest of the chunk is looked through.
                first = _hits(folded, pattern, line, offset, most=1)
                if first:
                    on_hits(first)
                    found = 1
                    hits = _hits(folded, pattern, line, offset, most=limit)[1:]
                else:
                    hits = []
            elif found < limit:
                hits = _hits(folded, pattern, line, offset, most=limit - found)
            else:
                hits = []
            if hits:
                found += len(hits)
                on_hits(hits)
            line += body.count(b"\n")
            offset += len(body)
    return line


def _hits(body: bytes, pattern: bytes, line: int, offset: int, most: int) -> list[Hit]:
    """The first ``most`` lines of ``body`` (whole lines) holding ``pattern``, once per line."""
    hits: list[Hit] = []
    if not pattern:
        return hits
    position = body.find(pattern)
    counted_to = 0
    while position >= 0 and len(hits) < most:
        start = body.rfind(b"\n", 0, position) + 1
        line += body.count(b"\n", counted_to, start)
        counted_to = start
        hits.append(Hit(line, offset + start))
        end = body.find(b"\n", position)
        if end < 0:
            break
        position = body.find(pattern, end + 1)
    return hits


_FAILURE_WORDS = (
    b"Error:",
    b"ERROR",
    b"FAIL",
    b"panic:",
    b"fatal:",
    b"error",
    b"npm ERR!",
    b"Traceback (most recent call last)",
)
"""Literal parts of :data:`FAILURE_RE`: a line is matched against it only when it holds one
(a plain search for them is many times faster than the expression over every line)."""


def failure_line(path: Path, stop: threading.Event) -> Hit | None:
    """The first line of a log file that looks like the failure (see :data:`FAILURE_RE`)."""
    line = 0
    offset = 0
    carry = b""
    with path.open("rb") as handle:
        while not stop.is_set():
            chunk = handle.read(CHUNK)
            data = carry + chunk
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            body, carry = data[:cut], data[cut:]
            start = _first_failure(body)
            if start is not None:
                return Hit(line + body.count(b"\n", 0, start), offset + start)
            line += body.count(b"\n")
            offset += len(body)
            if not chunk:
                break
    return None


def _first_failure(body: bytes) -> int | None:
    """Where the first failure line of ``body`` starts, or None."""
    found = {word: body.find(word) for word in _FAILURE_WORDS}
    while True:
        candidates = [at for at in found.values() if at >= 0]
        if not candidates:
            return None
        at = min(candidates)
        start = body.rfind(b"\n", 0, at) + 1
        end = body.find(b"\n", at)
        end = len(body) if end < 0 else end
        if FAILURE_RE.search(body[start:end].decode("utf-8", errors="replace")):
            return start
        for word, where in found.items():
            if 0 <= where < end:
                found[word] = body.find(word, end)


def read_window(path: Path, hit: Hit, before: int, after: int) -> tuple[int, list[str]]:
    """Read up to ``before`` lines before a hit's line and ``after`` lines from it.

    Args:
        path: The log file.
        hit: A line and where it starts in the file (from :func:`find`).
        before: Lines wanted before it.
        after: Lines wanted from it on (itself included).

    Returns:
        The number of the first line read and the lines (without their ``\\n``).
    """
    budget = 1024
    with path.open("rb") as handle:
        while True:
            start = max(0, hit.offset - budget * (before + 1))
            handle.seek(start)
            head = handle.read(hit.offset - start).split(b"\n")
            if start > 0:
                head = head[1:]  # a partial line
            if len(head) - 1 >= before or start == 0 or budget > 1 << 16:
                break
            budget *= 4
        prior = head[:-1][-before:] if before else []
        tail: list[bytes] = []
        handle.seek(hit.offset)
        for raw in handle:
            tail.append(raw.rstrip(b"\n"))
            if len(tail) >= after:
                break
    lines = [raw.decode("utf-8", errors="replace") for raw in (*prior, *tail)]
    return hit.line - len(prior), lines
