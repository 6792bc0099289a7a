"""Masking of secret values in everything a run writes or shows.

A :class:`Masker` is built once per run from the secret values that run can see. It hides the
raw value and the forms a program commonly prints it in:

* each line of a multi-line value (a PEM key echoed unquoted, lines joined with spaces), raw,
  JSON-escaped or in ``repr``;
* base64, standard and URL-safe, with and without padding, and the stable inner part of the
  three byte alignments, so ``base64("user:" + secret)`` is caught too (the prefix shifts the
  secret by 0, 1 or 2 bytes; the characters that depend only on the secret are masked);
* URL-encoded (``quote`` with and without ``/`` as safe, ``quote_plus``);
* JSON-escaped (ASCII and non-ASCII ``json.dumps``, without the quotes);
* Python ``repr`` escaping (tracebacks, ``print(repr(x))``);
* hex of the UTF-8 bytes, lower and upper case.

Masking is a safety net, not a sandbox: a program that wants to leak a secret can always do it
(reverse it, print it a character at a time, compress or encrypt it). Values shorter than
:data:`~pocketci_tui.secrets.MIN_SECRET_LENGTH` are not masked at all, because masking them would
shred ordinary output; the secret store refuses such values unless forced.

All needles go into one compiled regular expression, shaped as a trie (needles sharing a
prefix share its branch), so a line without any secret costs one scan in C. At every position
the longest needle wins, so masking is the same whether the text arrives at once or in chunks
through :class:`StreamMasker`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from pocketci_tui.secrets import MIN_SECRET_LENGTH

MASK = "***"
"""What a masked value is replaced with (unless a secret itself contains ``*``)."""

_MIN_ENCODED_LENGTH = 6
"""Encoded needles shorter than this are dropped (they would match ordinary text)."""

_TOKEN_CANDIDATES = "*#~%^=+!@$&?-_.:;|,0123456789"


def _b64_stable_parts(data: bytes) -> set[str]:
    """Return the base64 characters of ``data`` that do not depend on surrounding bytes.

    For each alignment ``k`` (``data`` preceded by 0, 1 or 2 bytes of anything), the encoded
    characters that carry only bits of ``data`` are the stable part: skip ``ceil(8k/6)``
    characters that mix in the prefix and stop at ``floor(8(k+n)/6)`` before any that would mix
    in what follows.
    """
    parts: set[str] = set()
    n = len(data)
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + data).decode("ascii").rstrip("=")
        start = -(-8 * k // 6)
        end = (8 * (k + n)) // 6
        inner = encoded[start:end]
        parts.add(inner)
        parts.add(inner.translate(str.maketrans("+/", "-_")))
    return parts


def encoded_forms(value: str) -> set[str]:
    """Return every string that stands for ``value`` in output and must be masked.

    Args:
        value: A secret value.

    Returns:
        The raw value, its lines and their encoded forms (see the module docstring). Empty if the
        value is shorter than :data:`~pocketci_tui.secrets.MIN_SECRET_LENGTH`.
    """
    if len(value) < MIN_SECRET_LENGTH:
        return set()
    forms: set[str] = set()
    # Each line of a multi-line value, as printed raw or escaped. (Encoding a single line on
    # its own is rare; the encoded forms of the whole value follow.)
    for line in value.splitlines():
        for text in (line, line.strip()):
            if len(text) >= MIN_SECRET_LENGTH:
                forms.update((text, json.dumps(text)[1:-1], repr(text)[1:-1]))
    raw = value.encode("utf-8", "surrogatepass")
    forms.add(value)
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(repr(value)[1:-1])
    forms.add(quote(value, safe=""))
    forms.add(quote(value))
    forms.add(quote_plus(value))
    forms.add(binascii.hexlify(raw).decode("ascii"))
    forms.add(binascii.hexlify(raw).decode("ascii").upper())
    std = base64.b64encode(raw).decode("ascii")
    url = base64.urlsafe_b64encode(raw).decode("ascii")
    forms.update({std, url, std.rstrip("="), url.rstrip("=")})
    forms.update(_b64_stable_parts(raw))
    return {f for f in forms if len(f) >= _MIN_ENCODED_LENGTH}


class _Node(dict[str, "_Node"]):
    """A trie node: next character -> child; the key ``""`` marks the end of a needle."""


def _trie_pattern(needles: Iterable[str]) -> str:
    """Build a regular expression that matches the longest of ``needles`` at each position."""
    trie = _Node()
    end = ""  # a key no character can equal
    for needle in needles:
        node = trie
        for ch in needle:
            node = node.setdefault(ch, _Node())
        node[end] = _Node()

    def emit(node: _Node) -> str:
        branches: list[str] = []
        for ch in sorted(k for k in node if k != end):
            child = node[ch]
            # Collapse chains of single children into one literal run.
            literal = ch
            while len(child) == 1 and end not in child:
                (next_ch,) = child
                literal += next_ch
                child = child[next_ch]
            branches.append(re.escape(literal) + emit(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end in node:
            # Greedy: the longer needle is tried first, the shorter one is the fallback.
            return "(?:" + body + ")?"
        return body

    return emit(trie)


def _pick_token(needles: Iterable[str]) -> str:
    """Return a replacement that no needle can contain, so masking never creates a secret."""
    used = set().union(*(set(n) for n in needles))
    for ch in _TOKEN_CANDIDATES:
        if ch not in used:
            return ch * 3
    code = 0x2580  # block elements; walk on until a free character turns up
    while chr(code) in used:
        code += 1
    return chr(code) * 3


class Masker:
    """Replace known secret values, and their encoded forms, in text.

    Args:
        secrets: The values to hide. Values shorter than
            :data:`~pocketci_tui.secrets.MIN_SECRET_LENGTH` are ignored (a documented limit).

    Attributes:
        token: The replacement text, normally ``***``. If a secret contains ``*`` another
            character is used, so that a replacement can never form a secret with its neighbours.
        max_len: The length of the longest needle (0 when there is nothing to mask).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        needles: set[str] = set()
        for value in secrets:
            needles |= encoded_forms(value)
        self._needles = frozenset(needles)
        self.token = _pick_token(needles) if needles else MASK
        self.max_len = max((len(n) for n in needles), default=0)
        self._regex = re.compile(_trie_pattern(needles)) if needles else None

    @property
    def needles(self) -> frozenset[str]:
        """Every string this masker hides."""
        return self._needles

    def __bool__(self) -> bool:
        """True when there is at least one value to mask."""
        return self._regex is not None

    def mask(self, text: str) -> str:
        """Return ``text`` with every secret value and encoded form replaced by :attr:`token`.

        Args:
            text: A complete piece of output, usually one line.

        Returns:
            The masked text; ``text`` itself when it holds nothing to mask.
        """
        if self._regex is None:
            return text
        return self._regex.sub(self.token, text)

    def find_all(self, text: str) -> list[tuple[int, int]]:
        """Return the ``(start, end)`` spans that :meth:`mask` would replace."""
        if self._regex is None:
            return []
        return [m.span() for m in self._regex.finditer(text)]


