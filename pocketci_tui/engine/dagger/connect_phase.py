"""Telling from a ``dagger`` CLI's own output that it never reached its engine.

What the v0.21 CLI does when its runner host cannot be reached (``engine/client``:
``Connect`` starts the ``connect`` span, ``startEngine`` provisions the driver and
``newBuildkitClient`` waits for the engine's ``Control/Info`` answer): it does not give up
at the first refusal. Every second it tries again; with ``--progress plain`` each attempt is a
``moby.buildkit.v1.Control/Info`` span that ends ``ERROR`` followed by
``! connection error: desc = "..."``, gRPC's description of the failure (the dial error of a
``tcp://`` or ``unix://`` engine, or the exit of the ``kubectl exec``/``ssh`` helper of a
``kube-pod://`` or ``ssh://`` one, with its stderr); these gRPC steps are otherwise hidden,
but the plain frontend shows every failed step. After ten minutes the ``connect`` span
fails and the CLI prints ``Error: start engine: new client: context deadline exceeded`` and
exits 1. Nothing of the module or the function runs before ``connect`` is done.

The rule pocketci-tui applies: a call never started on its engine when everything it printed
belongs to the connect phase (plain progress lines of the ``connect`` step and of what is
nested under it; none after ``connect DONE``; no other top-level step such as loading the
module or the function; no line of the function's own output, which has no progress prefix)
and among it is a connect failure (an attempt's ``connection error`` or the final ``start
engine`` error). Output the function printed, or a failure after connecting, makes it a build
that ran: when in doubt, a call counts as started, since running a build twice is worse than
counting one that never ran as failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_PROGRESS = re.compile(r"^\d+\s*: ")
"""The prefix of every ``--progress plain`` line: the span's number, padded, and a colon."""

_INDENT = re.compile(r"^[\s┆│]*")
"""The tree drawing that indents a nested span."""

_CONNECT_STEP = re.compile(
    r"(?:connect|starting engine|connecting to engine|creating client|starting session|"
    r"subscribing to telemetry|moby\.buildkit\.v1\.Control/Info)(?: |$)|[\[!]"
)
"""A top-level (unindented) line that still belongs to connecting: the ``connect`` step (or
one of its own steps, should a version show them unindented), a log line or an error line.
Whatever is nested (indented) belongs to the top-level step above it."""

_ATTEMPT_FAILED = "! connection error: desc = "
_CONNECT_DONE = ("connect DONE", "connect CACHED")
_GAVE_UP = "Error: start engine:"

MAX_REASON = 400
"""Characters of the CLI's connect error kept for a reason (its start and its end)."""

_HELPER_ADVICE = re.compile(
    r",? (?:please )?make sure the URL is valid, and Docker 18\.09 or later is installed on the "
    r"remote host"
)
"""What the helper-command connection adds to any failure of ``kubectl exec`` or ``ssh``
(written for Docker, misleading for an engine): dropped, its stderr is what says why."""


class ConnectWatch:
    """Follows a call's output lines while the CLI connects to its engine.

    Attributes:
        connecting: True until a line shows the call got past the connect phase.
        failures: How many connection attempts failed during the connect phase.
        last_error: The CLI's description of the latest failed attempt (else its final error).
        gave_up: The CLI said it could not start its engine and stopped trying.
    """

    def __init__(self) -> None:
        self.connecting = True
        self.failures = 0
        self.last_error = ""
        self.gave_up = False

    def feed(self, lines: Iterable[str]) -> None:
        """Take the next output lines (ANSI-free, as the runner hands them over)."""
        for line in lines:
            if not self.connecting:
                return
            self._line(line)

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        prefix = _PROGRESS.match(line)
        if prefix is None:
            if line.startswith(_GAVE_UP):
                self.gave_up = True
                # The attempts' error says why; the final one only that time ran out.
                self.last_error = self.last_error or _shorten(line[len("Error: ") :].strip())
            else:
                # The function's own output (the result on stdout): it got past connecting.
                self.connecting = False
            return
        rest = line[prefix.end() :]
        body = _INDENT.sub("", rest)
        if body.startswith(_CONNECT_DONE):
            self.connecting = False
        elif body.startswith(_ATTEMPT_FAILED):
            self.failures += 1
            self.last_error = _shorten(_unquote(body[len(_ATTEMPT_FAILED) :]))
        elif rest == body and not _CONNECT_STEP.match(body):
            # Another top-level step (loading the module, the function): past connecting.
            self.connecting = False

    @property
    def unreachable(self) -> bool:
        """Whether the output so far says the CLI never reached its engine."""
        return self.connecting and (self.failures > 0 or self.gave_up)


def _unquote(text: str) -> str:
    """gRPC quotes the description Go-style; JSON reads the same escapes."""
    try:
        value = json.loads(text)
    except ValueError:
        return text.strip()
    return value.strip() if isinstance(value, str) else text.strip()


def _shorten(text: str) -> str:
    text = _HELPER_ADVICE.sub("", text)
    if len(text) <= MAX_REASON:
        return text
    half = MAX_REASON // 2
    return f"{text[:half]} … {text[-half:]}"
