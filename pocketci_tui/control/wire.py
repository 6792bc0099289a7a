"""The control protocol's values as JSON, and back, by their type annotations.

Every value the contract carries (:mod:`pocketci_tui.model`, :mod:`pocketci_tui.contract`,
:class:`~pocketci_tui.config.Settings`...) is a frozen dataclass, an enum, a named tuple or a
plain value, so one codec serves them all instead of a hand-written pair per class: a class that
gains a field crosses the socket without a change here, and a shape mismatch is told by name
(:class:`WireError`) instead of surfacing later as an attribute error in the UI.

- :func:`encode` turns a value into what ``json.dumps`` takes: dataclasses and named tuples
  into objects by field name, enums into their values, datetimes into ISO 8601 text, paths into
  text, bytes into base64 text (an event's raw payload), tuples and lists into arrays, mappings
  into objects.
- :func:`decode` reads it back as a given type (``decode(list[Run], data)``), checking the
  shape as it goes: unknown fields are ignored (a newer peer may send more), a missing field
  without a default, a wrong type or a value outside a ``Literal`` is a :class:`WireError`.
- :func:`encode_notice` and :func:`decode_notice` tag a notice with its class name, looked up
  in a fixed table on the way back: a peer can never make the decoder build an arbitrary class.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import types
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from pathlib import Path, PurePath
from typing import (
    Any,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from pocketci_tui import config, contract, model, problems
from pocketci_tui.contract import (
    ClientNotice,
    CountsChanged,
    LinkChanged,
    ProblemsChanged,
    RejectionSummary,
    SecretChanged,
    SettingsChanged,
    StatusDelivery,
)
from pocketci_tui.model import (
    EventMatched,
    EventSettled,
    EventStored,
    EventUpdated,
    RunOutput,
    RunUpdated,
)

__all__ = [
    "NOTICE_TYPES",
    "PROTOCOL_VERSION",
    "WireError",
    "WireNotice",
    "decode",
    "decode_notice",
    "encode",
    "encode_notice",
]

PROTOCOL_VERSION = 1
"""The control protocol's major version: a client refuses an owner that speaks another."""

WireNotice = ClientNotice | RejectionSummary
"""Everything the notice stream carries: the client's notices and the listener's refusals."""

NOTICE_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        EventStored,
        EventUpdated,
        EventMatched,
        RunUpdated,
        RunOutput,
        EventSettled,
        CountsChanged,
        ProblemsChanged,
        StatusDelivery,
        LinkChanged,
        SecretChanged,
        SettingsChanged,
        RejectionSummary,
    )
}
"""The notice classes by the ``type`` tag they travel with; nothing else is ever decoded."""

_NONE = type(None)

# Names the annotations refer to that their modules import only for type checking (the
# contract's ``Problem``, ``Run``...), so get_type_hints can resolve every class here.
_NAMES: dict[str, Any] = {
    **{k: v for k, v in vars(model).items() if not k.startswith("_")},
    **{k: v for k, v in vars(config).items() if not k.startswith("_")},
    **{k: v for k, v in vars(contract).items() if not k.startswith("_")},
    "Problem": problems.Problem,
    "Path": Path,
    "datetime": datetime,
}

_HINTS: dict[type[Any], dict[str, Any]] = {}
_FIELDS: dict[type[Any], tuple[str, ...]] = {}


class WireError(ValueError):
    """A value does not have the shape its type says (or cannot be sent at all); the message
    says where (``$.runs[2].state``) and what was wrong."""


# -- encoding ---------------------------------------------------------------------------------


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        _FIELDS[cls] = names
    return names


