"""A repository's ``pocketci.yaml``: parsed within fixed bounds, since whoever pushes writes it."""

from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from pocketci_tui.config.reading import (
    ENV_NAME_RE,
    MAX_SHOWN,
    ConfigError,
    FileTooLarge,
    Reader,
    shown,
    yaml_error,
)
from pocketci_tui.model import bounded

SPEC_FILE = "pocketci.yaml"
_ARG_NAME_RE = re.compile(r"^[a-z][A-Za-z0-9]*$")

MAX_SPEC_BYTES = 256 * 1024
"""The largest ``pocketci.yaml`` read; a bigger one is refused before it is read."""

MAX_SPEC_VALUES = 10_000
"""The most values (scalars, lists, mappings) a ``pocketci.yaml`` may hold, aliases expanded."""

MAX_SPEC_DEPTH = 32
"""The deepest nesting of lists and mappings in a ``pocketci.yaml``."""

MAX_SPEC_PATHS = 1000
"""The most ``paths`` patterns a ``pocketci.yaml`` may list."""

MAX_SPEC_SECRETS = 100
"""The most ``secrets`` a ``pocketci.yaml`` may list."""

MAX_PATTERN_LENGTH = 1024
"""The longest single path pattern (in ``paths``)."""

MAX_SPECS = 16
"""The most named ``specs`` a ``pocketci.yaml`` may list."""

_SPEC_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_SPEC_KEYS = ("module-path", "paths", "secrets")


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A secret a repository's functions may receive.

    Attributes:
        name: The Dagger function argument it feeds (lowerCamelCase, e.g. ``ghPassword``).
        from_keyring: The secret-store entry holding the value, or empty.
        from_env: The runner's environment variable holding the value, or empty.
    """

    name: str
    from_keyring: str = ""
    from_env: str = ""


@dataclass(frozen=True, slots=True)
class RepoSpec:
    """A repository's ``pocketci.yaml``.

    A file listing several ``specs`` gives one of these per listed spec, each matched and
    given secrets on its own; the single-spec form gives one, with an empty ``name``.

    Attributes:
        module_path: The Dagger module's folder, relative to the repository root.
        paths: If not empty, events whose changes match none of these are skipped.
        secrets: The secrets its functions may receive.
        found: False when the repository has no ``pocketci.yaml`` (defaults apply).
        name: The spec's name in a file listing several ``specs``, else empty.
    """

    module_path: str = "./ci"
    paths: tuple[str, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    found: bool = True
    name: str = ""

    @property
    def secret_names(self) -> frozenset[str]:
        """The argument names that secrets feed."""
        return frozenset(s.name for s in self.secrets)


class _SpecLoader(yaml.SafeLoader):
    """A safe YAML loader for files a repository controls, with every size bounded.

    It counts the values it composes, an alias counting as many values as the node it
    repeats, and refuses a document past :data:`MAX_SPEC_VALUES` values or nested deeper
    than :data:`MAX_SPEC_DEPTH`: a few hundred bytes of nested aliases (a "billion laughs"
    document) stand for billions of values, which anything walking the result would pay for.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._depth = 0
        self._values = 0

    def _count(self, values: int) -> None:
        self._values += values
        if self._values > MAX_SPEC_VALUES:
            raise _TooBig(
                f"more than {MAX_SPEC_VALUES} values (an alias counts as the values it repeats)"
            )

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if node is not None:
                self._count(self._sizes.get(id(node), 1))
            return node
        self._depth += 1
        try:
            if self._depth > MAX_SPEC_DEPTH:
                raise _TooBig(f"lists and mappings nested deeper than {MAX_SPEC_DEPTH} levels")
            self._count(1)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            return node  # a scalar: one value
        # What an alias of this node costs later: every value under it, aliases expanded.
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        return node


class _TooBig(Exception):
    """A bound of :class:`_SpecLoader` was passed."""


