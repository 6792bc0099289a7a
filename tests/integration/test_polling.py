"""Polling end to end (issue 17): a real engine polls a repository served by git's own
http-backend, with basic auth, at a short interval (through the timing seam, not the config).

Changes made on the server while it polls (commits, a force push, a new branch, a tag, a branch
deletion) each become exactly one event with the right changed files; a restart in between
loses nothing and repeats nothing; a webhook for a change polling saw (and polling after a
webhook) is one event, not two; an unreachable remote backs off and shows the problem.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, write_serve_config
from enginekit import REPOSITORY, EngineKit
from githttp import TEST_TOKEN, GitHttpServer
from gitrepo import BareRepo
from signing import delivery_headers, send

from pocketci_tui.contract import ClientNotice, ProblemsChanged
from pocketci_tui.engine.git import GitCommand
from pocketci_tui.intake import Listener, make_intake_app
from pocketci_tui.model import ZERO_SHA, EventStatus, RunState, StoredEvent, webhook_path
from pocketci_tui.polling import Poller, PollTiming, problem_key
from pocketci_tui.secrets import MemorySecretStore
from pocketci_tui.services import Services

TOKEN_NAME = "poll-token"


class Polled:
    """An engine kit whose repository is served over HTTP and polled every 50 ms."""

    def __init__(self, kit: EngineKit, server: GitHttpServer, timing: PollTiming) -> None:
        self.kit = kit
        self.server = server
        self.timing = timing
        self.poller: Poller | None = None

    @property
    def remote(self) -> Any:
        return self.kit.remote

    def start(self) -> Poller:
        """Start a poller on the kit's store and engine (as services does)."""
        poller = Poller(
            settings=self.kit.engine.settings,
            store=self.kit.store,
            secrets=self.kit.secrets,
            sink=self.kit.engine,
            problems=self.kit.engine.live,
            git=GitCommand(self.kit.tmp / "poll-home"),
            timing=self.timing,
        )
        poller.start()
        self.poller = poller
        return poller

    async def stop(self) -> None:
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None

    async def events(self) -> list[StoredEvent]:
        return list(reversed(await self.kit.store.list_events(limit=1000)))

    async def wait_polls(self, count: int = 2) -> None:
        """Wait until the poller completed ``count`` more polls successfully (what they saw is
        stored; a poll that failed on a loaded machine does not count)."""
        poller = self.poller
        assert poller is not None
        target = poller.completed + count
        async with asyncio.timeout(60):
            while poller.completed < target:
                await asyncio.sleep(0.02)

    async def wait_event(self, predicate: Callable[[StoredEvent], bool]) -> StoredEvent:
        """Wait until a stored event fits ``predicate``; return it."""
        async with asyncio.timeout(60):
            while True:
                for stored in await self.events():
                    if predicate(stored):
                        return stored
                await asyncio.sleep(0.02)

    async def changes_of(self, stored: StoredEvent) -> list[str] | None:
        """The changed files the engine matched the event with (waits for its dispatch)."""
        assert stored.event.id is not None
        await self.kit.wait_status(stored.event.id, EventStatus.DISPATCHED, EventStatus.SKIPPED)
        inputs = await self.kit.store.match_inputs(stored.event.id)
        assert inputs is not None
        return None if inputs.changes is None else sorted(inputs.changes)


@pytest.fixture
async def polled(tmp_path: Path) -> AsyncIterator[Polled]:
    kit = EngineKit(tmp_path, secrets={TOKEN_NAME: TEST_TOKEN})
    with GitHttpServer(tmp_path, password=TEST_TOKEN) as server:
        repo = replace(
            kit.settings.repos[0], clone_url=server.url("remote.git"), token=TOKEN_NAME, poll=60.0
        )
        kit.settings = replace(kit.settings, repos=(repo,))
        async with kit:
            box = Polled(kit, server, PollTiming(interval=0.05, jitter=0.2))
            try:
                yield box
            finally:
                await box.stop()


def _is(ref: str, after: str) -> Callable[[StoredEvent], bool]:
    return lambda s: s.event.ref == ref and s.event.sha == after


