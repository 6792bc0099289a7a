"""Attached UIs over real processes: ``pocketci-tui serve`` owns the data folder and runs a build
that keeps printing; real ``pocketci-tui`` processes attach to it over its control socket in
tmux, and a client in this process attaches over the same socket.

What a client received is compared with the run's log file line for line (the tail it was
filled from, then every live batch joined by position: no line missing, none twice at the
join), not only with what the screen shows. An action taken in one attached UI is seen by
another; a client killed mid-stream leaves the server serving the others and taking
deliveries; ``serve`` restarted under an attached UI is reconnected to, and what happened
meanwhile is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from attachkit import (
    TMUX,
    AttachedUI,
    OutputJoin,
    Tmux,
    join_problem,
    last_line_number,
    log_lines,
    push_body,
    stream_home,
    tmux_server,
)
from conftest import WEBHOOK_SECRET, ServeProcess
from enginekit import REPOSITORY, EngineKit
from ownerkit import cli, kill_calls
from signing import push_body as other_push_body
from signing import send_signed

from pocketci_tui.contract import ClientNotice
from pocketci_tui.control.client import SocketClient
from pocketci_tui.model import EventStored, Run, RunState, RunUpdated

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(TMUX is None, reason="needs tmux (installed by .ci/run)"),
]

TAIL = 200
"""Lines of output a client reads before joining the stream."""


@dataclass
class Owner:
    """``serve`` running on a home whose push runs a printing build."""

    home: Path
    kit: EngineKit
    serve: ServeProcess
    socket: Path

    async def push(self, title: str) -> None:
        """Deliver a signed push of a new commit titled ``title``; it must be accepted."""
        async with aiohttp.ClientSession() as session:
            reply = await send_signed(
                session, self.serve.hook_url, WEBHOOK_SECRET, push_body(self.kit, title)
            )
        assert reply.status == 202, reply.body

    def log(self, run: Run) -> list[str]:
        """The run's log file, one entry a line."""
        return log_lines(self.home / "data" / "logs" / run.log_path)


async def _owner(home: Path, tmp: Path, lines: int, pace: float) -> Owner:
    kit = stream_home(home, tmp / "kit", lines, pace)
    serve = await ServeProcess.start()
    located = await asyncio.to_thread(cli, "locate", "socket")
    assert located.returncode == 0, located.stderr
    return Owner(home, kit, serve, Path(located.stdout.strip()))


@contextlib.asynccontextmanager
async def _attached(path: Path) -> AsyncIterator[tuple[SocketClient, list[ClientNotice]]]:
    """A client of this process attached over the socket, and every notice it received."""
    client = SocketClient(path)
    received: list[ClientNotice] = []
    await client.start()
    unsubscribe = client.subscribe(received.append)
    try:
        yield client, received
    finally:
        unsubscribe()
        await client.stop()


