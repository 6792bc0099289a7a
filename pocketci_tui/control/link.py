"""The attached client's link to the owner: attach, follow the notices stream, attach again.

:class:`Link` does for :class:`~pocketci_tui.control.client.SocketClient` what does not depend
on what the notices mean. Attaching is three steps: ``hello`` (who the owner is, and whether it
speaks this protocol version), the snapshot (its listener URL, settings, run counts, problems,
refusals, under a notice number taken before they were read), then the notices stream (a
websocket) after that number. One task reads the stream and hands each notice on in order,
noting its number, so that after a lost link it resumes right after the last one it handed on.
When the owner no longer holds that far back (or is a new process), it says so and the link
reads the snapshot again (a *resync*): the client then tells its subscribers to re-read what
they show.

A lost link (the owner stopped, the socket closed, no answer to heartbeats, or the owner cut a
client that did not keep up) is told at once as ``LinkChanged(up=False)``; the link then tries
again with a jittered backoff (0.2 s doubling up to 5 s) until it is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from pocketci_tui.config import Settings
from pocketci_tui.contract import (
    CountsChanged,
    LinkChanged,
    NotStarted,
    ProblemsChanged,
    RejectionSummary,
)
from pocketci_tui.datalock import MODES
from pocketci_tui.model import Run, StoredEvent

from . import wire
from .location import SocketLocationError, check_private_folder
from .transport import BASE, OwnerBusy, RemoteError, Transport, Unreachable

log = logging.getLogger("pocketci_tui.control.client")

PROTOCOL_VERSION = wire.PROTOCOL_VERSION
"""The protocol version this client speaks; an owner of another is refused."""

HEARTBEAT = 10.0
"""Seconds between the client's pings; an owner that misses a pong is taken as gone."""

BACKOFF = (0.2, 5.0)
"""The first and the longest wait (seconds) before trying to attach again."""

SNAPSHOT_EVENTS = 50
"""How many recent events a snapshot carries."""

MAX_MESSAGE = 64 * 1024 * 1024
"""The largest notice frame read (the owner runs as the same user: this bounds only a bug)."""

CLOSE_TIMEOUT = 2.0
"""Seconds the stream's closing handshake may take before the connection is dropped."""

FIRST_FRAME_GRACE = 0.3
"""Seconds a stream attached again is given for its first frame before the link is told up
(an owner that cannot resume says so at once)."""

TOO_SLOW = 4008
"""The close code of an owner that cut this client off for not reading its notices."""


class AttachError(Exception):
    """Attaching to the owner failed; the message says why and what to do."""


class VersionMismatch(AttachError):
    """The owner speaks another version of the control protocol."""


