"""Run one matched Dagger function as a ``dagger call`` subprocess (SPEC 4.7).

The runner turns a :class:`CallRequest` into an argv list, a minimal environment and an event
trigger file (:mod:`~pocketci_tui.engine.dagger.call_spec`), starts ``dagger call`` in a neutral
working directory, and streams its output: stdout and stderr merged in the order they were
written, ANSI sequences stripped, secrets masked, appended to the run's log file and handed to a
live callback in batches (:mod:`~pocketci_tui.engine.dagger.call_output`). This module is the
process side: starting the child, waiting for it and its output, and stopping its tree.

* A timeout stops the whole process tree and returns a FAILED outcome. A cancel (the task
  running :meth:`Runner.run` is cancelled) stops the tree, flushes the log, removes the
  temporary files and then re-raises ``CancelledError``: the caller records CANCELLED.
* A child that exits while something it started still holds the pipe open is waited for a
  second; then its process group is stopped. Leftovers of its group are swept after it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from pocketci_tui.engine.dagger.call_output import CallOutput, open_log
from pocketci_tui.engine.dagger.call_spec import (
    ENV_ALLOW,
    ENV_ALLOW_PREFIXES,
    SECRET_ENV_PREFIX,
    CallRequest,
    DaggerEnv,
    build_argv,
    build_env,
    event_trigger,
    join_list,
    prepare_call_dir,
    secret_env_var,
)
from pocketci_tui.engine.masking import Masker
from pocketci_tui.engine.proc import (
    close_pipes,
    drain,
    group_alive,
    kill_tree,
    read_lines,
    spawn,
)
from pocketci_tui.model import RunState, utcnow

__all__ = [
    "ENV_ALLOW",
    "ENV_ALLOW_PREFIXES",
    "SECRET_ENV_PREFIX",
    "CallOutcome",
    "CallRequest",
    "DaggerEnv",
    "Runner",
    "join_list",
    "secret_env_var",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class CallOutcome:
    """How a call ended (a cancelled call raises instead).

    Attributes:
        state: PASSED or FAILED.
        exit_code: The process's exit code (negative: killed by that signal); None when it
            never started or was stopped for its timeout.
        reason: Empty when passed; otherwise why, with the last lines of output.
        started_at: When the call was prepared.
        finished_at: When it ended.
        argv: The command line, which never contains a secret value.
    """

    state: RunState
    exit_code: int | None
    reason: str
    started_at: datetime
    finished_at: datetime
    argv: tuple[str, ...]


def _format_seconds(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


async def _finish_shielded(aw: Awaitable[_T]) -> _T:
    """Await ``aw`` to the end even if the awaiting task is cancelled again meanwhile."""
    task = asyncio.ensure_future(aw)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            continue


class Runner:
    """Runs ``dagger call`` for matched functions.

    Args:
        dagger: The CLI and engine settings.
        work_dir: Where per-call temporary directories (event file, working directory) go.
        timeout: Seconds a call may take before its process tree is stopped.
        extra_mask: More values to mask in the output (all of the event's secrets, say).
        base_env: The environment to start from instead of the allow-listed part of
            ``os.environ`` (credential-looking names are still dropped).
        kill_grace: Seconds between SIGTERM and SIGKILL when stopping a call.
    """

    def __init__(
        self,
        dagger: DaggerEnv,
        *,
        work_dir: Path,
        timeout: float,
        extra_mask: Iterable[str] = (),
        base_env: Mapping[str, str] | None = None,
        kill_grace: float = 5.0,
    ) -> None:
        self.dagger = dagger
        self.work_dir = Path(work_dir)
        self.timeout = timeout
        self.extra_mask = tuple(extra_mask)
        self.base_env = dict(base_env) if base_env is not None else None
        self.kill_grace = kill_grace

    # -- what the child gets ------------------------------------------------------------------

    @property
    def cli(self) -> str:
        """The CLI to run."""
        return self.dagger.cli or "dagger"

    def build_argv(self, req: CallRequest, event_file: Path) -> list[str]:
        """Return the ``dagger call`` command line for ``req``.

        Args:
            req: The call.
            event_file: The event trigger file.

        Returns:
            The argv list; it holds no secret value.
        """
        return build_argv(self.cli, req, event_file)

    def build_env(self, req: CallRequest, event_file: Path) -> dict[str, str]:
        """Return the complete environment of the child: :func:`.call_spec.build_env` with
        this runner's Dagger settings and base environment."""
        return build_env(self.dagger, self.base_env, req, event_file)

    def event_trigger(self, req: CallRequest) -> dict[str, object]:
        """Return the content of the event trigger file (SPEC 4.7).

        ``changes`` is null when the changed files could not be computed; ``payload`` is the
        raw payload decoded (null if it is not JSON).
        """
        return event_trigger(req)

    # -- running ------------------------------------------------------------------------------

    def _spawn_failure(self, exc: BaseException, req: CallRequest) -> str:
        cli = self.cli
        if isinstance(exc, FileNotFoundError):
            return (
                f"dagger CLI not found: {cli!r}. Install dagger on PATH or set dagger.cli in "
                "config.yaml to the path of the dagger binary."
            )
        if isinstance(exc, PermissionError):
            return (
                f"dagger CLI is not executable: {cli!r}. Check dagger.cli in config.yaml "
                "(it must name the dagger binary)."
            )
        if isinstance(exc, OSError) and exc.errno == errno.E2BIG:
            count = len(req.changes or ())
            return (
                f"could not start {cli!r}: the argument list is too long ({count} changed "
                "files for --on-changes); the full list is in the event trigger file"
            )
        return f"could not start the dagger CLI {cli!r}: {exc}"

    async def run(
        self,
        req: CallRequest,
        on_lines: Callable[[str, list[str], list[float]], None],
        on_started: Callable[[str, int], None] | None = None,
    ) -> CallOutcome:
        """Run the call to its end and return how it went.

        Args:
            req: The call.
            on_lines: Receives ``(run_id, lines, times)`` batches of masked, ANSI-free output
                lines and the moment each arrived (seconds since the epoch, as the log file
                stamps them), at most every ~50 ms or whenever 500 lines are pending. Runs on
                the event loop.
            on_started: Receives ``(run_id, pid)`` once the process is running.

        Returns:
            PASSED for exit code 0; FAILED for any other exit code, a timeout, or a CLI that
            cannot be started (with the reason, never an exception).

        Raises:
            asyncio.CancelledError: When the task is cancelled; the process tree is stopped, the
                log flushed and the temporary files removed first.
        """
        started_at = utcnow()
        preparing = asyncio.ensure_future(asyncio.to_thread(prepare_call_dir, self.work_dir, req))
        try:
            tmp, event_file, cwd = await asyncio.shield(preparing)
        except asyncio.CancelledError:
            # The thread finishes anyway: remove what it created before giving up.
            with contextlib.suppress(Exception):
                created = (await _finish_shielded(preparing))[0]
                shutil.rmtree(created, ignore_errors=True)
            raise
        except OSError as exc:
            return CallOutcome(
                RunState.FAILED,
                None,
                f"could not prepare the call: {exc}",
                started_at,
                utcnow(),
                (),
            )
        try:
            argv = self.build_argv(req, event_file)
            env = self.build_env(req, event_file)
            return await self._run_process(req, argv, env, cwd, on_lines, on_started, started_at)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def _run_process(
        self,
        req: CallRequest,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        on_lines: Callable[[str, list[str], list[float]], None],
        on_started: Callable[[str, int], None] | None,
        started_at: datetime,
    ) -> CallOutcome:
        def outcome(state: RunState, code: int | None, reason: str) -> CallOutcome:
            return CallOutcome(state, code, reason, started_at, utcnow(), tuple(argv))

        try:
            log_file = open_log(Path(req.log_path))
        except OSError as exc:
            return outcome(RunState.FAILED, None, f"cannot write the log file: {exc}")
        masker = Masker([*req.secrets.values(), self.dagger.cloud_token or "", *self.extra_mask])
        out = CallOutput(req.run_id, on_lines, log_file, masker)
        try:
            spawning = asyncio.ensure_future(spawn(argv, env=env, cwd=cwd))
            try:
                proc = await asyncio.shield(spawning)
            except asyncio.CancelledError:
                # The process may have started meanwhile: stop it before giving up.
                with contextlib.suppress(Exception):
                    started = await _finish_shielded(spawning)
                    await _finish_shielded(kill_tree(started, grace=self.kill_grace))
                raise
            except (OSError, ValueError) as exc:
                return outcome(RunState.FAILED, None, self._spawn_failure(exc, req))

            assert proc.stdout is not None
            reader = asyncio.create_task(read_lines(proc.stdout, out.add))
            ticker = asyncio.create_task(out.tick())
            try:
                if on_started is not None:
                    on_started(req.run_id, proc.pid)
                async with asyncio.timeout(self.timeout):
                    code = await self._wait(proc, reader)
            except TimeoutError:
                await _finish_shielded(self._stop(proc, reader))
                reason = f"timed out after {_format_seconds(self.timeout)}"
                tail = out.reason_tail()
                return outcome(RunState.FAILED, None, f"{reason}: {tail}" if tail else reason)
            except BaseException:
                await _finish_shielded(self._stop(proc, reader))
                raise
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
        finally:
            out.close()

        if code == 0:
            return outcome(RunState.PASSED, 0, "")
        if code < 0:
            try:
                head = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                head = f"killed by signal {-code}"
        else:
            head = f"exit code {code}"
        tail = out.reason_tail()
        return outcome(RunState.FAILED, code, f"{head}: {tail}" if tail else head)

    async def _wait(self, proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> int:
        """Wait for the output to end and the process to exit; sweep leftovers of its group."""
        while True:
            done, _ = await asyncio.wait({reader}, timeout=0.1)
            if done:
                reader.result()
                break
            if proc.returncode is not None:
                # The process exited but something it started still holds the pipe open.
                if not (await asyncio.wait({reader}, timeout=1.0))[0]:
                    await kill_tree(proc, grace=self.kill_grace)
                    if not await drain(reader, 1.0):
                        close_pipes(proc)
                break
        if proc.returncode is None:
            await proc.wait()
        if group_alive(proc.pid):
            await kill_tree(proc, grace=self.kill_grace)
        code = proc.returncode
        assert code is not None
        return code

    async def _stop(self, proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
        """Stop the process tree and collect what it printed until then."""
        await kill_tree(proc, grace=self.kill_grace)
        try:
            if not await drain(reader, 2.0):
                close_pipes(proc)
        except Exception:
            log.exception("reading the output of pid %d failed", proc.pid)
