"""Untrusted text made literal for the screen: escapes, control and bidi characters."""

from __future__ import annotations

import pytest

from pocketci_tui.tui.text import BIDI_CONTROLS, Part, clean, clean_lines, fit_parts, literal

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


SEARCH_BORDER = [
    Part("12/120+"),
    Part("/connection refused", cut=True, glued=True),
    Part("wrap"),
    Part("paused"),
    Part("n/N", drop=1),
    Part("End follows", short="End", drop=2),
]


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (80, "12/120+ /connection refused · wrap · paused · n/N · End follows"),
        (56, "12/120+ /connection refused · wrap · paused · n/N · End"),
        (42, "12/120+ /conn… · wrap · paused · n/N · End"),
        (37, "12/120+ /conne… · wrap · paused · n/N"),
        (30, "12/120+ /conn… · wrap · paused"),
        (12, "12/120+ /co…"),
    ],
)
def test_a_border_keeps_the_count_and_state_and_gives_up_hints_first(
    width: int, expected: str
) -> None:
    """At 80x24 the Output pane's border has about 40 cells: the count and the state stay
    whole, the hints shorten, then the searched text is cut, then the hints go."""
    fitted = fit_parts(SEARCH_BORDER, width)
    assert fitted == expected
    assert len(fitted) <= width
