"""A real git smart-HTTP server for tests: git's own ``git http-backend`` behind basic auth.

The server listens on a loopback address in a background thread and runs
``$(git --exec-path)/git-http-backend`` as a CGI program for every request, with the bare
repositories found under ``project_root``. It records every request (and the ``Authorization``
header it carried), and can be switched into modes that misbehave:

* ``"serve"``: check basic auth (when a password is set), then run the backend;
* ``"hang"``: accept the request and never answer (until the server stops);
* ``"redirect"``: answer ``302`` to the same path on ``redirect_to`` (another server); with
  ``redirect_requires_auth`` only once the client has authenticated (``401`` before).

Protocol v2 is passed through (the ``Git-Protocol`` header becomes ``GIT_PROTOCOL``) unless
``protocol_v2=False``, which makes the backend speak v0 (where unadvertised commits are refused
unless the repository allows them).

A response's headers and body go out in two writes. Without ``nodelay=True`` (``TCP_NODELAY``,
which production web servers set) Nagle's algorithm holds the body back until the client ACKs
the headers, which on loopback costs up to ~40 ms (delayed ACK) for most responses after the
first of a connection.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

__all__ = ["TEST_TOKEN", "GitHttpServer", "SeenRequest", "http_backend_path"]

TEST_TOKEN = "ghs_testTOKEN_0123456789abcdef"
"""The token the servers of the shared fixtures (``git_server``, ``strict_server``) expect."""


def http_backend_path() -> str:
    """The path of ``git-http-backend`` of the installed git."""
    exec_path = subprocess.run(
        ["git", "--exec-path"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout.strip()
    return os.path.join(exec_path, "git-http-backend")


@dataclass(frozen=True)
class SeenRequest:
    """One request as the server saw it."""

    server: str
    method: str
    path: str
    query: str
    authorization: str | None
    git_protocol: str | None
    status: int


class GitHttpServer:
    """Serve the bare repositories under a directory over smart HTTP.

    Args:
        project_root: Directory holding the bare repositories (``<root>/<name>.git``).
        host: Loopback address to bind (``127.0.0.1``, ``127.0.0.2``...).
        username: The user name basic auth expects; None accepts any (Gitea and Forgejo
            take a token as the password of any user).
        password: The password (token) basic auth expects; None serves without auth.
        protocol_v2: Pass the client's ``Git-Protocol`` header to the backend.
        nodelay: Set ``TCP_NODELAY`` on accepted connections.
    """

    def __init__(
        self,
        project_root: Path,
        *,
        host: str = "127.0.0.1",
        username: str | None = "x-access-token",
        password: str | None = None,
        protocol_v2: bool = True,
        nodelay: bool = False,
    ) -> None:
        self.project_root = Path(project_root)
        self.host = host
        self.username = username
        self.password = password
        self.protocol_v2 = protocol_v2
        self.nodelay = nodelay
        self.mode = "serve"
        self.redirect_to: str | None = None
        self.redirect_requires_auth = False
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._backend = http_backend_path()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> GitHttpServer:
        """Bind a free port and serve in a daemon thread."""
        handler = _make_handler(self)
        httpd = ThreadingHTTPServer((self.host, 0), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.02,), name="githttp", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release hung requests."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and records ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        assert self._httpd is not None, "server not started"
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def url(self, repo: str) -> str:
        """The clone URL of a repository under the project root (``name.git``)."""
        return f"{self.base_url}/{repo}"

    def record(self, seen: SeenRequest) -> None:
        """Remember a request (thread-safe)."""
        with self._lock:
            self.requests.append(seen)

    def seen(self) -> list[SeenRequest]:
        """A copy of the requests recorded so far."""
        with self._lock:
            return list(self.requests)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def expected_authorization(self) -> str | None:
        """The ``Authorization`` header value a correct client sends (any user: the first
        user a client sent with the right password, else ``any``)."""
        if self.password is None:
            return None
        raw = f"{self.username or 'any'}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def authorized(self, header: str | None) -> bool:
        """Whether a request's ``Authorization`` header passes (always, without a password)."""
        if self.password is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = (
                base64.b64decode(header[6:], validate=True).decode().partition(":")
            )
        except ValueError:
            return False
        if not sep or password != self.password:
            return False
        return self.username is None or user == self.username

    def wait_for_stop(self, seconds: float) -> None:
        """Block (a hung request) until the server stops or the time passes."""
        self._stopping.wait(seconds)

    def run_backend(self, env: dict[str, str], body: bytes) -> bytes:
        """Run ``git http-backend`` with a CGI environment and return its raw output."""
        res = subprocess.run(
            [self._backend],
            input=body,
            capture_output=True,
            env=env,
            check=False,
            timeout=60,
        )
        return res.stdout


def _make_handler(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - its handler class counts in
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = server.nodelay

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _record(self, status: int) -> None:
            parts = urlsplit(self.path)
            server.record(
                SeenRequest(
                    server=server.host,
                    method=self.command,
                    path=parts.path,
                    query=parts.query,
                    authorization=self.headers.get("Authorization"),
                    git_protocol=self.headers.get("Git-Protocol"),
                    status=status,
                )
            )

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            body = self._read_body()
            if server.mode == "hang":
                self._record(0)
                server.wait_for_stop(120)
                self.close_connection = True
                return
            expected = server.expected_authorization()
            authorized = server.authorized(self.headers.get("Authorization"))
            if server.mode == "redirect" and (authorized or not server.redirect_requires_auth):
                assert server.redirect_to is not None
                self._record(302)
                self._send(302, [("Location", server.redirect_to + self.path)], b"")
                return
            if not authorized:
                self._record(401)
                self._send(
                    401,
                    [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
                    b"authentication required\n",
                )
                return
            parts = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_PROJECT_ROOT": str(server.project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_SOFTWARE": "githttp-test",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": unquote(parts.path),
                "QUERY_STRING": parts.query,
                "REMOTE_ADDR": self.client_address[0],
                "REMOTE_USER": (server.username or "any") if expected else "",
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
            }
            for key, value in self.headers.items():
                name = "HTTP_" + key.upper().replace("-", "_")
                if name in ("HTTP_AUTHORIZATION", "HTTP_TRANSFER_ENCODING"):
                    continue
                env[name] = value
            if not server.protocol_v2:
                env.pop("HTTP_GIT_PROTOCOL", None)
            elif self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            out = server.run_backend(env, body)
            sep = out.find(b"\r\n\r\n")
            if sep >= 0:
                head, payload = out[:sep], out[sep + 4 :]
            else:
                sep = out.find(b"\n\n")
                head, payload = (out[:sep], out[sep + 2 :]) if sep >= 0 else (b"", out)
            status = 200
            headers = []
            for line in head.decode("latin-1").splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.strip().split()[0])
                elif key:
                    headers.append((key.strip(), value.strip()))
            self._record(status)
            self._send(status, headers, payload)

    return Handler