async def test_each_change_on_the_server_is_one_event_with_its_files(polled: Polled) -> None:
    remote = polled.remote
    polled.start()
    await polled.wait_polls()
    assert await polled.events() == []  # the first poll records, runs nothing
    first = remote.rev("main")

    # A commit on main.
    second = remote.commit({"app/a.txt": "a\n"}, branch="main")
    push = await polled.wait_event(_is("refs/heads/main", second))
    assert (push.event.event_type, push.event.filter) == ("push", "main")
    assert push.event.base_sha == first
    assert push.event.delivery_id.startswith("poll-")
    assert await polled.changes_of(push) == ["app/a.txt"]

    # A force push: main replaced by a commit beside the last one.
    forced = remote.commit({"app/b.txt": "b\n"}, branch=None, parents=[first])
    remote.set_ref("refs/heads/main", forced)
    force = await polled.wait_event(_is("refs/heads/main", forced))
    assert force.event.base_sha == second
    assert await polled.changes_of(force) == ["app/a.txt", "app/b.txt"]

    # A new branch: before is all zeros, as forges send it; compared with the default branch.
    feature = remote.commit({"feature.txt": "f\n"}, branch="feature")
    new_branch = await polled.wait_event(_is("refs/heads/feature", feature))
    assert new_branch.event.base_sha == ZERO_SHA
    assert new_branch.event.filter == "feature"
    assert await polled.changes_of(new_branch) == ["feature.txt"]

    # A tag (annotated: its own id is what forges report as the push's after).
    tag_id = remote.tag("v1.0", forced, annotated=True)
    tag = await polled.wait_event(_is("refs/tags/v1.0", tag_id))
    assert (tag.event.event_type, tag.event.filter) == ("tag", "v1.0")
    assert tag.event.id is not None
    done = await polled.kit.wait_status(
        tag.event.id, EventStatus.DISPATCHED, EventStatus.SKIPPED, EventStatus.ERROR
    )
    # Checked out at the tagged commit and matched (no tag function in the fixture module).
    assert done.status is EventStatus.SKIPPED, done.detail
    assert await polled.kit.store.match_inputs(tag.event.id) is not None

    # A branch deletion: stored and shown, never run.
    remote.delete_ref("refs/heads/feature")
    deleted = await polled.wait_event(_is("refs/heads/feature", ZERO_SHA))
    assert deleted.status is EventStatus.IGNORED
    assert deleted.event.deleted
    assert "deleted" in deleted.detail

    await polled.wait_polls(3)
    events = await polled.events()
    assert [(s.event.ref, s.event.sha) for s in events] == [
        ("refs/heads/main", second),
        ("refs/heads/main", forced),
        ("refs/heads/feature", feature),
        ("refs/tags/v1.0", tag_id),
        ("refs/heads/feature", ZERO_SHA),
    ]
    assert all(s.redeliveries == 0 for s in events)
    # Every poll went through the token, never anonymously around it.
    assert all(seen.authorization for seen in polled.server.seen())


async def test_a_restart_loses_nothing_and_repeats_nothing(polled: Polled) -> None:
    remote = polled.remote
    polled.start()
    await polled.wait_polls()
    one = remote.commit({"one.txt": "1\n"}, branch="main")
    await polled.wait_event(_is("refs/heads/main", one))
    await polled.stop()

    # While down: a commit and a new tag.
    two = remote.commit({"two.txt": "2\n"}, branch="main")
    tag_id = remote.tag("v2", two)

    polled.start()
    two_event = await polled.wait_event(_is("refs/heads/main", two))
    await polled.wait_event(_is("refs/tags/v2", tag_id))
    assert two_event.event.base_sha == one
    assert await polled.changes_of(two_event) == ["two.txt"]
    await polled.wait_polls(3)
    assert [(s.event.ref, s.event.sha) for s in await polled.events()] == [
        ("refs/heads/main", one),
        ("refs/heads/main", two),
        ("refs/tags/v2", tag_id),
    ]


async def _intake(polled: Polled) -> tuple[Listener, str]:
    """The real intake on the kit's store and engine, with the webhook secret."""
    secrets = MemorySecretStore({"webhook-secret": WEBHOOK_SECRET})
    app = make_intake_app(
        settings=polled.kit.engine.settings,
        store=polled.kit.store,
        secrets=secrets,
        sink=polled.kit.engine,
    )
    listener = Listener(app, "127.0.0.1", 0)
    url = await listener.start()
    return listener, url + webhook_path("github")


def _github_push(before: str, after: str, branch: str = "main") -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": before,
            "after": after,
            "deleted": False,
            "repository": {"full_name": REPOSITORY},
            "head_commit": {"message": "from the forge"},
        }
    ).encode()


