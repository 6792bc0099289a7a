"""Intake throughput: signed deliveries stored durably per second by ``pocketci-tui serve``.

Side by side, in one run, against servers started as separate processes on loopback:

* ``pocketci-tui serve`` (the real command: HMAC check, strict JSON, normalization, SQLite WAL
  with ``synchronous=FULL``, group commit, reply after the commit), sent deliveries of a
  repository that is *not* in its config (each one stored and marked ignored: the intake alone);
  and again, alone, sent deliveries of a configured repository (the engine dispatching every
  event in the same process);
* a bare aiohttp hello-world handler (reads the body, answers "hello"), SPEC 6 target >= 0.5x;
* for analysis only, ``serve`` with the durable commit replaced by a no-op (NOT the product:
  nothing is stored): how fast the request path alone (verify, parse, normalize, decide, notify
  the engine, reply) can go in one Python process, beside the hello-world;
* adnanh/webhook (``/usr/bin/webhook``, Debian package ``webhook``), SPEC 6 target: serve
  >= 1.5x its rate. It is configured as a user would to run something on a signed GitHub
  delivery: one hook whose trigger rule is ``payload-hmac-sha256`` on ``X-Hub-Signature-256``
  with the same secret (GitHub's documented signature), and ``/bin/true`` as the command: the
  cheapest command there is, so the figure is webhook's own intake (it answers before the
  command ends, and stores nothing). Before measuring, one signed request must get the hook's
  "ok" and one badly signed request an error status (webhook answers 500 "Error occurred while
  evaluating hook rules"), which proves the rule really checks the HMAC;
* the terminal UI (``pocketci-tui`` with no subcommand) running in a detached tmux session of
  120x40 (the UI has no headless switch), with the same config and deliveries as the intake row,
  measured in its own phase interleaved with a headless ``serve`` ("under a burst with the UI
  running and without it").

* ``pocketci-tui serve`` as in the first row, sent Gitea's and then GitLab's deliveries
  instead (``/webhooks/gitea``: ``X-Gitea-Signature``, the bare hex HMAC; ``/webhooks/gitlab``:
  ``X-Gitlab-Token``, the secret itself, and GitLab's push body), each beside GitHub's: no
  forge may be slower than another by more than what its verification costs.

Every server gets the same client, concurrency (64 keep-alive HTTP/1.1 connections), bodies
(small signed push payloads, each request a body and ``X-GitHub-Delivery`` id of its own: the
intake refuses a body it already stored under another delivery id as a replay, so the bodies
are signed beforehand, enough of them for every round) and duration per round. The client is
``wrk`` (Debian package ``wrk``: C, epoll, one thread; a Lua hook gives each request its body
and delivery id) when installed,
else a minimal asyncio HTTP/1.1 client; either way it costs the two shared cores far less than
the servers do, and its CPU per request is printed. Rounds are interleaved; figures are medians
of the rounds (p50/p99: medians of the per-round percentiles). CPU per request is the server
process's user+system time (its children included) over the requests answered; beside it, the
cores the server used and the busiest thread's share of one core. A server whose busiest thread
is near 100% is limited by that thread: one Python process with one event loop (SPEC 3) cannot
go faster however many cores there are, while adnanh/webhook spreads over all of them.

Usage: ``.venv/bin/python tests/bench/bench_intake.py [--seconds S] [--rounds R] [--client C]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apphome import write_home
from signing import gitea_push_body, gitlab_push_body, push_body

from pocketci_tui.forges.github import sign

SECRET = "bench-webhook-secret-0123456789"
CONCURRENCY = 64
WEBHOOK_BIN = "/usr/bin/webhook"
WRK_BIN = "wrk"
CONFIGURED_REPO = "acme/api"
OTHER_REPO = "someone/else"
"""Deliveries of this repository are stored and marked ignored: it is not in any config."""

INTAKE = "serve, headless (repository not configured: stored, ignored)"
INTAKE_GITEA = "serve, headless, Gitea deliveries (repository not configured)"
INTAKE_GITLAB = "serve, headless, GitLab deliveries (repository not configured)"
ENGINE = "serve, headless (configured repository, engine dispatching)"
HELLO = "aiohttp hello-world"
WEBHOOK = "adnanh/webhook (HMAC rule, /bin/true)"
UI = "pocketci-tui UI in tmux (repository not configured)"
UI_BASE = "serve, headless, interleaved with the UI rounds"
NO_COMMIT = "analysis: serve with the commit replaced by a no-op (NOT the product)"

# The analysis server: the real `serve`, except that storing a delivery returns at once. It shows
# how much of the gap to hello-world is the request path itself (verify, parse, normalize, decide,
# notify, reply) rather than SQLite.
NO_COMMIT_SERVER = textwrap.dedent(
    """
    import dataclasses, itertools, sys
    from pocketci_tui.model import StoredEvent
    from pocketci_tui.store import Store

    ids = itertools.count(1)

    async def record_event(self, event, status, detail="", **options):
        return StoredEvent(dataclasses.replace(event, id=next(ids)), status, detail), False

    Store.record_event = record_event
    from pocketci_tui.cli import main
    sys.exit(main(["serve"]))
    """
)

HELLO_SERVER = textwrap.dedent(
    """
    import sys
    from aiohttp import web

    async def hello(request):
        await request.read()
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_post("/webhooks/github", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
    """
)


@dataclass(frozen=True)
class Form:
    """How one forge sends a push: its headers, its body, and how it signs.

    Attributes:
        vendor: The route (``/webhooks/<vendor>``).
        event_header: The header naming the event, and ``event`` its value.
        signature_header: The header carrying the signature (GitLab: the secret itself).
        delivery_header: The header carrying the delivery id.
        body: A distinct small push body per ``n`` for a repository.
        sign: The signature header's value for a body.
    """

    vendor: str
    event_header: str
    event: str
    signature_header: str
    delivery_header: str
    body: Callable[[str, int], bytes]
    sign: Callable[[bytes], str]


FORMS = {
    "github": Form(
        "github",
        "X-GitHub-Event",
        "push",
        "X-Hub-Signature-256",
        "X-GitHub-Delivery",
        lambda repository, n: push_body(repository=repository, n=n),
        lambda body: sign(SECRET, body),
    ),
    "gitea": Form(
        "gitea",
        "X-Gitea-Event",
        "push",
        "X-Gitea-Signature",
        "X-Gitea-Delivery",
        lambda repository, n: gitea_push_body(repository=repository, n=n),
        lambda body: hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    ),
    "gitlab": Form(
        "gitlab",
        "X-Gitlab-Event",
        "Push Hook",
        "X-Gitlab-Token",
        "Idempotency-Key",
        lambda repository, n: gitlab_push_body(repository=repository, n=n),
        lambda body: SECRET,
    ),
}
"""The deliveries of each forge measured, sent by the same client."""

# wrk: each request gets a pre-signed body (one "signature<TAB>body" line of BENCH_BODIES,
# from line BENCH_START on) and a delivery id of its own; the header names are the forge's.
WRK_SCRIPT = textwrap.dedent(
    """
    local bodies, signatures = {}, {}
    local start = tonumber(os.getenv("BENCH_START"))
    local n = 0
    for line in io.lines(os.getenv("BENCH_BODIES")) do
        n = n + 1
        if n > start then
            local tab = string.find(line, "\t", 1, true)
            signatures[#signatures + 1] = string.sub(line, 1, tab - 1)
            bodies[#bodies + 1] = string.sub(line, tab + 1)
        end
    end
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers[os.getenv("BENCH_EVENT_HEADER")] = os.getenv("BENCH_EVENT")
    local delivery_header = os.getenv("BENCH_DELIVERY_HEADER")
    local signature_header = os.getenv("BENCH_SIGNATURE_HEADER")
    local prefix = os.getenv("BENCH_PREFIX")
    local counter = 0
    request = function()
        local i = counter % #bodies + 1
        counter = counter + 1
        wrk.headers[delivery_header] = prefix .. "-" .. counter
        wrk.headers[signature_header] = signatures[i]
        return wrk.format(nil, nil, nil, bodies[i])
    end
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def _stat_seconds(stat_file: str, fields: slice) -> float | None:
    """CPU seconds summed over ``fields`` of a /proc ``stat`` file (after the command name,
    counted from ``state``: 11 utime, 12 stime, 13 cutime, 14 cstime); None if it is gone."""
    try:
        with open(stat_file) as f:
            stat = f.read()
    except OSError:
        return None
    ticks = sum(int(v) for v in stat[stat.rindex(")") + 2 :].split()[fields])
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of ``pid`` and its reaped children (Linux /proc), 0 if gone."""
    return _stat_seconds(f"/proc/{pid}/stat", slice(11, 15)) or 0.0


@dataclass
class Round:
    """One measurement of one server."""

    rate: float
    p50: float
    p99: float
    failures: int
    server_cpu_us: float
    client_cpu_us: float
    cores: float = 0.0
    """CPU the server used, in cores (its CPU time over the round's duration)."""
    busiest: float = 0.0
    """The busiest thread's share of one core: near 1.0, that thread is the limit."""
    sent: int = 0
    """Requests sent (each with a body of its own), those in flight at the end included."""


def _thread_cpu(pid: int) -> dict[str, float]:
    """User+system CPU seconds of each thread of ``pid`` (Linux /proc), empty if gone."""
    out: dict[str, float] = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        seconds = _stat_seconds(f"/proc/{pid}/task/{task}/stat", slice(11, 13))
        if seconds is not None:
            out[task] = seconds
    return out


@dataclass
class Server:
    """A server under test: its URL, the process to watch and how to stop it."""

    name: str
    url: str
    pid: int
    stopper: Callable[[], Awaitable[None]]
    repository: str = OTHER_REPO
    form: Form = FORMS["github"]
    """How its deliveries are sent (which forge's)."""
    rounds: list[Round] = field(default_factory=list)
    sent: int = 0
    """Bodies sent so far (each is sent once: a body sent again would be a replay)."""

    async def stop(self) -> None:
        await self.stopper()


def _proc_stopper(
    proc: asyncio.subprocess.Process, drain: asyncio.Task[None] | None = None
) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain

    return stop


async def _drain(stream: asyncio.StreamReader | None) -> None:
    if stream is None:
        return
    while await stream.read(65536):
        pass


def _prepare_home(home: Path, port: int) -> dict[str, str]:
    """Write a config listing CONFIGURED_REPO and store the webhook secret (plaintext)."""
    repos = f"[{{name: {CONFIGURED_REPO}, clone-url: 'https://127.0.0.1:9/acme/api.git'}}]"
    return write_home(home, port=port, secret=SECRET, repos=repos)


async def start_serve(
    home: Path,
    *,
    name: str,
    repository: str,
    no_commit: bool = False,
    form: Form = FORMS["github"],
) -> Server:
    """Start `pocketci-tui serve` with its own home, config and plaintext secret.

    With ``no_commit`` it is the analysis server (see NO_COMMIT_SERVER), not the product. It
    is sent ``form``'s deliveries, at that forge's URL.
    """
    port = _free_port()
    env = _prepare_home(home, port)
    command = ("-c", NO_COMMIT_SERVER) if no_commit else ("-m", "pocketci_tui", "serve")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    drain = asyncio.create_task(_drain(proc.stdout))
    await _wait_port(port)
    url = f"http://127.0.0.1:{port}/webhooks/{form.vendor}"
    return Server(name, url, proc.pid, _proc_stopper(proc, drain), repository, form)


def _tmux(*argv: str, check: bool = True) -> str:
    done = subprocess.run(
        argv, check=check, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    return done.stdout


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def start_ui(home: Path) -> Server | None:
    """Start the terminal UI in a detached tmux session (it has no headless switch)."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return None
    port = _free_port()
    env = _prepare_home(home, port)
    session = f"pocketci-bench-{uuid.uuid4().hex[:8]}"
    home_var = f"POCKETCI_TUI_HOME={env['POCKETCI_TUI_HOME']}"
    # With the command given as separate words tmux runs it without a shell, and env execs
    # the UI: the pane's pid is the UI's.
    _tmux(
        tmux,
        *("new-session", "-d", "-s", session, "-x", "120", "-y", "40"),
        *("env", home_var, sys.executable, "-m", "pocketci_tui"),
    )
    pid = int(_tmux(tmux, "list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])

    async def stop() -> None:
        _tmux(tmux, "kill-session", "-t", session, check=False)
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    try:
        await _wait_port(port)
    except RuntimeError:
        await stop()
        raise
    return Server(UI, f"http://127.0.0.1:{port}/webhooks/github", pid, stop)


async def start_hello() -> Server:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HELLO_SERVER,
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await _wait_port(port)
    url = f"http://127.0.0.1:{port}/webhooks/github"
    return Server(HELLO, url, proc.pid, _proc_stopper(proc))


def _post(url: str, body: bytes, signature: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": uuid.uuid4().hex,
            "X-Hub-Signature-256": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def start_webhook(work: Path) -> Server | None:
    """Start adnanh/webhook with an HMAC rule; prove the rule refuses a bad signature."""
    if shutil.which(WEBHOOK_BIN) is None:
        return None
    port = _free_port()
    hooks = [
        {
            "id": "github",
            "execute-command": "/bin/true",
            "command-working-directory": str(work),
            "response-message": "ok",
            "trigger-rule": {
                "match": {
                    "type": "payload-hmac-sha256",
                    "secret": SECRET,
                    "parameter": {"source": "header", "name": "X-Hub-Signature-256"},
                }
            },
        }
    ]
    hooks_file = work / "hooks.json"
    hooks_file.write_text(json.dumps(hooks))
    proc = await asyncio.create_subprocess_exec(
        WEBHOOK_BIN,
        "-hooks",
        str(hooks_file),
        "-ip",
        "127.0.0.1",
        "-port",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await _wait_port(port)
    server = Server(WEBHOOK, f"http://127.0.0.1:{port}/hooks/github", proc.pid, _proc_stopper(proc))
    body = push_body(repository=OTHER_REPO)
    good = await asyncio.to_thread(_post, server.url, body, sign(SECRET, body))
    bad = await asyncio.to_thread(_post, server.url, body, sign(SECRET + "x", body))
    if good != (200, b"ok") or bad[0] < 400 or bad[1] == b"ok":
        await server.stop()
        raise RuntimeError(f"adnanh/webhook's HMAC rule does not behave: {good} / {bad}")
    return server


# -- clients --------------------------------------------------------------------------------


_WRK_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


async def measure_wrk(url: str, bodies_file: Path, start: int, seconds: float, form: Form) -> Round:
    """Run wrk for ``seconds``: one thread, CONCURRENCY keep-alive connections, the signed
    bodies of ``bodies_file`` from line ``start`` on, with ``form``'s headers."""
    script = bodies_file.with_suffix(".lua")
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_BODIES": str(bodies_file),
        "BENCH_START": str(start),
        "BENCH_PREFIX": uuid.uuid4().hex,
        "BENCH_EVENT_HEADER": form.event_header,
        "BENCH_EVENT": form.event,
        "BENCH_SIGNATURE_HEADER": form.signature_header,
        "BENCH_DELIVERY_HEADER": form.delivery_header,
    }
    proc = await asyncio.create_subprocess_exec(
        WRK_BIN,
        "-t1",
        f"-c{CONCURRENCY}",
        f"-d{seconds:g}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        str(script),
        url,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out_bytes, _ = await proc.communicate()
    out = out_bytes.decode(errors="replace")
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if proc.returncode != 0 or done is None:
        raise RuntimeError(f"wrk failed: {out}")
    requests = int(done.group(1))
    elapsed = float(done.group(2)) * (60.0 if done.group(3) == "m" else 1.0)
    lat = {q: float(v) * _WRK_UNITS[u] for q, v, u in _WRK_LATENCY.findall(out)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in errors.groups()) if errors else 0
    )
    return Round(
        requests / elapsed,
        lat.get("50", 0.0),
        lat.get("99", 0.0),
        failures,
        0.0,
        0.0,
        sent=requests + CONCURRENCY,
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return its status and whether the server closes."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    chunked = False
    close = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def measure_asyncio(
    url: str, bodies: list[tuple[bytes, str]], start: int, seconds: float, form: Form
) -> Round:
    """The fallback client: a minimal HTTP/1.1 client on asyncio streams, in this process,
    sending the signed ``bodies`` from ``start`` on, with ``form``'s headers."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    prefix = (
        f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
        f"{form.event_header}: {form.event}\r\n"
    ).encode()
    heads = [
        b"Content-Length: %d\r\n%s: %s\r\n%s: "
        % (
            len(body),
            form.signature_header.encode(),
            signature.encode(),
            form.delivery_header.encode(),
        )
        for body, signature in bodies
    ]
    run_id = uuid.uuid4().hex.encode()
    latencies: list[float] = []
    failures = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal failures, counter
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                i = (start + counter) % len(bodies)
                counter += 1
                t0 = time.perf_counter()
                writer.write(prefix + heads[i] + run_id + b"-%d\r\n\r\n" % counter + bodies[i][0])
                status, close = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if not 200 <= status < 300:
                    failures += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    return Round(
        len(latencies) / elapsed,
        _pct(latencies, 0.5),
        _pct(latencies, 0.99),
        failures,
        0.0,
        0.0,
        sent=counter,
    )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


MAX_RATE = 8000
"""Requests a second no server here reaches: how many bodies to sign per second measured."""


@dataclass
class Client:
    """Sends the burst: wrk when installed, else the asyncio client.

    Each server gets every body once at most (its database stores them all), in order over its
    rounds; ``count`` bodies are signed per repository.
    """

    kind: str
    work: Path
    count: int
    bodies: dict[tuple[str, str], list[tuple[bytes, str]]] = field(default_factory=dict)
    body_files: dict[tuple[str, str], Path] = field(default_factory=dict)

    def _bodies(self, form: Form, repository: str) -> list[tuple[bytes, str]]:
        bodies = self.bodies.get((form.vendor, repository))
        if bodies is None:
            bodies = []
            for n in range(self.count):
                body = form.body(repository, n)
                bodies.append((body, form.sign(body)))
            self.bodies[form.vendor, repository] = bodies
        return bodies

    async def measure(self, server: Server, seconds: float) -> Round:
        key = (server.form.vendor, server.repository)
        bodies = self._bodies(server.form, server.repository)
        cpu0, client0 = _cpu_seconds(server.pid), _client_cpu()
        threads0, started = _thread_cpu(server.pid), time.perf_counter()
        if self.kind == "wrk":
            body_file = self.body_files.get(key)
            if body_file is None:
                body_file = self.work / f"bodies-{len(self.body_files)}.txt"
                body_file.write_bytes(b"".join(b"%s\t%s\n" % (s.encode(), b) for b, s in bodies))
                self.body_files[key] = body_file
            result = await measure_wrk(server.url, body_file, server.sent, seconds, server.form)
        else:
            result = await measure_asyncio(server.url, bodies, server.sent, seconds, server.form)
        server.sent += result.sent
        elapsed = time.perf_counter() - started
        threads = _thread_cpu(server.pid)
        answered = max(1.0, result.rate * seconds)
        result.cores = (_cpu_seconds(server.pid) - cpu0) / elapsed
        result.busiest = (
            max((t - threads0.get(tid, 0.0) for tid, t in threads.items()), default=0.0) / elapsed
        )
        result.server_cpu_us = (_cpu_seconds(server.pid) - cpu0) / answered * 1e6
        result.client_cpu_us = (_client_cpu() - client0) / answered * 1e6
        return result


def _client_cpu() -> float:
    """CPU of this process and its reaped children (wrk runs as one)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _children(pid: int) -> int:
    """How many child processes ``pid`` has right now (Linux /proc), 0 if unknown."""
    count = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                count += len(f.read().split())
    except OSError:
        return 0
    return count


async def _settle(server: Server, limit: float = 20.0) -> None:
    """Wait until the server has no child processes left (webhook runs one per delivery,
    after answering) and has gone quiet (under 20% of a core over 0.5 s: the UI may still be
    working through the deliveries of the round), so its backlog does not slow the next server
    measured. Gives up after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while _children(server.pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    while time.monotonic() < deadline:
        before = _cpu_seconds(server.pid)
        await asyncio.sleep(0.5)
        if _cpu_seconds(server.pid) - before < 0.1:
            break


async def _rounds(client: Client, servers: list[Server], seconds: float, rounds: int) -> None:
    for s in servers:  # warm up: imports, connections, first pages of the database
        await client.measure(s, min(1.0, seconds))
        await _settle(s)
    for _ in range(rounds):
        for s in servers:
            s.rounds.append(await client.measure(s, seconds))
            await _settle(s)


def _summary(server: Server) -> Round:
    """Medians over the rounds of one server (failures: the sum)."""
    r = server.rounds
    return Round(
        statistics.median(x.rate for x in r),
        statistics.median(x.p50 for x in r),
        statistics.median(x.p99 for x in r),
        sum(x.failures for x in r),
        statistics.median(x.server_cpu_us for x in r),
        statistics.median(x.client_cpu_us for x in r),
        statistics.median(x.cores for x in r),
        statistics.median(x.busiest for x in r),
    )


async def _run(seconds: float, rounds: int, client_kind: str) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="pocketci-bench-intake-"))
    client = Client(client_kind, work, int(MAX_RATE * (seconds * rounds + min(1.0, seconds))))
    measured: dict[str, Round] = {}
    servers: list[Server] = []
    try:
        # Phase 1, interleaved: the intake alone, the hello-world, adnanh/webhook.
        servers.append(await start_serve(work / "serve-intake", name=INTAKE, repository=OTHER_REPO))
        # The same intake sent Gitea's and GitLab's deliveries, each at its own URL.
        for name, vendor in ((INTAKE_GITEA, "gitea"), (INTAKE_GITLAB, "gitlab")):
            servers.append(
                await start_serve(
                    work / f"serve-intake-{vendor}",
                    name=name,
                    repository=OTHER_REPO,
                    form=FORMS[vendor],
                )
            )
        servers.append(await start_hello())
        servers.append(
            await start_serve(
                work / "serve-no-commit", name=NO_COMMIT, repository=OTHER_REPO, no_commit=True
            )
        )
        webhook_server = await start_webhook(work)
        if webhook_server is not None:
            servers.append(webhook_server)
        await _rounds(client, servers, seconds, rounds)
        for s in servers:
            measured[s.name] = _summary(s)
            await s.stop()
        # Phase 2, alone (its engine keeps cloning in the background, which would slow the
        # others): serve with a configured repository, every event dispatched.
        servers = [
            await start_serve(work / "serve-engine", name=ENGINE, repository=CONFIGURED_REPO)
        ]
        await _rounds(client, servers, seconds, rounds)
        measured[ENGINE] = _summary(servers[0])
        await servers[0].stop()
        # Phase 3, interleaved: the UI (in tmux) and a headless serve, same deliveries.
        servers = []
        ui = await start_ui(work / "ui")
        if ui is not None:
            servers.append(ui)
            servers.append(
                await start_serve(work / "serve-ui-base", name=UI_BASE, repository=OTHER_REPO)
            )
            await _rounds(client, servers, seconds, rounds)
            for s in servers:
                measured[s.name] = _summary(s)
    finally:
        for s in servers:
            await s.stop()
        shutil.rmtree(work, ignore_errors=True)
    return _rows(measured, client_kind)


def _rows(m: dict[str, Round], client_kind: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, s in m.items():
        rows.append(
            {
                "name": f"intake: {name}",
                "target": "",
                "value": round(s.rate),
                "unit": "req/s",
                "comparison": f"p50 {s.p50:.1f} ms, p99 {s.p99:.1f} ms, non-2xx/errors "
                f"{s.failures}, server CPU {s.server_cpu_us:.0f} us/req on {s.cores:.2f} "
                f"cores (busiest thread {s.busiest:.0%} of a core), client ({client_kind}) "
                f"{s.client_cpu_us:.0f} us/req",
                "ok": s.failures == 0 and s.rate > 0,
            }
        )
    intake, engine = m[INTAKE], m[ENGINE]
    ratio_hello = intake.rate / m[HELLO].rate
    rows.append(
        {
            "name": "intake: serve / aiohttp hello-world",
            "target": ">= 0.5x",
            "value": round(ratio_hello, 2),
            "unit": "x",
            "comparison": f"{intake.rate:,.0f} vs {m[HELLO].rate:,.0f} req/s "
            f"(with the engine dispatching: {engine.rate / m[HELLO].rate:.2f}x; "
            f"analysis, with no commit at all: {m[NO_COMMIT].rate / m[HELLO].rate:.2f}x)",
            "ok": ratio_hello >= 0.5 and intake.failures == 0,
        }
    )
    for name, label in ((INTAKE_GITEA, "Gitea"), (INTAKE_GITLAB, "GitLab")):
        other = m[name]
        ratio = other.rate / intake.rate
        rows.append(
            {
                "name": f"intake: {label} deliveries / GitHub deliveries",
                "target": ">= 0.85x",
                "value": round(ratio, 2),
                "unit": "x",
                "comparison": f"{other.rate:,.0f} vs {intake.rate:,.0f} req/s; server CPU "
                f"{other.server_cpu_us:.0f} vs {intake.server_cpu_us:.0f} us/req; p50 "
                f"{other.p50:.1f} vs {intake.p50:.1f} ms, p99 {other.p99:.1f} vs "
                f"{intake.p99:.1f} ms",
                "ok": ratio >= 0.85 and other.failures == 0,
            }
        )
    if WEBHOOK in m:
        ratio_webhook = intake.rate / m[WEBHOOK].rate
        rows.append(
            {
                "name": "intake: serve / adnanh/webhook (HMAC)",
                "target": ">= 1.5x",
                "value": round(ratio_webhook, 2),
                "unit": "x",
                "comparison": f"{intake.rate:,.0f} vs {m[WEBHOOK].rate:,.0f} req/s "
                f"(with the engine dispatching: {engine.rate / m[WEBHOOK].rate:.2f}x)",
                "ok": ratio_webhook >= 1.5 and intake.failures == 0,
            }
        )
    else:
        rows.append(
            {
                "name": "intake: serve / adnanh/webhook (HMAC)",
                "target": ">= 1.5x",
                "value": "n/a",
                "unit": "x",
                "comparison": f"{WEBHOOK_BIN} is not installed (apt install webhook)",
                "ok": False,
            }
        )
    if UI in m:
        ui, base = m[UI], m[UI_BASE]
        rows.append(
            {
                "name": "intake: with the UI running / headless",
                "target": "",
                "value": round(ui.rate / base.rate, 2),
                "unit": "x",
                "comparison": f"{ui.rate:,.0f} vs {base.rate:,.0f} req/s; p50 {ui.p50:.1f} vs "
                f"{base.p50:.1f} ms, p99 {ui.p99:.1f} vs {base.p99:.1f} ms (wrk counts only the "
                "replies that came within the round)",
                "ok": ui.failures == 0 and ui.rate > 0,
            }
        )
    else:
        rows.append(
            {
                "name": "intake: with the UI running / headless",
                "target": "",
                "value": "n/a",
                "unit": "x",
                "comparison": "tmux is not installed",
                "ok": False,
            }
        )
    return rows


def run(seconds: float = 4.0, rounds: int = 3, client: str = "auto") -> list[dict[str, Any]]:
    """Run the benchmark; return one row per figure for the suite runner.

    Args:
        seconds: Duration of one round against one server.
        rounds: Interleaved rounds per server (the median is reported).
        client: ``wrk``, ``asyncio``, or ``auto`` (wrk when installed).

    Returns:
        Rows with ``name``, ``target``, ``value``, ``unit``, ``comparison`` and ``ok``.
    """
    if client == "auto":
        client = "wrk" if shutil.which(WRK_BIN) else "asyncio"
    return asyncio.run(_run(seconds, rounds, client))


def main() -> None:
    """Print the figures as a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    args = parser.parse_args()
    rows = run(args.seconds, args.rounds, args.client)
    print(f"{'benchmark':<72} {'value':>9} {'unit':<6} {'target':<8} ok   details")
    for r in rows:
        value = f"{r['value']:,}" if isinstance(r["value"], int | float) else str(r["value"])
        print(
            f"{r['name']:<72} {value:>9} {r['unit']:<6} {r['target']:<8} "
            f"{'yes' if r['ok'] else 'NO ':<4} {r['comparison']}"
        )


if __name__ == "__main__":
    main()
