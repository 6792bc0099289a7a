"""Reading a run's log file for the Output pane: search it, find the failure, read a window.

A log can hold millions of lines while the pane keeps the last ten thousand, so these work on
the file in large binary chunks (a search of a million lines takes a fraction of a second).
They run in a process of their own (:func:`scan`), started from a worker thread of the UI:
each step over a chunk (lowering it, finding in it, counting its lines) holds the interpreter's
lock for milliseconds, and the loop, the terminal's input thread and its writer thread each
wait for that lock many times per key, so a key pressed during a search read in a thread of
the UI was answered only once the search was over. The process runs this file as a script
(``python -I -S logscan.py``, no package imported, and of the standard library only what it
uses: each import adds to the time to the first match); the UI's thread only waits on its
output. A hit is a line number (0-based, counted in
``\\n``, as the engine writes lines) with the byte offset where the line starts, so the pane can
read the lines around it without reading the file again from the top. The stamp before each
line (:mod:`pocketci_tui.stamps`) is never searched: a needle is looked for in what the build
printed, and the failure line's words are never in a stamp.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # only what the UI's side needs: the scanning process starts without them
    import threading
    from collections.abc import Callable, Iterator
    from pathlib import Path

__all__ = [
    "CHUNK",
    "FAILURE_RE",
    "RAMP",
    "Hit",
    "Stop",
    "Yielding",
    "failure_line",
    "find",
    "prestart",
    "read_window",
    "scan",
    "smart_case",
]

CHUNK = 1 << 22
"""Bytes read at a time (4 MiB), once past the first reads (:data:`RAMP`)."""

RAMP = (1 << 16, 1 << 18, 1 << 20)
"""The first reads' sizes (64 KiB, 256 KiB, 1 MiB), before :data:`CHUNK`: a first match near
the top (the first failure, a step's first line) is found after a read of 64 KiB rather than
after reading and lowering 4 MiB, which took 10 to 40 ms of the time to the first match on a
busy machine. Past them a read costs little next to what it holds."""

STAMP_RE = re.compile(rb"\d\d:[0-5]\d:[0-5]\d\.\d\d\d[Zz] ")
"""The stamp before a log line (:data:`pocketci_tui.stamps.STAMP_RE`; this file imports no
package, so it says it again, and a test keeps the two alike)."""

STAMP_WIDTH = 14
"""Its width, the blank after it included (:data:`pocketci_tui.stamps.STAMP_WIDTH`)."""

FAILURE_RE = re.compile(
    r"(?:^|[\s|:])(?:Error:|ERROR\b|FAIL(?:ED)?\b|panic:|fatal:|error(?:\[\w+\])?:|npm ERR!"
    r"|Traceback \(most recent call last\))"
)
"""What a failure line looks like (README, "Jump to the failure"): the first line holding
``Error:``, ``ERROR``, ``FAIL``/``FAILED`` (``--- FAIL: TestX``, ``FAIL pkg``), ``panic:``,
``fatal:``, a compiler's ``error:``/``error[E0308]:``, ``npm ERR!`` or a Python traceback, as a
word of its own (after a blank, ``|`` or ``:``, so Dagger's plain progress prefix
``7   : [1.2s] | `` and ``ERROR`` span markers count; ``NO_ERRORS`` and ``stderr:`` do not)."""


class Stop(Protocol):
    """What a reading loop asks whether to go on (a :class:`threading.Event`)."""

    def is_set(self) -> bool:
        """True once the reading is to stop."""
        ...


class Hit(NamedTuple):
    """A line of the log: its number (0-based) and the byte offset where it starts."""

    line: int
    offset: int


def smart_case(needle: str) -> bool:
    """Search case-sensitively only when the needle has a capital letter (as ``less -i``)."""
    return needle != needle.lower()


def find(
    path: Path | str,
    needle: str,
    on_hits: Callable[[list[Hit]], None],
    stop: Stop,
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
    with open(path, "rb") as handle:
        for size in _sizes():
            if stop.is_set():
                break
            chunk = handle.read(size)
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


def _sizes() -> Iterator[int]:
    """The size of each read: :data:`RAMP`, then :data:`CHUNK` for as long as asked."""
    yield from RAMP
    while True:
        yield CHUNK


def _hits(body: bytes, pattern: bytes, line: int, offset: int, most: int) -> list[Hit]:
    """The first ``most`` lines of ``body`` (whole lines) holding ``pattern``, once per line."""
    hits: list[Hit] = []
    if not pattern:
        return hits
    position = body.find(pattern)
    counted_to = 0
    while position >= 0 and len(hits) < most:
        start = body.rfind(b"\n", 0, position) + 1
        if position < start + STAMP_WIDTH and STAMP_RE.match(body, start):
            # In the line's stamp: the search looks at what the build printed only.
            position = body.find(pattern, start + STAMP_WIDTH)
            continue
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


def failure_line(path: Path | str, stop: Stop) -> Hit | None:
    """The first line of a log file that looks like the failure (see :data:`FAILURE_RE`)."""
    line = 0
    offset = 0
    carry = b""
    with open(path, "rb") as handle:
        for size in _sizes():
            if stop.is_set():
                break
            chunk = handle.read(size)
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
    with open(path, "rb") as handle:
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


ScanMode = str
"""``find`` (every line holding the needle) or ``failure`` (the failure line)."""


def scan(
    mode: ScanMode,
    path: Path,
    needle: str,
    on_hits: Callable[[list[Hit]], None],
    stop: threading.Event,
) -> int:
    """Run :func:`find` (or :func:`failure_line`) in a process of its own, reporting its hits.

    Called from a worker thread: it waits on the process's output (the interpreter's lock
    free meanwhile) and hands each batch of hits to ``on_hits`` as it arrives. The needle goes
    through the process's input, never its command line. Setting ``stop`` kills the process.

    Args:
        mode: ``find`` or ``failure``.
        path: The log file.
        needle: The text searched for (``find``).
        on_hits: Called (in this thread) with each batch of hits, in file order.
        stop: Set to abandon the search.

    Returns:
        The number of lines read (``find``), or 0 when stopped or for ``failure``.

    Raises:
        FileNotFoundError: The log file does not exist.
    """
    if not path.is_file():
        raise FileNotFoundError(path)
    process = _take_spare() or _start()
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        header = f"{mode}\t{path}\n".encode("utf-8", errors="surrogateescape")
        try:
            process.stdin.write(header + needle.encode("utf-8"))
            process.stdin.close()
        except BrokenPipeError:
            return 0  # the process died before it was given its work (killed, say)
        return _collect(process.stdout.fileno(), on_hits, stop)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        prestart()  # the next search's process starts while this one's hits are shown


_SPARES: list[Any] = []
"""At most one scanning process started ahead of need, waiting for its work on its input
(list operations are atomic: the UI's worker threads take and give without a lock)."""


def _start() -> Any:
    """Start a scanning process; it waits for its work on its input."""
    import subprocess  # here: the scanning process itself starts without it

    return subprocess.Popen(
        [sys.executable, "-I", "-S", __file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _take_spare() -> Any:
    """The process started ahead of need, if it is still alive, else None."""
    while True:
        try:
            process = _SPARES.pop()
        except IndexError:
            return None
        if process.poll() is None:
            return process
        process.wait()


def prestart() -> None:
    """Start the next search's process now (the search field just opened, or a search
    ended), so that Enter finds it started: the interpreter's start is most of the time to
    the first match of a search. Called from a worker thread; at most one waits."""
    if _SPARES:
        return
    if not _SPARES_CLEANUP:
        import atexit

        atexit.register(_kill_spares)
        _SPARES_CLEANUP.append(True)
    _SPARES.append(_start())
    while len(_SPARES) > 1:  # another thread started one meanwhile
        _kill(_SPARES.pop())


_SPARES_CLEANUP: list[bool] = []
"""Whether the spare is killed when the UI exits (registered once)."""


def _kill(process: Any) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def _kill_spares() -> None:
    """Kill the waiting process (the UI exits)."""
    while _SPARES:
        _kill(_SPARES.pop())


def _collect(fd: int, on_hits: Callable[[list[Hit]], None], stop: threading.Event) -> int:
    """Read ``line offset`` pairs from the process until its ``= lines`` (or ``stop``)."""
    import selectors

    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not stop.is_set():
            if not selector.select(0.05):
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                return 0  # ended without its count (it failed)
            pending += data
            cut = pending.rfind(b"\n") + 1
            body, pending = pending[:cut], pending[cut:]
            if not body:
                continue
            end = body.find(b"=")
            numbers = [int(word) for word in body[: end if end >= 0 else len(body)].split()]
            pairs = zip(numbers[::2], numbers[1::2], strict=True)
            hits = [Hit(line, offset) for line, offset in pairs]
            if hits:
                on_hits(hits)
            if end >= 0:
                return int(body[end + 1 :].split()[0] or 0)
    return 0


class Yielding:
    """The scanning process's :class:`Stop`: never stops, but asked before each read, it
    lowers the process's priority once the first 5 MiB or so are read (the :data:`RAMP` and
    a :data:`CHUNK`). They hold the first match of most searches, and the user waits for it:
    read at a lower priority on a busy machine, it came up to a second after Enter. The rest
    is background work, where the UI's own process goes first."""

    def __init__(self, lower: Callable[[], None]) -> None:
        self._lower = lower
        self._asked = 0

    def is_set(self) -> bool:
        """Never stop; lower the priority before the read after the first :data:`CHUNK`."""
        self._asked += 1
        if self._asked == len(RAMP) + 2:
            self._lower()
        return False


def _lower_priority() -> None:
    """Let the machine's other work go first (no contextlib: every import adds to the time
    to the first match)."""
    try:  # noqa: SIM105
        os.nice(10)
    except (OSError, AttributeError):
        pass


def _main(argv: list[str]) -> int:
    """The scanning process: its work on standard input (``find`` or ``failure``, a tab and
    the log's path on the first line, the needle after it), read once it is given, so the
    process can start before the user has typed what to find; writes ``line offset`` lines
    as it finds them, then ``= lines``."""
    work = sys.stdin.buffer.read()
    first, _, rest = work.partition(b"\n")
    mode, _, raw_path = first.partition(b"\t")
    path = raw_path.decode("utf-8", errors="surrogateescape")
    needle = rest.decode("utf-8", errors="replace")
    if mode == b"find":
        mode_text = "find"
    elif mode == b"failure":
        mode_text = "failure"
    else:
        return 2
    out = sys.stdout.buffer

    def report(hits: list[Hit]) -> None:
        out.write(b"".join(b"%d %d\n" % (hit.line, hit.offset) for hit in hits))
        out.flush()

    if mode_text == "find":
        lines = find(path, needle, report, Yielding(_lower_priority))
    else:
        _lower_priority()
        hit = failure_line(path, Yielding(lambda: None))
        report([hit] if hit is not None else [])
        lines = 0
    out.write(b"= %d\n" % lines)
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
