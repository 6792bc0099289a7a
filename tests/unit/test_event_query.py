"""The events filter: parsing, matching live events, and the store's SQL agreeing with
:func:`pocketci_tui.model.event_outcome` for every state."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from pocketci_tui.eventquery import STATES, EventQuery, parse
from pocketci_tui.model import Event, EventStatus, Run, RunState, event_outcome, utcnow
from pocketci_tui.store import Store


def _event(delivery: str, **kw: object) -> Event:
    fields: dict[str, object] = {
        "vendor": "github",
        "event_type": "push",
        "filter": "main",
        "repository": "acme/api",
        "ref": "refs/heads/main",
        "sha": "a" * 40,
        "base_ref": "",
        "base_sha": "",
        "pr_number": None,
        "is_fork": False,
        "delivery_id": delivery,
        "received_at": utcnow(),
        "body": b"{}",
        "event_name": "push",
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


def test_parse_terms_beside_free_text() -> None:
    q = parse("  State:failed,Running  event:tag repo:Acme/*  fix   login foo:bar ")
    assert q.states == ("failed", "running")
    assert q.kinds == ("tag",)
    assert q.repos == ("acme/*",)
    assert q.text == "fix login foo:bar"
    assert q.problems == ()


def test_parse_aliases_and_unknown_states() -> None:
    assert parse("state:nothing-ran state:approval state:canceled").states == (
        "nothing ran",
        "waiting",
        "cancelled",
    )
    assert parse("event:pr").kinds == ("pull_request", "merge_request")
    q = parse("state:faild")
    assert q.problems == ("unknown state 'faild'",)
    assert not q.matches(_event("d"), "failed")
    assert parse("").empty
    assert parse("state:").empty  # a term still being typed keeps everything


def test_matches_each_term() -> None:
    tag = _event("t", event_type="tag", filter="v1", repository="acme/web", author="mara")
    assert parse("event:tag").matches(tag, "passed")
    assert not parse("event:push").matches(tag, "passed")
    assert parse("repo:acme/*").matches(tag, "passed")
    assert parse("repo:ACME/WEB").matches(tag, "passed")
    assert not parse("repo:acme/api").matches(tag, "passed")
    assert not parse("repo:other/*").matches(tag, "passed")
    assert parse("state:passed,failed").matches(tag, "passed")
    assert not parse("state:failed").matches(tag, "passed")
    assert parse("MARA").matches(tag, "passed")  # the author is searched too
    assert not parse("state:passed nobody").matches(tag, "passed")
    assert not parse("repo:acme/[w]eb").matches(tag, "passed")  # [ is literal, not a class
    assert parse("repo:acme/?eb").matches(tag, "passed")


def _runs(event_id: int, plan: tuple[tuple[str, int, RunState], ...]) -> list[Run]:
    return [
        Run(id=f"r{event_id}-{n}", event_id=event_id, function=f, state=s, attempt=a)
        for n, (f, a, s) in enumerate(plan)
    ]


PLANS: tuple[tuple[tuple[str, int, RunState], ...], ...] = (
    (("build", 1, RunState.PASSED),),
    (("build", 1, RunState.FAILED),),
    (("build", 1, RunState.FAILED), ("build", 2, RunState.PASSED)),  # re-run passed
    (("build", 1, RunState.PASSED), ("build", 2, RunState.FAILED)),
    (("build", 1, RunState.FAILED), ("test", 1, RunState.RUNNING)),
    (("build", 1, RunState.CANCELLED), ("test", 1, RunState.QUEUED)),
    (("build", 1, RunState.INTERRUPTED), ("test", 1, RunState.PASSED)),
    (("build", 1, RunState.CANCELLED), ("test", 1, RunState.PASSED)),
    (("deploy", 1, RunState.SKIPPED),),  # nothing ran
    (("build", 2, RunState.FAILED), ("build", 2, RunState.PASSED)),  # a race: later row wins
    (("build", 1, RunState.PASSED), ("build", 2, RunState.SKIPPED)),  # re-fire skipped it
    (),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "pocketci.db")
    yield s
    await s.close()


async def test_store_state_filter_agrees_with_event_outcome(store: Store) -> None:
    expected: dict[int, str] = {}
    statuses = [s for s in EventStatus if s is not EventStatus.DISPATCHED]
    for n, status in enumerate(statuses):
        stored, _ = await store.record_event(_event(f"s{n}"), status)
        assert stored.event.id is not None
        expected[stored.event.id] = event_outcome(status, [])
    for n, plan in enumerate(PLANS):
        stored, _ = await store.record_event(_event(f"p{n}"), EventStatus.DISPATCHED)
        event_id = stored.event.id
        assert event_id is not None
        runs = _runs(event_id, plan)
        await store.add_runs(runs)
        expected[event_id] = event_outcome(EventStatus.DISPATCHED, runs)
    assert set(expected.values()) == set(STATES)  # every state is exercised
    for state in STATES:
        listed = await store.list_events(limit=100, text=f"state:{state.replace(' ', '-')}")
        assert {e.event.id for e in listed} == {i for i, s in expected.items() if s == state}
    both = await store.list_events(limit=100, text="state:failed,waiting")
    assert {e.event.id for e in both} == {
        i for i, s in expected.items() if s in ("failed", "waiting")
    }


async def test_store_kind_repo_and_text_terms(store: Store) -> None:
    events = [
        _event("a", repository="acme/api", title="Fix login"),
        _event("b", repository="acme/web", event_type="tag", filter="v1"),
        _event("c", repository="other/api", event_type="pull_request", author="octocat"),
        _event("d", repository="acme/sub/x", event_type="merge_request"),
    ]
    ids: list[int] = []
    for event in events:
        stored, _ = await store.record_event(event, EventStatus.RECEIVED)
        assert stored.event.id is not None
        ids.append(stored.event.id)

    async def shown(text: str) -> list[int]:
        return sorted(e.event.id or 0 for e in await store.list_events(limit=50, text=text))

    assert await shown("event:tag") == [ids[1]]
    assert await shown("event:pr") == sorted([ids[2], ids[3]])
    assert await shown("repo:acme/*") == sorted([ids[0], ids[1], ids[3]])
    assert await shown("repo:ACME/API") == [ids[0]]
    assert await shown("repo:acme/* login") == [ids[0]]
    assert await shown("octocat") == [ids[2]]
    assert await shown("state:received event:push repo:acme/*") == [ids[0]]
    assert await shown("state:bogus") == []
    # The same query in the UI's hands keeps the same events.
    for text in ("event:tag", "event:pr", "repo:acme/*", "repo:acme/* login", "octocat"):
        query = parse(text)
        kept = [i for i, e in zip(ids, events, strict=True) if query.matches(e, "received")]
        assert await shown(text) == sorted(kept)


@pytest.mark.parametrize(
    ("a", "b"), list(itertools.combinations(("state:failed", "event:tag", "repo:x/*", "y"), 2))
)
def test_query_is_the_conjunction_of_its_terms(a: str, b: str) -> None:
    both = parse(f"{a} {b}")
    assert isinstance(both, EventQuery)
    event = replace(_event("z"), event_type="tag", repository="x/y")
    for state in ("failed", "passed"):
        assert both.matches(event, state) == (
            parse(a).matches(event, state) and parse(b).matches(event, state)
        )
