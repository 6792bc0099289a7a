"""The process layer: ANSI stripping, the line reader, spawning and stopping process trees."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketci_tui.engine.proc import (
    MAX_LINE,
    kill_tree,
    read_lines,
    spawn,
    strip_ansi,
)

# -- strip_ansi -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m plain", "red plain"),
        ("\x1b[1;38;5;208mbold orange\x1b[m", "bold orange"),
        ("cursor\x1b[2K\x1b[1A\x1b[?25l hidden", "cursor hidden"),
        ("title\x1b]0;evil title\x07 after", "title after"),
        ("link \x1b]8;;https://example.com\x1b\\text\x1b]8;;\x1b\\ end", "link text end"),
        ("unterminated \x1b]0;rest of line", "unterminated "),
        ("dcs \x1bPq#0;2;0;0;0\x1b\\ done", "dcs  done"),
        ("charset \x1b(Bx", "charset x"),
        ("reset\x1bc!", "reset!"),
        ("lone escape at end\x1b", "lone escape at end"),
        ("8-bit csi \x9b31mX", "8-bit csi X"),
        ("bell\x07 nul\x00 bs\x08 del\x7f ff\x0c vt\x0b", "bell nul bs del ff vt"),
        ("keeps\ttabs", "keeps\ttabs"),
        ("progress 10%\rprogress 50%\rprogress 100%", "progress 100%"),
        ("windows line\r", "windows line"),
        ("double cr\r\r", "double cr"),
        ("a\r\rb", "b"),
        ("one\ntwo\x1b[0m\r\nthree", "one\ntwo\nthree"),
        ("[bold]rich markup[/bold] stays text", "[bold]rich markup[/bold] stays text"),
        ("unicode ✓ ünïcödé 🚀", "unicode ✓ ünïcödé 🚀"),
    ],
)
def test_strip_ansi(raw: str, clean: str) -> None:
    assert strip_ansi(raw) == clean


@given(st.text(alphabet=st.characters(max_codepoint=0x2FF)))
def test_strip_ansi_leaves_no_control_characters(text: str) -> None:
    out = strip_ansi(text)
    assert not any((ord(ch) < 0x20 and ch not in "\t\n") or 0x7F <= ord(ch) <= 0x9F for ch in out)
    assert out.count("\n") == text.count("\n")


@given(st.text(alphabet=st.characters(exclude_categories=["Cc"])))
def test_strip_ansi_keeps_plain_text(text: str) -> None:
    assert strip_ansi(text) == text


# -- read_lines -------------------------------------------------------------------------------


async def collect(chunks: list[bytes], **kwargs: object) -> list[list[str]]:
    """Feed ``chunks`` into a StreamReader and return the groups read_lines delivers."""
    stream = asyncio.StreamReader()
    groups: list[list[str]] = []

    async def feed() -> None:
        for chunk in chunks:
            stream.feed_data(chunk)
            await asyncio.sleep(0)
        stream.feed_eof()

    feeder = asyncio.create_task(feed())
    await read_lines(stream, groups.append, **kwargs)  # type: ignore[arg-type]
    await feeder
    return groups


def flat(groups: list[list[str]]) -> list[str]:
    return [line for group in groups for line in group]


async def test_lines_across_chunks_and_final_partial_line() -> None:
    groups = await collect([b"first li", b"ne\nsecond\nthi", b"rd", b" no newline"])
    assert flat(groups) == ["first line", "second", "third no newline"]
    assert all(groups)


async def test_empty_lines_are_kept() -> None:
    assert flat(await collect([b"a\n\n\nb\n"])) == ["a", "", "", "b"]


async def test_crlf_and_ansi_are_cleaned_unless_asked_not_to() -> None:
    assert flat(await collect([b"\x1b[32mok\x1b[0m\r\n"])) == ["ok"]
    assert flat(await collect([b"\x1b[32mok\r\n"], clean=False)) == ["\x1b[32mok\r"]


async def test_invalid_utf8_becomes_replacement_characters() -> None:
    lines = flat(await collect([b"bad \xff\xfe bytes\n", b"\x00\x01binary\x02junk\n"]))
    assert lines == ["bad \ufffd\ufffd bytes", "binaryjunk"]


async def test_huge_line_without_blanks_is_split_at_the_limit() -> None:
    line = b"x" * (MAX_LINE * 3 + 123)
    chunks = [line[i : i + 10_000] for i in range(0, len(line), 10_000)] + [b"\nafter\n"]
    lines = flat(await collect(chunks))
    assert lines[-1] == "after"
    assert "".join(lines[:-1]) == line.decode()
    assert all(len(piece) <= MAX_LINE for piece in lines)
    assert len(lines) == 5


async def test_huge_line_in_one_chunk_is_split() -> None:
    line = "y" * (MAX_LINE + 5000)
    lines = flat(await collect([line.encode() + b"\n"], chunk_size=1 << 20))
    assert "".join(lines) == line
    assert max(len(piece) for piece in lines) <= MAX_LINE


async def test_huge_line_splits_at_a_blank_near_the_limit() -> None:
    token = "TOKEN" * 20
    # The token straddles the limit: a plain cut at MAX_LINE would cut it in two.
    line = "w" * (MAX_LINE - 51) + " " + token + " tail" * 3000
    assert line.index(token) < MAX_LINE < line.index(token) + len(token)
    lines = flat(await collect([line.encode() + b"\n"]))
    assert "".join(lines) == line
    assert any(token in piece for piece in lines)
    assert all(len(piece) <= MAX_LINE for piece in lines)


async def test_multibyte_character_at_the_split_is_not_broken() -> None:
    line = ("é" * (MAX_LINE // 2 + 10)).encode() + b"x" + ("é" * MAX_LINE).encode()
    lines = flat(await collect([line[i : i + 777] for i in range(0, len(line), 777)]))
    assert "".join(lines) == line.decode()
    assert "\ufffd" not in "".join(lines)


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="ab é🚀\n\r\t\x1b[]0;m\x07\\", max_size=300),
    st.lists(st.integers(min_value=1, max_value=40), max_size=30),
)
async def test_any_chunking_gives_the_same_lines(text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    chunks, pos = [], 0
    for size in cuts:
        chunks.append(data[pos : pos + size])
        pos += size
    chunks.append(data[pos:])
    raw = text.split("\n")
    if raw[-1] == "":
        raw.pop()
    expected = [strip_ansi(line) for line in raw]
    assert flat(await collect([c for c in chunks if c])) == expected


async def test_max_line_must_leave_room_for_the_blank_search() -> None:
    with pytest.raises(ValueError, match="max_line"):
        await collect([b"x\n"], max_line=10)


# -- spawn and kill_tree ------------------------------------------------------------------------


def script(tmp_path: Path, name: str, body: str) -> Path:
    """Write an executable Python script with this interpreter as its shebang."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(pid: int) -> bool:
    for _ in range(200):
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def read_all(proc: asyncio.subprocess.Process) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    await read_lines(proc.stdout, lines.extend)
    return lines


