"""What polling keeps in the store (issue 17): known refs, and one event per change whoever
reports it first; and the bound on a listing's size."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.engine.git import GitCommand, GitError
from pocketci_tui.forges import forge_for
from pocketci_tui.model import ZERO_SHA, Event, EventStatus, StoredEvent, utcnow
from pocketci_tui.polling import Poller, PollError, RefChange
from pocketci_tui.polling.changes import polled_change
from pocketci_tui.problems import Problem
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.store import PolledChange, Store
from pocketci_tui.store.connection import connect
from pocketci_tui.store.recording import _record_many, _RecordJob
from pocketci_tui.store.schema import migrate

A, B, C = "a" * 40, "b" * 40, "c" * 40
REPO = "acme/api"


def polled(before: str, after: str, ref: str = "refs/heads/main") -> PolledChange:
    return polled_change(forge_for("github"), REPO, RefChange(ref, before, after), utcnow())


def webhook(delivery: str, before: str, after: str, **kw: object) -> Event:
    """The push event GitHub's webhook gives for the same change."""
    event = polled(before, after).event
    return replace(event, delivery_id=delivery, body=b'{"from": "webhook"}', **kw)  # type: ignore[arg-type]


async def test_known_refs_are_none_until_the_first_poll(store: Store) -> None:
    assert await store.polls.known_refs("github", REPO) is None
    assert await store.polls.record("github", REPO, {}) == []
    assert await store.polls.known_refs("github", REPO) == {}
    await store.polls.record("github", "Acme/API", {"refs/heads/main": A})
    assert await store.polls.known_refs("github", REPO) == {"refs/heads/main": A}
    assert await store.polls.known_refs("gitea", REPO) is None


async def test_a_webhook_after_a_poll_of_the_change_is_a_redelivery(store: Store) -> None:
    refs = {"refs/heads/main": B}
    [(first, dup)] = await store.polls.record("github", REPO, refs, [polled(A, B)])
    assert not dup
    stored, duplicate = await store.record_event(webhook("guid-1", A, B), EventStatus.RECEIVED)
    assert duplicate
    assert stored.event.id == first.event.id
    assert stored.redeliveries == 1
    assert await store.count_events() == 1


async def test_a_poll_after_a_webhook_of_the_change_is_a_redelivery(store: Store) -> None:
    hooked, _ = await store.record_event(webhook("guid-1", A, B), EventStatus.RECEIVED)
    [(stored, duplicate)] = await store.polls.record(
        "github", REPO, {"refs/heads/main": B}, [polled(A, B)]
    )
    assert duplicate
    assert stored.event.id == hooked.event.id
    assert await store.count_events() == 1


async def test_a_poll_already_covered_by_the_last_event_of_its_ref_is_a_redelivery(
    store: Store,
) -> None:
    await store.record_event(webhook("guid-1", A, B), EventStatus.RECEIVED)
    last, _ = await store.record_event(webhook("guid-2", B, C), EventStatus.RECEIVED)
    [(stored, duplicate)] = await store.polls.record(
        "github", REPO, {"refs/heads/main": C}, [polled(A, C)]
    )
    assert duplicate
    assert stored.event.id == last.event.id
    # But a ref brought back to an older commit is news.
    [(back, again)] = await store.polls.record(
        "github", REPO, {"refs/heads/main": B}, [polled(C, B)]
    )
    assert not again
    assert back.event.sha == B


async def test_webhooks_alone_and_refires_are_never_folded(store: Store) -> None:
    """Two hooks reporting one change stay two events, as before polling; a re-fire of a
    polled change runs again."""
    one, dup1 = await store.record_event(webhook("hook-1", A, B), EventStatus.RECEIVED)
    two, dup2 = await store.record_event(webhook("hook-2", A, B), EventStatus.RECEIVED)
    assert not dup1
    assert not dup2
    assert one.event.id != two.event.id
    await store.polls.record("github", REPO, {"refs/heads/main": C}, [polled(B, C)])
    refired, dup3 = await store.record_event(
        webhook("refire-1", B, C), EventStatus.RECEIVED, refire=True
    )
    assert not dup3
    assert await store.count_events() == 4
    assert refired.event.delivery_id == "refire-1"


