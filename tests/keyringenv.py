"""Real Secret Service environments for tests: GNOME Keyring on a D-Bus session bus.

``tests/with_keyring.sh`` gives the whole test run a private session bus with an unlocked GNOME
Keyring. Tests that must change the keyring's state (lock it, make it hang) start their own bus
and daemon with :class:`PrivateBus`, so they never disturb the shared one.

When no Secret Service can be had, :func:`missing` fails the test under ``CI=true`` and skips it
(with the reason) elsewhere.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import pytest

SECRET_SERVICE = "org.freedesktop.secrets"
NEEDED_TOOLS = ("dbus-daemon", "gnome-keyring-daemon")
APT_PACKAGES = "dbus gnome-keyring"

# A Secret Service that owns its bus name and never answers: a keyring "hung" on an unlock
# prompt nobody can see.
_HUNG_SERVICE = """
import sys, time
from jeepney import DBus
from jeepney.io.blocking import open_dbus_connection
conn = open_dbus_connection(sys.argv[1])
reply = conn.send_and_get_reply(DBus().RequestName("org.freedesktop.secrets", 4))
print("owned" if reply.body[0] == 1 else "not-owned", flush=True)
time.sleep(3600)
"""


def missing(reason: str) -> NoReturn:
    """Fail under CI (the keyring is part of what must be tested there), else skip."""
    if os.environ.get("CI", "").lower() in {"true", "1", "yes"}:
        pytest.fail(f"real keyring required under CI: {reason}", pytrace=False)
    pytest.skip(f"no real keyring: {reason} (run under tests/with_keyring.sh)")


def _with_timeout(fn: object, timeout: float) -> object:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(fn())  # type: ignore[operator]
        except Exception as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return TimeoutError(f"no answer within {timeout} s")
    return result[0]


def name_has_owner(address: str, name: str = SECRET_SERVICE, timeout: float = 3.0) -> bool:
    """True when ``name`` is owned on the bus at ``address``."""

    def ask() -> bool:
        from jeepney import DBus  # type: ignore[import-untyped]
        from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]

        with open_dbus_connection(address) as conn:
            reply = conn.send_and_get_reply(DBus().NameHasOwner(name), timeout=timeout)
            return bool(reply.body[0])

    answer = _with_timeout(ask, timeout + 1)
    return answer is True


def secret_service_problem(address: str | None, timeout: float = 3.0) -> str | None:
    """Return why the Secret Service at ``address`` is unusable, or None when it works."""
    if not address:
        return "DBUS_SESSION_BUS_ADDRESS is unset"

    def check() -> str | None:
        import secretstorage
        from jeepney.io.blocking import open_dbus_connection

        with open_dbus_connection(address) as conn:
            if not secretstorage.check_service_availability(conn):
                return f"{SECRET_SERVICE} is not on the session bus"
            collection = secretstorage.get_default_collection(conn)
            if collection.is_locked():
                return "the default collection is locked"
        return None

    answer = _with_timeout(check, timeout)
    if isinstance(answer, BaseException):
        return f"{type(answer).__name__}: {answer}"
    return answer  # type: ignore[return-value]


def tools_problem() -> str | None:
    """Return which tool is missing to start a private keyring, or None."""
    absent = [tool for tool in NEEDED_TOOLS if shutil.which(tool) is None]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install {APT_PACKAGES})"
    return None


class PrivateBus:
    """A private D-Bus session bus, optionally with a GNOME Keyring or a hung Secret Service.

    Args:
        keyring: ``"gnome"`` for an unlocked gnome-keyring-daemon, ``"hung"`` for a service that
            owns the Secret Service name and never answers, or None for an empty bus.
    """

    def __init__(self, keyring: str | None = "gnome") -> None:
        self.keyring = keyring
        self.address = ""
        self.password = secrets.token_hex(16)
        self._dir = Path(tempfile.mkdtemp(prefix="pocketci-bus-"))
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> PrivateBus:
        problem = tools_problem()
        if problem:
            missing(problem)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(bus)
        assert bus.stdout is not None
        self.address = bus.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon printed no address")
        env = {
            **os.environ,
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "XDG_RUNTIME_DIR": str(self._dir / "run"),
            "XDG_DATA_HOME": str(self._dir / "data"),
        }
        for sub in ("run", "data"):
            (self._dir / sub).mkdir(mode=0o700)
        if self.keyring == "gnome":
            daemon = subprocess.Popen(
                ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            self._procs.append(daemon)
            assert daemon.stdin is not None
            daemon.stdin.write(self.password.encode())
            daemon.stdin.close()
        elif self.keyring == "hung":
            hung = subprocess.Popen(
                [sys.executable, "-c", _HUNG_SERVICE, self.address],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            self._procs.append(hung)
            assert hung.stdout is not None
            if hung.stdout.readline().strip() != b"owned":
                raise RuntimeError("the hung Secret Service could not own its name")
        if self.keyring is not None:
            deadline = time.monotonic() + 10
            while not name_has_owner(self.address):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{SECRET_SERVICE} did not appear on the private bus")
                time.sleep(0.05)

    def lock_default_collection(self) -> None:
        """Lock the default collection (as after a screen lock or a fresh login)."""
        import secretstorage
        from jeepney.io.blocking import open_dbus_connection

        with open_dbus_connection(self.address) as conn:
            collection = secretstorage.get_default_collection(conn)
            collection.lock()
            assert collection.is_locked()

    def close(self) -> None:
        """Stop every process and remove the folder."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for stream in (proc.stdout, proc.stdin):
                if stream is not None:
                    stream.close()
        self._procs.clear()
        shutil.rmtree(self._dir, ignore_errors=True)


def session_secret_service() -> tuple[str, PrivateBus | None]:
    """Return a bus address with a working Secret Service, and the PrivateBus to close if any.

    Prefers the session's own (``tests/with_keyring.sh``); otherwise starts a private GNOME
    Keyring; fails under CI or skips elsewhere when neither is possible.
    """
    ambient = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if ambient and secret_service_problem(ambient) is None:
        return ambient, None
    if os.environ.get("POCKETCI_TEST_SECRET_SERVICE"):
        missing(f"the session's Secret Service is unusable: {secret_service_problem(ambient)}")
    private = PrivateBus("gnome").__enter__()
    return private.address, private


class BusMonitor:
    """``dbus-monitor`` on a private bus: the method calls and signals it saw, one per line.

    Used to prove what a client did *not* do (ask the Secret Service to unlock, or run its
    prompt), which no return value can show.
    """

    def __init__(self, address: str) -> None:
        if shutil.which("dbus-monitor") is None:
            missing(f"dbus-monitor not installed (apt-get install {APT_PACKAGES})")
        self._proc = subprocess.Popen(
            ["dbus-monitor", "--address", address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(10):
            self.close()
            raise RuntimeError("dbus-monitor did not start monitoring")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if "member=NameLost" in line:  # becoming a monitor drops its unique name
                self._ready.set()

    def members(self) -> list[str]:
        """``interface.member`` of every message seen so far."""
        seen = []
        for line in list(self.lines):
            if "member=" in line:
                interface = line.split("interface=", 1)[-1].split(";", 1)[0]
                seen.append(f"{interface}.{line.split('member=', 1)[1].split()[0]}")
        return seen

    def close(self) -> None:
        """Stop the monitor."""
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(5)
        self._reader.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
