"""The log pager: ``$PAGER`` on the terminal while the app is suspended and keeps running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from pathlib import Path
from typing import Any

from textual.app import App

TERMINATE_WAIT = 5.0
"""Seconds a cancelled pager has to exit before it is killed."""


def pager_argv(path: Path) -> list[str]:
    """The pager to run on ``path``: ``$PAGER`` (split like a shell would), else ``less``."""
    pager = os.environ.get("PAGER", "").strip() or "less"
    return [*shlex.split(pager), str(path)]


async def page(app: App[Any], argv: list[str]) -> None:
    """Run the pager on the terminal while the loop goes on (the listener keeps answering).

    Textual stops its terminal writer while suspended, but the app keeps refreshing, and
    every frame would queue into the stopped writer's bounded queue until one blocks the
    event loop for good (intake, the engine and output all stop). So the whole suspension
    is one batch update: no frame is drawn until the terminal is back, then one full
    repaint. The pager's failure (or a cancellation) is caught inside the suspension, so
    the terminal is always given back before it is reported.

    Args:
        app: The app that gives the terminal up meanwhile.
        argv: The pager and the file to show.
    """
    failure: BaseException | None = None
    with app.batch_update():
        try:
            with app.suspend():
                try:
                    await run_pager(argv)
                except BaseException as exc:  # given back first, reported below
                    failure = exc
        except Exception as exc:  # cannot suspend here (no terminal, or not supported)
            failure = exc
    app.refresh(repaint=True, layout=True)
    if failure is None:
        return
    if isinstance(failure, FileNotFoundError):
        app.notify(f"Pager not found: {argv[0]}", severity="error", markup=False)
    elif isinstance(failure, Exception):
        app.notify(f"Cannot open the pager: {failure}", severity="error", markup=False)
    else:
        raise failure


async def run_pager(argv: list[str]) -> None:
    """Run ``argv`` on the terminal and wait for it; cancelled, stop it first.

    Args:
        argv: The pager and the file to show.
    """
    proc = await asyncio.create_subprocess_exec(*argv)
    try:
        await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), TERMINATE_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
