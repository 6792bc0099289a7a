"""The module catalog: which functions a Dagger module offers, cached by module content.

Introspection asks the Dagger engine through the dagger-io SDK. Loading a module costs
seconds on a warm engine and much more on a cold one, so the answer is cached in memory and
in JSON files, keyed by the module's content (:func:`module_content_key`): an unchanged
module is never loaded twice, not even across restarts.

How the engine is reached:

* The ``dagger session`` child is started here, not by the SDK's ``dagger.Connection``. The
  SDK reads the CLI path (``_EXPERIMENTAL_DAGGER_CLI_BIN``) from ``os.environ`` and starts the
  CLI with this process's whole environment from a worker thread, so steering it would mean
  changing ``os.environ`` in a long-lived, multi-threaded process. Starting the child here
  gives it an explicit environment (``_EXPERIMENTAL_DAGGER_CLI_BIN`` and
  ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` included) without touching ``os.environ``, its own
  process group, closed-stdin shutdown as the SDK does, and a kill on timeout or cancel.
* The SDK then connects to the session exactly as it does to a session it started (its
  GraphQL client, basic auth with the session token) and runs one nested query that fetches
  the module name, its objects, their functions and their arguments in one round trip,
  instead of the typed API's one request per field (3 + 2 objects + 2 functions + 4 args).
  The query also tolerates ``defaultValue: null`` (no default), which the typed API rejects.
* With no CLI configured and none on PATH, the SDK's own downloader fetches the CLI of its
  version into the user cache, as ``dagger.Connection`` would.

Nothing here writes to the terminal: the session's stderr goes to a log file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import logging
import os
import shutil
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pocketci_tui.engine.proc import kill_tree
from pocketci_tui.model import ArgSpec, FunctionSpec, ModuleCatalog

_log = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bump when the cache files' shape or meaning changes: old files are then ignored."""

MEMORY_ENTRIES = 256
"""Catalogs kept in memory (least recently used dropped first)."""

DISK_ENTRIES = 1000
"""Cache files kept on disk (oldest removed first); a hit reads one small file."""

SESSION_CLOSE_GRACE = 10.0
"""Seconds a session gets to exit after its stdin is closed before it is killed."""

ABORT_GRACE = 0.5
"""The same, after a failure, a timeout or a cancel: nothing is worth waiting for then."""

GIT_TIMEOUT = 30.0
"""Seconds one ``git rev-parse`` may take."""

_PRIMITIVES = {
    "STRING_KIND": "String",
    "INTEGER_KIND": "Int",
    "FLOAT_KIND": "Float",
    "BOOLEAN_KIND": "Boolean",
    "VOID_KIND": "Void",
}

_TYPE_FIELDS = "kind optional asObject { name } asInterface { name } asEnum { name } " + (
    "asScalar { name }"
)


def _type_selection(depth: int) -> str:
    """Select a TypeDef's kind and name, following list element types ``depth`` levels."""
    if depth == 0:
        return _TYPE_FIELDS
    return f"{_TYPE_FIELDS} asList {{ elementTypeDef {{ {_type_selection(depth - 1)} }} }}"


def catalog_query(module_ref: str) -> str:
    """Return the GraphQL document that introspects the module at ``module_ref`` at once.

    The argument is written inline as a GraphQL string literal, as the SDK's query builder
    does (JSON string escapes are valid GraphQL string escapes).
    """
    return (
        "query ModuleCatalog { "
        f"moduleSource(refString: {json.dumps(module_ref)}) {{ asModule {{ name "
        "objects { asObject { name functions { name description "
        f"args {{ name defaultValue typeDef {{ {_type_selection(3)} }} }} }} }} }} }} }} }}"
    )


class CatalogError(Exception):
    """Introspection failed; the message says what failed and what to do about it."""


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


def _cli_fingerprint(cli: str | None) -> str:
    """Identify the CLI build cheaply (path, size, mtime): a new CLI invalidates the cache."""
    if cli is None:
        return f"sdk-download:{_sdk_version()}"
    try:
        st = os.stat(cli)
    except OSError:
        return f"cli:{cli}"
    return f"cli:{cli}:{st.st_size}:{st.st_mtime_ns}"


async def _download_cli() -> str:
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


# -- Content keys ---------------------------------------------------------------------------------


async def _git_tree(checkout: Path, rel: str) -> str | None:
    """Return the tree hash of ``rel`` (a directory) at HEAD, or None when it has none."""
    spec = f"HEAD:{rel}" if rel else "HEAD^{tree}"
    env = dict(os.environ)
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(checkout),
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            spec,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise CatalogError(f"cannot run git: {exc}; install git") from exc
    try:
        async with asyncio.timeout(GIT_TIMEOUT):
            out, _err = await proc.communicate()
    except TimeoutError:
        await kill_tree(proc, grace=1.0)
        raise CatalogError(
            f"git rev-parse timed out after {GIT_TIMEOUT:.0f}s in {checkout}"
        ) from None
    except asyncio.CancelledError:
        await kill_tree(proc, grace=1.0)
        raise
    if proc.returncode != 0:
        return None
    return out.decode().strip() or None


