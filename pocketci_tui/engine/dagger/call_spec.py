"""What a ``dagger call`` child gets: its argv, its environment and its event trigger file.

* Secret values reach the child only through its environment, as ``POCKETCI_SECRET_<ARG>``
  variables named by ``--<arg> env://POCKETCI_SECRET_<ARG>`` references. argv never holds a
  secret value (it is built from names only), so it can be stored with the run.
* The child's environment is not the application's. It starts from a short allow-list of the
  parent's variables (see :data:`ENV_ALLOW`) or from ``base_env`` when given; any variable
  whose name looks like a credential is dropped either way, and so is anything in the
  ``POCKETCI_`` namespace. ``SSH_AUTH_SOCK`` is deliberately not passed: a module's
  ``dagger.json`` could otherwise use the agent to fetch private dependencies.
* Each call gets a private directory (mode 0700) with the event trigger file (mode 0600) and
  an empty working directory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pocketci_tui.engine.match import kebab
from pocketci_tui.forges.registry import forge_for
from pocketci_tui.model import Event, FunctionCall

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
        spec: The ``pocketci.yaml`` spec the function belongs to (empty for a single spec);
            also written into the event trigger file.
    """

    run_id: str
    call: FunctionCall
    event: Event
    module_dir: Path
    checkout_dir: Path
    changes: Sequence[str] | None
    secrets: Mapping[str, str]
    log_path: Path
    spec: str = ""


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


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_argv(cli: str, req: CallRequest, event_file: Path) -> list[str]:
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
        cli: The CLI to run.
        req: The call.
        event_file: The event trigger file.

    Returns:
        The argv list; it holds no secret value.
    """
    argv = [
        cli,
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


def _parent_env(base_env: Mapping[str, str] | None) -> dict[str, str]:
    """The allow-listed part of ``os.environ`` (or ``base_env``), credential-looking names
    dropped, with a ``PATH``."""
    if base_env is not None:
        env = {k: v for k, v in base_env.items() if not _looks_secret(k)}
    else:
        env = {
            k: v
            for k, v in os.environ.items()
            if (k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)) and not _looks_secret(k)
        }
    env.setdefault("PATH", os.defpath)
    return env


def probe_env(runner_host: str) -> dict[str, str]:
    """The environment of a ``dagger`` command that only reaches an engine (no secret, no
    cloud token): what a call gets from the parent, Dagger's quiet switches, the engine."""
    env = _parent_env(None)
    env.update(
        {"DAGGER_NO_NAG": "1", "DAGGER_NO_UPDATE_CHECK": "1", "DO_NOT_TRACK": "1", "NO_COLOR": "1"}
    )
    if runner_host:
        env["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] = runner_host
    return env


def build_env(
    dagger: DaggerEnv, base_env: Mapping[str, str] | None, req: CallRequest, event_file: Path
) -> dict[str, str]:
    """Return the complete environment of the ``dagger call`` child.

    Args:
        dagger: The CLI and engine settings (engine, cloud token).
        base_env: The environment to start from instead of the allow-listed part of
            ``os.environ``, if any.
        req: The call.
        event_file: The event trigger file (``GITHUB_EVENT_PATH``).

    Returns:
        Allow-listed parent variables (or ``base_env``) without credential-looking names,
        plus ``CI``, ``GITHUB_*``, Dagger's quiet switches, ``NO_COLOR``, the configured
        engine and cloud token, and ``POCKETCI_SECRET_*`` for this call's secrets only.
    """
    env = _parent_env(base_env)
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
    if dagger.cloud_token:
        env["DAGGER_CLOUD_TOKEN"] = dagger.cloud_token
    if dagger.runner_host:
        env["_EXPERIMENTAL_DAGGER_RUNNER_HOST"] = dagger.runner_host
    for name in req.call.secrets:
        if name in req.secrets:
            env[secret_env_var(name)] = req.secrets[name]
    return env


def event_trigger(req: CallRequest) -> dict[str, object]:
    """Return the content of the event trigger file (SPEC 4.7).

    ``changes`` is null when the changed files could not be computed; ``payload`` is the
    raw payload decoded (null if it is not JSON). ``ref`` and ``sha`` are what was checked out;
    ``commit_source`` says where they came from: ``payload``, or, for events whose payload
    names no commit, ``release tag``, ``release target branch``, ``created branch``, ``created
    tag`` or ``default branch`` (repository-level events such as ``issues``). ``spec`` names
    the ``pocketci.yaml`` spec of the function, for a repository listing several (else empty).
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
        "commit_source": forge_for(event.vendor).commit_source(event),
        "base_ref": event.base_ref,
        "base_sha": event.base_sha,
        "changes": None if req.changes is None else list(req.changes),
        "delivery_id": event.delivery_id,
        "run_id": req.run_id,
        "spec": req.spec,
        "received_at": _iso_utc(event.received_at),
        "payload": payload,
    }


def prepare_call_dir(work_dir: Path, req: CallRequest) -> tuple[Path, Path, Path]:
    """Create the call's private directory with the event file and an empty cwd.

    Returns:
        The directory (remove it when the call is over), the event file and the cwd.
    """
    work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", req.run_id)[:40] or "run"
    tmp = Path(tempfile.mkdtemp(prefix=f"call-{safe_id}-", dir=work_dir))
    try:
        event_file = tmp / "event.json"
        data = json.dumps(event_trigger(req), ensure_ascii=False).encode("utf-8")
        fd = os.open(event_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        cwd = tmp / "cwd"
        cwd.mkdir(mode=0o700)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, event_file, cwd