class StreamMasker:
    """Mask text that arrives in arbitrary chunks (a secret may be split between two reads).

    The output is exactly ``masker.mask(whole_text)``, emitted as early as possible: at most
    ``masker.max_len - 1`` characters are held back until more text (or :meth:`flush`) shows
    whether they start a secret.

    Args:
        masker: The masker with the values to hide.
    """

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._hold = max(masker.max_len - 1, 0)
        self._buf = ""

    def feed(self, chunk: str) -> str:
        """Add ``chunk`` and return the masked text that is now final (possibly empty)."""
        if not self._masker:
            return chunk
        buf = self._buf + chunk
        cut = len(buf) - self._hold
        if cut <= 0:
            self._buf = buf
            return ""
        spans = self._masker.find_all(buf)
        for start, end in spans:
            if start < cut < end:
                cut = start  # never split a match: hold it back whole
                break
        out: list[str] = []
        pos = 0
        for start, end in spans:
            if end > cut:
                break
            out.append(buf[pos:start])
            out.append(self._masker.token)
            pos = end
        out.append(buf[pos:cut])
        self._buf = buf[cut:]
        return "".join(out)

    def flush(self) -> str:
        """Return the masked remainder; call once the stream has ended."""
        rest, self._buf = self._buf, ""
        return self._masker.mask(rest)
