"""How the control server reads a request and answers: bounded, checked input, and every
failure as an error answer of its kind.

A client of the control socket is trusted as much as its user, but what it sends is still
checked before it reaches the core: a number is a bounded whole number, a text is short and
printable, a body is one JSON object of at most the server's bound. What does not fit is a 400
that says what was wrong, and the core's own refusals map to the kinds a client turns back
into the exceptions the in-process core raises (see ``ERROR_KINDS`` in the server).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pocketci_tui.contract import NotStarted, OutputTail
from pocketci_tui.control.limits import BODY_DEADLINE
from pocketci_tui.control.wire import WireError, encode
from pocketci_tui.engine.dispatch.notices import EngineError
from pocketci_tui.secrets import SecretStoreError, SecretValueError, validate_name

__all__ = [
    "MAX_ID",
    "MAX_TEXT",
    "Refused",
    "bad",
    "bounded_tail",
    "error_answer",
    "errors",
    "event_id_of",
    "json_body",
    "query_int",
    "reply",
    "reply_off_loop",
    "run_id_of",
    "secret_name_of",
    "short_text",
    "whole",
]

log = logging.getLogger("pocketci_tui.control")

MAX_TEXT = 1_000
"""The longest events filter, run id or instance id accepted (characters)."""

MAX_ID = 2**63 - 1


class Refused(Exception):
    """A request the server refuses: an HTTP status, an error kind and a message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def bad(message: str) -> Refused:
    return Refused(400, "bad_request", message)


def error_answer(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"kind": kind, "message": message}}, status=status)


@web.middleware
async def errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure as an error answer of its kind; the unexpected ones logged."""
    try:
        return await handler(request)
    except Refused as exc:
        return error_answer(exc.status, exc.kind, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = "not_found" if exc.status in (404, 405) else "bad_request"
        return error_answer(exc.status, kind, exc.reason)
    except WireError as exc:
        return error_answer(400, "bad_request", str(exc))
    except NotStarted as exc:
        return error_answer(503, "not_started", str(exc) or "the engine is not running")
    except SecretValueError as exc:
        return error_answer(400, "secret_store", str(exc))
    except SecretStoreError as exc:
        return error_answer(503, "secret_store", str(exc))
    except EngineError as exc:
        return error_answer(409, "conflict", str(exc))
    except ConnectionResetError:
        # The client hung up (killed mid-request, or during its notices handshake): nothing
        # failed here and nobody is there to answer; aiohttp drops this answer quietly.
        return error_answer(400, "bad_request", "the client hung up")
    except Exception:
        log.exception("the control request %s %s failed", request.method, request.path)
        return error_answer(500, "internal", "the owner failed to answer; its log says why")


def reply(data: Any) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), content_type="application/json"
    )


async def reply_off_loop(value: Any) -> web.Response:
    """Encode a value that may be large (an event's raw payload) off the event loop."""
    text = await asyncio.to_thread(lambda: json.dumps(encode(value), separators=(",", ":")))
    return web.Response(text=text, content_type="application/json")


def whole(text: str | None, what: str, lo: int, hi: int) -> int:
    if text is None or not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 20:
        raise bad(f"{what} must be a whole number")
    value = int(text)
    if not lo <= value <= hi:
        raise bad(f"{what} must be between {lo} and {hi}")
    return value


def query_int(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    return whole(text, name, lo, hi)


def event_id_of(request: web.Request) -> int:
    return whole(request.match_info.get("id"), "the event id", 1, MAX_ID)


def short_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or not value.isprintable():
        raise bad(f"{what} must be printable text of at most {MAX_TEXT} characters")
    return value


def run_id_of(request: web.Request) -> str:
    run_id = short_text(request.match_info.get("id"), "the run id")
    if not run_id:
        raise bad("the run id is empty")
    return run_id


def secret_name_of(request: web.Request) -> str:
    return validate_name(request.match_info.get("name", ""))


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (no longer than the application's ``client_max_size``)."""
    try:
        raw = await asyncio.wait_for(request.read(), BODY_DEADLINE)
    except TimeoutError:
        raise Refused(
            408, "bad_request", f"the body did not arrive within {BODY_DEADLINE:g} s"
        ) from None
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad("the body is not JSON") from None
    if not isinstance(data, dict):
        raise bad("the body must be a JSON object")
    return data


def bounded_tail(tail: OutputTail, max_chars: int) -> OutputTail:
    """``tail`` without its oldest lines beyond ``max_chars`` characters in all.

    Its ``end`` stays true: it is where the last line ends, and the last lines are kept,
    with when each arrived.
    """
    total = 0
    keep = len(tail.lines)
    for line in reversed(tail.lines):
        total += len(line) + 1
        if total > max_chars:
            break
        keep -= 1
    if keep == 0:
        return tail
    times = tail.times[keep:] if len(tail.times) == len(tail.lines) else ()
    return OutputTail(tail.lines[keep:], tail.end, times)
