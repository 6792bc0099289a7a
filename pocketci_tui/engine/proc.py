"""Child processes: spawning, reading their output, stopping their whole process tree.

Every external program pocketci-tui runs (git, dagger) goes through this module, so the rules
hold everywhere: an argv list (never a shell), stdin closed, output piped (a child that inherits
the terminal would draw over the UI), and a process group of its own so that a cancel or a
timeout reaches the grandchildren too. After a crash, :func:`stop_leftover` stops what is left of
a call's group, as recorded when it started (:func:`call_process`): the leader's start time
tells the group apart from whoever reuses its pid.

Output cleaning (:func:`strip_ansi`) turns whatever a child prints into plain text that is safe
to show in a terminal UI and to store in a log file:

* CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks; terminated by BEL or
  ST, or running to the end of the line when unterminated), DCS/SOS/PM/APC strings and every
  other escape sequence are removed, in their 7-bit and 8-bit forms.
* Every other C0 and C1 control character is removed, except ``\\t`` (and ``\\n`` between
  lines).
* Carriage returns: progress bars redraw a line with ``\\r``. A line keeps only the text after
  its last ``\\r``, which is what a terminal would finally show when each redraw rewrites the
  whole line. Trailing ``\\r`` (``\\r\\n`` line ends) is simply dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

from pocketci_tui.model import CallProcess

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024
"""Longest line delivered, in characters (bytes while still undecoded); longer ones are split."""

CHUNK_SIZE = 256 * 1024
"""How much :func:`read_lines` asks the pipe for at once."""

_SPLIT_LOOKBACK = 1024
"""When splitting an over-long line, prefer a blank within this many characters of the limit,
so that a token (and so a secret) is not cut in two unless it is itself that long."""

ANSI_RE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[\x20-/]*[@-~]?                 # CSI ... final byte
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])            # OSC, DCS, SOS, PM, APC ...
      [^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?            #   ... up to BEL or ST (or line end)
    | \x1b[\x20-/]*[0-~]?                                # any other escape sequence, lone ESC
    | [\x00-\x08\x0b-\x1f\x7f-\x9f]                      # other C0/C1 controls but \t and \n
    """,
    re.VERBOSE,
)
"""Matches terminal control sequences and control characters (never ``\\t`` or ``\\n``)."""

_ANY_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Every sequence :data:`ANSI_RE` removes starts with one of these: a cheap first test."""


def _collapse_cr(line: str) -> str:
    line = line.rstrip("\r")
    cut = line.rfind("\r")
    return line[cut + 1 :] if cut >= 0 else line


def strip_ansi(text: str) -> str:
    """Return ``text`` without terminal control sequences or control characters.

    ``text`` may hold several lines separated by ``\\n``; sequences never span lines. A line
    keeps only what follows its last carriage return (see the module docstring).

    Args:
        text: Decoded output of a child process.

    Returns:
        Plain text that is safe to print to a terminal: only ``\\t`` and ``\\n`` remain of the
        control characters.
    """
    if "\r" in text:
        text = "\n".join([_collapse_cr(line) for line in text.split("\n")])
    if _ANY_CONTROL_RE.search(text) is None:
        return text
    return ANSI_RE.sub("", text)


async def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path
) -> asyncio.subprocess.Process:
    """Start ``argv`` with stdin closed and stdout and stderr merged into one pipe.

    Merging keeps the order in which the child wrote its progress (stderr) and its result
    (stdout), which is what a log should show. The child gets a new session, so its process
    group id equals its pid and :func:`kill_tree` reaches everything it starts.

    Args:
        argv: Program and arguments; the program is looked up on ``env``'s ``PATH``.
        env: The complete environment of the child (nothing is inherited).
        cwd: Its working directory.

    Returns:
        The running process; read ``proc.stdout``.

    Raises:
        OSError: The program is missing, not executable, or the argument list is too long.
    """
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Only possible when the group id was reused by someone else's process: not ours.
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Return True while any process (zombies included) is left in process group ``pgid``."""
    return _signal_group(pgid, 0)


