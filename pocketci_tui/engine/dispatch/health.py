"""Whether an engine of the pool can be reached, and bringing a down engine back.

The ``dagger`` CLI does not fail fast when its engine cannot be reached: it tries again every
second for ten minutes (:mod:`~pocketci_tui.engine.dagger.connect_phase` says what it prints).
So each call on a pool engine is watched while its CLI connects (:class:`CallGuard`): when
its attempts fail and the engine is confirmed unreachable (a ``tcp://`` or ``unix://`` engine
refuses a connection of ours; any other engine, after a few failed attempts of the CLI), the
call is stopped before anything ran, the engine is marked down, and the run goes back in line
for an engine. A call that ends while still connecting is treated the same way. A call that
got past connecting and failed is a failed build. A down engine is probed with a growing pause
until it answers (a connection, or ``dagger core version`` through the CLI for engines only the
CLI can reach), then marked up. The same rules hold for the pool of one that a single
``runner-host`` (or none: the engine the CLI starts on this machine) stands for: its calls that
never reached the engine wait in line until it answers, since a call failed for an engine that
was down would be a build lost, not one that failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from pocketci_tui.config import EngineSettings
from pocketci_tui.engine.dagger.connect_phase import ConnectWatch
from pocketci_tui.engine.dagger.engine_probe import FAILED_ATTEMPTS, cli_probe
from pocketci_tui.engine.dispatch.engines import EnginePool
from pocketci_tui.engine.dispatch.live import LiveState
from pocketci_tui.engine.dispatch.notices import Spawn
from pocketci_tui.problems import Problem

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 60.0


def probeable(engine: EngineSettings) -> bool:
    """Whether pocketci-tui can tell with a plain connection if ``engine`` answers."""
    return engine.runner_host.startswith(("tcp://", "unix://"))


async def probe(engine: EngineSettings) -> str:
    """Connect to ``engine``; return why it cannot be reached, or empty when it answers."""
    parts = urlsplit(engine.runner_host)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            if parts.scheme == "unix":
                _, writer = await asyncio.open_unix_connection(parts.path)
            else:
                _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    except TimeoutError:
        return f"{engine.runner_host} did not answer within {PROBE_TIMEOUT:g}s"
    except OSError as exc:
        # asyncio words a refusal "Connect call failed (...)": say it the way the CLI does.
        return f"{engine.runner_host}: {os.strerror(exc.errno).lower() if exc.errno else exc}"
    except ValueError as exc:
        return f"{engine.runner_host}: {exc}"
    writer.close()
    # It answered; closing is bounded too, so that a probe never holds up the waiting calls.
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(PROBE_TIMEOUT):
            await writer.wait_closed()
    return ""


async def probe_any(engine: EngineSettings, cli: str) -> str:
    """Probe ``engine`` the cheapest way it can be: a connection, else the CLI."""
    if probeable(engine):
        return await probe(engine)
    return await cli_probe(cli, engine.runner_host)


def _cli_reason(engine: EngineSettings, watch: ConnectWatch) -> str:
    where = engine.runner_host or "the engine on this machine"
    return f"{where}: {watch.last_error or 'the dagger CLI could not connect'}"


def waiting_calls(engines: int) -> str:
    """What becomes of a down engine's calls in a pool of ``engines``."""
    if engines > 1:
        return "its calls go to the other engines"
    return "builds wait in line until it answers (none is counted as failed meanwhile)"


def problem_key(name: str) -> str:
    """The problem key of an engine that is down."""
    return f"engine:{name}"


