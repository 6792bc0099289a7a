"""GitHub Actions filters: file paths (``paths``, ``onChanges``) and branch/tag names.

A filter is a list of patterns, checked in order, the last one that matches deciding; what one
pattern means (GitHub's "Filter pattern cheat sheet") and how it becomes a regular expression is
in :mod:`.glob_regex`. The compiled patterns are ``pathspec``
:class:`~pathspec.pattern.RegexPattern` objects (pattern text, include flag, regex), so any
``pathspec.PathSpec`` can evaluate them too; the tests check that it agrees.

Speed (SPEC 6: 10,000 changed files against 100 patterns in under 100 ms). A filter groups
consecutive patterns with the same include flag; within a group only "does any pattern match"
matters, so the group's patterns are merged into at most three regexes by how they start
(anchored, ``**``-led, ``**/``-led). The last group that matches a path decides, and a path is
first tested against all patterns at once, since most paths match none. For many filters over
the same change list (one ``onChanges`` per function), a :class:`PathBatch` joins the paths into
one text and runs each pattern over it once, remembering the result for the next filter.

Two cases GitHub rejects with an error rather than defining are given a meaning here: a list of
only negated patterns behaves as if it started with ``**`` ("everything except"), and an empty
list is reported by :attr:`PathFilter.empty` (callers treat it as "no restriction";
:class:`RefFilter` accepts anything when empty).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import accumulate

from pathspec.pattern import RegexPattern

from pocketci_tui.engine.match.glob_regex import (
    ANY,
    ANY_DIRS,
    PatternError,
    glob_to_regex,
    translate,
)

__all__ = [
    "PathBatch",
    "PathFilter",
    "PatternError",
    "RefFilter",
    "glob_to_regex",
    "paths_csv",
    "ref_matches",
    "split_csv",
]


def split_csv(text: str) -> list[str]:
    """Split a comma-separated list, strip each entry and drop the empty ones.

    Args:
        text: ``"a, b,,c"``.

    Returns:
        ``["a", "b", "c"]``.
    """
    return [s for s in (part.strip() for part in text.split(",")) if s]


def paths_csv(text: str) -> list[str]:
    """Split a comma-separated list of path patterns (an ``onChanges`` default).

    Args:
        text: ``"**/**.go,go.*"``.

    Returns:
        The stripped, non-empty patterns.
    """
    return split_csv(text)


_FLAGS = re.DOTALL

_SCAN_MAX = 24
"""Up to this many patterns, a filter scans a :class:`PathBatch` once per pattern; with more,
one combined check per path is faster (and its cost does not grow with the patterns)."""


@lru_cache(maxsize=4096)
def _pieces(body: str) -> tuple[str, ...]:
    pieces = translate(body)
    # ``**/**.go``: zero or more directories then anything is just anything.
    while len(pieces) >= 2 and pieces[0] == ANY_DIRS and pieces[1] == ANY:
        pieces.pop(0)
    return tuple(pieces)


@lru_cache(maxsize=4096)
def _compile_one(raw: str) -> RegexPattern:
    negated = raw.startswith("!")
    body = raw[1:] if negated else raw
    source = "".join(_pieces(body))
    try:
        regex = re.compile(r"\A(?:" + source + r")\Z", _FLAGS)
    except re.error as exc:  # pragma: no cover - translate only emits valid regexes
        raise PatternError(f"invalid pattern {raw!r}: {exc}") from exc
    pattern = RegexPattern(regex, include=not negated)
    pattern.pattern = raw
    return pattern


_STAR = "[^/]*"


def _alternation(sources: Sequence[str]) -> str:
    return "(?:" + "|".join(dict.fromkeys(sources)) + ")"


class _Block:
    """Consecutive patterns with the same include flag: only "does any match" matters.

    The patterns are sorted by how they start, and each kind gets one regex that the ``re``
    engine runs fast:

    * anchored ones (a literal, ``*`` or ``[``) share one alternation run with ``fullmatch``;
      most alternatives fail on their first character;
    * ``**``-led ones (``**.js``) become one ``search`` for the rest anchored at the end, which
      lets the engine skip straight to the positions where a rest can start;
    * ``**/``-led ones (``**/README.md``) share one leading ``(?:.*/)?``, so the engine
      backtracks over the path once and tries the rests only where a segment starts.
    """

    __slots__ = ("anchored", "any_prefix", "include", "segment")

    def __init__(self, include: bool, bodies: Sequence[str]) -> None:
        self.include = include
        anchored: list[str] = []
        any_prefix: list[str] = []
        segment: list[str] = []
        for body in bodies:
            pieces = _pieces(body)
            if pieces and pieces[0] == ANY:
                any_prefix.append("".join(pieces[1:]))
            elif pieces and pieces[0] == ANY_DIRS:
                rest = pieces[1:]
                if rest and rest[0] == _STAR:
                    # ``**/*X`` is ``**X``: whatever position X starts at, the path before it
                    # splits into directories and a run without ``/``. Same test, faster.
                    any_prefix.append("".join(rest[1:]))
                else:
                    segment.append("".join(rest))
            else:
                anchored.append("".join(pieces))
        a = _alternation(anchored) if anchored else None
        p = _alternation(any_prefix) if any_prefix else None
        s = _alternation(segment) if segment else None
        self.anchored = re.compile(a, _FLAGS).fullmatch if a is not None else None
        self.any_prefix = re.compile(p + r"\Z", _FLAGS).search if p is not None else None
        self.segment = re.compile(ANY_DIRS + s, _FLAGS).fullmatch if s is not None else None

    def hit(self, value: str) -> bool:
        """Tell whether any pattern of the block matches ``value``."""
        return bool(
            (self.anchored is not None and self.anchored(value))
            or (self.any_prefix is not None and self.any_prefix(value))
            or (self.segment is not None and self.segment(value))
        )


def _no_newline(source: str) -> str:
    return source.replace(_STAR, "[^/\n]*")


@lru_cache(maxsize=4096)
def _scanners(body: str) -> tuple[re.Pattern[str], ...]:
    """Regexes that find the paths one pattern matches in a :class:`PathBatch` text.

    Each match ends right before the newline that closes its path. Without ``re.DOTALL``
    ``.`` stops at a newline, and ``*`` is made to stop there too. Most patterns then start
    with a literal, which the ``re`` engine finds with a fast scan.
    """
    pieces = _pieces(body)
    if pieces and pieces[0] == ANY:
        sources = [_no_newline("".join(pieces[1:])) + "(?=\n)"]
    elif pieces and pieces[0] == ANY_DIRS:
        rest = pieces[1:]
        if rest and rest[0] == _STAR:
            sources = [_no_newline("".join(rest[1:])) + "(?=\n)"]
        else:
            tail = _no_newline("".join(rest)) + "(?=\n)"
            sources = ["\n" + tail, "/" + tail]
    else:
        sources = ["\n" + _no_newline("".join(pieces)) + "(?=\n)"]
    return tuple(re.compile(x) for x in sources)


class PathBatch:
    """Paths prepared once to be checked fast by several filters.

    The paths are joined into one text, one path per line, and each pattern is run over the
    whole text at once (the ``re`` engine then loops in C, not once per path); what each
    pattern matched is remembered, so filters sharing patterns share the work. Build one per
    change list and pass it to :meth:`PathFilter.matching`, :meth:`PathFilter.count` or
    :meth:`PathFilter.any_match` of every filter that looks at the same paths.

    Args:
        paths: Repository paths.
    """

    __slots__ = ("_ends", "_lines", "paths", "text")

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths: tuple[str, ...] = tuple(paths)
        """The paths, in order."""
        text = "\n" + "\n".join(self.paths) + "\n"
        self.text: str = text if text.count("\n") == len(self.paths) + 1 else ""
        """The paths, each between two newlines (empty when a path holds a newline)."""
        # For each path, the offset of the newline that closes it in ``text``.
        self._ends = list(accumulate((len(p) + 1 for p in self.paths), initial=0))[1:]
        self._lines: dict[str, frozenset[int]] = {}

    @property
    def scannable(self) -> bool:
        """False when a path contains a newline (then paths are checked one by one)."""
        return bool(self.text)

    def lines(self, body: str) -> frozenset[int]:
        """Return the indices of the paths one pattern (without ``!``) matches; cached.

        Args:
            body: The pattern text, without a leading ``!``; must not contain a newline.

        Returns:
            The indices into :attr:`paths`.
        """
        found = self._lines.get(body)
        if found is None:
            ends = self._ends
            text = self.text
            found = frozenset(
                bisect_left(ends, m.end()) for rx in _scanners(body) for m in rx.finditer(text)
            )
            self._lines[body] = found
        return found


class _Compiled:
    """Ordered patterns compiled for last-match-wins evaluation."""

    __slots__ = ("anything", "blocks", "patterns", "scannable")

    def __init__(self, raw_patterns: Sequence[str]) -> None:
        patterns = [_compile_one(p) for p in raw_patterns]
        if patterns and not any(p.include for p in patterns):
            # Only exclusions: "everything except" (GitHub refuses such a list).
            patterns.insert(0, _compile_one("**"))
        self.patterns: tuple[RegexPattern, ...] = tuple(patterns)
        self.scannable = not any("\n" in str(p.pattern) for p in patterns)
        # Runs of patterns with the same include flag, last run first: the first run with a
        # match holds the last matching pattern, and its flag decides.
        runs: list[tuple[bool, list[str]]] = []
        for p in patterns:
            include = bool(p.include)
            raw = str(p.pattern)
            body = raw if include else raw[1:]
            if runs and runs[-1][0] == include:
                runs[-1][1].append(body)
            else:
                runs.append((include, [body]))
        self.blocks: tuple[_Block, ...] = tuple(
            _Block(inc, bodies) for inc, bodies in reversed(runs)
        )
        self.anything: _Block | None = (
            _Block(True, [b for _, bodies in runs for b in bodies]) if len(runs) > 1 else None
        )

    def decide(self, value: str) -> bool:
        blocks = self.blocks
        if len(blocks) == 1:
            block = blocks[0]
            return block.include and block.hit(value)
        # Most paths match no pattern at all: rule them out with one test of every pattern.
        if self.anything is not None and not self.anything.hit(value):
            return False
        for block in blocks:
            if block.hit(value):
                return block.include
        return False

    def select(self, batch: PathBatch) -> list[int]:
        """Return the sorted indices of the selected paths of ``batch``."""
        if not self.scannable or not batch.scannable or len(self.patterns) > _SCAN_MAX:
            return [i for i, path in enumerate(batch.paths) if self.decide(path)]
        # Applying the patterns in order, adding what a pattern matches and removing what a
        # negated one matches, is "the last matching pattern decides".
        selected: set[int] = set()
        for p in self.patterns:
            raw = str(p.pattern)
            if p.include:
                selected |= batch.lines(raw)
            else:
                selected -= batch.lines(raw[1:])
        return sorted(selected)

    def any_in(self, batch: PathBatch) -> bool:
        """Tell whether a path of ``batch`` is selected."""
        if not self.scannable or not batch.scannable or len(self.patterns) > _SCAN_MAX:
            return any(map(self.decide, batch.paths))
        if all(p.include for p in self.patterns):
            return any(batch.lines(str(p.pattern)) for p in self.patterns)
        return bool(self.select(batch))

    def which(self, value: str) -> int | None:
        for index in range(len(self.patterns) - 1, -1, -1):
            if self.patterns[index].match_file(value) is not None:
                return index
        return None


@lru_cache(maxsize=1024)
def _compiled(raw_patterns: tuple[str, ...]) -> _Compiled:
    # The same module is matched against every event: reuse its filters.
    return _Compiled(raw_patterns)


class PathFilter:
    """An ordered list of GitHub ``paths`` patterns (SPEC 4.6.5).

    Build it once and use it for many paths; compiling is cached per pattern.

    Args:
        patterns: The patterns in order; surrounding whitespace is stripped and empty entries
            are dropped. ``!`` negates.

    Raises:
        PatternError: When a pattern cannot be compiled.
    """

    __slots__ = ("_compiled", "raw")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.raw: tuple[str, ...] = tuple(s for s in (p.strip() for p in patterns) if s)
        """The patterns as given (stripped, empty ones dropped)."""
        self._compiled = _compiled(self.raw)

    @classmethod
    def from_csv(cls, text: str) -> PathFilter:
        """Build a filter from a comma-separated list (an ``onChanges`` default).

        Args:
            text: ``"**/**.go,go.*"``.

        Returns:
            The filter.
        """
        return cls(paths_csv(text))

    @property
    def empty(self) -> bool:
        """True when there is no pattern at all (callers treat that as "no restriction")."""
        return not self.raw

    @property
    def patterns(self) -> tuple[RegexPattern, ...]:
        """The compiled patterns in order, as ``pathspec`` regex patterns.

        When every given pattern is negated, a leading ``**`` is included here.
        """
        return self._compiled.patterns

    def matches(self, path: str) -> bool:
        """Tell whether a repository path is selected (the last matching pattern is positive).

        Args:
            path: A path relative to the repository root, ``/``-separated (``docs/a.md``).

        Returns:
            True when selected; always False for an empty filter.
        """
        return self._compiled.decide(path)

    def any_match(self, paths: Iterable[str] | PathBatch) -> bool:
        """Tell whether at least one of ``paths`` is selected.

        Args:
            paths: Repository paths (checked one by one, stopping at the first selected),
                or a :class:`PathBatch` of them shared by several filters.

        Returns:
            True when one of them is selected.
        """
        if isinstance(paths, PathBatch):
            return self._compiled.any_in(paths)
        return any(map(self._compiled.decide, paths))

    def matching(self, paths: Iterable[str] | PathBatch) -> list[str]:
        """Return the selected paths, in the order given.

        Args:
            paths: Repository paths, or a :class:`PathBatch` of them.

        Returns:
            The selected ones.
        """
        if isinstance(paths, PathBatch):
            given = paths.paths
            return [given[i] for i in self._compiled.select(paths)]
        return list(filter(self._compiled.decide, paths))

    def count(self, paths: Iterable[str] | PathBatch) -> int:
        """Return how many of ``paths`` are selected.

        Args:
            paths: Repository paths, or a :class:`PathBatch` of them.

        Returns:
            The number of selected paths.
        """
        if isinstance(paths, PathBatch):
            return len(self._compiled.select(paths))
        return sum(map(self._compiled.decide, paths))

    def deciding_pattern(self, path: str) -> str | None:
        """Return the pattern that decides ``path`` (the last one matching it), if any.

        Args:
            path: A repository path.

        Returns:
            The pattern text (``!README.md``), or None when no pattern matches.
        """
        index = self._compiled.which(path)
        if index is None:
            return None
        return str(self._compiled.patterns[index].pattern)

    def __repr__(self) -> str:
        return f"PathFilter({list(self.raw)!r})"


class RefFilter:
    """A comma-separated list of GitHub branch/tag patterns, for ``filter``/``event``/``vendor``.

    Entries are stripped of surrounding whitespace; empty entries are ignored. A plain name
    matches exactly; ``*``, ``**``, ``?``, ``+``, ``[]`` and a leading ``!`` work as in GitHub's
    ``branches``/``tags`` filters (``feature/*``, ``release/**``, ``v[12].[0-9]+.[0-9]+``,
    ``!main``). The last matching entry decides. A list with no entry accepts any value; a list
    of only negated entries accepts anything they do not exclude.

    Args:
        csv: The comma-separated entries (``"opened,synchronize"``).

    Raises:
        PatternError: When an entry cannot be compiled.
    """

    __slots__ = ("_compiled", "entries")

    def __init__(self, csv: str) -> None:
        self.entries: tuple[str, ...] = tuple(split_csv(csv))
        """The stripped, non-empty entries."""
        self._compiled = _compiled(self.entries)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> RefFilter:
        """Build a filter from separate entries (a JSON list default), each kept whole.

        Args:
            entries: The entries; each is stripped, empty ones are dropped.

        Returns:
            The filter.
        """
        self = cls("")
        self.entries = tuple(s for s in (e.strip() for e in entries) if s)
        self._compiled = _compiled(self.entries)
        return self

    @property
    def accepts_anything(self) -> bool:
        """True when the list has no entry."""
        return not self.entries

    def matches(self, value: str) -> bool:
        """Tell whether ``value`` is accepted.

        Args:
            value: A branch, tag, action, event type or vendor.

        Returns:
            True when accepted.
        """
        if not self.entries:
            return True
        return self._compiled.decide(value)

    def __repr__(self) -> str:
        return f"RefFilter({','.join(self.entries)!r})"


def ref_matches(patterns_csv: str, value: str) -> bool:
    """Tell whether ``value`` is accepted by a comma-separated list of branch/tag patterns.

    Args:
        patterns_csv: The list (``"main,release/**"``); empty or blank accepts anything.
        value: The value to check.

    Returns:
        True when accepted.

    Raises:
        PatternError: When an entry cannot be compiled.
    """
    return RefFilter(patterns_csv).matches(value)
