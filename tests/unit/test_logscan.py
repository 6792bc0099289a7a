"""Reading a log file in a process of its own: the same lines as read here, and nothing left
running once stopped."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pocketci_tui.tui.logscan import CHUNK, RAMP, Hit, Yielding, find, scan

LINES = 300_000


def _log(path: Path) -> Path:
    """A log larger than the first reads and a chunk, with matches on both sides of each
    read's end."""
    lines = [f"{i:06d}: step {i} {'cache miss' if i % 997 == 3 else 'ok'}" for i in range(LINES)]
    lines[150] = "--- FAIL: TestRefreshToken (0.02s) ünïcode"
    lines[151] = "Error: exit status 1"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size > sum(RAMP) + CHUNK
    return path


def test_the_first_match_is_reported_after_a_small_first_read(tmp_path: Path) -> None:
    """A match near the top is reported once the first 64 KiB are read, before the rest of
    the file is there at all (a pipe, written in two parts, stands for the file)."""
    path = tmp_path / "run.log"
    os.mkfifo(path)
    head = "".join(f"{i:06d}: {'cache miss' if i == 3 else 'ok'} {'x' * 40}\n" for i in range(2000))
    assert len(head) >= RAMP[0]
    seen = threading.Event()
    found: list[Hit] = []
    in_time: list[bool] = []

    def write() -> None:
        with path.open("w", encoding="utf-8") as pipe:
            pipe.write(head)
            pipe.flush()
            # The rest only once the match was reported (or after 10 s, when it never is).
            in_time.append(seen.wait(10))
            pipe.write("tail cache miss\n")

    def on_hits(hits: list[Hit]) -> None:
        found.extend(hits)
        seen.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        find(path, "cache miss", on_hits, threading.Event())
    finally:
        seen.set()
        writer.join()
    assert in_time == [True]
    assert [hit.line for hit in found] == [3, 2000]


def test_a_search_in_its_own_process_finds_what_a_search_here_finds(tmp_path: Path) -> None:
    """Every matching line, with where it starts, in file order, the first match in the first
    batch, and the line count; smart case as here. (The process writes the first match by
    itself, but the pipe may hand it over together with the matches of the same read, found
    microseconds later: a test of the first match coming before the rest of the file is
    read is :func:`test_the_first_match_is_reported_after_a_small_first_read`.)"""
    path = _log(tmp_path / "run.log")
    for needle in ("cache miss", "CACHE miss"):
        here: list[Hit] = []
        lines_here = find(path, needle, here.extend, threading.Event())
        batches: list[list[Hit]] = []
        lines = scan("find", path, needle, batches.append, threading.Event())
        assert lines == lines_here == LINES
        assert [hit for batch in batches for hit in batch] == here
    assert len(here) == 0  # a capital letter: exactly that
    batches = []
    scan("find", path, "cache miss", batches.append, threading.Event())
    found = [hit for batch in batches for hit in batch]
    assert [hit.line for hit in found] == list(range(3, LINES, 997))
    assert batches[0][0].line == 3
    with path.open("rb") as handle:
        for hit in found:
            handle.seek(hit.offset)
            assert handle.readline().startswith(f"{hit.line:06d}: ".encode())


def test_the_needle_goes_to_the_process_whole(tmp_path: Path) -> None:
    """Not on a command line: any text, spaces and non-ASCII letters included."""
    path = _log(tmp_path / "run.log")
    found: list[Hit] = []
    scan("find", path, "TestRefreshToken (0.02s) ünïcode", found.extend, threading.Event())
    assert [hit.line for hit in found] == [150]


def test_the_failure_line_is_read_in_its_own_process(tmp_path: Path) -> None:
    path = _log(tmp_path / "run.log")
    found: list[Hit] = []
    scan("failure", path, "", found.extend, threading.Event())
    assert [hit.line for hit in found] == [150]


def test_a_stopped_search_reports_nothing_more(tmp_path: Path) -> None:
    path = _log(tmp_path / "run.log")
    stop = threading.Event()
    stop.set()
    found: list[Hit] = []
    assert scan("find", path, "ok", found.extend, stop) == 0
    assert found == []


def test_a_missing_log_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scan("find", tmp_path / "gone.log", "x", lambda hits: None, threading.Event())


def test_the_scanning_process_yields_only_once_the_first_chunk_is_read(tmp_path: Path) -> None:
    """The first match is read at the process's own priority (the user waits for it); the
    priority is lowered once, before the rest of the file is read."""
    path = _log(tmp_path / "run.log")
    seen: list[str] = []
    lines = find(
        path,
        "cache miss",
        lambda hits: seen.append(f"hits {hits[0].line}"),
        Yielding(lambda: seen.append("lowered")),
    )
    assert lines == LINES
    assert seen[0] == "hits 3"
    assert seen.count("lowered") == 1
    assert "hits" in seen[seen.index("lowered") - 1]
    assert seen.index("lowered") < len(seen) - 1  # the rest came after


def test_a_search_takes_the_process_started_ahead_of_it(tmp_path: Path) -> None:
    """The search field starts the next search's process before the needle is known; the
    search then gives it its work instead of starting one, and finds the same lines."""
    from pocketci_tui.tui import logscan

    path = _log(tmp_path / "run.log")
    logscan._kill_spares()
    logscan.prestart()
    assert len(logscan._SPARES) == 1
    waiting = logscan._SPARES[0]
    assert waiting.poll() is None  # started, and waiting for its work
    found: list[Hit] = []
    scan("find", path, "TestRefreshToken (0.02s) ünïcode", found.extend, threading.Event())
    assert [hit.line for hit in found] == [150]
    assert waiting.returncode is not None  # it did the search, and ended
    assert waiting not in logscan._SPARES
    assert len(logscan._SPARES) == 1  # the next search's process is started already
    logscan._kill_spares()
    assert logscan._SPARES == []
