"""Regenerate the README screenshots in screenshots/ from the same scenes the snapshot tests use.

Usage (from the repository root)::

    .venv/bin/python tests/make_screenshots.py [NAME ...]

With names (``fire-picker``, ``search-80x24``), only those shots are rendered again.
Each scene is rendered headless at 120x36 (and the main ones at 80x24) with a fixed clock and
fixed ids, saved as SVG with ``App.save_screenshot`` and converted to PNG with ``rsvg-convert``
(Debian/Ubuntu package ``librsvg2-bin``; Homebrew ``librsvg``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
OUT = ROOT / "screenshots"

SHOTS: list[tuple[str, str, tuple[int, int]]] = [
    ("passphrase", "passphrase-80x24", (80, 24)),
    ("empty", "first-start", (120, 36)),
    ("setup", "setup", (120, 36)),
    ("day-running", "running-build", (120, 36)),
    ("day-failed", "failed-build", (120, 36)),
    ("day-fire", "fire-picker", (120, 36)),
    ("day-running", "running-build-80x24", (80, 24)),
    ("day-failed", "failed-build-80x24", (80, 24)),
    ("day-details", "event-details-80x24", (80, 24)),
    ("day-repos", "repositories-80x24", (80, 24)),
    ("day-zoom", "zoom-80x24", (80, 24)),
    ("day-wrap", "wrap-80x24", (80, 24)),
    ("day-search", "search-80x24", (80, 24)),
    ("day-attempts", "attempts-80x24", (80, 24)),
    ("day-elapsed", "times-80x24", (80, 24)),
    ("webhook-forges", "webhook-forges-80x24", (80, 24)),
]
"""(scene, file name, size): a realistic day (tests/tui/day.py), not the snapshot tests' history,
which carries hostile input on purpose; and first what an SSH user meets, the passphrase."""


def render(scene_name: str, size: tuple[int, int], svg: Path) -> None:
    """Render one scene to an SVG file."""
    from tui.scenes import SCENES
    from tui.stamp_scenes import STAMP_SCENES

    with tempfile.TemporaryDirectory() as folder:
        # As in the tests: the scene's own home, so that paths show as ~/... and the user's
        # real home is never written.
        home = os.environ.get("HOME")
        os.environ["HOME"] = str(Path(folder) / "home")
        try:
            # Seeds its store outside the app's loop.
            scene = {**SCENES, **STAMP_SCENES}[scene_name](Path(folder))

            async def run() -> None:
                async with scene.app.run_test(size=size) as pilot:
                    await scene.run_before(pilot)
                    await pilot.pause(0.2)
                    scene.app.save_screenshot(svg.name, path=str(svg.parent))

            asyncio.run(run())
        finally:
            if home is None:
                del os.environ["HOME"]
            else:
                os.environ["HOME"] = home


def main() -> int:
    """Render every shot and convert it to PNG."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    converter = shutil.which("rsvg-convert")
    if converter is None:
        print("rsvg-convert not found: install librsvg2-bin (or librsvg)", file=sys.stderr)
        return 1
    wanted = set(sys.argv[1:])
    unknown = wanted - {name for _, name, _ in SHOTS}
    if unknown:
        print(f"no such shot: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    for scene_name, file_name, size in SHOTS:
        if wanted and file_name not in wanted:
            continue
        svg = OUT / f"{file_name}.svg"
        render(scene_name, size, svg)
        png = OUT / f"{file_name}.png"
        subprocess.run([converter, "-o", str(png), str(svg)], check=True)
        svg.unlink()
        print(f"wrote {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
