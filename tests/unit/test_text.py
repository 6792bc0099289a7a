"""Untrusted text made literal for the screen: escapes, control and bidi characters."""

from __future__ import annotations

import pytest

from pocketci_tui.tui.text import BIDI_CONTROLS, clean, clean_lines, literal

BIDI = [
    "\u202a",  # left-to-right embedding
    "\u202b",  # right-to-left embedding
    "\u202c",  # pop directional formatting
    "\u202d",  # left-to-right override
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2067",  # right-to-left isolate
    "\u2068",  # first strong isolate
    "\u2069",  # pop directional isolate
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u061c",  # Arabic letter mark
]


@pytest.mark.parametrize("char", BIDI)
def test_bidi_controls_are_neutralised_everywhere(char: str) -> None:
    """Issue 11: a branch named with U+202E showed reordered ("exe.png" for "gnp.exe")."""
    hostile = f"feature/{char}gnp.exe"
    assert clean(hostile) == "feature/?gnp.exe"
    assert clean(hostile, keep_newlines=True) == "feature/?gnp.exe"
    assert clean_lines([hostile, "plain", f"{char}{char}"]) == ["feature/?gnp.exe", "plain", "??"]
    assert literal(hostile).plain == "feature/?gnp.exe"
    assert char in BIDI_CONTROLS


def test_ordinary_right_to_left_text_is_kept() -> None:
    """Hebrew, Arabic and emoji with joiners are text, not controls."""
    for text in ("שלום", "مرحبا", "👩\u200d💻", "café"):
        assert clean(text) == text
        assert clean_lines([text]) == [text]
