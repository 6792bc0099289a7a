"""Whether an engine of the pool can be reached, and bringing a down engine back.

A call whose ``dagger`` CLI could not reach its engine failed before anything ran. The
executor asks :func:`unreachable` whether a failed call looks like that; when the engine also
refuses a connection of ours, the engine is marked down in the pool, the run goes back in line
for another engine, and :class:`EngineHealth` probes the engine with a growing pause until it
answers, then marks it up again. Only ``tcp://`` and ``unix://`` engines are probed (the
others cannot be reached without the CLI), and only in a configured pool (``dagger.engines``):
a single engine's failure stays a failed build, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from urllib.parse import urlsplit

from pocketci_tui.config import EngineSettings
from pocketci_tui.engine.dispatch.engines import EnginePool
from pocketci_tui.engine.dispatch.live import LiveState
from pocketci_tui.engine.dispatch.notices import Spawn
from pocketci_tui.problems import Problem

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 60.0

_CONNECT_FAILURE = re.compile(
    r"failed to connect to engine|connection refused|no route to host|no such host|"
    r"i/o timeout|connect: network is unreachable",
    re.IGNORECASE,
)


def probeable(engine: EngineSettings) -> bool:
    """Whether pocketci-tui can tell on its own if ``engine`` answers."""
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
    except (OSError, ValueError) as exc:
        return f"{engine.runner_host}: {getattr(exc, 'strerror', None) or exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ""


def looks_unreachable(reason: str) -> bool:
    """Whether a failed call's reason reads like the CLI never reached its engine."""
    return bool(_CONNECT_FAILURE.search(reason))


def problem_key(name: str) -> str:
    """The problem key of an engine that is down."""
    return f"engine:{name}"


class EngineHealth:
    """Marks engines down and probes them back up.

    Args:
        pool: The pool whose engines it marks.
        live: Where the problems go.
        spawn: Runs the probing in the background.
        enabled: False for a pool of one from ``runner-host`` (its failures stay failures).
    """

    def __init__(self, pool: EnginePool, live: LiveState, spawn: Spawn, *, enabled: bool) -> None:
        self._pool = pool
        self._live = live
        self._spawn = spawn
        self._enabled = enabled
        self._probing: set[str] = set()

    async def check_failure(self, engine: EngineSettings, reason: str) -> bool:
        """After a failed call: True when its engine is unreachable (now marked down), so the
        call never ran and goes to another engine."""
        if not (self._enabled and probeable(engine) and looks_unreachable(reason)):
            return False
        why = await probe(engine)
        if not why:
            return False
        self.mark_down(engine, why)
        return True

    def mark_down(self, engine: EngineSettings, why: str) -> None:
        """Give ``engine`` no calls, say so, and probe it until it answers."""
        self._pool.mark_down(engine.name, why)
        self._live.raise_problem(
            Problem(
                key=problem_key(engine.name),
                short=f"engine {engine.name} down",
                detail=f"the Dagger engine {engine.name!r} cannot be reached ({why}); "
                "its calls go to the other engines",
                fix="start the engine or check the network; it is probed again until it answers",
            )
        )
        if engine.name not in self._probing:
            self._probing.add(engine.name)
            self._spawn(self._until_up(engine), f"probe-{engine.name}")

    async def _until_up(self, engine: EngineSettings) -> None:
        pause = FIRST_PAUSE
        try:
            while True:
                await asyncio.sleep(pause)
                why = await probe(engine)
                if not why:
                    break
                log.info("engine %s still down: %s", engine.name, why)
                pause = min(pause * 2, LONGEST_PAUSE)
        finally:
            self._probing.discard(engine.name)
        self._live.clear_problems(problem_key(engine.name))
        self._pool.mark_up(engine.name)
