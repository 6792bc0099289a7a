"""The SQLite store: events, redeliveries, runs, migrations, retention and durability settings."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from pocketci_tui.model import (
    Event,
    EventStatus,
    MatchInputs,
    Run,
    RunState,
    event_outcome,
    utcnow,
)
from pocketci_tui.store import Store, StoreError
from pocketci_tui.store.schema import MIGRATIONS


def make_event(delivery: str = "d-1", **kw: object) -> Event:
    base: dict[str, object] = {
        "vendor": "github",
        "event_type": "push",
        "filter": "main",
        "repository": "acme/api",
        "ref": "refs/heads/main",
        "sha": "a" * 40,
        "base_ref": "",
        "base_sha": "b" * 40,
        "pr_number": None,
        "is_fork": False,
        "delivery_id": delivery,
        "received_at": utcnow(),
        "body": b'{"ref": "refs/heads/main"}',
        "title": "Fix it",
        "hook_id": "100",
        "event_name": "push",
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


async def test_open_creates_schema_wal_full(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "pocketci.db"
    s = await Store.open(path)
    await s.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "event_bodies", "runs"} <= tables
    conn.close()


async def test_writer_uses_synchronous_full_and_foreign_keys(store: Store) -> None:
    def pragmas(conn: sqlite3.Connection) -> tuple[int, int]:
        return (
            conn.execute("PRAGMA synchronous").fetchone()[0],
            conn.execute("PRAGMA foreign_keys").fetchone()[0],
        )

    # Jobs run on the writer's own connection.
    assert await store._write(pragmas) == (2, 1)


async def test_record_and_get_event(store: Store) -> None:
    stored, dup = await store.record_event(make_event(), EventStatus.RECEIVED)
    assert not dup
    assert stored.event.id is not None
    got = await store.get_event(stored.event.id)
    assert got is not None
    assert got.event == stored.event
    assert got.event.body == b'{"ref": "refs/heads/main"}'
    assert got.status is EventStatus.RECEIVED
    assert await store.get_event(9999) is None


async def test_redelivery_returns_original_and_counts(store: Store) -> None:
    first, _ = await store.record_event(make_event(hook_id="1"), EventStatus.RECEIVED)
    again, dup = await store.record_event(
        make_event(hook_id="2", title="other"), EventStatus.IGNORED, "x"
    )
    assert dup
    assert again.event.id == first.event.id
    assert again.event.title == "Fix it"
    assert again.status is EventStatus.RECEIVED
    assert again.redeliveries == 1
    assert await store.count_events() == 1
    assert first.event.id is not None
    assert await store.hook_ids(first.event.id) == ["1", "2"]
    third, dup3 = await store.record_event(make_event(hook_id="2"), EventStatus.RECEIVED)
    assert dup3
    assert third.redeliveries == 2
    assert await store.hook_ids(first.event.id) == ["1", "2"]


async def test_same_delivery_other_vendor_is_distinct(store: Store) -> None:
    await store.record_event(make_event(), EventStatus.RECEIVED)
    _, dup = await store.record_event(make_event(vendor="gitea"), EventStatus.RECEIVED)
    assert not dup
    assert await store.count_events() == 2


async def test_list_events_newest_first_paged_and_filtered(store: Store) -> None:
    for i in range(10):
        await store.record_event(
            make_event(f"d{i}", repository=f"acme/r{i % 2}", title=f"T_{i}%"),
            EventStatus.RECEIVED,
        )
    page = await store.list_events(limit=4)
    assert [e.event.delivery_id for e in page] == ["d9", "d8", "d7", "d6"]
    assert all(e.event.body == b"" for e in page)
    nxt = await store.list_events(limit=4, before_id=page[-1].event.id)
    assert [e.event.delivery_id for e in nxt] == ["d5", "d4", "d3", "d2"]
    r1 = await store.list_events(text="ACME/R1")
    assert {e.event.delivery_id for e in r1} == {"d1", "d3", "d5", "d7", "d9"}
    # LIKE wildcards in the text are literal.
    assert [e.event.delivery_id for e in await store.list_events(text="t_3%")] == ["d3"]
    assert await store.list_events(text="%%") == []


async def test_status_and_approval(store: Store) -> None:
    s, _ = await store.record_event(make_event(), EventStatus.RECEIVED)
    eid = s.event.id
    assert eid is not None
    await store.set_event_status(eid, EventStatus.WAITING, "fork")
    await store.set_approved_sha(eid, "c" * 40)
    got = await store.get_event(eid)
    assert got is not None
    assert (got.status, got.detail, got.approved_sha) == (EventStatus.WAITING, "fork", "c" * 40)


async def test_events_with_status_oldest_first_with_body(store: Store) -> None:
    for i, st in enumerate([EventStatus.RECEIVED, EventStatus.IGNORED, EventStatus.DISPATCHING]):
        await store.record_event(make_event(f"d{i}"), st)
    got = await store.events_with_status(EventStatus.DISPATCHING, EventStatus.RECEIVED)
    assert [e.event.delivery_id for e in got] == ["d0", "d2"]
    assert all(e.event.body for e in got)
    assert await store.events_with_status() == []


async def test_runs_roundtrip(store: Store) -> None:
    s, _ = await store.record_event(make_event(), EventStatus.RECEIVED)
    eid = s.event.id
    assert eid is not None
    now = utcnow()
    runs = [
        Run(
            id="ff01",
            event_id=eid,
            function="onGithubPushMain",
            state=RunState.QUEUED,
            args=(("filter", "main"), ("secret", "ghToken")),
            created_at=now,
        ),
        Run(id="0a02", event_id=eid, function="lint", state=RunState.SKIPPED, reason="tier"),
    ]
    await store.add_runs(runs)
    listed = await store.list_runs(eid)
    assert [r.id for r in listed] == ["ff01", "0a02"]
    assert listed[0] == runs[0]
    assert listed[1].created_at is not None
    running = replace(runs[0], state=RunState.RUNNING, started_at=now, log_path="1/ff01.log")
    await store.update_run(running)
    assert await store.get_run("ff01") == running
    assert await store.get_run("nope") is None
    assert [r.id for r in await store.runs_with_state(RunState.RUNNING)] == ["ff01"]
    assert await store.max_attempt(eid) == 1
    assert await store.max_attempt(eid, "lint") == 1
    assert await store.max_attempt(eid, "other") == 0
    interrupted = await store.mark_interrupted()
    assert [(r.id, r.state) for r in interrupted] == [("ff01", RunState.INTERRUPTED)]
    assert interrupted[0].finished_at is not None
    assert await store.runs_with_state(RunState.RUNNING) == []
    assert await store.mark_interrupted() == []


async def test_runs_by_event_and_the_outcome_of_latest_attempts(store: Store) -> None:
    ids = []
    for n in range(3):
        stored, _ = await store.record_event(make_event(f"d-{n}"), EventStatus.DISPATCHED)
        assert stored.event.id is not None
        ids.append(stored.event.id)
    first, second, empty = ids
    await store.add_runs(
        [
            Run(id="b1", event_id=first, function="build", state=RunState.PASSED),
            Run(id="t1", event_id=first, function="test", state=RunState.FAILED),
            Run(id="x1", event_id=second, function="test", state=RunState.FAILED),
        ]
    )
    await store.add_runs(
        [Run(id="t2", event_id=first, function="test", state=RunState.PASSED, attempt=2)]
    )
    found = await store.runs_by_event([first, second, empty, first])
    assert {k: [r.id for r in v] for k, v in found.items()} == {
        first: ["b1", "t1", "t2"],
        second: ["x1"],
        empty: [],
    }
    events = {s.event.id: s for s in await store.list_events()}
    outcomes = {i: event_outcome(events[i].status, runs) for i, runs in found.items()}
    assert outcomes == {first: "passed", second: "failed", empty: "nothing ran"}


async def test_match_inputs_roundtrip_replace_and_go_with_the_event(
    store: Store, tmp_path: Path
) -> None:
    stored, _ = await store.record_event(make_event("d-in"), EventStatus.DISPATCHED)
    event_id = stored.event.id
    assert event_id is not None
    assert await store.match_inputs(event_id) is None
    first = MatchInputs("git-abc", ("ghPassword",), ("a.go", "b/c.go"))
    await store.save_match_inputs(event_id, first)
    assert await store.match_inputs(event_id) == first
    unknown = MatchInputs("git-def", (), None)
    await store.save_match_inputs(event_id, unknown)
    assert await store.match_inputs(event_id) == unknown
    assert await store.apply_retention(max_events=0, max_days=90, logs_dir=tmp_path) == 1
    assert await store.match_inputs(event_id) is None


async def test_duplicate_run_id_fails_alone(store: Store) -> None:
    s, _ = await store.record_event(make_event(), EventStatus.RECEIVED)
    assert s.event.id is not None
    run = Run(id="r1", event_id=s.event.id, function="f", state=RunState.QUEUED)
    await store.add_runs([run])
    # Submitted together: the failing job is rolled back, the good one still commits.
    results = await asyncio.gather(
        store.add_runs([run]),
        store.record_event(make_event("d-2"), EventStatus.RECEIVED),
        return_exceptions=True,
    )
    assert isinstance(results[0], StoreError)
    assert await store.count_events() == 2


async def test_concurrent_records_group_commit(store: Store) -> None:
    results = await asyncio.gather(
        *(store.record_event(make_event(f"c{i % 150}"), EventStatus.RECEIVED) for i in range(300))
    )
    assert sum(1 for _, dup in results if not dup) == 150
    assert await store.count_events() == 150


async def test_retention_by_count_and_age(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = utcnow() - timedelta(days=10)
    ids = []
    for i in range(6):
        s, _ = await store.record_event(
            make_event(f"d{i}", received_at=old if i == 0 else utcnow()), EventStatus.RECEIVED
        )
        assert s.event.id is not None
        ids.append(s.event.id)
        (logs / f"{i}.log").write_text("x")
        await store.add_runs(
            [
                Run(
                    id=f"r{i}",
                    event_id=s.event.id,
                    function="f",
                    state=RunState.PASSED,
                    log_path=f"{i}.log",
                )
            ]
        )
    # A queued run keeps its (old) event.
    await store.add_runs([Run(id="busy", event_id=ids[1], function="f", state=RunState.QUEUED)])
    outside = tmp_path / "outside.log"
    outside.write_text("keep")
    await store.add_runs(
        [
            Run(
                id="evil",
                event_id=ids[2],
                function="f",
                state=RunState.PASSED,
                log_path="../outside.log",
            )
        ]
    )
    deleted = await store.apply_retention(max_events=3, max_days=5, logs_dir=logs)
    assert deleted == 2  # d0 (age and count), d2 (count); d1 is busy
    left = [e.event.delivery_id for e in await store.list_events()]
    assert left == ["d5", "d4", "d3", "d1"]
    assert not (logs / "0.log").exists()
    assert not (logs / "2.log").exists()
    assert (logs / "1.log").exists()
    assert outside.exists()
    assert await store.get_run("r0") is None


async def test_reopen_keeps_data_and_migrations_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    s = await Store.open(path)
    await s.record_event(make_event(), EventStatus.RECEIVED)
    await s.close()
    s2 = await Store.open(path)
    assert await s2.count_events() == 1
    await s2.close()
    await s2.close()  # idempotent


async def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await Store.open(path)


async def test_not_a_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        await Store.open(path)


async def test_closed_store_raises(tmp_path: Path) -> None:
    s = await Store.open(tmp_path / "p.db")
    await s.close()
    with pytest.raises(StoreError):
        await s.record_event(make_event(), EventStatus.RECEIVED)
    with pytest.raises(StoreError):
        await s.count_events()


async def test_locked_database_is_a_store_error_then_recovers(tmp_path: Path) -> None:
    """D3 at the store level: another writer holds the lock longer than the busy timeout."""
    path = tmp_path / "p.db"
    s = await Store.open(path, busy_timeout=0.3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            await s.record_event(make_event(), EventStatus.RECEIVED)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await s.count_events() == 0
    await s.record_event(make_event(), EventStatus.RECEIVED)
    assert await s.count_events() == 1
    await s.close()


async def test_list_events_fast_path_on_many_rows(tmp_path: Path) -> None:
    s = await Store.open(tmp_path / "p.db")
    await asyncio.gather(
        *(s.record_event(make_event(f"m{i}"), EventStatus.RECEIVED) for i in range(2000))
    )
    page = await s.list_events(limit=100)
    assert len(page) == 100
    ids = [e.event.id for e in page]
    assert ids == list(range(2000, 1900, -1))
    await s.close()


async def test_merged_batch_maps_ids_bodies_and_redeliveries(store: Store) -> None:
    """Concurrent records are merged into multi-row inserts: every id maps to its own body."""
    await store.record_event(make_event("old-1", body=b'{"n": "old"}'), EventStatus.RECEIVED)
    names = [f"m{i % 40}" for i in range(120)] + ["old-1"] * 3
    pending = [
        asyncio.ensure_future(
            store.record_event(make_event(n, body=f'{{"n": "{n}"}}'.encode()), EventStatus.RECEIVED)
        )
        for n in names
    ]
    await store.set_event_status(1, EventStatus.IGNORED, "changed meanwhile")
    records = await asyncio.gather(*pending)
    assert sum(1 for _, dup in records if not dup) == 40
    for name, (stored, _) in zip(names, records, strict=True):
        assert stored.event.id is not None
        got = await store.get_event(stored.event.id)
        assert got is not None
        assert got.event.delivery_id == name
        assert got.event.body == (
            b'{"n": "old"}' if name == "old-1" else f'{{"n": "{name}"}}'.encode()
        )
    old = await store.get_event(1)
    assert old is not None
    assert old.redeliveries == 3
    assert old.status is EventStatus.IGNORED
    assert await store.count_events() == 41


def test_with_id_equals_replace() -> None:
    from pocketci_tui.store.rows import _with_id

    e = make_event("x", pr_number=3, is_fork=True, title="t")
    assert _with_id(e, 9) == replace(e, id=9)
    assert _with_id(e, 9) is not e
    assert e.id is None


async def test_read_only_store_reads_beside_the_writer_and_changes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "pocketci.db"
    with pytest.raises(FileNotFoundError):
        await Store.open_read_only(db)
    assert not db.parent.exists(), "opening read-only must create nothing"

    writer = await Store.open(db)
    try:
        await writer.record_event(make_event("ro-1"), EventStatus.RECEIVED)
        reader = await Store.open_read_only(db)
        try:
            assert [s.event.delivery_id for s in await reader.list_events()] == ["ro-1"]
            with pytest.raises(StoreError, match="read-only"):
                await reader.record_event(make_event("ro-2"), EventStatus.RECEIVED)
            await writer.record_event(make_event("ro-3"), EventStatus.RECEIVED)
            assert await reader.count_events() == 2
        finally:
            await reader.close()
    finally:
        await writer.close()


async def test_read_only_store_never_migrates(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="older than this program's"):
        await Store.open_read_only(db)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["events"]
    finally:
        conn.close()