def load_bounded_yaml(text: str, source: str) -> Any:
    """Parse YAML from an untrusted file with its size, nesting and alias expansion bounded.

    Args:
        text: The file's content.
        source: The file name, for error messages.

    Returns:
        What the document holds (None for an empty one).

    Raises:
        ConfigError: Not valid YAML, or past a bound; the message says which.
    """
    if len(text) > MAX_SPEC_BYTES:
        raise FileTooLarge(
            f"{source}: {len(text)} characters, more than the {MAX_SPEC_BYTES // 1024} KiB "
            "pocketci-tui reads"
        )
    loader = _SpecLoader(text)
    try:
        return loader.get_single_data()
    except _TooBig as exc:
        raise ConfigError(f"{source}: refused: {exc}; keep the file short and plain") from None
    except yaml.YAMLError as exc:
        error = yaml_error(source, exc)
        raise ConfigError(bounded(str(error), 400), error.fix) from None
    except (ValueError, RecursionError) as exc:  # an integer of 5,000 digits, for example
        raise ConfigError(f"{source}: a value cannot be read: {bounded(str(exc), 200)}") from None
    finally:
        loader.dispose()


def parse_repo_specs(text: str, source: str = SPEC_FILE) -> tuple[RepoSpec, ...]:
    """Parse the text of a ``pocketci.yaml``, a file the repository (not the user) controls.

    The file is either one spec (``module-path``, ``paths``, ``secrets`` at the top level) or
    a list of named ``specs``, one per application of a monorepo. Every size is bounded: the
    text (:data:`MAX_SPEC_BYTES`), the values once aliases are expanded, the nesting, the
    number of specs, of ``paths`` and ``secrets`` and the length of a pattern; error messages
    quote values in bounded space.

    Args:
        text: The file's content.
        source: The name to use in error messages.

    Returns:
        The validated specs: one unnamed spec for the single-spec form.

    Raises:
        ConfigError: The file is not a valid spec; the message names the key.
    """
    data = load_bounded_yaml(text, source)
    r = Reader(source, data)
    if "specs" not in r.data:
        r.check_keys(_SPEC_KEYS)
        return (_parse_spec(r),)
    r.check_keys(("specs",))
    items = r.data["specs"]
    if not isinstance(items, list) or not items:
        raise ConfigError(
            f"{r.where('specs')}: expected a list of specs, each with a name and a module-path"
        )
    if len(items) > MAX_SPECS:
        raise ConfigError(
            f"{r.where('specs')}: {len(items)} specs, more than the {MAX_SPECS} pocketci-tui "
            "accepts"
        )
    specs: list[RepoSpec] = []
    for i, item in enumerate(items):
        s = Reader(source, item, f"specs[{i}].")
        s.check_keys(("name", *_SPEC_KEYS))
        name = s.text("name", "")
        if not _SPEC_NAME_RE.fullmatch(name):
            raise ConfigError(
                f"{s.where('name')}: expected a short name of lowercase letters, digits, - and _ "
                f"(like api), got {shown(name)}"
            )
        if any(x.name == name for x in specs):
            raise ConfigError(f"{s.where('name')}: the spec name {name} is used twice")
        specs.append(replace(_parse_spec(s), name=name))
    return tuple(specs)


def parse_repo_spec(text: str, source: str = SPEC_FILE) -> RepoSpec:
    """Parse a single-spec ``pocketci.yaml`` (see :func:`parse_repo_specs`).

    Raises:
        ConfigError: The file is not a valid spec, or lists several ``specs``.
    """
    specs = parse_repo_specs(text, source)
    if len(specs) != 1 or specs[0].name:
        raise ConfigError(f"{source}: expected a single spec, not a list of specs")
    return specs[0]