def test_a_batch_of_webhooks_folds_only_the_changes_polling_reported(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite", 5.0)
    migrate(conn)
    change = polled(A, B)
    conn.execute("BEGIN")
    _RecordJob(change.event, change.status, "", polled=True)(conn)
    jobs = [
        _RecordJob(webhook("w-1", A, B), EventStatus.RECEIVED, ""),
        _RecordJob(webhook("w-2", B, C), EventStatus.RECEIVED, ""),
        _RecordJob(webhook("w-3", B, C), EventStatus.RECEIVED, ""),
    ]
    results = _record_many(conn, jobs)
    conn.execute("COMMIT")
    assert [(s.event.delivery_id, dup) for s, dup in results] == [
        (change.event.delivery_id, True),
        ("w-2", False),
        ("w-3", False),
    ]
    count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert count == 3
    conn.close()


async def test_retention_takes_the_change_with_its_event(store: Store, tmp_path: Path) -> None:
    await store.polls.record("github", REPO, {"refs/heads/main": B}, [polled(A, B)])
    await store.apply_retention(max_events=0, max_days=90, logs_dir=tmp_path)
    # The change went with its event: a webhook for it now is a new event.
    _, duplicate = await store.record_event(webhook("guid-9", A, B), EventStatus.RECEIVED)
    assert not duplicate
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT count(*) FROM event_changes").fetchone()[0] == 1
    conn.close()


async def test_a_deletion_and_a_new_branch_have_all_zero_ids(store: Store) -> None:
    results = await store.polls.record(
        "github",
        REPO,
        {"refs/heads/new": C},
        [polled(ZERO_SHA, C, "refs/heads/new"), polled(A, ZERO_SHA, "refs/heads/old")],
    )
    (new, _), (gone, _) = results
    assert (new.status, new.event.base_sha) == (EventStatus.RECEIVED, ZERO_SHA)
    assert (gone.status, gone.detail) == (EventStatus.IGNORED, "branch deleted")


async def test_git_output_beyond_its_bound_stops_git(tmp_path: Path) -> None:
    git = GitCommand(tmp_path / "home")
    result = await git.run(["--version"], max_output=1000)
    assert result.stdout.startswith(b"git version")
    with pytest.raises(GitError, match="more than 5 bytes of output; stopped"):
        await git.run(["--version"], max_output=5)
    # Output in several reads: the bound holds across them.
    with pytest.raises(GitError, match="more than 10 bytes"):
        await git.run(["help", "-a"], max_output=10)


class _Board:
    def __init__(self) -> None:
        self.problems: dict[str, Problem] = {}

    def raise_problem(self, problem: Problem) -> None:
        self.problems[problem.key] = problem

    def clear_problems(self, *keys: str) -> None:
        for key in keys:
            self.problems.pop(key, None)


class _Sink:
    async def submit(self, stored: StoredEvent, duplicate: bool) -> None:
        raise AssertionError("nothing is stored without a token")


async def test_a_missing_token_says_how_to_set_it_and_touches_nothing(
    store: Store, tmp_path: Path
) -> None:
    repo = RepoConfig(name=REPO, clone_url="https://git.example.org/acme/api.git", token="t")
    poller = Poller(
        settings=Settings(repos=(repo,)),
        store=store,
        secrets=MemorySecretStore({}),
        sink=_Sink(),
        problems=_Board(),
        git=GitCommand(tmp_path / "home"),
    )
    with pytest.raises(
        PollError, match=r"clone token 't' is not set: run `pocketci-tui secrets set t`"
    ):
        await poller.poll_once(repo)
    assert await store.polls.known_refs("github", REPO) is None
