"""The store's summaries: the queue's order and how each repository stands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from pocketci_tui.model import Event, EventStatus, Run, RunState, utcnow
from pocketci_tui.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "pocketci.db")
    yield s
    await s.close()


def _event(delivery: str, repository: str) -> Event:
    return Event(
        vendor="gitea",
        event_type="push",
        filter="main",
        repository=repository,
        ref="refs/heads/main",
        sha="a" * 40,
        base_ref="",
        base_sha="",
        pr_number=None,
        is_fork=False,
        delivery_id=delivery,
        received_at=utcnow(),
        body=b"{}",
        event_name="push",
    )


async def _add(store: Store, delivery: str, repository: str, status: EventStatus) -> int:
    stored, _ = await store.record_event(_event(delivery, repository), status)
    assert stored.event.id is not None
    return stored.event.id


async def test_queue_order_is_creation_order_of_queued_runs(store: Store) -> None:
    event_id = await _add(store, "d1", "acme/api", EventStatus.DISPATCHED)
    base = utcnow()
    runs = [
        Run("late", event_id, "b", RunState.QUEUED, created_at=base + timedelta(seconds=2)),
        Run("early", event_id, "a", RunState.QUEUED, created_at=base),
        Run("busy", event_id, "c", RunState.RUNNING, created_at=base - timedelta(seconds=1)),
        Run("mid", event_id, "d", RunState.QUEUED, created_at=base + timedelta(seconds=1)),
    ]
    await store.add_runs(runs)
    assert await store.queued_runs() == ["early", "mid", "late"]


async def test_repositories_say_now_and_the_last_build_that_ended(store: Store) -> None:
    base = utcnow() - timedelta(hours=1)
    old = await _add(store, "d1", "acme/api", EventStatus.DISPATCHED)
    failed = await _add(store, "d2", "acme/api", EventStatus.DISPATCHED)
    running = await _add(store, "d3", "acme/api", EventStatus.DISPATCHED)
    web = await _add(store, "d4", "acme/web", EventStatus.WAITING)
    ended = base + timedelta(minutes=5)
    await store.add_runs(
        [
            Run("o", old, "build", RunState.PASSED, finished_at=base),
            Run("f1", failed, "build", RunState.PASSED, finished_at=base + timedelta(minutes=3)),
            Run("f2", failed, "test", RunState.FAILED, finished_at=ended),
            Run("r", running, "build", RunState.RUNNING, started_at=base),
        ]
    )
    webs, api = await store.repositories()  # the most recently active first
    assert (webs.repository, webs.latest.event.id, webs.latest_state) == (
        "acme/web",
        web,
        "waiting",
    )
    assert (webs.outcome, webs.outcome_at, webs.outcome_event_id) == ("", None, None)
    assert (api.repository, api.vendor, api.latest.event.id) == ("acme/api", "gitea", running)
    assert api.latest_state == "running"
    # The build still running has not ended: the last one that did failed, when its test ended.
    assert (api.outcome, api.outcome_at, api.outcome_event_id) == ("failed", ended, failed)