class EngineHealth:
    """Marks engines down and probes them back up.

    Args:
        pool: The pool whose engines it marks.
        live: Where the problems go.
        spawn: Runs the probing in the background.
        cli: Gives the ``dagger`` CLI that probes engines only it can reach.
    """

    def __init__(
        self,
        pool: EnginePool,
        live: LiveState,
        spawn: Spawn,
        *,
        cli: Callable[[], str] = lambda: "dagger",
    ) -> None:
        self._pool = pool
        self._live = live
        self._spawn = spawn
        self._cli = cli
        self._probing: set[str] = set()

    def guard(self, engine: EngineSettings, stop: Callable[[], None]) -> CallGuard:
        """A watch over one call on ``engine`` that calls ``stop`` when the engine turns out
        unreachable while the call connects.

        The engine the CLI starts on this machine, alone (no ``runner-host``, no pool), is
        left to the CLI while it connects: the CLI itself starts it, and its first attempts
        may fail while it boots, which is no reason to stop the call. A call that ends while
        still connecting is told apart all the same (:meth:`check_failure`).
        """
        patient = not engine.runner_host and len(self._pool.loads()) == 1
        return CallGuard(self, engine, stop, patient=patient)

    async def confirm(self, engine: EngineSettings, watch: ConnectWatch) -> tuple[str, bool]:
        """While a call's CLI fails to connect: why its engine cannot be reached (empty when
        that is not established yet), and whether only the CLI can tell it answers again."""
        if probeable(engine):
            why = await probe(engine)
            if why:
                return why, False
        if watch.failures >= FAILED_ATTEMPTS:
            return _cli_reason(engine, watch), True
        return "", False

    async def until_one_up(self, waiting: Callable[[str], None]) -> EngineSettings:
        """Return the engine a catalog session is to use (the first not marked down), once
        there is one; ``waiting`` is told why each time it waits for one.

        A ``tcp://`` or ``unix://`` engine is probed first (one connection): one that went
        away while idle is found down now, rather than by a session whose CLI keeps trying it
        for ten minutes. Others are left to the session.
        """
        while True:
            loads = self._pool.loads()
            up = next((e.settings for e in loads if not e.down), None)
            if up is None:
                down = loads[0]
                waiting(
                    f"waiting for engine {down.settings.name}, which cannot be reached: {down.down}"
                    if len(loads) == 1
                    else "waiting for an engine: none of the pool can be reached"
                )
                await self._pool.wait_up()
                continue
            why = await probe(up) if probeable(up) else ""
            if not why:
                return up
            self.mark_down(up, why)

    async def check_failure(self, engine: EngineSettings, watch: ConnectWatch) -> bool:
        """After a failed call: True when it never got past connecting to its engine (now
        marked down), so it never ran and goes back in line."""
        if not watch.unreachable:
            return False
        why = await probe(engine) if probeable(engine) else ""
        self.mark_down(engine, why or _cli_reason(engine, watch), by_cli=not why)
        return True

    def mark_down(self, engine: EngineSettings, why: str, *, by_cli: bool = False) -> None:
        """Give ``engine`` no calls, say so, and probe it until it answers (through the CLI
        when ``by_cli``, or when only the CLI can reach it)."""
        self._pool.mark_down(engine.name, why)
        self._live.raise_problem(
            Problem(
                key=problem_key(engine.name),
                short=f"engine {engine.name} down",
                detail=f"the Dagger engine {engine.name!r} cannot be reached ({why}); "
                + waiting_calls(len(self._pool.loads())),
                fix="start the engine or check the network; it is probed again until it answers",
            )
        )
        if engine.name not in self._probing:
            self._probing.add(engine.name)
            self._spawn(
                self._until_up(engine, by_cli or not probeable(engine)), f"probe-{engine.name}"
            )

    async def _until_up(self, engine: EngineSettings, by_cli: bool) -> None:
        pause = FIRST_PAUSE
        try:
            while True:
                await asyncio.sleep(pause)
                if by_cli:
                    why = await cli_probe(self._cli(), engine.runner_host)
                else:
                    why = await probe(engine)
                if not why:
                    break
                log.info("engine %s still down: %s", engine.name, why)
                pause = min(pause * 2, LONGEST_PAUSE)
        finally:
            self._probing.discard(engine.name)
        self._live.clear_problems(problem_key(engine.name))
        self._pool.mark_up(engine.name)


class CallGuard:
    """Watches one call's output while its CLI connects to a pool engine.

    Once the CLI's attempts fail, it asks :meth:`EngineHealth.confirm` (after the first
    failure for an engine a connection can probe, else after a few); a confirmed unreachable
    engine is marked down and the call stopped: it never ran. A ``patient`` guard only
    follows the output, and stops nothing.

    Attributes:
        watch: What the call's output says about connecting.
        stopped: The guard stopped the call because its engine cannot be reached.
    """

    def __init__(
        self,
        health: EngineHealth,
        engine: EngineSettings,
        stop: Callable[[], None],
        *,
        patient: bool = False,
    ) -> None:
        self._health = health
        self._engine = engine
        self._stop = stop
        self.watch = ConnectWatch()
        self.stopped = False
        self._next_check = 1 if probeable(engine) else FAILED_ATTEMPTS
        self._patient = patient
        self._checking: asyncio.Task[None] | None = None

    def feed(self, lines: list[str]) -> None:
        """Take the call's next output lines (on the event loop)."""
        watch = self.watch
        if not watch.connecting or self.stopped:
            return
        watch.feed(lines)
        if self._patient:
            return
        if watch.unreachable and watch.failures >= self._next_check and self._checking is None:
            self._next_check = watch.failures + 1
            self._checking = asyncio.create_task(self._check(), name="engine-confirm")

    async def _check(self) -> None:
        try:
            why, by_cli = await self._health.confirm(self._engine, self.watch)
        finally:
            self._checking = None
        if why and self.watch.connecting and not self.stopped:
            self.stopped = True
            self._health.mark_down(self._engine, why, by_cli=by_cli)
            self._stop()

    def close(self) -> None:
        """Forget a check still running (the call ended)."""
        if self._checking is not None:
            self._checking.cancel()