@dataclass(frozen=True, slots=True)
class Hello:
    """The owner's greeting (``GET /v1/hello``).

    Attributes:
        version: Its protocol version.
        instance: Its process's id for the notice numbers (new each start).
        seq: The number of its latest notice.
        pid: Its process id.
        mode: ``serve`` or ``ui``.
        data_dir: The data folder it owns.
        url: Its listener's base URL.
        started_at: When it started (ISO 8601).
        config_file: The configuration file it reads.
    """

    version: int
    instance: str
    seq: int
    pid: int
    mode: str
    data_dir: str = ""
    url: str = ""
    started_at: str = ""
    config_file: str = ""

    @property
    def owner(self) -> str:
        """Who it is, for the status bar: ``pocketci-tui serve (pid 123)``."""
        return f"{MODES.get(self.mode, 'pocketci-tui')} (pid {self.pid})"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the owner shows at one notice number (``GET /v1/snapshot``).

    Attributes:
        instance: The owner process's id for the notice numbers.
        seq: The number of the latest notice before the rest was read: the notices after it
            may repeat what the snapshot shows, never miss it.
        url: The owner's listener base URL.
        events: Its most recent events, newest first.
        runs: The runs of the event asked for (empty when none was).
        counts: Its run counts.
        problems: What it finds wrong.
        refusals: Its listener's refusals so far, or None.
        settings: The configuration it runs with.
    """

    instance: str
    seq: int
    url: str
    events: tuple[StoredEvent, ...]
    runs: tuple[Run, ...]
    counts: CountsChanged
    problems: ProblemsChanged
    refusals: RejectionSummary | None
    settings: Settings


def _hello_of(path: Path, data: Any) -> Hello:
    """Read a hello answer; refuse an owner of another protocol version, naming both."""
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise AttachError(f"{path} does not answer as a pocketci-tui control socket")
    if version != PROTOCOL_VERSION:
        raise VersionMismatch(
            f"the owner at {path} speaks control protocol version {version}, this pocketci-tui "
            f"speaks version {PROTOCOL_VERSION}: run the same pocketci-tui version for both "
            "(restart `pocketci-tui serve` after an upgrade)"
        )
    try:
        return wire.decode(Hello, data)
    except wire.WireError as exc:
        raise AttachError(
            f"the owner at {path} sent a greeting this client cannot read: {exc}"
        ) from exc


def decode_answer(tp: Any, data: Any) -> Any:
    """Decode an answer; one this client cannot read is the owner's failure.

    Raises:
        RemoteError: ``data`` does not have the shape of ``tp``.
    """
    try:
        return wire.decode(tp, data)
    except wire.WireError as exc:
        raise RemoteError(f"the owner's answer cannot be read: {exc}") from exc


def _why_closed(ws: aiohttp.ClientWebSocketResponse, owner: str) -> str:
    """Say why the notices stream ended, for ``LinkChanged.detail``."""
    if ws.close_code == TOO_SLOW:
        return f"{owner} cut this client off for reading its notices too slowly"
    error = ws.exception()
    if isinstance(error, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return f"{owner} stopped answering (no reply to heartbeats)"
    if isinstance(error, ConnectionError | aiohttp.ClientConnectionError):
        return f"{owner} went away (its connection closed)"
    if error is not None:
        return f"the link to {owner} broke: {error}"
    return f"{owner} went away"


def _is_resync(msg: aiohttp.WSMessage) -> bool:
    """True for the owner's word to re-read the snapshot."""
    if msg.type is not aiohttp.WSMsgType.TEXT or '"resync"' not in msg.data:
        return False
    try:
        data = json.loads(msg.data)
    except ValueError:
        return False
    return isinstance(data, dict) and bool(data.get("resync"))


class LinkEvents(Protocol):
    """What the link tells its client, in the order it happens."""

    def snapshot_read(self, snapshot: Snapshot) -> None:
        """A snapshot was read (at attach, or at a resync)."""
        ...

    def notice_read(self, notice: wire.WireNotice) -> None:
        """The next notice of the stream."""
        ...

    def link_changed(self, change: LinkChanged) -> None:
        """The link went down (or a try to attach again failed), or is up again."""
        ...