async def test_spawn_merges_stderr_in_order_with_closed_stdin_and_own_session(
    tmp_path: Path,
) -> None:
    exe = script(
        tmp_path,
        "child",
        """
        import os, sys
        print("stdin:", repr(sys.stdin.read()), flush=True)
        for i in range(3):
            print(f"out {i}", flush=True)
            print(f"err {i}", file=sys.stderr, flush=True)
        print("cwd:", os.getcwd(), flush=True)
        print("env:", sorted(os.environ), flush=True)
        print("pgid==pid:", os.getpgid(0) == os.getpid(), "sid==pid:", os.getsid(0) == os.getpid())
        """,
    )
    cwd = tmp_path / "neutral"
    cwd.mkdir()
    proc = await spawn([str(exe)], env={"PATH": os.defpath, "ONLY": "this"}, cwd=cwd)
    lines = await read_all(proc)
    assert await proc.wait() == 0
    assert lines[0] == "stdin: ''"
    assert lines[1:7] == ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2"]
    assert lines[7] == f"cwd: {cwd}"
    assert lines[8].startswith("env: ")
    assert "'ONLY'" in lines[8]
    assert "'HOME'" not in lines[8]
    assert lines[9] == "pgid==pid: True sid==pid: True"


async def test_spawn_of_a_missing_program_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await spawn([str(tmp_path / "nope")], env={"PATH": os.defpath}, cwd=tmp_path)


async def test_kill_tree_stops_a_grandchild_that_ignores_sigterm(tmp_path: Path) -> None:
    grandchild = script(
        tmp_path,
        "stubborn",
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(300)
        """,
    )
    child = script(
        tmp_path,
        "parent",
        f"""
        import subprocess, sys, time
        p = subprocess.Popen([{str(grandchild)!r}], stdout=subprocess.PIPE, text=True)
        p.stdout.readline()
        print("grandchild", p.pid, flush=True)
        time.sleep(300)
        """,
    )
    proc = await spawn([str(child)], env={"PATH": os.defpath}, cwd=tmp_path)
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    gpid = int(line.split()[1])
    assert alive(proc.pid)
    assert alive(gpid)
    await kill_tree(proc, grace=0.3)
    assert await proc.wait() == -signal.SIGTERM
    assert await wait_gone(gpid)


async def test_kill_tree_on_a_finished_process_is_harmless(tmp_path: Path) -> None:
    proc = await spawn([sys.executable, "-c", "pass"], env={"PATH": os.defpath}, cwd=tmp_path)
    await read_all(proc)
    assert await proc.wait() == 0
    await kill_tree(proc, grace=0.1)
    assert proc.returncode == 0
