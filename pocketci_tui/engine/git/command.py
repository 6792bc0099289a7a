"""A small, hardened runner for git commands.

Every git process started here:

* gets an argument list (never a shell), ``stdin`` closed, ``stdout``/``stderr`` piped;
* runs in its own session and process group, with no controlling terminal, so neither git nor
  ssh nor a credential prompt can ever read from or draw on the terminal the UI owns; a timeout
  or a cancellation kills the whole group (``git-remote-https``, ``index-pack``, ``ssh``...);
* sees a clean environment: no inherited ``GIT_*`` variable, no system or global git config
  (``GIT_CONFIG_NOSYSTEM=1``, ``GIT_CONFIG_GLOBAL=/dev/null``), ``HOME`` pointing at a private
  empty directory (so no ``~/.netrc`` or ``~/.gitconfig`` of the user leaks in), the C locale
  (so error messages are predictable), ``GIT_TERMINAL_PROMPT=0`` and a ``GIT_ASKPASS`` program
  that always refuses;
* gets ``-c`` options that forbid every transport except the ones the caller allows
  (``protocol.allow=never``; ``ext`` is never allowed), disable hooks, submodule recursion,
  redirects, automatic garbage collection and every credential helper but ours.

A token for the remote is handed to git as :mod:`.credentials` says (through the environment of
the git process only); it is never in a URL, an argument or a file, and every message this
module produces has it masked (also in its base64 form).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pocketci_tui.engine.git.credentials import (
    DEFAULT_USERNAME,
    Credentials,
    credential_env_names,
    install_helpers,
)
from pocketci_tui.engine.git.errors import GitError, GitTimeoutError
from pocketci_tui.engine.proc import close_pipes
from pocketci_tui.paths import PRIVATE_UMASK

__all__ = [
    "DEFAULT_USERNAME",
    "FORBIDDEN_PROTOCOLS",
    "MIN_GIT_VERSION",
    "Credentials",
    "GitCommand",
    "GitError",
    "GitResult",
    "GitTimeoutError",
    "credential_env_names",
    "hardening_config",
    "install_helpers",
    "url_protocol",
]

FORBIDDEN_PROTOCOLS = frozenset({"ext", "fd"})
"""Transports never allowed, whatever the configuration says: they run arbitrary commands."""

PASSTHROUGH_ENV = (
    "PATH",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
"""Variables of our own environment that git may see (proxies, CA bundles, the ssh agent)."""


@dataclass(frozen=True, slots=True)
class GitResult:
    """What a finished git command returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """True when git exited with status 0."""
        return self.returncode == 0


def url_protocol(url: str) -> str:
    """Return the transport git would use for a URL, the name ``protocol.<name>.allow`` uses.

    Args:
        url: A clone URL: ``scheme://...``, ``transport::address``, scp-like ``host:path`` or a
            local path.

    Returns:
        ``https``, ``http``, ``ssh``, ``git``, ``file``, or a remote helper's name.
    """
    head, sep, _ = url.partition("://")
    if sep and head and all(c.isalnum() or c in "+-." for c in head):
        scheme = head.lower()
        if scheme in ("git+ssh", "ssh+git"):
            return "ssh"
        return scheme
    helper, sep, _ = url.partition("::")
    if sep and helper and all(c.isalnum() or c in "+-." for c in helper):
        return helper.lower()
    colon = url.find(":")
    slash = url.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        return "ssh"
    return "file"


def hardening_config(protocols: Iterable[str] = ()) -> list[str]:
    """The ``-c`` options given to every git command.

    Args:
        protocols: Transports this command may use; everything else is forbidden.

    Returns:
        An argument list (``["-c", "key=value", ...]``) to put right after ``git``.
    """
    items = [
        "protocol.allow=never",
        *(f"protocol.{p}.allow=always" for p in sorted(set(protocols))),
        "core.hooksPath=/dev/null",
        "core.fsmonitor=false",
        "core.sshCommand=ssh -o BatchMode=yes",
        "submodule.recurse=false",
        "fetch.recurseSubmodules=false",
        "http.followRedirects=false",
        "credential.helper=",
        "gc.auto=0",
        "maintenance.auto=false",
        "fetch.unpackLimit=1",
        "transfer.unpackLimit=1",
        "protocol.version=2",
        "advice.detachedHead=false",
        "init.defaultBranch=main",
    ]
    for proto in FORBIDDEN_PROTOCOLS:
        items.append(f"protocol.{proto}.allow=never")
    out: list[str] = []
    for item in items:
        out += ["-c", item]
    return out


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "***")
    return text