async def kill_tree(proc: asyncio.subprocess.Process, *, grace: float = 5.0) -> None:
    """Stop a process started by :func:`spawn` and everything in its process group.

    Sends SIGTERM to the group, waits up to ``grace`` seconds for the group to empty, then sends
    SIGKILL to whatever is left. Safe to call when the process already exited, and it does not
    depend on the output pipe being closed (a stray that escaped the group may hold it).

    Args:
        proc: The process; its pid is its process group id.
        grace: Seconds between SIGTERM and SIGKILL.
    """
    loop = asyncio.get_running_loop()
    pgid = proc.pid
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = loop.time() + grace
    delay = 0.01
    while loop.time() < deadline:
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 0.1)
        if not group_alive(pgid):
            return
    if not _signal_group(pgid, signal.SIGKILL):
        return
    # SIGKILL cannot be ignored; give the kernel a moment to finish the job. Orphaned zombies
    # stay in the group until their new parent reaps them, so this wait is bounded.
    for _ in range(50):
        if not group_alive(pgid) or proc.returncode is not None:
            break
        await asyncio.sleep(0.02)


def _split_bytes(buf: bytes, limit: int) -> int:
    """Where to cut an over-long undecoded line: after a blank near ``limit``, else at a UTF-8
    character boundary at or before ``limit``."""
    low = limit - _SPLIT_LOOKBACK
    blank = max(buf.rfind(b" ", low, limit), buf.rfind(b"\t", low, limit))
    if blank >= 0:
        return blank + 1
    cut = limit
    while cut > limit - 4 and (buf[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def _split_text(line: str, limit: int) -> list[str]:
    """Split a decoded line into pieces of at most ``limit`` characters."""
    pieces: list[str] = []
    while len(line) > limit:
        low = limit - _SPLIT_LOOKBACK
        blank = max(line.rfind(" ", low, limit), line.rfind("\t", low, limit))
        cut = blank + 1 if blank >= 0 else limit
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def _decode(data: bytes, clean: bool, limit: int) -> list[str]:
    """Decode complete lines (``data`` ends with ``\\n``) into a list of lines."""
    text = data.decode("utf-8", errors="replace")
    if clean:
        text = strip_ansi(text)
    lines = text.split("\n")
    lines.pop()  # the empty string after the final newline
    if len(text) > limit and any(len(line) > limit for line in lines):
        lines = [piece for line in lines for piece in _split_text(line, limit)]
    return lines


async def read_lines(
    stream: asyncio.StreamReader,
    on_lines: Callable[[list[str]], None],
    *,
    max_line: int = MAX_LINE,
    chunk_size: int = CHUNK_SIZE,
    clean: bool = True,
) -> None:
    """Read ``stream`` to EOF and hand its lines over in groups, as they arrive.

    Reads large chunks and splits them, instead of one ``readline()`` per line, so that hundreds
    of thousands of lines per second are possible. Never raises for odd output: lines longer
    than ``max_line`` are split (preferably at a blank near the limit), bytes that are not UTF-8
    become U+FFFD, and a last line without a newline is delivered at EOF.

    Args:
        stream: The child's output.
        on_lines: Called with every non-empty group of complete lines, without line ends, in
            order. It runs on the event loop and must be quick.
        max_line: Longest line delivered.
        chunk_size: Bytes asked for per read.
        clean: Apply :func:`strip_ansi` to the text.
    """
    if max_line <= _SPLIT_LOOKBACK:
        raise ValueError(f"max_line must be larger than {_SPLIT_LOOKBACK}")
    pending = b""
    while True:
        chunk = await stream.read(chunk_size)
        if not chunk:
            break
        buf = pending + chunk if pending else chunk
        end = buf.rfind(b"\n")
        lines: list[str] = []
        if end >= 0:
            lines = _decode(buf[: end + 1], clean, max_line)
            pending = buf[end + 1 :]
        else:
            pending = buf
        while len(pending) > max_line:
            cut = _split_bytes(pending, max_line)
            lines.extend(_decode(pending[:cut] + b"\n", clean, max_line))
            pending = pending[cut:]
        if lines:
            on_lines(lines)
    if pending:
        on_lines(_decode(pending + b"\n", clean, max_line))


async def drain(task: asyncio.Task[None], wait_s: float) -> bool:
    """Wait up to ``wait_s`` seconds for a reader task; cancel it if it is still running.

    Returns:
        True when the reader reached EOF (its exception, if any, is raised), False when it had
        to be cancelled.
    """
    done, _ = await asyncio.wait({task}, timeout=wait_s)
    if done:
        task.result()
        return True
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return False


def close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close the transport of a finished process whose pipe a stray may still hold open."""
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        with suppress(Exception):
            transport.close()


# -- process groups left behind by a crash -----------------------------------------------------

PROC = Path("/proc")
"""Where Linux shows its processes; the start-time checks below need it."""


def boot_id(proc_root: Path = PROC) -> str:
    """Return the kernel's boot id ("" when unknown), which changes at every boot."""
    try:
        return (proc_root / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _stat(pid: int, proc_root: Path = PROC) -> tuple[str, int, int] | None:
    """Return ``(state, pgid, start_ticks)`` of a process from ``/proc/<pid>/stat``, or None.

    The command name (field 2) may hold spaces and parentheses, so fields are counted after
    its last ``)``: state is field 3, pgid field 5, start time field 22.
    """
    try:
        raw = (proc_root / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode("ascii", "replace"), int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None


def call_process(run_id: str, pid: int, proc_root: Path = PROC) -> CallProcess | None:
    """Describe a call just started by :func:`spawn` (its pid is its process group), so that a
    later start can recognise it; None where ``/proc`` cannot tell (not Linux)."""
    stat = _stat(pid, proc_root)
    if stat is None:
        return None
    return CallProcess(run_id, pid, stat[2], boot_id(proc_root))


def leftover_pids(call: CallProcess, proc_root: Path = PROC) -> list[int]:
    """Return the live processes still in the recorded call's process group, or [] when the
    group is gone or is not the one recorded.

    The group is the recorded one when its leader's pid still has the recorded start time (a
    reused pid has another), or, once the leader is gone, for the members that started after
    it (Linux hands out no pid while it is still a process group's id). Nothing is found after
    a reboot (another boot id). Zombies are not counted: they are dead already.

    Blocking: it reads ``/proc``; call it in a thread.
    """
    if not call.boot_id or call.boot_id != boot_id(proc_root):
        return []
    leader = _stat(call.pgid, proc_root)
    if leader is not None and leader[2] != call.start_ticks:
        return []  # the pid was reused: not ours
    members: list[int] = []
    try:
        entries = [int(name) for name in os.listdir(proc_root) if name.isdigit()]
    except OSError:
        return []
    for pid in entries:
        stat = _stat(pid, proc_root)
        if stat is None or stat[1] != call.pgid or stat[0] == "Z":
            continue
        if stat[2] < call.start_ticks:
            continue
        members.append(pid)
    return members


async def stop_leftover(call: CallProcess, *, grace: float = 5.0) -> list[int]:
    """Stop what is left of a recorded call's process group: SIGTERM, then SIGKILL after
    ``grace`` seconds; wait a bounded time for it to go.

    Args:
        call: The call as recorded when it started.
        grace: Seconds between SIGTERM and SIGKILL.

    Returns:
        The pids that were found running (empty: nothing of it was left, or the group is not
        the recorded one, and no signal was sent).
    """
    loop = asyncio.get_running_loop()
    found = await asyncio.to_thread(leftover_pids, call)
    if not found:
        return []
    left = found
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        if not _signal_group(call.pgid, sig):
            return found
        deadline = loop.time() + wait
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            left = await asyncio.to_thread(leftover_pids, call)
            if not left:
                return found
    log.error("process group %d still has %s after SIGKILL", call.pgid, left)
    return found