async def _eventually(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _running_run(client: SocketClient, title: str) -> Run:
    """The run of the newest event titled ``title`` once it runs (read over the socket)."""
    async with asyncio.timeout(90):
        while True:
            for stored in await client.events_page(limit=20):
                if stored.event.title == title and stored.event.id is not None:
                    runs = await client.runs(stored.event.id)
                    if runs and runs[0].state is RunState.RUNNING:
                        return runs[0]
            await asyncio.sleep(0.2)


async def _lines_in_log(owner: Owner, run: Run, count: int) -> None:
    path = owner.home / "data" / "logs" / run.log_path
    await _eventually(
        lambda: path.exists() and len(log_lines(path)) >= count, f"{count} lines in the log"
    )


def _finished(received: list[ClientNotice], run_id: str) -> Run | None:
    for notice in reversed(received):
        if isinstance(notice, RunUpdated) and notice.run.id == run_id and notice.run.state.finished:
            return notice.run
    return None


def _functions(screen: str) -> str:
    """The Functions pane's rows (the left half of the screen below its title)."""
    rows = screen.splitlines()
    top = next((i for i, row in enumerate(rows) if "╭─ Functions" in row), len(rows))
    return "\n".join(row[:60] for row in rows[top + 1 :])


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    with tmux_server() as server:
        yield server


async def test_attached_clients_receive_the_log_file_line_for_line(
    hermetic_home: Path, tmp_path: Path, tmux: Tmux
) -> None:
    """A client attached over the socket and a real UI attached in tmux, both joining a build
    mid-stream, end up with exactly the log file's lines from where their tail began: the
    join of tail and stream neither loses nor repeats a line. The UI shows the same events
    and functions as the owner holds."""
    owner = await _owner(hermetic_home, tmp_path, lines=3000, pace=150.0)
    try:
        async with _attached(owner.socket) as (client, received):
            await owner.push("first build")
            run = await _running_run(client, "first build")
            await _lines_in_log(owner, run, 400)  # well into the stream
            joined = OutputJoin(run.id)
            client.subscribe(joined.on_notice)
            tail = await client.output_tail(run, TAIL)
            joined.from_tail(tail.lines, tail.end)

            ui = AttachedUI.start(tmux, owner.home, tmp_path / "ui", "attach")
            await ui.until(lambda s: last_line_number(s) > 0, "the UI to show the live output")
            await _eventually(lambda: _finished(received, run.id) is not None, "the run to end")
            done = _finished(received, run.id)
            assert done is not None
            assert done.state is RunState.PASSED
            screen = await ui.until(
                lambda s: last_line_number(s) == 3000 and "passed" in s,
                "the UI to show the end of the output",
            )
            log = owner.log(run)
            assert log[-1] == "line 3000"

            # The client in this process: its tail, then the stream, is the log's end.
            assert joined.gaps == []
            assert joined.unplaced == 0
            assert joined.lines is not None
            assert len(tail.lines) == TAIL
            assert joined.batches > 0, "nothing streamed after the tail"
            assert joined.start > 0
            assert join_problem(joined.lines, joined.start, log) == ""
            assert joined.start + len(joined.lines) == len(log)

            # The UI process: filled from a tail mid-stream, then joined to the end.
            [segment] = [s for s in ui.segments() if s.label.startswith("onGithubPushMain")]
            assert segment.start is not None  # the UI's tail (up to 10,000 lines) said its end
            assert segment.tail > 0, segment
            assert segment.joined > 0, segment
            assert join_problem(segment.lines, segment.start, log) == ""
            assert segment.start + len(segment.lines) == len(log)

            # Same events and functions as the owner has.
            events = await client.events_page(limit=20)
            assert [e.event.title for e in events] == ["first build"]
            assert REPOSITORY in screen
            assert "first build" in screen
            assert "onGithubPushMain" in screen
            assert "owner/repo" in screen
    finally:
        await owner.serve.terminate()


async def test_an_action_in_one_attached_ui_is_seen_by_another(
    hermetic_home: Path, tmp_path: Path, tmux: Tmux
) -> None:
    """Cancel, then fire, pressed in one attached UI: done by the owner (its ``dagger call``
    stops, a new one starts), seen by a client attached over the socket and on a second
    attached UI's screen."""
    owner = await _owner(hermetic_home, tmp_path, lines=100_000, pace=20.0)
    try:
        async with _attached(owner.socket) as (client, received):
            await owner.push("long build")
            run = await _running_run(client, "long build")
            first = AttachedUI.start(tmux, owner.home, tmp_path / "ui1", "attach")
            second = AttachedUI.start(tmux, owner.home, tmp_path / "ui2", "attach")
            for ui in (first, second):
                await ui.until(lambda s: last_line_number(s) > 0, "the UIs to show the build")

            first.press("c")  # the Events pane has the focus: cancel the event's runs
            await _eventually(lambda: _finished(received, run.id) is not None, "the cancel")
            done = _finished(received, run.id)
            assert done is not None
            assert done.state is RunState.CANCELLED
            await second.until(
                lambda s: "cancelled" in _functions(s) and "0 running" in s.partition("\n")[0],
                "the other UI to show the cancel",
            )
            [call] = owner.kit.calls()
            assert call["event_trigger"]["run_id"] == run.id

            first.press("r")  # the Events pane has the focus: fire the event again
            await _eventually(
                lambda: any(
                    isinstance(n, RunUpdated)
                    and n.run.event_id == run.event_id
                    and n.run.id != run.id
                    and n.run.state is RunState.RUNNING
                    for n in received
                ),
                "the fired run to be seen running",
            )
            await _eventually(lambda: len(owner.kit.calls()) == 2, "a second dagger call")
            runs = await client.runs(run.event_id)
            assert {r.state for r in runs} == {RunState.CANCELLED, RunState.RUNNING}
            await second.until(
                lambda s: "running" in _functions(s) and "1 running" in s.partition("\n")[0],
                "the other UI to show the fired run",
            )
    finally:
        await owner.serve.terminate()


async def test_a_client_killed_mid_stream_leaves_the_others_served(
    hermetic_home: Path, tmp_path: Path, tmux: Tmux
) -> None:
    """An attached UI killed (SIGKILL) while a build streams: the owner notices it went, keeps
    streaming to the client still attached (its output joins without a gap) and keeps taking
    deliveries, whose events that client is told of."""
    owner = await _owner(hermetic_home, tmp_path, lines=2400, pace=120.0)
    try:
        async with _attached(owner.socket) as (client, received):
            await owner.push("streaming")
            run = await _running_run(client, "streaming")
            joined = OutputJoin(run.id)
            client.subscribe(joined.on_notice)
            tail = await client.output_tail(run, TAIL)
            joined.from_tail(tail.lines, tail.end)
            ui = AttachedUI.start(tmux, owner.home, tmp_path / "ui", "attach")
            await ui.until(lambda s: last_line_number(s) > 0, "the UI to show the build")
            pid = ui.pid
            attached = [line for line in owner.serve.lines if f"attached: pid {pid}" in line]
            assert attached, "\n".join(owner.serve.lines)

            os.kill(pid, signal.SIGKILL)
            await _eventually(
                lambda: any(f"detached: pid {pid}" in line for line in owner.serve.lines),
                "serve to log the detach",
            )
            before = joined.end
            await _eventually(lambda: joined.end > before + 100, "more output after the kill")

            async with aiohttp.ClientSession() as session:
                reply = await send_signed(
                    session,
                    owner.serve.hook_url,
                    WEBHOOK_SECRET,
                    other_push_body(repository="someone/else", n=1),
                )
            assert reply.status == 200  # stored and ignored: not a configured repository
            await _eventually(
                lambda: any(
                    isinstance(n, EventStored) and n.stored.event.repository == "someone/else"
                    for n in received
                ),
                "the client to be told of the new event",
            )
            await _eventually(lambda: _finished(received, run.id) is not None, "the run to end")
            log = owner.log(run)
            assert joined.gaps == []
            assert join_problem(joined.lines or [], joined.start, log) == ""
            assert joined.start + len(joined.lines or []) == len(log)
            assert owner.serve.proc.returncode is None
    finally:
        assert await owner.serve.terminate() == 0


async def test_serve_restarted_under_an_attached_ui_is_reconnected_to(
    hermetic_home: Path, tmp_path: Path, tmux: Tmux
) -> None:
    """``pocketci-tui`` started while ``serve`` owns the data folder attaches to it by itself.
    ``serve`` is stopped under it while a build runs, and started again: the UI stays up, says
    the owner went, reconnects when it is back and catches up: the build was interrupted while
    it was away (after the socket closed), and events keep coming."""
    owner = await _owner(hermetic_home, tmp_path, lines=100_000, pace=20.0)
    try:
        await owner.push("before the restart")
        ui = AttachedUI.start(tmux, owner.home, tmp_path / "ui")  # no subcommand: finds serve
        await ui.until(
            lambda s: "before the restart" in s and "running" in _functions(s),
            "the first event's build running",
        )
        first_url = owner.serve.url
        assert await owner.serve.terminate() == 0
        gone = f"serve (pid {owner.serve.proc.pid}) gone"
        await ui.until(lambda s: gone in s.partition("\n")[0], "the UI to say the owner went")
        assert "interrupted" not in _functions(ui.screen)  # the owner closed the socket first

        owner.serve = await ServeProcess.start()
        assert owner.serve.url != first_url  # a new listener port: the status bar must follow
        await ui.until(
            lambda s: "interrupted" in _functions(s) and owner.serve.url in s.partition("\n")[0],
            "the UI to reconnect and show what happened while it was away",
        )
        await owner.push("after the restart")
        screen = await ui.until(
            lambda s: "after the restart" in s, "the UI to show an event of the new serve"
        )
        assert "before the restart" in screen
        assert not ui.tmux.dead(ui.session)
    finally:
        await owner.serve.terminate()
        kill_calls(owner.kit)