async def test_a_webhook_and_a_poll_of_one_change_are_one_event(
    polled: Polled, http: aiohttp.ClientSession
) -> None:
    remote = polled.remote
    listener, hook = await _intake(polled)
    try:
        polled.start()
        await polled.wait_polls()
        base = remote.rev("main")

        # Polling first: the webhook that follows is a duplicate.
        polled_sha = remote.commit({"p.txt": "p\n"}, branch="main")
        stored = await polled.wait_event(_is("refs/heads/main", polled_sha))
        body = _github_push(base, polled_sha)
        reply = await send(http, hook, body, delivery_headers(WEBHOOK_SECRET, body))
        assert reply.status == 202
        assert reply.json()["status"] == "duplicate"
        assert reply.json()["event_id"] == stored.event.id

        # The webhook first (polling stopped meanwhile): the poll that follows is a duplicate.
        await polled.stop()
        hooked_sha = remote.commit({"w.txt": "w\n"}, branch="main")
        body = _github_push(polled_sha, hooked_sha)
        reply = await send(http, hook, body, delivery_headers(WEBHOOK_SECRET, body))
        assert reply.status == 202
        assert reply.json()["status"] == "stored"
        polled.start()
        await polled.wait_polls(3)

        events = await polled.events()
        assert [(s.event.sha, s.redeliveries) for s in events] == [
            (polled_sha, 1),
            (hooked_sha, 1),
        ]
        assert not events[1].event.delivery_id.startswith("poll-")
        # Each change ran once: one passed run per event (onGithubPushMain).
        for s in events:
            assert s.event.id is not None
            runs = await polled.kit.wait_runs_finished(s.event.id)
            passed = [r.function for r in runs if r.state is RunState.PASSED]
            assert passed == ["onGithubPushMain"]
    finally:
        await listener.stop()


async def test_webhooks_between_two_polls_cover_the_change_the_poll_sees(
    polled: Polled, http: aiohttp.ClientSession
) -> None:
    """Two pushes reported by webhooks between two polls: the poll sees one change a..c,
    which the webhooks' last event already brought main to, so it is no new event."""
    remote = polled.remote
    listener, hook = await _intake(polled)
    try:
        polled.start()
        await polled.wait_polls()
        await polled.stop()
        a = remote.rev("main")
        b = remote.commit({"b.txt": "b\n"}, branch="main")
        c = remote.commit({"c.txt": "c\n"}, branch="main")
        for before, after in ((a, b), (b, c)):
            body = _github_push(before, after)
            reply = await send(http, hook, body, delivery_headers(WEBHOOK_SECRET, body))
            assert reply.json()["status"] == "stored"
        polled.start()
        await polled.wait_polls(3)
        events = await polled.events()
        assert [(s.event.sha, s.redeliveries) for s in events] == [(b, 0), (c, 1)]
    finally:
        await listener.stop()


async def test_an_unreachable_remote_backs_off_shows_the_problem_and_recovers(
    polled: Polled,
) -> None:
    kit = polled.kit
    good = kit.engine.settings.repos[0]
    # A port nothing listens on: connection refused at once.
    bad = replace(good, clone_url="http://127.0.0.1:9/remote.git")
    kit.engine.settings = replace(kit.engine.settings, repos=(bad,))
    polled.timing = PollTiming(interval=0.05, jitter=0.0, max_backoff=0.4)
    poller = polled.start()
    key = problem_key(good)

    def problem_detail() -> str:
        found = [p for p in kit.engine.problems() if p.key == key]
        return found[0].detail if found else ""

    async with asyncio.timeout(30):
        while poller.failures < 4:
            await asyncio.sleep(0.02)
    detail = problem_detail()
    assert "cannot poll owner/repo" in detail
    assert "time(s) in a row" in detail
    # Backed off: the wait doubled from the 0.05 s interval up to the 0.4 s cap.
    assert "next try in 0.4s" in detail
    assert poller.polls == poller.failures  # nothing else was tried in between

    # Back to the real server: the problem goes away.
    poller.use(replace(kit.engine.settings, repos=(good,)))
    async with asyncio.timeout(30):
        while problem_detail():
            await asyncio.sleep(0.02)
    assert await polled.events() == []


def test_backoff_doubles_up_to_its_cap() -> None:
    from pocketci_tui.polling.poller import backoff

    assert [backoff(10, n, 100) for n in range(1, 6)] == [20, 40, 80, 100, 100]
    assert backoff(600, 3, 100) == 600  # never shorter than the interval


