"""Reading configuration files: the error every problem raises, and a checked mapping reader.

Shared by ``config.yaml`` (the user's) and ``pocketci.yaml`` (a repository's): every error names
the file and the key, and quotes what the file holds in bounded space.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import yaml

SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""What a secret-store entry NAME looks like."""
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""What an environment variable name looks like."""

MAX_SHOWN = 60
"""Characters of a value quoted in an error message; longer values are cut with a marker."""


class ConfigError(Exception):
    """A configuration file is missing something or holds a wrong value.

    Attributes:
        fix: What to do about it, when the message alone does not say.
    """

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


YAML_FIX = (
    "correct the YAML at that line: indent with spaces (never tabs), close every [ and {, "
    "and quote values holding ': ' or starting with a special character such as * & ! | > %"
)


def yaml_error(source: str, exc: yaml.YAMLError) -> ConfigError:
    """One line naming the file, line and column of a YAML syntax error, with a fix.

    PyYAML's own message spans several lines, quotes the source as ``<unicode string>`` and
    draws a caret; none of that survives being printed on one line.

    Args:
        source: The file name to show.
        exc: What ``yaml.safe_load`` raised.

    Returns:
        The error to raise.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    if problem:
        text = f"{problem} ({context})" if context else problem
    else:
        # A reader error (a control character, bad encoding) has no mark, only its message.
        text = str(exc).replace(' in "<unicode string>"', "").replace("<unicode string>", source)
    text = " ".join(text.split())
    return ConfigError(f"{source}{where}: not valid YAML: {text}", YAML_FIX)


class FileTooLarge(ConfigError):
    """A file from a repository is larger than pocketci-tui reads."""


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """Quote a value read from a file for an error message, in bounded space.

    Text longer than ``limit`` is cut and says how long it was; a list or a mapping is named,
    never written out (a YAML alias bomb would make it exponentially long).

    Args:
        value: Any parsed YAML value.
        limit: The most characters of text to quote.

    Returns:
        A short description such as ``'main'``, ``'aaaa…' (5000 characters)`` or ``a list``.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value)} characters)"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        text = str(value) if value.bit_length() < 200 else "a very large number"
        return text
    return f"a {type(value).__name__}"


_Choice = TypeVar("_Choice", bound=str)


class Reader:
    """Helpers that check one mapping and name the file and key in every error."""

    def __init__(self, source: str, data: Any, prefix: str = "") -> None:
        self.source = source
        self.prefix = prefix
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{self.where('')}: expected a mapping of keys to values")
        self.data: dict[str, Any] = data

    def where(self, key: str) -> str:
        name = f"{self.prefix}{key}" if key else self.prefix.rstrip(".") or "top level"
        return f"{self.source}: {name}"

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                hint = ", ".join(allowed)
                name = key if isinstance(key, str) and len(key) <= MAX_SHOWN else shown(key)
                raise ConfigError(f"{self.where(str(name))}: unknown key (known keys: {hint})")

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(f"{self.where(key)}: expected text, got {shown(value)}")
        return value.strip()

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.where(key)}: expected a whole number, got {shown(value)}")
        if not low <= value <= high:
            raise ConfigError(f"{self.where(key)}: must be between {low} and {high}, got {value}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(
                f"{self.where(key)}: expected a number above zero, got {shown(value)}"
            )
        return float(value)

    def choice(self, key: str, default: _Choice, choices: tuple[_Choice, ...]) -> _Choice:
        value = self.text(key, default)
        for choice in choices:
            if value == choice:
                return choice
        raise ConfigError(
            f"{self.where(key)}: must be one of {', '.join(choices)}, got {shown(value)}"
        )

    def secret_name(self, key: str, default: str) -> str:
        value = self.text(key, default)
        if value and not SECRET_NAME_RE.fullmatch(value):
            raise ConfigError(
                f"{self.where(key)}: a secret NAME (letters, digits, . _ -), not a value; "
                f"store the value with `pocketci-tui secrets set NAME`"
            )
        return value

    def sub(self, key: str) -> Reader:
        return Reader(self.source, self.data.get(key), f"{self.prefix}{key}.")


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, *, where: str) -> float:
    """Parse ``90``, ``90s``, ``60m``, ``1.5h`` or ``2d`` into seconds.

    Args:
        value: The raw YAML value.
        where: ``file: key`` for the error message.

    Returns:
        The duration in seconds, greater than zero.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like 90s, 60m or 2h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise ConfigError(f"{where}: expected a duration like 90s, 60m or 2h, got {value!r}")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{where}: the duration must be greater than zero")
    return seconds
