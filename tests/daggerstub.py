"""Test helpers around the stand-in ``dagger`` executable (tests/fixtures/fake_dagger).

Typical use::

    bin_dir = install_fake_dagger(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    module = write_module(tmp_path / "repo" / "ci", "ci", functions=[
        fn("onGithubPushMain", arg("src", "Directory"), arg("filter", "String", default="main")),
    ])
    monkeypatch.setenv("FAKE_DAGGER_RECORD_DIR", str(record_dir))
    ... run the code under test ...
    calls = read_calls(record_dir)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

FAKE_DIR = Path(__file__).resolve().parent / "fixtures" / "fake_dagger"
"""Where the stand-in's sources live."""

FAKE_VERSION_LINE = "dagger v0.21.8 (fake) linux/amd64"


def install_fake_dagger(tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    """Write an executable ``dagger`` into ``tmp_path/bin`` and return that directory.

    The wrapper's shebang is the running interpreter, so the stand-in runs with the same
    virtual environment (graphql-core) on any checkout. Put the returned directory first on
    PATH, or pass ``bin_dir / "dagger"`` wherever a CLI path is configured. ``env`` is set by
    the stand-in for itself (the product hands the CLI an allow-listed environment only).
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "dagger"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"os.environ.update({dict(env or {})!r})\n"
        f"sys.path.insert(0, {str(FAKE_DIR)!r})\n"
        "from fake_dagger import main\n"
        "sys.exit(main(sys.argv))\n",
        encoding="utf-8",
    )
    exe.chmod(0o755)
    return bin_dir


def arg(
    name: str,
    type_name: str = "String",
    *,
    optional: bool = False,
    default: Any = None,
    default_json: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Describe one function argument for :func:`write_module`.

    ``default`` is a Python value, JSON-encoded here; ``default_json`` gives the engine's
    exact string instead (for spacing variants such as ``'["a", "b"]'``).
    """
    if default_json is None and default is not None:
        default_json = json.dumps(default)
    return {
        "name": name,
        "type": type_name,
        "optional": optional,
        "default": default_json,
        "description": description,
    }


def fn(
    name: str,
    *args: dict[str, Any],
    description: str = "",
    call: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe one function for :func:`write_module` (``call`` as in README.md)."""
    out: dict[str, Any] = {"name": name, "description": description, "args": list(args)}
    if call is not None:
        out["call"] = call
    return out


def write_module(
    directory: Path,
    name: str = "ci",
    functions: list[dict[str, Any]] | None = None,
    *,
    objects: list[dict[str, Any]] | None = None,
    dependencies: list[dict[str, Any]] | None = None,
    load_error: str | None = None,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    """Write a fixture module into ``directory`` (created if needed) and return it.

    Args:
        directory: The module directory.
        name: The module name in ``dagger.json``; the main object is its PascalCase.
        functions: The main object's functions (see :func:`fn`).
        objects: Extra, non-main objects: ``[{"name": "Helper", "functions": [...]}]``.
        dependencies: ``dagger.json`` dependencies, e.g. ``[{"name": "lib", "source": "../lib"}]``.
        load_error: When set, loading the module fails with this message.
        extra_config: More keys for ``dagger.json``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"name": name, "engineVersion": "v0.21.8", "sdk": {"source": "go"}}
    if dependencies:
        config["dependencies"] = dependencies
    if extra_config:
        config.update(extra_config)
    (directory / "dagger.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    fake: dict[str, Any] = {"functions": functions or [], "objects": objects or []}
    if load_error is not None:
        fake["load_error"] = load_error
    (directory / "pocketci-fake.json").write_text(
        json.dumps(fake, indent=2) + "\n", encoding="utf-8"
    )
    return directory


def read_calls(record_dir: Path) -> list[dict[str, Any]]:
    """Return the recorded ``dagger call`` invocations in ``record_dir``, oldest first."""
    files = sorted(record_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    calls = []
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        record["pid"] = int(path.stem)
        child = path.with_suffix(".child")
        record["child_pid"] = int(child.read_text()) if child.exists() else None
        calls.append(record)
    return calls


def count_sessions(log_file: Path) -> int:
    """Count the ``dagger session`` processes that logged to ``log_file`` (FAKE_DAGGER_LOG)."""
    if not log_file.exists():
        return 0
    return sum(" session start " in line for line in log_file.read_text().splitlines())


def count_requests(log_file: Path) -> int:
    """Count the GraphQL requests that sessions logged to ``log_file``."""
    if not log_file.exists():
        return 0
    lines = log_file.read_text().splitlines()
    return sum(1 for line in lines if "] request " in line and " errors:" not in line)


def fake_env(tmp_path: Path) -> dict[str, str]:
    """An environment for a subprocess with the stand-in first on PATH."""
    bin_dir = install_fake_dagger(tmp_path)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


STOP_TIMEOUT = 30.0
"""Seconds a listener may take to close (a hang reports instead)."""


class EngineListener:
    """A loopback listener standing in for a remote engine (``tcp://``, or behind a fake
    ``kube-pod://`` pod): the stand-in connects to it before a call and keeps the connection
    for the call, as the real CLI keeps its session. :meth:`stop` makes the engine go away
    (new connections refused, the running calls' connections closed, so those calls fail);
    :meth:`start` brings it back on the same port.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    @property
    def host(self) -> str:
        """Its runner host."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """How many CLIs are connected now."""
        return len(self._conns)

    async def start(self) -> EngineListener:
        """Listen (on the same port as before, if it listened before)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            with contextlib.suppress(OSError):
                await reader.read()
        finally:
            self._conns.discard(writer)
            writer.close()

    async def stop(self) -> None:
        """Go away: refuse new connections and drop the open ones.

        The open ones are dropped before waiting for the server to close: from Python 3.12
        that wait lasts until every connection is gone, and a connected call holds its own
        for as long as it runs."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._conns):
                writer.close()
            async with asyncio.timeout(STOP_TIMEOUT):
                await self._server.wait_closed()
            self._server = None
        for writer in list(self._conns):
            writer.close()


@contextlib.asynccontextmanager
async def engine_listeners(count: int) -> AsyncIterator[list[EngineListener]]:
    """``count`` started :class:`EngineListener` objects, stopped at the end."""
    engines = [await EngineListener().start() for _ in range(count)]
    try:
        yield engines
    finally:
        for engine in engines:
            await engine.stop()