async def test_services_poll_with_the_engine_and_tell_the_problem(tmp_path: Path) -> None:
    """``serve`` and the UI start the poller with the engine: a change on the server runs, a
    repository that cannot be polled is a problem every client is told, a reload fixes it."""
    kit = EngineKit(tmp_path, secrets={TOKEN_NAME: TEST_TOKEN})
    with GitHttpServer(tmp_path, password=TEST_TOKEN) as server:
        good = replace(
            kit.settings.repos[0], clone_url=server.url("remote.git"), token=TOKEN_NAME, poll=60.0
        )
        settings = replace(kit.settings, repos=(good,))
        services = Services(
            settings, kit.paths, secrets=kit.secrets, poll_timing=PollTiming(interval=0.05)
        )
        await services.start(port=0)
        try:
            store, poller = services.store, services.poller
            assert store is not None
            assert poller is not None
            async with asyncio.timeout(60):
                while poller.completed < 1:
                    await asyncio.sleep(0.02)
            sha = kit.remote.commit({"x.txt": "x\n"}, branch="main")
            async with asyncio.timeout(30):
                while not [e for e in await store.list_events() if e.event.sha == sha]:
                    await asyncio.sleep(0.02)
            [stored] = await store.list_events()
            assert stored.event.id is not None
            runs = await store.list_runs(stored.event.id)
            async with asyncio.timeout(30):
                while not any(r.state is RunState.PASSED for r in runs):
                    await asyncio.sleep(0.05)
                    runs = await store.list_runs(stored.event.id)

            told: list[ClientNotice] = []
            services.subscribe(told.append)
            key = problem_key(good)

            def keys() -> set[str]:
                return {
                    p.key for n in told[-1:] if isinstance(n, ProblemsChanged) for p in n.problems
                }

            bad = replace(good, clone_url="http://127.0.0.1:9/remote.git")
            services.apply_settings(replace(settings, repos=(bad,)))
            async with asyncio.timeout(30):
                while key not in keys():
                    await asyncio.sleep(0.05)
            services.apply_settings(settings)
            async with asyncio.timeout(30):
                while key in keys():
                    await asyncio.sleep(0.05)
        finally:
            await services.stop()
        assert services.poller is None


async def test_a_flood_of_changes_runs_only_the_first_and_says_so(polled: Polled) -> None:
    """Many tags pushed at once (a mass import) must not queue a build each: the first
    ``max_changes`` run (branches first), the rest are recorded as seen, with a warning."""
    remote = polled.remote
    polled.timing = PollTiming(interval=0.05, jitter=0.2, max_changes=3)
    poller = polled.start()
    await polled.wait_polls()
    main = remote.commit({"m.txt": "m\n"}, branch=None)
    names = ("t1", "t2", "t3", "t4")
    # One transaction, so that no poll sees half of it.
    moves = [f"update refs/heads/main {main}", *(f"create refs/tags/{n} {main}" for n in names)]
    remote.git("update-ref", "--stdin", input="\n".join([*moves, ""]).encode())
    tags = {name: remote.rev(f"refs/tags/{name}") for name in names}
    await polled.wait_polls(3)
    events = await polled.events()
    assert [(s.event.ref, s.event.sha) for s in events] == [
        ("refs/heads/main", main),
        ("refs/tags/t1", tags["t1"]),
        ("refs/tags/t2", tags["t2"]),
    ]
    warned = [p for p in polled.kit.engine.problems() if p.key.endswith(":skipped")]
    assert len(warned) == 1
    assert warned[0].warning
    assert "2 change(s) of owner/repo" in warned[0].detail
    assert "refs/tags/t3, refs/tags/t4" in warned[0].detail
    # Nothing skipped comes back later; the next change runs and clears the warning.
    after = remote.commit({"n.txt": "n\n"}, branch="main")
    await polled.wait_event(_is("refs/heads/main", after))
    await polled.wait_polls(2)
    assert len(await polled.events()) == 4
    assert not [p for p in polled.kit.engine.problems() if p.key.endswith(":skipped")]
    assert poller.failures == 0


async def test_serve_says_which_repositories_it_polls(hermetic_home: Path, tmp_path: Path) -> None:
    remote = BareRepo(tmp_path / "remote.git")
    remote.commit({"a.txt": "a\n"}, branch="main")
    write_serve_config(
        hermetic_home,
        repos=f"[{{name: {REPOSITORY}, clone-url: '{remote.path}', poll: 2m}}]",
    )
    serve = await ServeProcess.start()
    try:
        async with asyncio.timeout(60):
            while not any(" polling " in line for line in serve.lines):
                await asyncio.sleep(0.05)
    finally:
        assert await serve.terminate() == 0
    [line] = [line for line in serve.lines if " polling " in line]
    assert line.endswith(
        f"polling {REPOSITORY} every 120s (their first poll records the refs, runs nothing)"
    )
