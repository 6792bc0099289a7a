"""Masking of secret values in everything a run writes or shows.

The first version masks raw values only; encoded forms come with the secrets work.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Masker:
    """Replace known secret values in text with ``***``.

    Args:
        secrets: The values to hide. Empty values are ignored.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._needles = sorted({s for s in secrets if s}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        """Return ``text`` with every known secret value replaced."""
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text
