"""The Dagger CLI and the ``dagger session`` child that introspection talks to.

* The ``dagger session`` child is started here, not by the SDK's ``dagger.Connection``. The
  SDK reads the CLI path (``_EXPERIMENTAL_DAGGER_CLI_BIN``) from ``os.environ`` and starts the
  CLI with this process's whole environment from a worker thread, so steering it would mean
  changing ``os.environ`` in a long-lived, multi-threaded process. Starting the child here
  gives it an explicit environment (``_EXPERIMENTAL_DAGGER_CLI_BIN`` and
  ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` included) without touching ``os.environ``, its own
  process group, closed-stdin shutdown as the SDK does, and a kill on timeout or cancel.
* The SDK then connects to the session exactly as it does to a session it started (its
  GraphQL client, basic auth with the session token) and runs one query
  (:func:`~pocketci_tui.engine.dagger.query.catalog_query`).
* With no CLI configured and none on PATH, the SDK's own downloader fetches the CLI of its
  version into the user cache, as ``dagger.Connection`` would.

Nothing here writes to the terminal: the session's stderr goes to a log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import shutil
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pocketci_tui.engine.dagger.query import CatalogError
from pocketci_tui.engine.proc import kill_tree

SESSION_CLOSE_GRACE = 10.0
"""Seconds a session gets to exit after its stdin is closed before it is killed."""

ABORT_GRACE = 0.5
"""The same, after a failure, a timeout or a cancel: nothing is worth waiting for then."""


# -- The dagger CLI -------------------------------------------------------------------------------


def resolve_dagger_cli(configured: str) -> str | None:
    """Find the ``dagger`` CLI to use.

    Args:
        configured: The configured CLI (a path, or a program name looked up on PATH); empty
            for "``dagger`` on PATH".

    Returns:
        The CLI's absolute path; None when the configured one does not exist, or when none is
        configured and PATH has no ``dagger`` (the SDK can then download one).
    """
    if configured:
        candidate = Path(configured).expanduser()
        if os.sep in configured or candidate.is_absolute():
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate.absolute())
            return None
        return shutil.which(configured)
    return shutil.which("dagger")


def _sdk_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("dagger-io")
    except metadata.PackageNotFoundError:
        return "unknown"


def cli_fingerprint(cli: str | None) -> str:
    """Identify the CLI build cheaply (path, size, mtime): a new CLI invalidates the cache."""
    if cli is None:
        return f"sdk-download:{_sdk_version()}"
    try:
        st = os.stat(cli)
    except OSError:
        return f"cli:{cli}"
    return f"cli:{cli}:{st.st_size}:{st.st_mtime_ns}"


async def download_cli() -> str:
    """Download (or reuse) the CLI of the SDK's version, through the SDK's own downloader."""
    try:
        from dagger.provisioning._download import Downloader
    except ImportError as exc:  # pragma: no cover - depends on the installed SDK
        raise CatalogError(
            f"no dagger CLI found and this dagger-io SDK cannot download one ({exc}); "
            "install dagger or set dagger.cli in the config"
        ) from exc
    # The downloader reports progress only through a status that was started; none is, so it
    # writes nothing to the terminal.
    try:
        return str(await Downloader())
    except Exception as exc:
        raise CatalogError(
            f"no dagger CLI found on PATH and downloading one failed: {exc}; "
            "install dagger or set dagger.cli in the config"
        ) from exc


# -- The session ----------------------------------------------------------------------------------


@dataclass
class Session:
    """A running ``dagger session`` child and how to reach it (port and token, once read)."""

    proc: asyncio.subprocess.Process
    port: int
    token: str
    stderr_task: asyncio.Task[None]
    tail: deque[str]


async def _pump_stderr(stream: asyncio.StreamReader, log: IO[str] | None, tail: deque[str]) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            return
        line = raw.decode(errors="replace").rstrip("\n")
        tail.append(line)
        if log is not None:
            with suppress(OSError, ValueError):
                log.write(f"dagger session: {line}\n")
                log.flush()


def session_env(cli: str, runner_host: str) -> dict[str, str]:
    """Return the environment of a ``dagger session`` child.

    Args:
        cli: The CLI the SDK would start (``_EXPERIMENTAL_DAGGER_CLI_BIN``).
        runner_host: ``_EXPERIMENTAL_DAGGER_RUNNER_HOST``, when set.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN")
    }
    env["_EXPERIMENTAL_DAGGER_CLI_BIN"] = cli
    env["DAGGER_NO_NAG"] = "1"
    env["NO_COLOR"] = "1"
    if runner_host:
        env["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] = runner_host
    return env


async def spawn_session(
    cli: str, log: IO[str] | None, *, cwd: Path, env: dict[str, str]
) -> Session:
    """Start a ``dagger session`` child (in its own process group) whose stderr goes to ``log``.

    Args:
        cli: The CLI.
        log: Where the session's stderr is appended, if anywhere.
        cwd: Its working directory (created when missing).
        env: Its whole environment (see :func:`session_env`).

    Returns:
        The session, not yet ready: read its parameters with :func:`read_session_params`.

    Raises:
        CatalogError: The CLI cannot be started.
    """
    argv = [
        cli,
        "session",
        "--label",
        "dagger.io/sdk.name:python",
        "--label",
        f"dagger.io/sdk.version:{_sdk_version()}",
    ]
    try:
        await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise CatalogError(
            f"cannot start `dagger session` with {cli!r}: {exc}; "
            "install dagger or set dagger.cli in the config"
        ) from exc
    tail: deque[str] = deque(maxlen=20)
    assert proc.stderr is not None
    assert proc.stdout is not None
    stderr_task = asyncio.create_task(_pump_stderr(proc.stderr, log, tail))
    return Session(proc, 0, "", stderr_task, tail)


async def read_session_params(session: Session) -> None:
    """Read the port and token the session prints first; stop the session when that fails.

    Raises:
        CatalogError: The session exited first or printed something else.
    """
    proc = session.proc
    tail = session.tail
    stderr_task = session.stderr_task
    assert proc.stdout is not None
    try:
        try:
            first = await proc.stdout.readline()
        except ValueError:  # a first line longer than the stream limit
            raise CatalogError(
                "`dagger session` printed an over-long first line instead of its "
                "connection parameters; is the configured CLI really dagger?"
            ) from None
        if not first:
            await asyncio.wait({stderr_task}, timeout=2.0)
            code = await proc.wait()
            detail = " | ".join(line for line in tail if line.strip())[-2000:]
            raise CatalogError(
                f"`dagger session` exited with code {code} before it was ready"
                f"{': ' + detail if detail else ''}; check that the engine can start "
                "(container runtime running, runner host reachable)"
            )
        try:
            params = json.loads(first)
            if set(params) != {"port", "session_token"}:
                raise ValueError(f"unexpected keys {sorted(params)}")
            session.port = int(params["port"])
            session.token = str(params["session_token"])
        except (ValueError, TypeError, AttributeError) as exc:
            raise CatalogError(
                f"`dagger session` printed invalid connection parameters ({exc}); "
                "is the configured CLI really dagger?"
            ) from None
    except BaseException:
        await stop_session(session, grace=ABORT_GRACE)
        raise


async def stop_session(session: Session, *, grace: float) -> None:
    """Close the session's stdin (its signal to end), wait ``grace`` s, then kill it."""
    proc = session.proc
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
        with suppress(OSError, ConnectionError):
            await proc.stdin.wait_closed()
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
    except TimeoutError:
        pass
    finally:
        await kill_tree(proc, grace=2.0)
        if proc.returncode is None:
            with suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await asyncio.wait({session.stderr_task}, timeout=1.0)
        session.stderr_task.cancel()


async def query_session(
    session: Session, query: str, module_dir: Path, *, execute_timeout: float, log_path: Path
) -> dict[str, Any]:
    """Run one GraphQL query on the session through the SDK's client.

    Args:
        session: A ready session.
        query: The GraphQL document.
        module_dir: The module it is about (for messages).
        execute_timeout: The SDK's timeout for the query in seconds.
        log_path: The session log (named in messages).

    Raises:
        CatalogError: The module failed to load, or talking to the engine failed.
    """
    # Importing the SDK takes about a second: do it off the event loop, once, so neither
    # the UI nor the listener stalls on the first introspection.
    with contextlib.suppress(ImportError):
        await asyncio.to_thread(importlib.import_module, "dagger.client._session")
    try:
        import dagger
        from dagger.client._session import ConnectParams, SingleConnection
        from gql import GraphQLRequest
        from gql.transport.exceptions import TransportQueryError
    except ImportError as exc:  # pragma: no cover - depends on the installed SDK
        raise CatalogError(
            f"the installed dagger-io SDK is not usable ({exc}); reinstall pocketci-tui"
        ) from exc
    config = dagger.Config(timeout=dagger.Timeout(execute_timeout, connect=30.0), retry=None)
    params = ConnectParams(port=session.port, session_token=session.token)
    try:
        async with SingleConnection(params, config) as conn:
            result = await conn.session.execute(GraphQLRequest(query))
    except TransportQueryError as exc:
        raise CatalogError(
            f"the Dagger module at {module_dir} failed to load: {_query_errors(exc)}; "
            "run `dagger functions` in that directory to see the full error"
        ) from None
    except CatalogError:
        raise
    except Exception as exc:
        raise CatalogError(
            f"talking to the Dagger engine failed while loading {module_dir}: "
            f"{type(exc).__name__}: {exc}; check the engine and the session log "
            f"{log_path}"
        ) from exc
    if not isinstance(result, dict):
        raise CatalogError(f"unexpected introspection answer for {module_dir}")
    return result


def _query_errors(exc: Any) -> str:
    errors: Iterable[Any] = getattr(exc, "errors", None) or []
    messages = [
        str(e.get("message", "")).strip() if isinstance(e, dict) else str(e) for e in errors
    ]
    text = "; ".join(m for m in messages if m) or str(exc)
    return text[:2000]