def _module_path(r: Reader) -> str:
    """``module-path``: relative, bounded, and not leaving the repository by its ``..``."""
    module_path = r.text("module-path", "./ci") or "./ci"
    if "\x00" in module_path:
        raise ConfigError(f"{r.where('module-path')}: contains a NUL byte")
    if len(module_path) > MAX_PATTERN_LENGTH:
        raise ConfigError(f"{r.where('module-path')}: longer than {MAX_PATTERN_LENGTH} characters")
    if Path(module_path).is_absolute():
        raise ConfigError(f"{r.where('module-path')}: must be relative to the repository root")
    normal = posixpath.normpath(module_path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        raise ConfigError(
            f"{r.where('module-path')}: {shown(module_path)} points outside the repository; "
            "give a folder inside it, like ./ci"
        )
    return module_path


def _parse_spec(r: Reader) -> RepoSpec:
    """One spec's ``module-path``, ``paths`` and ``secrets``, from its mapping."""
    source = r.source
    module_path = _module_path(r)
    paths_raw = r.data.get("paths") or []
    if not isinstance(paths_raw, list) or not all(isinstance(p, str) and p for p in paths_raw):
        raise ConfigError(f"{r.where('paths')}: expected a list of path patterns")
    if len(paths_raw) > MAX_SPEC_PATHS:
        raise ConfigError(
            f"{r.where('paths')}: {len(paths_raw)} patterns, more than the {MAX_SPEC_PATHS} "
            "pocketci-tui accepts; use ** patterns to cover whole folders"
        )
    for i, pattern in enumerate(paths_raw):
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise ConfigError(
                f"{r.where(f'paths[{i}]')}: a pattern longer than {MAX_PATTERN_LENGTH} "
                f"characters: {shown(pattern)}"
            )
    secrets_raw = r.data.get("secrets") or []
    if not isinstance(secrets_raw, list):
        raise ConfigError(f"{r.where('secrets')}: expected a list of secrets")
    if len(secrets_raw) > MAX_SPEC_SECRETS:
        raise ConfigError(
            f"{r.where('secrets')}: {len(secrets_raw)} secrets, more than the "
            f"{MAX_SPEC_SECRETS} pocketci-tui accepts"
        )
    secrets: list[SecretRef] = []
    for i, item in enumerate(secrets_raw):
        s = Reader(source, item, f"{r.prefix}secrets[{i}].")
        s.check_keys(("name", "from-keyring", "from-env"))
        name = s.text("name", "")
        if not _ARG_NAME_RE.fullmatch(name) or len(name) > MAX_SHOWN:
            raise ConfigError(
                f"{s.where('name')}: expected the function argument name in camelCase "
                f"(like ghPassword), got {shown(name)}"
            )
        from_keyring = s.secret_name("from-keyring", "")
        from_env = s.text("from-env", "")
        if bool(from_keyring) == bool(from_env):
            raise ConfigError(f"{s.where('')}: give exactly one of from-keyring or from-env")
        if from_env and (not ENV_NAME_RE.fullmatch(from_env) or len(from_env) > 256):
            raise ConfigError(f"{s.where('from-env')}: not an environment variable name")
        if any(x.name == name for x in secrets):
            raise ConfigError(f"{s.where('name')}: {name} is listed twice")
        secrets.append(SecretRef(name=name, from_keyring=from_keyring, from_env=from_env))
    return RepoSpec(module_path=module_path, paths=tuple(paths_raw), secrets=tuple(secrets))


def read_bounded_file(path: Path, limit: int, what: str) -> str | None:
    """Read a small text file from a checkout, refusing it before reading when too large.

    Args:
        path: The file.
        limit: The most bytes to read.
        what: Its name in error messages.

    Returns:
        The text, or None when the file does not exist.

    Raises:
        FileTooLarge: The file is larger than ``limit`` (checked before reading).
        ConfigError: A symbolic link, not a regular file, not UTF-8, or unreadable.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if path.is_symlink():
            raise ConfigError(f"{what}: must be a regular file, not a symbolic link") from None
        raise ConfigError(f"{what}: cannot read it ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{what}: must be a regular file")
        if st.st_size > limit:
            raise FileTooLarge(
                f"{what}: {st.st_size} bytes, more than the {limit // 1024} KiB pocketci-tui "
                "reads; keep it short"
            )
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"{what}: more than the {limit // 1024} KiB pocketci-tui reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: not UTF-8 text") from None


def load_repo_specs(checkout: Path) -> tuple[RepoSpec, ...]:
    """Read ``pocketci.yaml`` from a checkout; without one, the defaults apply.

    The file is refused unread when it is larger than :data:`MAX_SPEC_BYTES`.

    Args:
        checkout: The repository's working tree.

    Returns:
        Its specs (one, with ``found`` False, when the file is absent).
    """
    text = read_bounded_file(checkout / SPEC_FILE, MAX_SPEC_BYTES, SPEC_FILE)
    if text is None:
        return (RepoSpec(found=False),)
    return parse_repo_specs(text, SPEC_FILE)


def resolve_module_dir(checkout: Path, module_path: str) -> Path:
    """Return the module folder inside a checkout, refusing anything that leaves it.

    Symbolic links are resolved before the check, so a link pointing outside is refused too.

    Args:
        checkout: The repository's working tree.
        module_path: ``module-path`` from the spec.

    Returns:
        The absolute, resolved module folder.
    """
    root = checkout.resolve()
    target = (root / module_path).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(
            f"{SPEC_FILE}: module-path {shown(module_path)} points outside the repository"
        )
    if not target.is_dir():
        raise ConfigError(
            f"{SPEC_FILE}: module-path {shown(module_path)} is not a folder in the repository"
        )
    return target