REAP_SECONDS = 5.0
"""How long a killed git gets to be reaped before its pipes are closed by hand."""


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Kill git's process group and reap it, without hanging on pipes a stray may hold.

    On Python 3.11 ``Process.wait()`` also waits for the pipes to close, so the wait is bounded
    and the pipes are closed by hand when it runs out.
    """
    _kill_group(proc)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), REAP_SECONDS)
    except TimeoutError:
        close_pipes(proc)


class GitCommand:
    """Runs git with a hardened, private environment.

    Making one touches no file: the private home and its helper programs are written when
    the first command is built, so a workspace can be set up before its folder may be written.

    Args:
        home: A private directory used as ``HOME`` and for the helper programs (created with
            mode 0700 on first use).
        timeout: Default time limit of one command, in seconds.
        git: The git executable.
    """

    def __init__(self, home: Path, *, timeout: float = 300.0, git: str = "git") -> None:
        self.home = home
        self.timeout = timeout
        self.git = git
        self._helpers: tuple[Path, Path] | None = None

    @property
    def helper(self) -> Path:
        """The credential helper program (written on first use)."""
        return self._installed()[0]

    @property
    def askpass(self) -> Path:
        """The askpass program that always refuses (written on first use)."""
        return self._installed()[1]

    def _installed(self) -> tuple[Path, Path]:
        if self._helpers is None:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._helpers = install_helpers(self.home / "bin")
        return self._helpers

    async def check_version(self) -> tuple[int, ...]:
        """Make sure git is installed and recent enough.

        Returns:
            The version, e.g. ``(2, 39, 5)``.

        Raises:
            GitError: git is missing, or older than :data:`MIN_GIT_VERSION`.
        """
        res = await self.run(["--version"], time_limit=30, what="git --version")
        version = parse_git_version(res.stdout.decode("utf-8", "replace"))
        if version[:2] < MIN_GIT_VERSION:
            found = ".".join(map(str, version)) or res.stdout.decode(errors="replace").strip()
            need = ".".join(map(str, MIN_GIT_VERSION))
            raise GitError(f"git {need} or newer is needed; found {found or 'nothing usable'}")
        return version

    def environment(self, credentials: Credentials | None = None) -> dict[str, str]:
        """The environment of a git process (see the module documentation)."""
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.setdefault("PATH", os.defpath)
        env.update(
            {
                "HOME": str(self.home),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "LC_ALL": "C",
                "LANG": "C",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_ASKPASS": str(self.askpass),
                "SSH_ASKPASS": str(self.askpass),
                "SSH_ASKPASS_REQUIRE": "never",
                "GIT_PROTOCOL_FROM_USER": "0",
                "GIT_NO_LAZY_FETCH": "1",
                "GIT_OPTIONAL_LOCKS": "0",
            }
        )
        if credentials is not None:
            env.update(credentials.env())
        return env

    def argv(
        self,
        args: Sequence[str],
        *,
        git_dir: Path | None = None,
        protocols: Iterable[str] = (),
        credentials: Credentials | None = None,
    ) -> list[str]:
        """Build the full argument list of a command (exposed for tests)."""
        argv = [self.git, *hardening_config(protocols)]
        if credentials is not None and not credentials.preemptive:
            argv += ["-c", "credential.helper=!" + shlex.quote(str(self.helper))]
        if git_dir is not None:
            argv += ["--git-dir", str(git_dir)]
        return [*argv, *args]

    async def run(
        self,
        args: Sequence[str],
        *,
        git_dir: Path | None = None,
        cwd: Path | None = None,
        protocols: Iterable[str] = (),
        credentials: Credentials | None = None,
        time_limit: float | None = None,
        check: bool = True,
        what: str = "",
        max_output: int | None = None,
    ) -> GitResult:
        """Run one git command and collect its output.

        Args:
            args: The git arguments after the global options (``["fetch", ...]``).
            git_dir: Passed as ``--git-dir``.
            cwd: Working directory (defaults to the private home directory).
            protocols: Transports this command may use.
            credentials: A token for the remote, given to git by the credential helper.
            time_limit: Time limit in seconds (default: the runner's).
            check: Raise :class:`GitError` when git exits with a non-zero status.
            what: A short description for error messages (``"fetch from https://..."``).
            max_output: The most bytes of standard output kept; git is stopped and the
                command fails when it writes more (a remote listing untold refs). None: all.

        Returns:
            The result.

        Raises:
            GitTimeoutError: The time limit passed; the process group was killed.
            GitError: git could not be started, or failed and ``check`` is true.
        """
        limit = self.timeout if time_limit is None else time_limit
        argv = self.argv(args, git_dir=git_dir, protocols=protocols, credentials=credentials)
        secrets = credentials.masked_forms() if credentials is not None else []
        label = what or f"git {args[0] if args else ''}".strip()
        if limit <= 0:
            raise GitTimeoutError(_mask(f"{label}: no time left", secrets))
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(cwd or self.home),
                env=self.environment(credentials),
                start_new_session=True,
                umask=PRIVATE_UMASK,  # mirrors and checkouts hold private source
            )
        except OSError as exc:
            raise GitError(f"{label}: cannot start git: {exc.strerror or exc}") from None
        try:
            stdout, stderr = await asyncio.wait_for(_communicate(proc, max_output), limit)
        except _TooMuchOutput:
            await _stop(proc)
            raise GitError(
                _mask(f"{label}: more than {max_output} bytes of output; stopped", secrets)
            ) from None
        except TimeoutError:
            await _stop(proc)
            raise GitTimeoutError(
                _mask(f"{label}: timed out after {limit:.1f} s and was stopped", secrets)
            ) from None
        except BaseException:
            with contextlib.suppress(BaseException):
                await _stop(proc)
            raise
        result = GitResult(tuple(args), proc.returncode or 0, stdout, stderr)
        if check and not result.ok:
            summary = describe_failure(result)
            if credentials is not None and credentials.preemptive and _refused(result):
                # The header was sent and answered 401; with no helper git then fails asking
                # for a user name. Say what happened instead.
                summary = (
                    f"Authentication failed: {credentials.origin} refused the token (HTTP 401);"
                    " check the token and its access to this repository"
                )
            raise GitError(_mask(f"{label} failed: {summary}", secrets))
        return result


class _TooMuchOutput(Exception):
    """git wrote more standard output than the caller keeps."""


STDERR_KEPT = 64 * 1024
"""The most bytes of git's standard error kept when its output is bounded."""


async def _communicate(
    proc: asyncio.subprocess.Process, max_output: int | None
) -> tuple[bytes, bytes]:
    """``proc.communicate()``, keeping at most ``max_output`` bytes of standard output.

    Raises:
        _TooMuchOutput: git wrote more than that.
    """
    if max_output is None:
        return await proc.communicate()
    assert proc.stdout is not None
    assert proc.stderr is not None

    async def drain(stream: asyncio.StreamReader, most: int, strict: bool) -> bytes:
        kept = bytearray()
        while chunk := await stream.read(65536):
            if len(kept) + len(chunk) > most:
                if strict:
                    raise _TooMuchOutput
                chunk = chunk[: max(0, most - len(kept))]
            kept += chunk
        return bytes(kept)

    out, err = await asyncio.gather(
        drain(proc.stdout, max_output, True), drain(proc.stderr, STDERR_KEPT, False)
    )
    await proc.wait()
    return out, err


def _refused(result: GitResult) -> bool:
    """Whether git stopped at a 401 (it wanted credentials it has no way to get)."""
    text = result.stderr.decode("utf-8", "replace")
    return "could not read Username" in text or "could not read Password" in text


MIN_GIT_VERSION = (2, 32)
"""Oldest git with every option relied on (``GIT_CONFIG_GLOBAL`` is the newest of them; an
older git would silently read the user's global config)."""


def parse_git_version(text: str) -> tuple[int, ...]:
    """``git version 2.39.5`` (or ``2.39.5.windows.1``...) -> ``(2, 39, 5)``; () if unknown."""
    match = re.search(r"git version (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return ()
    return tuple(int(g) for g in match.groups() if g is not None)


def describe_failure(result: GitResult) -> str:
    """Summarize git's complaint: its ``fatal:``/``error:`` lines, else its last lines."""
    text = result.stderr.decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    important = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    chosen = (important or lines)[-3:]
    summary = " / ".join(chosen) if chosen else f"exit status {result.returncode}"
    if re.search(r"returned error: 30[1278]", text):
        summary += (
            " (the remote redirects; redirects are not followed so the token stays with the"
            " configured host: set the clone URL to the new address)"
        )
    return summary[:600]


def deadline_left(deadline: float) -> float:
    """Seconds left until a ``time.monotonic()`` deadline (never negative)."""
    return max(0.0, deadline - time.monotonic())
