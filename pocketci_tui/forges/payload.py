"""The strict JSON decoder every forge's webhook bodies go through.

A body is decoded only after its signature verified, and even then it comes from whoever can
make the forge send a webhook: every bound here (values, nesting, numbers, encodings) holds
for every forge alike.
"""

from __future__ import annotations

import json
import re
from typing import Any


class PayloadError(ValueError):
    """The body is not a JSON object we accept (the intake answers 400)."""


def _no_constants(name: str) -> Any:
    raise PayloadError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() in C, then one length check: a key seen twice leaves fewer entries than pairs.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise PayloadError(f"duplicate key {key!r} in the JSON body")
            seen.add(key)
    return result


# One decoder for every body (json.loads with hooks would build a new one per call).
_DECODER = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_no_duplicate_keys)

MAX_JSON_VALUES = 1_000_000
"""The most objects, arrays and separated values a body may hold (counted before parsing).

Real payloads hold far fewer (a push of 2,048 commits a few tens of thousands); 8.7 million
``{}`` in 24.9 MiB cost 840 MiB and seconds of CPU to decode.
"""

_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def count_values(body: bytes) -> int:
    """An upper bound of the values in a JSON body: its ``{``, ``[`` and ``,`` bytes.

    Characters inside strings are counted too, so this overcounts, never undercounts; it runs
    at memory speed, before anything is decoded.
    """
    return body.count(b"{") + body.count(b"[") + body.count(b",")


def _has_lone_surrogate(data: Any) -> bool:
    """Tell whether a decoded value holds a string with an unpaired surrogate (``\\ud800``)."""
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if not key.isascii():
                    try:
                        key.encode("utf-8")
                    except UnicodeEncodeError:
                        return True
                stack.append(item)
        elif kind is list:
            stack.extend(value)
        elif kind is str and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def parse_payload(body: bytes) -> dict[str, Any]:
    """Decode a webhook body strictly.

    Refuses invalid UTF-8, ``NaN``/``Infinity``, duplicate keys, nesting too deep for Python's
    parser, numbers too long to convert, unpaired surrogates (which no store or terminal can
    take), bodies with more than :data:`MAX_JSON_VALUES` values, and anything but an object at
    the top.

    Args:
        body: The raw body (already verified).

    Returns:
        The decoded object.

    Raises:
        PayloadError: The body is not acceptable JSON.
    """
    if len(body) > MAX_JSON_VALUES and count_values(body) > MAX_JSON_VALUES:
        raise PayloadError(f"the JSON body holds more than {MAX_JSON_VALUES} values")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("the body is not valid UTF-8") from exc
    try:
        data = _DECODER.decode(text)
    except RecursionError as exc:
        raise PayloadError("the JSON body is nested too deeply") from exc
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not valid JSON: {exc.msg} at {exc.pos}") from exc
    except ValueError as exc:  # Python's limit on the digits of an integer
        raise PayloadError("the JSON body holds a number too long to read") from exc
    if not isinstance(data, dict):
        raise PayloadError("the JSON body must be an object")
    if "\\u" in text and _SURROGATE_ESCAPE_RE.search(text) and _has_lone_surrogate(data):
        raise PayloadError("the JSON body holds an unpaired surrogate (\\ud800-\\udfff)")
    return data


# -- reading decoded payloads --------------------------------------------------------------------
# Every forge reads its payload the same way: a value is used only when it has the expected type.

TITLE_MAX = 300
"""Characters kept of a title (a pull request's title, a commit message's first line)."""

MAX_NUMBER = 2**53
"""Numbers (pull request numbers) beyond this are not plausible and would not fit SQLite."""


def read_str(data: Any, key: str) -> str:
    """``data[key]`` when ``data`` is an object and the value a string, else ``""``."""
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is str else ""


def read_int(data: Any, key: str) -> int | None:
    """``data[key]`` when it is a plausible positive number (not a bool), else None."""
    value = data.get(key) if type(data) is dict else None
    return value if type(value) is int and 0 < value <= MAX_NUMBER else None


def first_line(text: str) -> str:
    """The first line of ``text``, stripped and cut to :data:`TITLE_MAX` characters."""
    stripped = text.strip()
    return stripped.splitlines()[0][:TITLE_MAX] if stripped else ""


def blank_fields(event_type: str, action: str) -> dict[str, Any]:
    """The Event fields every forge's normalizer starts from, before reading its event."""
    return {
        "event_type": event_type,
        "filter": action,
        "ref": "",
        "sha": "",
        "base_ref": "",
        "base_sha": "",
        "pr_number": None,
        "is_fork": False,
        "deleted": False,
        "title": "",
    }
