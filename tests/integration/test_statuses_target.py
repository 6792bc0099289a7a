"""``public-url``: each status links to its event on every forge, and none links without it.

Through the real engine, the stand-in dagger and the fake forge API of each vendor, whose
contract check refuses a ``target_url`` it does not expect and requires the one it does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daggerstub import fn
from statusforge import StatusForge
from test_statuses import BASE, one_function, rig

from pocketci_tui.engine.match.naming import pascal
from pocketci_tui.model import Vendor


@pytest.mark.parametrize("vendor", ["github", "gitea", "forgejo", "gitlab"])
async def test_each_status_links_to_its_event_under_the_public_url(
    tmp_path: Path, vendor: Vendor
) -> None:
    forge = StatusForge(vendor, target_prefix="https://ci.example.org/")
    passing = {"output": ["ok"], "exit": 0}
    functions = [fn(f"testOn{pascal(vendor)}PushMain", *BASE, call=passing)]
    async with rig(
        tmp_path, vendor, functions=functions, forge=forge,
        public_url="https://ci.example.org",
    ) as r:  # fmt: skip
        stored = await r.kit.deliver(r.push("linked"))
        await r.kit.wait_runs_finished(stored.event.id or 0)
        await r.wait_outbox_settled()
    assert forge.violations == []
    posts = forge.posts()
    assert posts
    assert {p.body["target_url"] for p in posts if p.body} == {
        f"https://ci.example.org/#event-{stored.event.id}"
    }


async def test_without_a_public_url_no_status_carries_a_link(tmp_path: Path) -> None:
    forge = StatusForge("github")
    async with rig(tmp_path, functions=one_function(), forge=forge) as r:
        stored = await r.kit.deliver(r.push("bare"))
        await r.kit.wait_runs_finished(stored.event.id or 0)
        await r.wait_outbox_settled()
    assert forge.violations == []
    assert forge.posts()
    assert all(p.body is not None and "target_url" not in p.body for p in forge.posts())
