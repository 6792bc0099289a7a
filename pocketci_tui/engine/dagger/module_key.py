"""Content keys of Dagger modules: what the catalog cache is keyed by.

A key changes exactly when the module's committed content changes: it combines git tree hashes
of the module directory and of the local directories its ``dagger.json`` points at, read with
``git rev-parse`` at HEAD through the engine's hardened git command.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from pocketci_tui.config import ConfigError, FileTooLarge, read_bounded_file
from pocketci_tui.engine.dagger.query import CatalogError
from pocketci_tui.engine.git import GitCommand, GitError, GitTimeoutError

GIT_TIMEOUT = 30.0
"""Seconds one ``git rev-parse`` may take."""

MAX_DAGGER_JSON = 256 * 1024
"""The largest ``dagger.json`` read; a larger one is refused before it is read."""

MAX_LOCAL_PATHS = 64
"""The most local directories (dependencies, transitively, and sources) a module may use."""


async def _git_tree(git: GitCommand, checkout: Path, rel: str) -> str | None:
    """Return the tree hash of ``rel`` (a directory) at HEAD, or None when it has none.

    git runs through the hardened command, like every other git of the engine: none of our
    ``GIT_*`` variables (a ``GIT_DIR`` would point it at another repository) and no user or
    system config reach it, and a timeout or a cancellation stops its whole process group.
    """
    spec = f"HEAD:{rel}" if rel else "HEAD^{tree}"
    try:
        res = await git.run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", spec],
            cwd=checkout,
            time_limit=GIT_TIMEOUT,
            check=False,
            what="git rev-parse",
        )
    except GitTimeoutError:
        raise CatalogError(
            f"git rev-parse timed out after {GIT_TIMEOUT:.0f}s in {checkout}"
        ) from None
    except GitError as exc:
        raise CatalogError(f"cannot run git: {exc}; install git") from exc
    if not res.ok:
        return None
    return res.stdout.decode().strip() or None


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


def _read_dagger_json(module_dir: Path) -> Any:
    """The parsed ``dagger.json`` of a module, None when absent or not JSON; size bounded.

    Raises:
        CatalogError: The file is larger than :data:`MAX_DAGGER_JSON` or nested absurdly deep.
    """
    where = module_dir / "dagger.json"
    try:
        text = read_bounded_file(where, MAX_DAGGER_JSON, str(where))
    except FileTooLarge as exc:
        raise CatalogError(str(exc)) from None
    except ConfigError:
        return None  # unreadable: Dagger itself will say what is wrong with it
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
    except RecursionError:
        raise CatalogError(f"{where}: nested too deeply to read") from None


def _local_paths(module_dir: Path) -> list[Path]:
    """Local paths a module's ``dagger.json`` points at: local dependencies, its source dir."""
    config = _read_dagger_json(module_dir)
    if not isinstance(config, dict):
        return []
    found: list[Path] = []
    source = config.get("source")
    if isinstance(source, str) and source and not _is_remote_ref(source):
        found.append(module_dir / source)
    deps = config.get("dependencies")
    if isinstance(deps, list) and len(deps) > MAX_LOCAL_PATHS:
        raise CatalogError(
            f"{module_dir / 'dagger.json'} lists {len(deps)} dependencies, more than the "
            f"{MAX_LOCAL_PATHS} pocketci-tui follows"
        )
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
            if len(out) > MAX_LOCAL_PATHS:
                raise CatalogError(
                    f"the module {module_dir} uses more than {MAX_LOCAL_PATHS} local "
                    "directories (dependencies, transitively); pocketci-tui follows no more"
                )
            if (resolved / "dagger.json").is_file():
                queue.append(resolved)
    return out


async def module_content_key(checkout: Path, module_dir: Path, *, git: GitCommand) -> str:
    """Return a key that changes exactly when the module's content at HEAD changes.

    The key combines the git tree hash of the module directory at HEAD with those of the
    local directories its ``dagger.json`` points at (local dependencies, transitively, and a
    ``source`` directory outside the module), so a change anywhere else in the repository
    keeps the key.

    Args:
        checkout: The git work tree.
        module_dir: The module directory (holding ``dagger.json``), inside ``checkout``.
        git: The hardened git command that reads the trees (the workspace's).

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
    tree = await _git_tree(git, root, rel)
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
        extra_tree = await _git_tree(git, root, extra_rel)
        parts.append(f"dep {extra_rel} {extra_tree or 'absent'}")
    digest = hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()
    return f"git-{digest}"
