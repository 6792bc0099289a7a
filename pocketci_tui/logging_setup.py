"""Headless logging: one timestamped line per notice, with untrusted text made inert.

Failures are logged at WARNING (a failed or interrupted run, an event that failed or could not
be dispatched), the rest at INFO. Under systemd, where stdout is a journal stream, each line
starts with its syslog priority (``<4>`` for warnings), which journald takes as the line's
priority: ``journalctl -p warning`` then shows the failures.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from typing import TYPE_CHECKING, TextIO

from pocketci_tui.model import (
    EventMatched,
    EventSettled,
    EventStatus,
    EventStored,
    EventUpdated,
    Notice,
    RunOutput,
    RunState,
    RunUpdated,
    latest_attempts,
)

if TYPE_CHECKING:
    from pocketci_tui.model import Run

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str, limit: int = 200) -> str:
    """Return ``text`` with control characters escaped (``\\x1b``), shortened to ``limit``.

    Payload text (branch names, titles) and run output may carry terminal escape sequences;
    escaped, they are shown as literal text and never drive the terminal.
    """

    if len(text) <= limit and _UNSAFE.search(text) is None:
        return text  # the common case: nothing to escape or cut
    out = _UNSAFE.sub(_escape, text)
    if len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def describe_notice(notice: Notice) -> str | None:
    """Return one log line for an engine notice, or None for output lines (see ``verbose``)."""
    if isinstance(notice, EventStored):
        e = notice.stored.event
        what = f"{e.event_type} {e.repository or '-'}"
        if e.filter:
            what += f" {e.filter}"
        if e.sha:
            what += f" {e.sha[:12]}"
        if notice.duplicate:
            return (
                f"event {e.id} redelivered ({notice.stored.redeliveries}x): "
                f"{safe_text(what)} delivery={safe_text(e.delivery_id, 80)}"
            )
        line = (
            f"event {e.id} stored: {safe_text(what)} delivery={safe_text(e.delivery_id, 80)} "
            f"status={notice.stored.status.value}"
        )
        if notice.stored.detail:
            line += f" ({safe_text(notice.stored.detail)})"
        return line
    if isinstance(notice, EventUpdated):
        line = f"event {notice.event_id} {notice.status.value}"
        return line + (f": {safe_text(notice.detail)}" if notice.detail else "")
    if isinstance(notice, EventMatched):
        calls = [d.function for d in notice.result.decisions if d.matched]
        if not calls:
            return f"event {notice.event_id} matched no function"
        return (
            f"event {notice.event_id} matched {len(calls)} function(s) in tier "
            f"{notice.result.tier}: {safe_text(', '.join(calls))}"
        )
    if isinstance(notice, EventSettled):
        parts = [_run_summary(r) for r in latest_attempts(notice.runs)]
        return f"event {notice.event_id} {notice.outcome}" + (
            f": {'; '.join(parts)}" if parts else ""
        )
    if isinstance(notice, RunUpdated):
        r = notice.run
        line = (
            f"run {r.id[:12]} {safe_text(r.function) or '-'} (event {r.event_id}, "
            f"attempt {r.attempt}): {r.state.value}"
        )
        if r.exit_code is not None:
            line += f" exit={r.exit_code}"
        if r.reason and r.state.finished:
            line += f" ({safe_text(r.reason.splitlines()[-1] if r.reason else '')})"
        return line
    return None


def _run_summary(run: Run) -> str:
    """``testOnGithubPush #2 failed exit=1 7.9s``: one function's latest attempt."""
    text = safe_text(run.function, 80) or "-"
    if run.attempt > 1:
        text += f" #{run.attempt}"
    text += f" {run.state.value}"
    if run.exit_code is not None:
        text += f" exit={run.exit_code}"
    if run.started_at is not None and run.finished_at is not None:
        text += f" {(run.finished_at - run.started_at).total_seconds():.1f}s"
    return text


WARNING_RUN_STATES = frozenset({RunState.FAILED, RunState.INTERRUPTED})
"""Run states logged at WARNING (a cancel is the user's own doing: INFO)."""


def notice_level(notice: Notice) -> int:
    """The log level of a notice: WARNING for what failed, INFO for the rest."""
    if isinstance(notice, RunUpdated) and notice.run.state in WARNING_RUN_STATES:
        return logging.WARNING
    if isinstance(notice, EventSettled) and notice.outcome in WARNING_RUN_STATES:
        return logging.WARNING
    if isinstance(notice, EventUpdated) and notice.status is EventStatus.ERROR:
        return logging.WARNING
    return logging.INFO


SYSLOG_PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
"""syslog priority of each logging level, as journald reads it from a ``<N>`` prefix."""


def journal_stream(stream: TextIO) -> bool:
    """True when ``stream`` is the journal stream systemd connected (``$JOURNAL_STREAM``).

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose stdout or stderr goes
    to the journal; the variable is inherited, so the stream's own identity is compared.
    """
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


def syslog_prefix(level: int) -> str:
    """The ``<N>`` prefix journald reads as a line's priority."""
    return f"<{SYSLOG_PRIORITIES.get(level, 6)}>"


class _Formatter(logging.Formatter):
    """The line format, with the syslog priority in front when writing to the journal."""

    def __init__(self, journal: bool) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return syslog_prefix(record.levelno) + line if self.journal else line


def output_lines(notice: RunOutput) -> list[str]:
    """Return the output lines of a run, each prefixed with the run id and made inert."""
    prefix = notice.run_id[:12]
    return [f"[{prefix}] {safe_text(line, 2000)}" for line in notice.lines]


QUIET_LOGGERS = ("aiohttp.access", "httpx", "httpcore", "gql", "dagger")
"""Libraries whose INFO lines (one per HTTP request to the Dagger engine...) are not for users:
only their warnings and errors reach the log."""


def configure(stream: TextIO | None = None, *, level: int = logging.INFO) -> None:
    """Send pocketci-tui's log records to ``stream`` (stdout), one timestamped line each."""
    target = stream or sys.stdout
    handler = logging.StreamHandler(target)
    handler.setFormatter(_Formatter(journal_stream(target)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class LineWriter:
    """Writes timestamped lines to a stream in batches, flushed every ``interval`` seconds.

    Headless mode prints one line per notice; at a thousand deliveries a second, writing and
    flushing each line through ``logging`` would cost more than storing the delivery. Lines keep
    their order and the format of the log records (``2026-01-02T03:04:05+0000 INFO    ...``).

    Args:
        stream: Where to write (stdout).
        interval: Seconds between flushes.
    """

    def __init__(self, stream: TextIO, interval: float = 0.05) -> None:
        self._stream = stream
        self._journal = journal_stream(stream)
        self._interval = interval
        self._pending: list[str] = []
        self._handle: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def _now(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
        return self._stamp

    def info(self, text: str) -> None:
        """Queue one INFO line."""
        self.log(logging.INFO, text)

    def log(self, level: int, text: str) -> None:
        """Queue one line at ``level`` (with its syslog priority when writing to the journal)."""
        prefix = syslog_prefix(level) if self._journal else ""
        self.raw(f"{prefix}{self._now()} {logging.getLevelName(level):<7} {text}")

    def raw(self, line: str) -> None:
        """Queue one line as is."""
        self._pending.append(line)
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._handle = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        """Write every queued line now."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._pending:
            lines, self._pending = self._pending, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
