"""Snapshots of the main states at 80x24 and 120x40 (fixed clock, fixed ids).

Update only after reading the report: ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .scenes import SCENES
from .stamp_scenes import STAMP_SCENES

ALL_SCENES = {**SCENES, **STAMP_SCENES}

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
@pytest.mark.parametrize("name", list(ALL_SCENES))
def test_scene(name: str, size: tuple[int, int], tmp_path: Path, snap_compare: Any) -> None:
    """You should see the named state: empty first start, setup showing the URL and secret,
    a running build following its output, a failed build with its reason, the fire picker with
    its preview, the webhook dialog with the secret hidden (alone, and with a section per
    forge of a config using GitHub, Gitea and GitLab), the keys; the same on a realistic
    day (the README's screenshots), with the failed build's long lines wrapped (w); the
    passphrase an SSH user chooses first; and the day's output with the time of each line
    (wall clock, and since the run started)."""
    scene = ALL_SCENES[name](tmp_path)
    assert snap_compare(scene.app, terminal_size=size, run_before=scene.run_before)
