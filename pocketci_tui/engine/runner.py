"""Run one matched Dagger function as a ``dagger call`` subprocess (SPEC 4.7).

The runner turns a :class:`CallRequest` into an argv list, a minimal environment and an event
trigger file, starts ``dagger call`` in a neutral working directory, and streams its output:
stdout and stderr merged in the order they were written, ANSI sequences stripped, secrets
masked, appended to the run's log file and handed to a live callback in batches.

Decisions worth knowing:

* Secret values reach the child only through its environment, as ``POCKETCI_SECRET_<ARG>``
  variables named by ``--<arg> env://POCKETCI_SECRET_<ARG>`` references. argv never holds a
  secret value (it is built from names only), so :attr:`CallOutcome.argv` can be stored.
* The child's environment is not the application's. It starts from a short allow-list of the
  parent's variables (see :data:`ENV_ALLOW`) or from ``base_env`` when given; any variable
  whose name looks like a credential is dropped either way, and so is anything in the
  ``POCKETCI_`` namespace. ``SSH_AUTH_SOCK`` is deliberately not passed: a module's
  ``dagger.json`` could otherwise use the agent to fetch private dependencies.
* The log file holds the output only (no header or trailer): the argv and the outcome are
  recorded with the run.
* The log file is written from the event loop: a batch is one buffered write, and the buffer is
  flushed every ~100 ms and at the end, never fsynced per line.
* Output is masked line by line after the lines are reassembled from the pipe's chunks, so a
  secret split across two writes is still caught. A line longer than
  :data:`~pocketci_tui.engine.proc.MAX_LINE` is split, preferably at a blank; a secret inside a
  run of more than 1 KiB without blanks that straddles such a split is not masked (a known
  limit, like the ones the masker documents).
* A timeout stops the whole process tree and returns a FAILED outcome. A cancel (the task
  running :meth:`Runner.run` is cancelled) stops the tree, flushes the log, removes the
  temporary files and then re-raises ``CancelledError``: the caller records CANCELLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import io
import json
import logging
import os
import re
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from pocketci_tui.engine.masking import Masker
from pocketci_tui.engine.naming import kebab
from pocketci_tui.engine.proc import (
    close_pipes,
    drain,
    group_alive,
    kill_tree,
    read_lines,
    spawn,
)
from pocketci_tui.model import Event, FunctionCall, RunState, utcnow

log = logging.getLogger(__name__)

SECRET_ENV_PREFIX = "POCKETCI_SECRET_"
"""Prefix of the variables that carry secret values to ``dagger call``."""

ENV_ALLOW = frozenset(
    {
        # The basics every program expects.
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        # Where the CLI keeps its cache and config; where rootless runtimes keep sockets.
        "XDG_RUNTIME_DIR",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        # Container runtimes the Dagger CLI can start its engine with.
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "CONTAINERS_CONF",
        "CONTAINERS_REGISTRIES_CONF",
        "CONTAINERS_STORAGE_CONF",
        "KUBECONFIG",
        # The engine to use, when the user's environment chooses one (the config wins).
        "_EXPERIMENTAL_DAGGER_RUNNER_HOST",
        # Networks that need a proxy or a private CA.
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
"""Variables passed from the parent's environment to ``dagger call`` (plus every ``LC_*``)."""

ENV_ALLOW_PREFIXES = ("LC_",)

_SECRET_NAME_RE = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|API_?KEY|PRIVATE_?KEY|AUTH|COOKIE|SESSION",
    re.IGNORECASE,
)
"""Names that look like they carry a credential: never passed through to the child."""

TAIL_LINES = 20
"""Non-empty output lines kept for the failure reason."""

REASON_LINES = 5
"""How many of them the reason shows."""

BATCH_LINES = 500
"""Deliver a batch as soon as this many lines are pending ..."""

