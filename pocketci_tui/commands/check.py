"""``pocketci-tui check``: a doctor for the config, secret store, git, dagger, database and port.

Prints one line per check (``ok``, ``WARN`` or ``FAIL``) with a hint for each problem. Exit code:
0 when nothing failed, 1 when a check failed, 2 when the configuration itself is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pocketci_tui.launch import CommandFailed, passphrase_for, run_command, settings_from_args

if TYPE_CHECKING:
    from pocketci_tui.config import Settings
    from pocketci_tui.datalock import LockOwner
    from pocketci_tui.paths import AppPaths


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one check."""

    level: str  # "ok", "WARN", "FAIL"
    topic: str
    message: str
    fix: str = ""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add the ``check`` subcommand."""
    parser = sub.add_parser(
        "check",
        parents=[common],
        help="check config, secret store, git, dagger, db and port, and who owns the data "
        "folder and whether its control socket answers",
    )
    parser.set_defaults(func=cmd_check)


def _print(f: Finding) -> None:
    from pocketci_tui.logging_setup import safe_text

    print(f"{f.level:<4}  {f.topic:<14} {safe_text(f.message, 1000)}")
    if f.fix:
        print(f"{'':<4}  {'':<14} fix: {f.fix}")


def cmd_check(args: argparse.Namespace) -> int:
    """Run every check and print the findings."""

    def body() -> int:
        try:
            settings, paths = settings_from_args(args)
        except CommandFailed as exc:
            fix = getattr(exc.__cause__, "fix", "") or "correct the key named above"
            _print(Finding("FAIL", "config", str(exc), fix))
            return 2
        where = (
            str(paths.config_file) if settings.source else f"{paths.config_file} (absent: defaults)"
        )
        findings = [Finding("ok", "config", f"{where}, {len(settings.repos)} repositories")]
        if not settings.repos:
            findings.append(
                Finding(
                    "WARN",
                    "repos",
                    "no repositories configured: deliveries are ignored",
                    f"add `repos: [{{name: owner/name}}]` to {paths.config_file}",
                )
            )
        findings.extend(_grant_findings(settings))
        try:
            # On a terminal, ask for the encrypted file's passphrase like every other command
            # (without one, the secret store could never be checked on a headless set-up).
            passphrase = passphrase_for(settings, paths)
        except CommandFailed as exc:
            passphrase = None
            findings.append(Finding("FAIL", "secret store", str(exc)))
        findings.extend(asyncio.run(_secret_checks(settings, paths, passphrase)))
        findings.append(_git())
        findings.append(_dagger(settings.dagger.cli))
        findings.extend(asyncio.run(_engines(settings)))
        findings.extend(_permissions(paths))
        owner = _owner(paths.lock_file)
        if owner is not None:
            findings.append(
                Finding("ok", "owner", f"{paths.data_dir} is in use by {owner.describe()}")
            )
        else:
            findings.append(Finding("ok", "owner", f"nothing runs on {paths.data_dir} now"))
        findings.append(_control_socket(paths, owner))
        findings.append(asyncio.run(_database(paths.db_file)))
        findings.extend(asyncio.run(_refused_statuses(paths.db_file)))
        findings.append(_port(settings.host, settings.port, owner))
        findings.extend(_exposure(settings.host, settings.port))
        for f in findings:
            _print(f)
        return 1 if any(f.level == "FAIL" for f in findings) else 0

    return run_command(body)


def _grant_findings(settings: Settings) -> list[Finding]:
    """What each repository's ``pocketci.yaml`` may receive, and grants of pocketci's own."""
    out: list[Finding] = []
    own = settings.own_secrets()
    for repo in settings.repos:
        given = [f"secret-store entries {', '.join(repo.secrets)}"] if repo.secrets else []
        given += [f"environment variables {', '.join(repo.env)}"] if repo.env else []
        text = "; ".join(given) or "no secrets (its pocketci.yaml gets none)"
        out.append(Finding("ok", "grants", f"{repo.name}: {text}"))
        for name in repo.secrets:
            if name in own:
                out.append(
                    Finding(
                        "WARN",
                        "grants",
                        f"{repo.name} is granted {name!r}, {own[name]}: anyone who can push to "
                        f"it, or a fork you approve, can read it",
                        f"remove {name} from `secrets:` of {repo.name} unless you mean it",
                    )
                )
        for var in repo.env:
            if var.upper().startswith("POCKETCI_"):
                out.append(
                    Finding(
                        "WARN",
                        "grants",
                        f"{repo.name} is granted {var}, a variable of pocketci-tui itself",
                        f"remove {var} from `env:` of {repo.name} unless you mean it",
                    )
                )
    return out


async def _secret_checks(
    settings: Settings, paths: AppPaths, passphrase: str | None
) -> list[Finding]:
    from pocketci_tui import secrets as secrets_mod
    from pocketci_tui.launch import open_secrets

    out: list[Finding] = []
    try:
        store = await open_secrets(settings, paths, passphrase=passphrase)
    except secrets_mod.SecretStoreError as exc:
        return [
            Finding(
                "FAIL",
                "secret store",
                str(exc),
                "see the README section on secrets (keyring, encrypted file)",
            )
        ]
    health = await secrets_mod.probe(store)
    if not health.ok:
        return [Finding("FAIL", "secret store", health.message)]
    out.append(Finding("ok", "secret store", health.message))
    if health.warning:
        out.append(Finding("WARN", "secret store", health.warning))
    names = [
        (name, f"webhook secret of {whose}" if whose else "webhook secret", True)
        for name, whose in settings.webhook_secrets_in_use().items()
    ]
    names += [(r.token, f"token of {r.name}", False) for r in settings.repos if r.token]
    if settings.dagger.cloud_token:
        names.append((settings.dagger.cloud_token, "dagger cloud token", False))
    for repo in settings.repos:
        names += [(name, f"secret granted to {repo.name}", False) for name in repo.secrets]
        if repo.status_token:
            names.append((repo.status_token, f"status token of {repo.name}", False))
    unique: dict[str, tuple[str, str, bool]] = {}
    for name, what, required in names:
        unique.setdefault(name, (name, what, required))
    values: dict[str, str | None] = {}
    for name, what, required in unique.values():
        try:
            value = await asyncio.wait_for(store.get(name), 10)
        except (secrets_mod.SecretStoreError, TimeoutError) as exc:
            out.append(Finding("FAIL", "secrets", f"cannot read {name!r}: {exc or 'timed out'}"))
            continue
        values[name] = value
        if value:
            out.append(Finding("ok", "secrets", f"{what} {name!r} is set"))
        else:
            out.append(
                Finding(
                    "FAIL" if required else "WARN",
                    "secrets",
                    f"{what} {name!r} is not set",
                    f"pocketci-tui secrets set {name}",
                )
            )
    out.extend(_signing_tokens(settings, values))
    out.extend(await _status_tokens(settings, values))
    return out


def _signing_tokens(settings: Settings, values: dict[str, str | None]) -> list[Finding]:
    """GitLab's signing tokens (``whsec_…``) that the intake could not verify with.

    A mangled paste is otherwise found only when GitLab's deliveries are answered 503.
    """
    from pocketci_tui.forges import gitlab

    names: dict[str, None] = {}
    if "gitlab" in settings.forges_in_use():
        names[settings.webhook_secret_of("gitlab")] = None
    names.update((r.webhook_secret, None) for r in settings.repos if r.vendor == "gitlab")
    out: list[Finding] = []
    for name in names:
        problem = gitlab.signing_token_problem(values.get(name) or "") if name else ""
        if problem:
            out.append(
                Finding(
                    "FAIL",
                    "secrets",
                    f"GitLab signing token {name!r} cannot verify deliveries: {problem}",
                    f"{gitlab.SIGNING_TOKEN_FIX}; pocketci-tui secrets set {name}",
                )
            )
    return out


async def _status_tokens(settings: Settings, values: dict[str, str | None]) -> list[Finding]:
    """Read each reporting repository with its status token (a harmless API read)."""
    import aiohttp

    from pocketci_tui.statuses.probe import probe_token

    reporting = [r for r in settings.repos if r.posts_statuses]
    if not reporting:
        return []
    out: list[Finding] = []
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        for repo in reporting:
            name = repo.status_token_name
            token = values.get(name) if name else None
            if not name:
                out.append(
                    Finding(
                        "FAIL",
                        "statuses",
                        f"statuses of {repo.name}: no token to post them with",
                        f"set `status-token` (or `token`) of {repo.name}, or `statuses: false`",
                    )
                )
            elif not token:  # said above with the other secrets
                out.append(
                    Finding(
                        "WARN",
                        "statuses",
                        f"statuses of {repo.name}: its token {name!r} is not set",
                        f"pocketci-tui secrets set {name}",
                    )
                )
            elif any(c in repo.name for c in "*?["):
                out.append(
                    Finding("ok", "statuses", f"statuses of {repo.name}: a pattern, not read")
                )
            else:
                found = await probe_token(session, settings, repo, token)
                out.append(Finding(found.level, "statuses", found.message, found.fix))
    return out


async def _refused_statuses(db: Path) -> list[Finding]:
    """The repositories whose last commit status the forge refused (from the database)."""
    from pocketci_tui.store import Store, StoreError

    try:
        store = await Store.open_read_only(db)
    except (FileNotFoundError, StoreError):
        return []
    try:
        refused = await store.refused_statuses()
    except StoreError:
        return []
    finally:
        await store.close()
    return [
        Finding(
            "FAIL",
            "statuses",
            f"status not posted to {row.repository}: {row.detail}",
            "fix the token (see the README's commit statuses section); new statuses go out "
            "as runs change",
        )
        for row in refused
    ]


def _permissions(paths: AppPaths) -> list[Finding]:
    """Report folders and files of pocketci-tui that other users can read; change nothing."""
    from pocketci_tui.paths import exposed_paths, exposure_fix

    out = [
        Finding(
            "WARN",
            "permissions",
            f"{path} ({what}) is open to other users: {mode:04o}",
            exposure_fix(path),
        )
        for path, what, mode in exposed_paths(paths)
    ]
    if not out:
        out.append(Finding("ok", "permissions", "the config and data folders are private to you"))
    return out


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run a program (no shell, stdin closed); return its exit code and first output line."""
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = (proc.stdout or proc.stderr or "").strip().splitlines()
    return proc.returncode, lines[0] if lines else ""


