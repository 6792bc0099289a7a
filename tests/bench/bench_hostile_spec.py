"""Hostile ``pocketci.yaml`` files against a running ``serve``: intake latency and peak memory.

The scenario of :mod:`hostile` (a YAML alias bomb and a 10 MB spec of 330,000 ``paths`` pushed
to a repository behind git's ``http-backend``, while four senders keep posting deliveries), run
once, with its figures printed: the longest wait of a delivery for its answer, the server's peak
resident memory, and what the two events ended as.

``--serve-from DIR`` runs the ``serve`` child from another checkout (its working directory comes
first on ``sys.path`` for ``python -m``), to measure code without the bounds side by side;
``--rss-cap`` kills it when it passes that many MiB, to protect the machine.

Usage: ``.venv/bin/python tests/bench/bench_hostile_spec.py [--levels 8] [--serve-from DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostile import hostile_pushes


def main() -> None:
    """Parse the options, run the scenario in a temporary home and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, default=8, help="nesting of the alias bomb")
    parser.add_argument("--serve-from", type=Path, help="run serve from this checkout")
    parser.add_argument("--rss-cap", type=int, default=8192, help="MiB; serve is killed past it")
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds to settle")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pocketci-hostile-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["POCKETCI_TUI_HOME"] = str(home)
        if args.serve_from:
            os.chdir(args.serve_from)
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(f"serve from {Path.cwd()} ({head or 'not a git checkout'}), levels {args.levels}")
        figures = asyncio.run(
            hostile_pushes(
                home,
                Path(tmp) / "fixture",
                levels=args.levels,
                deadline=args.deadline,
                rss_cap=args.rss_cap * 2**20,
            )
        )
        print(figures.summary())
        for failure in figures.failures[:5]:
            print("  failure:", failure)


if __name__ == "__main__":
    main()
