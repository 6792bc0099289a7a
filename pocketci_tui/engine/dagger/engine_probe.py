"""Asking the ``dagger`` CLI itself whether it can reach an engine.

A ``tcp://`` or ``unix://`` engine can be probed with a plain connection; a ``kube-pod://``,
``docker-container://``, ``podman-container://``, ``ssh://`` or other engine is reached
through a helper only the CLI knows (``kubectl exec``, ``docker exec``, ``ssh``...). So such
an engine is probed with ``dagger core version``: the cheapest command that connects to the
engine (the CLI's ``core`` command loads no module) and prints the engine's version. Since the
CLI keeps trying an unreachable engine for ten minutes, the probe stops it after a few failed
attempts (:mod:`~pocketci_tui.engine.dagger.connect_phase`) or after :data:`PROBE_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from pathlib import Path

from pocketci_tui.engine.dagger.call_spec import probe_env
from pocketci_tui.engine.dagger.connect_phase import ConnectWatch
from pocketci_tui.engine.proc import close_pipes, drain, kill_tree, read_lines, spawn

PROBE_TIMEOUT = 30.0
"""Seconds a probe may take (the CLI answers in about a second when the engine is up)."""

FAILED_ATTEMPTS = 3
"""Failed connection attempts (one a second) that make an engine unreachable."""


async def cli_probe(
    cli: str,
    runner_host: str,
    *,
    within: float = PROBE_TIMEOUT,
    attempts: int = FAILED_ATTEMPTS,
) -> str:
    """Run ``dagger core version`` against ``runner_host``; return why the engine cannot be
    reached, or empty when it answered."""
    where = runner_host or "the engine on this machine"
    argv = [cli, "--progress=plain", "core", "version"]
    try:
        proc = await spawn(argv, env=probe_env(runner_host), cwd=Path("/"))
    except (OSError, ValueError) as exc:
        return f"{where}: cannot run {cli!r}: {exc}"
    watch = ConnectWatch()
    tail: deque[str] = deque(maxlen=3)
    enough = asyncio.Event()

    def on_lines(lines: list[str]) -> None:
        watch.feed(lines)
        tail.extend(line.strip() for line in lines if line.strip())
        if watch.connecting and watch.failures >= attempts:
            enough.set()

    assert proc.stdout is not None
    reader = asyncio.create_task(read_lines(proc.stdout, on_lines))
    waiting = asyncio.create_task(enough.wait())
    try:
        async with asyncio.timeout(within):
            await asyncio.wait({reader, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if not enough.is_set():
                await proc.wait()
    except TimeoutError:
        return f"{where}: dagger core version did not answer within {within:g}s"
    finally:
        waiting.cancel()
        if proc.returncode is None:
            await kill_tree(proc, grace=1.0)
        if not await drain(reader, 1.0):
            close_pipes(proc)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
    if watch.unreachable:
        return f"{where}: {watch.last_error}"
    if proc.returncode != 0:
        last = " / ".join(tail)
        return f"{where}: dagger core version exited with {proc.returncode}: {last}"
    return ""