def _git() -> Finding:
    git = shutil.which("git")
    if git is None:
        return Finding("FAIL", "git", "git is not on PATH", "install git (apt install git)")
    try:
        code, out = _run([git, "--version"], 10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("FAIL", "git", f"{git} does not run: {exc}")
    if code != 0:
        return Finding("FAIL", "git", f"{git} --version exited with {code}")
    return Finding("ok", "git", f"{out} ({git})")


def _dagger(configured: str) -> Finding:
    cli = configured or shutil.which("dagger")
    if not cli:
        return Finding(
            "WARN",
            "dagger",
            "no dagger CLI on PATH: the dagger-io SDK will download it on first use",
            "install dagger, or set dagger.cli in config.yaml",
        )
    try:
        code, out = _run([cli, "version"], 20)
    except FileNotFoundError:
        return Finding("FAIL", "dagger", f"{cli} does not exist", "fix dagger.cli in config.yaml")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("FAIL", "dagger", f"{cli} version did not answer: {exc}")
    if code != 0:
        return Finding("FAIL", "dagger", f"{cli} version exited with {code}: {out}")
    return Finding("ok", "dagger", f"{out} ({cli})")


async def _engines(settings: Settings) -> list[Finding]:
    """Probe each engine of ``dagger.engines``, or the single ``dagger.runner-host`` (all at
    once): with a connection where one tells, else with ``dagger core version`` through the
    CLI. Without either, the engine is the one the CLI starts on this machine when a build
    needs it: probing it here would start it, so it is left to the builds."""
    from pocketci_tui.engine.dagger import resolve_dagger_cli
    from pocketci_tui.engine.dispatch.health import probe_any, waiting_calls

    configured = settings.dagger.cli
    cli = resolve_dagger_cli(configured) or configured or "dagger"
    engines = settings.engine_pool() if settings.dagger.runner_host else settings.dagger.engines
    key = "dagger.engines" if settings.dagger.engines else "dagger.runner-host"
    reasons = await asyncio.gather(*(probe_any(engine, cli) for engine in engines))
    findings = []
    for engine, why in zip(engines, reasons, strict=True):
        what = f"engine {engine.name}"
        where = engine.runner_host or "the engine on this machine"
        if why:
            findings.append(
                Finding(
                    "WARN",
                    what,
                    f"cannot be reached: {why}; {waiting_calls(len(engines))}",
                    f"start the engine, or check the network and {key}",
                )
            )
        else:
            findings.append(Finding("ok", what, f"{where} answers, {engine.concurrency} slots"))
    return findings


def _control_socket(paths: AppPaths, owner: LockOwner | None) -> Finding:
    """Where the owner's control socket is and whether it answers (what `pocketci-tui`
    attaches to); without an owner, where one would serve it."""
    from pocketci_tui.control.client import greet_blocking
    from pocketci_tui.control.location import SocketLocationError, socket_candidates, socket_path
    from pocketci_tui.control.wire import PROTOCOL_VERSION

    try:
        chosen = socket_path(paths)
    except SocketLocationError as exc:
        return Finding("FAIL", "socket", str(exc))
    for candidate in socket_candidates(paths):
        hello = greet_blocking(candidate) if candidate.exists() else None
        if hello is None:
            continue
        if hello.version != PROTOCOL_VERSION:
            return Finding(
                "WARN",
                "socket",
                f"{candidate} answers with control protocol {hello.version}, this pocketci-tui "
                f"speaks {PROTOCOL_VERSION}: no UI of this version can attach to it",
                "run the same pocketci-tui version for both (restart the owner after an upgrade)",
            )
        return Finding(
            "ok",
            "socket",
            f"{candidate} answers ({hello.owner}): `pocketci-tui` attaches to it",
        )
    if owner is None:
        return Finding(
            "ok", "socket", f"{chosen} (nothing runs: an owner started now serves it there)"
        )
    return Finding(
        "WARN",
        "socket",
        f"{owner.describe()} does not answer at {chosen}: no UI can attach to it",
        "it may still be starting, or be an older pocketci-tui without a control socket: "
        "restart it",
    )


def _owner(lock_file: Path) -> LockOwner | None:
    from pocketci_tui.datalock import lock_owner

    try:
        return lock_owner(lock_file)
    except OSError:
        return None


async def _database(db: Path) -> Finding:
    """Read the database without changing it (an owner may be running on it)."""
    import os

    from pocketci_tui.store import Store, StoreError

    fix = "check the data folder's permissions and space"
    try:
        store = await Store.open_read_only(db)
    except FileNotFoundError:
        folder = _nearest_folder(db.parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            return Finding("FAIL", "database", f"{folder} is not writable: no database in it", fix)
        return Finding("ok", "database", f"{db} (not created yet: the first start creates it)")
    except StoreError as exc:
        return Finding("FAIL", "database", str(exc), fix)
    try:
        count = await store.count_events()
    except StoreError as exc:
        return Finding("FAIL", "database", str(exc), fix)
    finally:
        await store.close()
    if not os.access(db, os.W_OK):
        return Finding("FAIL", "database", f"{db} is read-only ({count} events)", fix)
    return Finding("ok", "database", f"{db} ({count} events)")


def _nearest_folder(path: Path) -> Path:
    """``path`` or its closest existing parent."""
    return next((p for p in (path, *path.parents) if p.exists()), path)


def _exposure(host: str, port: int) -> list[Finding]:
    """Warn when the listener would be reachable from other machines."""
    from pocketci_tui.intake.exposure import TUNNEL_ADVICE, is_loopback

    if is_loopback(host):
        return []
    return [
        Finding(
            "WARN",
            "listen",
            f"listen.host {host or '(empty)'} exposes the webhook listener to other machines: "
            "anyone who can reach the port can send requests",
            TUNNEL_ADVICE.replace("PORT", str(port)),
        )
    ]


def _port(host: str, port: int, owner: LockOwner | None = None) -> Finding:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                if owner is not None and owner.url.endswith(f":{port}"):
                    return Finding("ok", "port", f"{host}:{port} is served by {owner.describe()}")
                return Finding(
                    "FAIL",
                    "port",
                    f"{host}:{port} is in use (is pocketci-tui already running?)",
                    "stop the other program, or set listen.port / --port",
                )
            return Finding("FAIL", "port", f"cannot listen on {host}:{port}: {exc.strerror}")
    return Finding("ok", "port", f"{host}:{port} is free")