def _relative(root: Path, path: Path) -> str | None:
    """``path`` relative to ``root`` in git's spelling ('' for root), None when outside."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return None
    text = rel.as_posix()
    return "" if text == "." else text


def _is_remote_ref(source: str) -> bool:
    return "://" in source or "@" in source or source.startswith(("git@", "github.com/"))


def _local_paths(module_dir: Path) -> list[Path]:
    """Local paths a module's ``dagger.json`` points at: local dependencies, its source dir."""
    try:
        config = json.loads((module_dir / "dagger.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(config, dict):
        return []
    found: list[Path] = []
    source = config.get("source")
    if isinstance(source, str) and source and not _is_remote_ref(source):
        found.append(module_dir / source)
    deps = config.get("dependencies")
    for dep in deps if isinstance(deps, list) else []:
        ref = dep.get("source") if isinstance(dep, dict) else dep
        if isinstance(ref, str) and ref and not _is_remote_ref(ref):
            candidate = module_dir / ref
            if candidate.is_dir():
                found.append(candidate)
    return found


def _collect_paths(module_dir: Path) -> list[Path]:
    """Every local directory the module depends on, followed transitively (resolved)."""
    seen: set[Path] = {module_dir}
    queue = [module_dir]
    out: list[Path] = []
    while queue:
        current = queue.pop()
        for extra in _local_paths(current):
            resolved = extra.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            out.append(resolved)
            if (resolved / "dagger.json").is_file():
                queue.append(resolved)
    return out


async def module_content_key(checkout: Path, module_dir: Path) -> str:
    """Return a key that changes exactly when the module's content at HEAD changes.

    The key combines the git tree hash of the module directory at HEAD with those of the
    local directories its ``dagger.json`` points at (local dependencies, transitively, and a
    ``source`` directory outside the module), so a change anywhere else in the repository
    keeps the key.

    Args:
        checkout: The git work tree.
        module_dir: The module directory (holding ``dagger.json``), inside ``checkout``.

    Returns:
        An opaque key (``git-`` and a hex digest).

    Raises:
        CatalogError: The module is outside the checkout, or not committed at HEAD, or git
            failed.
    """
    root = await asyncio.to_thread(checkout.resolve)
    module = await asyncio.to_thread(module_dir.resolve)
    rel = _relative(root, module)
    if rel is None:
        raise CatalogError(f"module directory {module_dir} is outside the checkout {checkout}")
    tree = await _git_tree(root, rel)
    if tree is None:
        raise CatalogError(
            f"module directory {rel or '.'} is not committed at HEAD of {checkout}; "
            "commit it (pocketci-tui builds committed content only)"
        )
    parts = [f"module {tree}"]
    for extra in await asyncio.to_thread(_collect_paths, module):
        if _relative(module, extra) is not None:
            continue  # inside the module: already covered by its tree
        extra_rel = _relative(root, extra)
        if extra_rel is None:
            parts.append(f"outside {extra}")
            continue
        extra_tree = await _git_tree(root, extra_rel)
        parts.append(f"dep {extra_rel} {extra_tree or 'absent'}")
    digest = hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()
    return f"git-{digest}"


# -- Parsing the introspection answer -------------------------------------------------------------


def _type_name(type_def: dict[str, Any]) -> str:
    kind = str(type_def.get("kind") or "")
    if kind == "LIST_KIND":
        element = (type_def.get("asList") or {}).get("elementTypeDef") or {}
        return f"[{_type_name(element)}]"
    for key in ("asObject", "asInterface", "asEnum", "asScalar"):
        named = type_def.get(key)
        if isinstance(named, dict) and named.get("name"):
            return str(named["name"])
    return _PRIMITIVES.get(kind, kind.removesuffix("_KIND").title() or "Unknown")


def _default_json(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def main_object_name(module_name: str) -> str:
    """The main object's name: the module name in PascalCase (``my-ci`` -> ``MyCi``).

    Follows strcase ``ToCamel``: words break at ``_``, space, ``-`` and ``.``, and after
    digits; letters inside a word keep their case.
    """
    out: list[str] = []
    cap_next = True
    for ch in module_name.strip():
        if ch.isascii() and ch.isalpha():
            out.append(ch.upper() if cap_next else ch)
            cap_next = False
        elif ch.isascii() and ch.isdigit():
            out.append(ch)
            cap_next = True
        else:
            cap_next = ch in "_ -."
    return "".join(out)


def parse_catalog(data: dict[str, Any], module_dir: Path) -> ModuleCatalog:
    """Turn the answer to :func:`catalog_query` into a :class:`ModuleCatalog`.

    Raises:
        CatalogError: The answer lacks the module or its main object.
    """
    try:
        module = data["moduleSource"]["asModule"]
        name = str(module["name"])
        objects = module["objects"] or []
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"unexpected introspection answer for {module_dir}: {exc}") from exc
    wanted = main_object_name(name)
    main = None
    for obj in objects:
        as_object = (obj or {}).get("asObject")
        if isinstance(as_object, dict) and as_object.get("name") == wanted:
            main = as_object
            break
    if main is None:
        raise CatalogError(
            f"the Dagger module {name!r} at {module_dir} has no main object {wanted!r}; "
            "check that its code defines it"
        )
    functions = []
    for fn in main.get("functions") or []:
        args = tuple(
            ArgSpec(
                name=str(a["name"]),
                type_name=_type_name(a.get("typeDef") or {}),
                optional=bool((a.get("typeDef") or {}).get("optional")),
                default_json=_default_json(a.get("defaultValue")),
            )
            for a in fn.get("args") or []
        )
        functions.append(
            FunctionSpec(
                name=str(fn["name"]), args=args, description=str(fn.get("description") or "")
            )
        )
    return ModuleCatalog(module_name=name, functions=tuple(functions))


def catalog_to_json(catalog: ModuleCatalog) -> dict[str, Any]:
    """A JSON-able form of ``catalog`` (the cache files' payload)."""
    return {
        "module_name": catalog.module_name,
        "functions": [
            {
                "name": f.name,
                "description": f.description,
                "args": [
                    {
                        "name": a.name,
                        "type_name": a.type_name,
                        "optional": a.optional,
                        "default_json": a.default_json,
                    }
                    for a in f.args
                ],
            }
            for f in catalog.functions
        ],
    }


def catalog_from_json(data: dict[str, Any]) -> ModuleCatalog:
    """Inverse of :func:`catalog_to_json`."""
    return ModuleCatalog(
        module_name=str(data["module_name"]),
        functions=tuple(
            FunctionSpec(
                name=str(f["name"]),
                description=str(f.get("description", "")),
                args=tuple(
                    ArgSpec(
                        name=str(a["name"]),
                        type_name=str(a["type_name"]),
                        optional=bool(a["optional"]),
                        default_json=a["default_json"],
                    )
                    for a in f["args"]
                ),
            )
            for f in data["functions"]
        ),
    )


# -- The session ----------------------------------------------------------------------------------


@dataclass
class _Session:
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


# -- The catalog ----------------------------------------------------------------------------------


class Catalog:
    """Introspects Dagger modules and caches what they offer by module content.

    Args:
        cache_dir: Where cache files (one JSON file per module content) are kept.
        dagger_cli: The configured CLI (see :func:`resolve_dagger_cli`); empty for PATH.
        runner_host: ``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` for the session, when set.
        log_path: Where the session's own messages go (default: ``cache_dir/session.log``).
        timeout: Seconds one introspection may take in all (starting the engine included).
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        dagger_cli: str = "",
        runner_host: str = "",
        log_path: Path | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.cache_dir = cache_dir
        self.dagger_cli = dagger_cli
        self.runner_host = runner_host
        self.log_path = log_path or cache_dir / "session.log"
        self.timeout = timeout
        self.sessions_started = 0
        """How many ``dagger session`` children this instance started (for tests, stats)."""
        self.cli_used: str | None = None
        """The CLI of the last session (a downloaded one included), once one ran."""
        self._memory: dict[str, ModuleCatalog] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _cache_file(self, cache_key: str) -> Path:
        return self.cache_dir / f"{hashlib.sha256(cache_key.encode()).hexdigest()[:40]}.json"

    async def load(self, module_dir: Path, content_key: str) -> ModuleCatalog:
        """Return the catalog of the module in ``module_dir``, from the cache when possible.

        Args:
            module_dir: The module directory (absolute, holding ``dagger.json``).
            content_key: Its :func:`module_content_key`.

        Raises:
            CatalogError: No CLI, the session did not start, or the module failed to load.
        """
        cli = resolve_dagger_cli(self.dagger_cli)
        if cli is None and self.dagger_cli:
            raise CatalogError(
                f"the configured dagger CLI {self.dagger_cli!r} was not found or is not "
                "executable; fix dagger.cli in the config"
            )
        cache_key = "\n".join(
            (str(CACHE_FORMAT), _cli_fingerprint(cli), self.runner_host, content_key)
        )
        if (hit := self._remember(cache_key)) is not None:
            return hit
        lock = self._locks.setdefault(cache_key, asyncio.Lock())
        try:
            async with lock:
                if (hit := self._remember(cache_key)) is not None:
                    return hit
                path = self._cache_file(cache_key)
                stored = await asyncio.to_thread(self._read_cache, path, cache_key)
                if stored is None:
                    absolute = await asyncio.to_thread(module_dir.absolute)
                    stored = await self._introspect(absolute, cli)
                    try:
                        await asyncio.to_thread(self._write_cache, path, cache_key, stored)
                    except OSError as exc:
                        _log.warning("cannot write the catalog cache file %s: %s", path, exc)
                self._remember(cache_key, stored)
                return stored
        finally:
            if not lock.locked() and self._locks.get(cache_key) is lock:
                del self._locks[cache_key]

    def _remember(
        self, cache_key: str, catalog: ModuleCatalog | None = None
    ) -> ModuleCatalog | None:
        """Look ``cache_key`` up in memory (most recently used last), or store ``catalog``."""
        if catalog is None:
            hit = self._memory.pop(cache_key, None)
            if hit is not None:
                self._memory[cache_key] = hit
            return hit
        self._memory[cache_key] = catalog
        while len(self._memory) > MEMORY_ENTRIES:
            del self._memory[next(iter(self._memory))]
        return catalog

    @staticmethod
    def _read_cache(path: Path, cache_key: str) -> ModuleCatalog | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") != cache_key:
                return None
            catalog = catalog_from_json(data["catalog"])
            os.utime(path)  # recently used: pruned last
            return catalog
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, path: Path, cache_key: str, catalog: ModuleCatalog) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"key": cache_key, "catalog": catalog_to_json(catalog)}, indent=1),
            encoding="utf-8",
        )
        os.replace(tmp, path)
        files = list(path.parent.glob("*.json"))
        if len(files) > DISK_ENTRIES:
            by_age = sorted(files, key=lambda f: f.stat().st_mtime_ns)
            for old in by_age[: len(files) - DISK_ENTRIES]:
                with suppress(OSError):
                    old.unlink()

    async def _introspect(self, module_dir: Path, cli: str | None) -> ModuleCatalog:
        try:
            async with asyncio.timeout(self.timeout):
                if cli is None:
                    cli = await _download_cli()
                self.cli_used = cli
                return await self._introspect_with(module_dir, cli)
        except TimeoutError:
            raise CatalogError(
                f"loading the Dagger module at {module_dir} took longer than "
                f"{self.timeout:.0f}s; check the engine ({cli or 'dagger'} core version)"
            ) from None

    def _session_env(self, cli: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN")
        }
        env["_EXPERIMENTAL_DAGGER_CLI_BIN"] = cli
        env["DAGGER_NO_NAG"] = "1"
        env["NO_COLOR"] = "1"
        if self.runner_host:
            env["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] = self.runner_host
        return env

    async def _start_session(self, cli: str, log: IO[str] | None) -> _Session:
        argv = [
            cli,
            "session",
            "--label",
            "dagger.io/sdk.name:python",
            "--label",
            f"dagger.io/sdk.version:{_sdk_version()}",
        ]
        try:
            await asyncio.to_thread(self.cache_dir.mkdir, parents=True, exist_ok=True)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cache_dir,
                env=self._session_env(cli),
                start_new_session=True,
            )
        except OSError as exc:
            raise CatalogError(
                f"cannot start `dagger session` with {cli!r}: {exc}; "
                "install dagger or set dagger.cli in the config"
            ) from exc
        self.sessions_started += 1
        tail: deque[str] = deque(maxlen=20)
        assert proc.stderr is not None
        assert proc.stdout is not None
        stderr_task = asyncio.create_task(_pump_stderr(proc.stderr, log, tail))
        session = _Session(proc, 0, "", stderr_task, tail)
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
            await self._stop_session(session, grace=ABORT_GRACE)
            raise
        return session

    async def _stop_session(self, session: _Session, *, grace: float) -> None:
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

    async def _introspect_with(self, module_dir: Path, cli: str) -> ModuleCatalog:
        log: IO[str] | None
        try:
            await asyncio.to_thread(self.log_path.parent.mkdir, parents=True, exist_ok=True)
            log = await asyncio.to_thread(open, self.log_path, "a", encoding="utf-8")
        except OSError:
            log = None
        try:
            session = await self._start_session(cli, log)
            try:
                data = await self._query(session, catalog_query(str(module_dir)), module_dir)
            except BaseException:
                await self._stop_session(session, grace=ABORT_GRACE)
                raise
            await self._stop_session(session, grace=SESSION_CLOSE_GRACE)
        finally:
            if log is not None:
                log.close()
        return parse_catalog(data, module_dir)

    async def _query(self, session: _Session, query: str, module_dir: Path) -> dict[str, Any]:
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
        config = dagger.Config(timeout=dagger.Timeout(self.timeout, connect=30.0), retry=None)
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
                f"{self.log_path}"
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