class Link:
    """One client's link to the owner over its control socket.

    Args:
        transport: The requests to the owner's socket.
        events: Told the snapshots, notices and changes of the link.
        heartbeat: Seconds between pings on the notices stream.
        backoff: The first and the longest wait before trying again to attach, in seconds
            (each wait is jittered down by up to a half).
        snapshot_events: How many recent events a snapshot carries.
    """

    def __init__(
        self,
        transport: Transport,
        events: LinkEvents,
        *,
        heartbeat: float = HEARTBEAT,
        backoff: tuple[float, float] = BACKOFF,
        snapshot_events: int = SNAPSHOT_EVENTS,
    ) -> None:
        self.transport = transport
        self.path = transport.path
        self.owner = f"the owner of {self.path}"
        """Who the owner is, from its greeting (``pocketci-tui serve (pid 123)``)."""
        self.hello: Hello | None = None
        self.up = False
        self.down = "not attached"
        """Why the link is down (and when the next try is)."""
        self.seq = 0
        """The number of the last notice handed on (or of the last snapshot)."""
        self._events = events
        self._heartbeat = heartbeat
        self._backoff = backoff
        self._snapshot_events = snapshot_events
        self._instance = ""
        self._need_snapshot = True
        self._unannounced = False
        """A snapshot was read that the client was not told to re-read by yet."""
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Attach for the first time, then follow the stream in a task of its own.

        Raises:
            VersionMismatch: The owner speaks another protocol version.
            AttachError: The owner cannot be reached or does not answer as one; the chain
                says why.
        """
        try:
            ws, _ = await self._connect()
        except AttachError:
            raise
        except Exception as exc:
            raise AttachError(f"cannot attach to the owner at {self.path}: {exc}") from exc
        self.up = True
        self._unannounced = False  # the first snapshot is what the client starts from
        self._task = asyncio.create_task(self._keep_linked(ws), name="pocketci-control-link")

    async def close(self) -> None:
        """Stop following the stream and trying to attach (idempotent)."""
        self.up = False
        self.down = "detached"
        self._need_snapshot = True  # attached again later, it starts from a snapshot
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def read_snapshot(self, limit: int) -> Snapshot:
        """Read the owner's snapshot without changing where the stream goes on from."""
        data = await self.transport.call("GET", "/v1/snapshot", params={"limit": str(limit)})
        snapshot: Snapshot = decode_answer(Snapshot, data)
        return snapshot

    async def _connect(self) -> tuple[aiohttp.ClientWebSocketResponse, bool]:
        """Greet the owner, read its snapshot when the stream cannot resume, open the stream.

        Returns:
            The open stream, and whether a snapshot was read since the link was last told up
            (by this try or an earlier one that failed after it).
        """
        try:
            # Only this user can have put a socket in a private folder of theirs: what answers
            # there is trusted with secrets and actions.
            check_private_folder(self.path.parent)
        except SocketLocationError as exc:
            raise AttachError(str(exc)) from exc
        hello = _hello_of(self.path, await self.transport.call("GET", "/v1/hello"))
        self.hello = hello
        self.owner = hello.owner
        if self._need_snapshot or hello.instance != self._instance:
            await self._load_snapshot()
        params = {"after": str(self.seq), "instance": self._instance}
        try:
            async with asyncio.timeout(self.transport.timeout):
                ws = await self.transport.session.ws_connect(
                    BASE + "/v1/notices",
                    params=params,
                    heartbeat=self._heartbeat,
                    max_msg_size=MAX_MESSAGE,
                    # Closing never waits long for an owner that stopped answering.
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
                )
        except TimeoutError:
            raise TimeoutError(f"{self.owner} did not open its notices stream in time") from None
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status != 503:
                raise NotStarted(f"cannot open the notices stream of {self.owner}: {exc}") from exc
            raise OwnerBusy(
                f"{self.owner} is busy: too many clients follow its notices already; "
                "detach one and try again"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NotStarted(f"cannot open the notices stream of {self.owner}: {exc}") from exc
        return ws, self._unannounced

    async def _load_snapshot(self) -> None:
        """Read the snapshot: what the owner shows, and the notice number to go on from."""
        self._need_snapshot = True
        snapshot = await self.read_snapshot(self._snapshot_events)
        self._instance = snapshot.instance
        self.seq = snapshot.seq
        self._need_snapshot = False
        self._unannounced = True
        self._events.snapshot_read(snapshot)

    async def _keep_linked(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read the stream; when the link is lost, say so and attach again, until closed."""
        again: bool | None = None
        while True:
            why = await self._read_stream(ws, again)
            self.up = False
            self.down = why
            log.warning("lost the link to %s: %s", self.owner, why)
            self._events.link_changed(LinkChanged(up=False, owner=self.owner, detail=why))
            ws, again = await self._reconnect()
            self.up = True
            log.info("attached again to %s%s", self.owner, " (resynced)" if again else "")

    async def _reconnect(self) -> tuple[aiohttp.ClientWebSocketResponse, bool]:
        """Try to attach again, with a jittered backoff, until it works (or :meth:`close`)."""
        delay, longest = self._backoff
        while True:
            await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                await self.transport.reopen()  # pooled connections of a gone owner lead nowhere
                return await self._connect()
            except Exception as exc:
                delay = min(delay * 2, longest)
                why = (
                    f"{self.owner} is not there ({exc.reason})"
                    if isinstance(exc, Unreachable)
                    else exc
                )
                self.down = f"{why}; trying again in {delay:.1f} s"
                log.debug("attaching again to %s failed: %s", self.path, exc)
                self._events.link_changed(LinkChanged(up=False, owner=self.owner, detail=self.down))

    async def _first_frame(
        self, ws: aiohttp.ClientWebSocketResponse, resynced: bool
    ) -> aiohttp.WSMessage | None:
        """Read the first frame of a stream attached again, and tell that the link is up.

        An owner that cannot resume the stream says so in its very first frame: the link is
        then told up once, with ``resync`` (by :meth:`_resync`), rather than up and at once up
        again to be read anew. Returns the frame, or None when none came within
        :data:`FIRST_FRAME_GRACE` (an owner with nothing to tell).
        """
        msg: aiohttp.WSMessage | None = None
        with contextlib.suppress(TimeoutError):
            # One deadline for the frame (receive's own restarts at each heartbeat's pong).
            async with asyncio.timeout(FIRST_FRAME_GRACE):
                msg = await ws.receive()
        if msg is None or not _is_resync(msg):
            self._tell_up(resynced)
        return msg

    async def _read_stream(self, ws: aiohttp.ClientWebSocketResponse, again: bool | None) -> str:
        """Hand the stream's notices on until it ends; return why it ended.

        Args:
            ws: The stream.
            again: None for the first stream of the client; else whether the snapshot was read
                for it (the link being up is told with its first frame).
        """
        try:
            while True:
                if again is None:
                    msg = await ws.receive()
                else:
                    first, again = await self._first_frame(ws, again), None
                    if first is None:
                        continue
                    msg = first
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await self._on_frame(msg.data)
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
        except (NotStarted, TimeoutError, RemoteError) as exc:
            # The snapshot of a resync could not be read: the next attach reads it.
            return f"cannot read the snapshot of {self.owner}: {exc}"
        except Exception as exc:
            log.exception("following the notices of %s failed", self.owner)
            self._need_snapshot = True
            return f"following the notices of {self.owner} failed: {exc}"
        finally:
            await ws.close()
        return _why_closed(ws, self.owner)

    async def _on_frame(self, text: str) -> None:
        """One frame of the stream: a numbered notice, or the owner's word to resync."""
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("%s sent a notice frame that is not JSON; ignored", self.owner)
            return
        if not isinstance(data, dict):
            return
        seq = data.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            log.warning("%s sent a notice frame without a number; ignored", self.owner)
            return
        if data.get("resync"):
            await self._resync(seq)
            return
        if seq <= self.seq:
            return  # handed on already (a resumed stream never repeats; this guards a bug)
        if seq > self.seq + 1:
            log.warning(
                "notices %d to %d of %s are missing; reading its snapshot again",
                self.seq + 1,
                seq - 1,
                self.owner,
            )
            await self._resync(seq - 1)
        self.seq = seq
        try:
            notice = wire.decode_notice(data.get("notice"))
        except wire.WireError as exc:
            log.warning("a notice of %s cannot be read; skipped: %s", self.owner, exc)
            return
        self._events.notice_read(notice)

    async def _resync(self, seq: int) -> None:
        """Read the snapshot again and go on after notice ``seq``; say the client must
        re-read what it shows."""
        await self._load_snapshot()
        self.seq = seq
        self._tell_up(True)

    def _tell_up(self, resync: bool) -> None:
        """Tell the client the link is up (and whether to re-read what it shows)."""
        self._unannounced = False
        self._events.link_changed(LinkChanged(up=True, owner=self.owner, resync=resync))