BATCH_INTERVAL = 0.05
"""... and otherwise every this many seconds (the log is flushed every other tick)."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class DaggerEnv:
    """How to reach Dagger.

    Attributes:
        cli: The ``dagger`` CLI (a path, or a name looked up on PATH); empty means ``dagger``.
        runner_host: ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` for a shared or remote engine.
        cloud_token: The Dagger Cloud token value, when configured.
    """

    cli: str
    runner_host: str = ""
    cloud_token: str | None = None


@dataclass(frozen=True)
class CallRequest:
    """One function call to make.

    Attributes:
        run_id: The run's unique id; also written into the event trigger file.
        call: The matched function with its plain arguments and secret argument names.
        event: The event that triggered it.
        module_dir: The Dagger module's directory inside the checkout.
        checkout_dir: The checkout passed as ``--src``.
        changes: The changed files, or None when they could not be computed.
        secrets: Secret values by lowerCamelCase argument name (only for ``call.secrets``).
        log_path: The run's log file (appended to, created with mode 0600).
    """

    run_id: str
    call: FunctionCall
    event: Event
    module_dir: Path
    checkout_dir: Path
    changes: Sequence[str] | None
    secrets: Mapping[str, str]
    log_path: Path


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


def secret_env_var(arg: str) -> str:
    """Return the environment variable that carries secret argument ``arg``.

    ``ghPassword`` -> ``POCKETCI_SECRET_GH_PASSWORD``.
    """
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]+", "_", kebab(arg)).strip("_").upper()


def join_list(values: Iterable[str]) -> str:
    """Join values for a ``[String]`` argument the way the Dagger CLI splits them (CSV).

    Elements holding a comma, a quote or a line break are quoted; the rest are left alone, so
    the common case is a plain comma-joined list.
    """
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(list(values))
    return buf.getvalue()


def _flag(name: str, value: str) -> list[str]:
    # ``--flag=value`` when the value could be mistaken for a flag or vanish as an empty word.
    if not value or value.startswith("-"):
        return [f"--{name}={value}"]
    return [f"--{name}", value]


def _looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME_RE.search(name)) or name.upper().startswith("POCKETCI_")


def _format_seconds(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


class _Output:
    """Masks output lines and sends them to the log file and, in batches, to the callback."""

    def __init__(
        self,
        run_id: str,
        on_lines: Callable[[str, list[str]], None],
        log_file: IO[str],
        masker: Masker,
    ) -> None:
        self.run_id = run_id
        self.on_lines = on_lines
        self.log_file = log_file
        self.masker = masker
        self.pending: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines = 0
        self._callback_failed = False

    def add(self, lines: list[str]) -> None:
        if self.masker:
            mask = self.masker.mask
            lines = [mask(line) for line in lines]
        self.lines += len(lines)
        self.log_file.write("\n".join(lines))
        self.log_file.write("\n")
        self.tail.extend([line for line in lines[-TAIL_LINES:] if line.strip()])
        self.pending.extend(lines)
        if len(self.pending) >= BATCH_LINES:
            self.deliver()

    def deliver(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        try:
            self.on_lines(self.run_id, batch)
        except Exception:
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("output callback of run %s failed", self.run_id)

    async def tick(self) -> None:
        flush = False
        while True:
            await asyncio.sleep(BATCH_INTERVAL)
            self.deliver()
            if flush:
                self.log_file.flush()
            flush = not flush

    def close(self) -> None:
        self.deliver()
        with contextlib.suppress(OSError, ValueError):
            self.log_file.flush()
        with contextlib.suppress(OSError, ValueError):
            self.log_file.close()

    def reason_tail(self) -> str:
        lines = [line.strip()[:300] for line in list(self.tail)[-REASON_LINES:]]
        return "\n".join(lines)


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

        The order is ``dagger call --progress=plain -m <module> <function> --src <checkout>
        --event-trigger <file>``, then ``--filter``, ``--event``, ``--vendor``, ``--on-changes``
        (the changed files, CSV-joined, when ``req.changes`` is known; else the call's own
        value), any other plain argument, and one ``--<arg> env://<VAR>`` per secret argument
        that has a value. ``--progress`` is a global (persistent) flag; right after ``call``,
        before the function name, it is parsed with the command's own flags. A value that is
        empty or starts with ``-`` is written as ``--flag=value``, which no parser can take
        for a flag or drop as an empty word.

        Args:
            req: The call.
            event_file: The event trigger file.

        Returns:
            The argv list; it holds no secret value.
        """
        argv = [
            self.cli,
            "call",
            "--progress=plain",
            "-m",
            str(Path(req.module_dir).resolve()),
            kebab(req.call.function),
            "--src",
            str(Path(req.checkout_dir).resolve()),
            "--event-trigger",
            str(Path(event_file).resolve()),
        ]
        args = dict(req.call.args)
        for name in ("filter", "event", "vendor"):
            if name in args:
                argv += _flag(name, args[name])
        if "onChanges" in args:
            value = args["onChanges"] if req.changes is None else join_list(req.changes)
            argv += _flag("on-changes", value)
        for name, value in req.call.args:
            if name not in ("filter", "event", "vendor", "onChanges", "src", "eventTrigger"):
                argv += _flag(kebab(name), value)
        for name in req.call.secrets:
            if name in req.secrets:
                argv += [f"--{kebab(name)}", f"env://{secret_env_var(name)}"]
        return argv

    def build_env(self, req: CallRequest, event_file: Path) -> dict[str, str]:
        """Return the complete environment of the ``dagger call`` child.

        Args:
            req: The call.
            event_file: The event trigger file (``GITHUB_EVENT_PATH``).

        Returns:
            Allow-listed parent variables (or ``base_env``) without credential-looking names,
            plus ``CI``, ``GITHUB_*``, Dagger's quiet switches, ``NO_COLOR``, the configured
            engine and cloud token, and ``POCKETCI_SECRET_*`` for this call's secrets only.
        """
        if self.base_env is not None:
            source: Mapping[str, str] = self.base_env
            env = {k: v for k, v in source.items() if not _looks_secret(k)}
        else:
            source = os.environ
            env = {
                k: v
                for k, v in source.items()
                if (k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)) and not _looks_secret(k)
            }
        env.setdefault("PATH", os.defpath)
        event = req.event
        env.update(
            {
                "CI": "pocketci",
                "GITHUB_SHA": event.sha,
                "GITHUB_REF": event.ref,
                "GITHUB_EVENT_NAME": event.event_name or event.event_type,
                "GITHUB_EVENT_PATH": str(Path(event_file).resolve()),
                "DAGGER_NO_NAG": "1",
                "DAGGER_NO_UPDATE_CHECK": "1",
                "DO_NOT_TRACK": "1",
                "NO_COLOR": "1",
            }
        )
        if self.dagger.cloud_token:
            env["DAGGER_CLOUD_TOKEN"] = self.dagger.cloud_token
        if self.dagger.runner_host:
            env["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] = self.dagger.runner_host
        for name in req.call.secrets:
            if name in req.secrets:
                env[secret_env_var(name)] = req.secrets[name]
        return env

    def event_trigger(self, req: CallRequest) -> dict[str, object]:
        """Return the content of the event trigger file (SPEC 4.7).

        ``changes`` is null when the changed files could not be computed; ``payload`` is the
        raw payload decoded (null if it is not JSON).
        """
        event = req.event
        payload: Any
        try:
            payload = event.payload()
        except ValueError:
            payload = None
        return {
            "vendor": event.vendor,
            "event_type": event.event_type,
            "filter": event.filter,
            "repo_name": event.repository,
            "repository_name": event.repository,
            "ref": event.ref,
            "sha": event.sha,
            "base_ref": event.base_ref,
            "base_sha": event.base_sha,
            "changes": None if req.changes is None else list(req.changes),
            "delivery_id": event.delivery_id,
            "run_id": req.run_id,
            "received_at": _iso_utc(event.received_at),
            "payload": payload,
        }

    # -- running ------------------------------------------------------------------------------

    def _prepare(self, req: CallRequest) -> tuple[Path, Path, Path]:
        """Create the call's private directory with the event file and an empty cwd."""
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", req.run_id)[:40] or "run"
        tmp = Path(tempfile.mkdtemp(prefix=f"call-{safe_id}-", dir=self.work_dir))
        try:
            event_file = tmp / "event.json"
            data = json.dumps(self.event_trigger(req), ensure_ascii=False).encode("utf-8")
            fd = os.open(event_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            cwd = tmp / "cwd"
            cwd.mkdir(mode=0o700)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp, event_file, cwd

    def _open_log(self, path: Path) -> IO[str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "w", encoding="utf-8", errors="replace", buffering=1 << 16)

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
        on_lines: Callable[[str, list[str]], None],
        on_started: Callable[[str, int], None] | None = None,
    ) -> CallOutcome:
        """Run the call to its end and return how it went.

        Args:
            req: The call.
            on_lines: Receives ``(run_id, lines)`` batches of masked, ANSI-free output lines,
                at most every ~50 ms or whenever 500 lines are pending. Runs on the event loop.
            on_started: Receives ``(run_id, pid)`` once the process is running.

        Returns:
            PASSED for exit code 0; FAILED for any other exit code, a timeout, or a CLI that
            cannot be started (with the reason, never an exception).

        Raises:
            asyncio.CancelledError: When the task is cancelled; the process tree is stopped, the
                log flushed and the temporary files removed first.
        """
        started_at = utcnow()
        preparing = asyncio.ensure_future(asyncio.to_thread(self._prepare, req))
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
        on_lines: Callable[[str, list[str]], None],
        on_started: Callable[[str, int], None] | None,
        started_at: datetime,
    ) -> CallOutcome:
        def outcome(state: RunState, code: int | None, reason: str) -> CallOutcome:
            return CallOutcome(state, code, reason, started_at, utcnow(), tuple(argv))

        try:
            log_file = self._open_log(Path(req.log_path))
        except OSError as exc:
            return outcome(RunState.FAILED, None, f"cannot write the log file: {exc}")
        masker = Masker([*req.secrets.values(), self.dagger.cloud_token or "", *self.extra_mask])
        out = _Output(req.run_id, on_lines, log_file, masker)
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