def encode(value: object) -> Any:
    """Turn ``value`` into plain JSON data (dicts, lists, text, numbers, booleans, None).

    Args:
        value: A value of a type the contract carries.

    Returns:
        What ``json.dumps`` takes.

    Raises:
        WireError: A value of a kind the protocol does not carry (a set, an arbitrary object).
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (str, int, float)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: encode(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {name: encode(getattr(value, name)) for name in value._fields}
    if isinstance(value, (tuple, list)):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {_encode_key(key): encode(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise WireError(f"cannot send a value of type {kind.__name__}")


def _encode_key(key: object) -> str:
    if isinstance(key, Enum):
        return str(key.value)
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise WireError(f"cannot send a mapping key of type {type(key).__name__}")


def encode_notice(notice: WireNotice) -> dict[str, Any]:
    """Encode a notice with its class name as ``type``, for :func:`decode_notice`.

    Raises:
        WireError: Not a notice the protocol carries.
    """
    name = type(notice).__name__
    if NOTICE_TYPES.get(name) is not type(notice):
        raise WireError(f"{name} is not a notice the control protocol carries")
    data: dict[str, Any] = encode(notice)
    data["type"] = name
    return data


# -- decoding ---------------------------------------------------------------------------------


T = TypeVar("T")


@overload
def decode(tp: type[T], data: Any) -> T: ...


@overload
def decode(tp: Any, data: Any) -> Any: ...


def decode(tp: Any, data: Any) -> Any:
    """Read ``data`` (decoded JSON) as a value of type ``tp``.

    Args:
        tp: A class or a type expression (``list[Run]``, ``StoredEvent | None``,
            ``dict[str, StatusDelivery]``).
        data: What :func:`encode` made of such a value (after a JSON round trip).

    Returns:
        The value.

    Raises:
        WireError: ``data`` does not have the shape of ``tp``; the message says where.
    """
    return _decode(tp, data, "$")


def decode_notice(data: Any) -> WireNotice:
    """Read a notice made by :func:`encode_notice`, its class found by its ``type`` tag in
    :data:`NOTICE_TYPES` (never by an arbitrary name).

    Raises:
        WireError: No known ``type``, or the fields do not fit it.
    """
    if not isinstance(data, dict):
        raise WireError(f"$: a notice must be an object, not {_kind(data)}")
    name = data.get("type")
    cls = NOTICE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise WireError(f"$.type: unknown notice type {str(name)[:60]!r}")
    notice: WireNotice = _decode(cls, data, "$")
    return notice


def _kind(data: Any) -> str:
    return {dict: "an object", list: "an array", str: "text", bool: "a boolean"}.get(
        type(data), "null" if data is None else "a number"
    )


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        try:
            hints = get_type_hints(cls, localns=_NAMES)
        except NameError as exc:  # a class whose annotations name what we do not know
            raise WireError(f"cannot decode {cls.__name__}: {exc}") from None
        _HINTS[cls] = hints
    return hints


def _decode(tp: Any, data: Any, where: str) -> Any:
    if tp is Any or tp is object:
        return data
    origin = get_origin(tp)
    if origin is not None:
        return _decode_generic(tp, origin, data, where)
    if tp is _NONE or tp is None:
        if data is None:
            return None
        raise WireError(f"{where}: expected null, got {_kind(data)}")
    if not isinstance(tp, type):
        raise WireError(f"{where}: cannot decode the type {tp!r}")
    reader = _PLAIN.get(tp)
    if reader is not None:
        return reader(data, where)
    return _decode_class(tp, data, where)


def _decode_generic(tp: Any, origin: Any, data: Any, where: str) -> Any:
    args = get_args(tp)
    if origin is Union or origin is types.UnionType:
        return _decode_union(args, data, where)
    if origin is Literal:
        for choice in args:
            if data == choice and type(data) is type(choice):
                return choice
        raise WireError(f"{where}: {str(data)[:60]!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        items = _array(data, where)
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] in _AT_ONCE and _all_of(args[0], items):
                # Output lines and their times come thousands to a notice, and an attached UI
                # reads them on its event loop: checked in one pass, not one by one.
                return tuple(items)
            return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(items))
        if len(items) != len(args):
            raise WireError(f"{where}: expected {len(args)} items, got {len(items)}")
        return tuple(
            _decode(a, item, f"{where}[{i}]")
            for i, (a, item) in enumerate(zip(args, items, strict=True))
        )
    if origin in (list, Sequence):
        (item_tp,) = args or (Any,)
        items = _array(data, where)
        return [_decode(item_tp, item, f"{where}[{i}]") for i, item in enumerate(items)]
    if origin in (dict, Mapping):
        key_tp, value_tp = args or (Any, Any)
        if not isinstance(data, dict):
            raise WireError(f"{where}: expected an object, got {_kind(data)}")
        return {
            _decode_key(key_tp, key, where): _decode(value_tp, value, f"{where}.{key}")
            for key, value in data.items()
        }
    raise WireError(f"{where}: cannot decode the type {tp!r}")


_AT_ONCE = (str, float)
"""Item types of a ``tuple[T, ...]`` checked in one pass (JSON gives floats as ``float``; an
array holding a whole number is read item by item, which converts it)."""


def _all_of(kind: type[Any], items: list[Any]) -> bool:
    """True when every item is exactly of ``kind`` (no subclass: ``bool`` is no number)."""
    return not items or set(map(type, items)) == {kind}


def _decode_union(args: tuple[Any, ...], data: Any, where: str) -> Any:
    if data is None and _NONE in args:
        return None
    failures: list[str] = []
    for arm in args:
        if arm is _NONE:
            continue
        try:
            return _decode(arm, data, where)
        except WireError as exc:
            failures.append(str(exc))
    raise WireError(
        failures[0] if len(failures) == 1 else f"{where}: no type fits ({'; '.join(failures)})"
    )


def _decode_key(tp: Any, key: str, where: str) -> Any:
    if tp is int:
        try:
            return int(key)
        except ValueError:
            raise WireError(f"{where}: the key {key[:60]!r} is not a number") from None
    return _decode(tp, key, f"{where}.<key>")


def _array(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise WireError(f"{where}: expected an array, got {_kind(data)}")
    return data


def _decode_class(tp: type[Any], data: Any, where: str) -> Any:
    if issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            raise WireError(f"{where}: {str(data)[:60]!r} is not a {tp.__name__}") from None
    if issubclass(tp, PurePath):
        return tp(_str(data, where))
    if dataclasses.is_dataclass(tp):
        return _decode_fields(
            tp,
            data,
            where,
            [
                (
                    f.name,
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                )
                for f in dataclasses.fields(tp)
                if f.init
            ],
        )
    if issubclass(tp, tuple) and hasattr(tp, "_fields"):
        defaults: Mapping[str, Any] = getattr(tp, "_field_defaults", {})
        return _decode_fields(tp, data, where, [(n, n not in defaults) for n in tp._fields])
    raise WireError(f"{where}: cannot decode a {tp.__name__}")


def _decode_fields(tp: type[Any], data: Any, where: str, names: list[tuple[str, bool]]) -> Any:
    if not isinstance(data, dict):
        raise WireError(f"{where}: expected an object ({tp.__name__}), got {_kind(data)}")
    hints = _hints(tp)
    kwargs: dict[str, Any] = {}
    for name, required in names:
        if name in data:
            kwargs[name] = _decode(hints[name], data[name], f"{where}.{name}")
        elif required:
            raise WireError(f"{where}: {tp.__name__} lacks its field {name!r}")
    try:
        return tp(**kwargs)
    except (TypeError, ValueError) as exc:
        raise WireError(f"{where}: not a valid {tp.__name__}: {exc}") from None


def _str(data: Any, where: str) -> str:
    if isinstance(data, str):
        return data
    raise WireError(f"{where}: expected text, got {_kind(data)}")


def _bool(data: Any, where: str) -> bool:
    if isinstance(data, bool):
        return data
    raise WireError(f"{where}: expected a boolean, got {_kind(data)}")


def _int(data: Any, where: str) -> int:
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    raise WireError(f"{where}: expected a whole number, got {_kind(data)}")


def _float(data: Any, where: str) -> float:
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    raise WireError(f"{where}: expected a number, got {_kind(data)}")


def _datetime(data: Any, where: str) -> datetime:
    try:
        return datetime.fromisoformat(_str(data, where))
    except ValueError:
        raise WireError(f"{where}: {str(data)[:60]!r} is not an ISO 8601 time") from None


def _bytes(data: Any, where: str) -> bytes:
    try:
        return base64.b64decode(_str(data, where), validate=True)
    except binascii.Error:
        raise WireError(f"{where}: not base64 text") from None


_PLAIN: dict[type[Any], Callable[[Any, str], Any]] = {
    str: _str,
    bool: _bool,
    int: _int,
    float: _float,
    datetime: _datetime,
    bytes: _bytes,
}
