"""A repository's own files cannot stall or exhaust a running ``pocketci-tui serve``.

Everything here goes through real processes (see :mod:`hostile`): a ``serve`` child, a
repository served by git's own ``http-backend`` behind basic auth, signed deliveries over
loopback HTTP and the stand-in ``dagger``. Two pushes carry hostile ``pocketci.yaml`` files: a
YAML alias bomb of a few hundred bytes (nine to the power of nine strings once expanded) and a
10 MB file of 330,000 ``paths``. While the server deals with them, other deliveries keep
arriving; each must be answered within a bounded wait, the server's peak memory (``VmHWM`` from
``/proc``) must stay under a stated bound, and both events must end in an error that says why,
in bounded length. Run with ``-s`` to see the figures; ``tests/bench/bench_hostile_spec.py``
prints the same figures for any checkout (today's code without the bounds, for instance).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import alias_bomb, hostile_pushes, huge_spec

from pocketci_tui.model import MAX_DETAIL, EventStatus

pytestmark = pytest.mark.timeout(300)

ANSWER_WITHIN = 5.0
"""The bounded wait for every delivery's answer (the intake target is well under a second)."""

PEAK_RSS_BOUND = 200 * 2**20
"""Peak resident memory allowed to the serve process (it idles near 45 MiB)."""


async def test_hostile_specs_do_not_stall_intake_or_exhaust_memory(
    hermetic_home: Path, tmp_path: Path
) -> None:
    assert len(alias_bomb(8)) < 600
    assert len(huge_spec()) > 10_000_000
    figures = await hostile_pushes(
        hermetic_home, tmp_path / "fixture", answer_timeout=60, rss_cap=4 * 2**30
    )
    print("\n" + figures.summary())

    assert not figures.failures, figures.failures[:5]
    assert figures.exit_code == 0
    assert figures.latencies
    assert figures.max_latency < ANSWER_WITHIN, f"a delivery waited {figures.max_latency:.1f} s"
    assert figures.peak_rss < PEAK_RSS_BOUND, (
        f"serve's peak RSS: {figures.peak_rss / 2**20:.0f} MiB"
    )

    bomb, big = figures.events["bomb"], figures.events["big"]
    assert bomb.status is EventStatus.ERROR
    assert bomb.detail.startswith("pocketci.yaml: refused: more than")
    assert "alias" in bomb.detail
    assert big.status is EventStatus.ERROR
    assert big.detail.startswith("pocketci.yaml:")
    assert "KiB" in big.detail
    for stored in (bomb, big):
        assert len(stored.detail) <= MAX_DETAIL
