"""Translating one GitHub Actions filter pattern into a regular expression.

A filter (:mod:`.patterns`) is a list of such patterns; this is the one place that knows what a
single pattern means, so the rules below are read and tested apart from how a filter combines
and speeds up many of them. The syntax is the one of GitHub's "Filter pattern cheat sheet", for
both kinds of filter (file paths and branch/tag names):

* ``*`` matches zero or more characters except ``/``;
* ``**`` matches zero or more of any character, ``/`` included; when it forms a whole leading
  path segment (``**/``), it also matches zero directories, so ``**/README.md`` matches
  ``README.md`` at the root and ``**/docs/**`` matches ``docs/hello.md``;
* ``?`` matches zero or one of the preceding character (``*.jsx?`` matches ``page.js`` and
  ``page.jsx``), ``+`` one or more of it (``v[12].[0-9]+.[0-9]+``); with nothing to repeat
  (first character, after ``*`` or after another ``?``/``+``) they are literal characters;
* ``[...]`` matches one character listed or in a range (``[CB]at``, ``[1-2]00``, ``[0-9a-z]``);
  an unclosed ``[`` is a literal ``[``;
* ``\\`` makes the next character literal;
* ``!`` as the first character negates the pattern; anywhere else it is a literal;
* every other character, ``.`` included, matches itself, case-sensitively;
* patterns are anchored: they match the whole path from the repository root (``*.js``
  matches ``app.js`` but not ``src/app.js``; use ``**.js`` or ``**/*.js`` for that);
* patterns are checked in order and the last one that matches decides: a negated pattern
  excludes what earlier patterns included, and a later positive one re-includes it.

Why not the gitignore patterns of the ``pathspec`` library: gitignore differs from GitHub on
most of these points (an unanchored ``*.js`` matches at any depth, a bare name like ``docs``
matches everything inside that directory, ``?`` is any one character, ``+`` is literal, and
``**`` is only special as a whole path segment, so ``**.js`` would not cross ``/``). Rewriting
GitHub patterns into gitignore ones cannot express ``?`` and ``+``. So each pattern is
translated here into a regular expression, and the compiled patterns are ``pathspec``
:class:`~pathspec.pattern.RegexPattern` objects (pattern text, include flag, regex), so any
``pathspec.PathSpec`` can evaluate them too; the tests check that it agrees.
"""

from __future__ import annotations

import re

__all__ = ["ANY", "ANY_DIRS", "PatternError", "glob_to_regex", "translate"]


class PatternError(ValueError):
    """A pattern that cannot be compiled (for example a reversed range such as ``[z-a]``)."""


def glob_to_regex(glob: str) -> str:
    """Translate one GitHub filter pattern (without its leading ``!``) into a regex.

    The result uses only non-capturing groups and is meant for ``re.fullmatch`` with
    ``re.DOTALL`` (``**`` must match any character, even a newline in a file name).

    Args:
        glob: The pattern text.

    Returns:
        The regular expression source.

    Raises:
        PatternError: When a bracket expression holds a reversed range.
    """
    return "".join(translate(glob))


ANY = ".*"
"""The piece ``**`` becomes: any characters, ``/`` included."""
ANY_DIRS = "(?:.*/)?"
"""The piece a leading ``**/`` becomes: zero or more whole directories."""


def translate(glob: str) -> list[str]:
    """Translate a pattern into regex pieces, one per glob token."""
    out: list[str] = []
    # Whether the last emitted atom can take a ``?``/``+`` quantifier.
    quantifiable = False
    i = 0
    n = len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if i + 1 < n and glob[i + 1] == "*":
                at_segment_start = i == 0 or glob[i - 1] == "/"
                if at_segment_start and i + 2 < n and glob[i + 2] == "/":
                    out.append(ANY_DIRS)
                    i += 3
                else:
                    out.append(ANY)
                    i += 2
            else:
                out.append("[^/]*")
                i += 1
            quantifiable = False
            continue
        if c in "?+":
            if quantifiable:
                out[-1] += c
                quantifiable = False
            else:
                out.append(re.escape(c))
                quantifiable = True
            i += 1
            continue
        if c == "[":
            end = glob.find("]", i + 1)
            if end > i + 1:
                out.append(_bracket(glob[i + 1 : end], glob))
                quantifiable = True
                i = end + 1
                continue
            out.append(re.escape(c))
            quantifiable = True
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            quantifiable = True
            i += 2
            continue
        out.append(re.escape(c))
        quantifiable = True
        i += 1
    return out


def _bracket(body: str, glob: str) -> str:
    parts: list[str] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] == "-":
            lo, hi = body[j], body[j + 2]
            if lo > hi:
                raise PatternError(f"reversed range {lo}-{hi} in pattern {glob!r}")
            parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
            j += 3
        else:
            parts.append(re.escape(body[j]))
            j += 1
    return "[" + "".join(parts) + "]"
