"""Every forge end to end, through a real ``pocketci-tui serve`` (issue 13).

For GitHub, Gitea, Forgejo and GitLab alike: deliveries built from real payloads, signed as
the forge signs, are posted over loopback to ``/webhooks/<vendor>``; the repository is served
by git's own ``http-backend`` at the path the forge would serve it (GitLab's nested groups
included), behind basic auth in the forge's own form, and refuses commit ids (protocol v0), so
pull/merge request heads must come from the forge's own refs. The clone URL is derived from
``forges.<vendor>.url``; every URL in the payloads points where nothing listens.

The flow: a push to main, a tag, a pull/merge request opened and then updated with new
commits, a request from a fork (it waits for approval), an issue (only a ``dispatch`` whose
``vendor`` default names the forge takes it), a release; on GitLab also an update without new
commits, which runs nothing. Each must call the right
functions of the module (named in the forge's own words) with the right arguments and
changed files, computed by git.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from daggerstub import arg, fn
from enginekit import EngineKit
from forgedelivery import Delivery, forge_kit
from githttp import TEST_TOKEN, GitHttpServer

from pocketci_tui.model import EventStatus, StoredEvent
from pocketci_tui.store import Store

pytestmark = pytest.mark.timeout(300)

OK = {"output": ["built"], "exit": 0}
SETTLED = (
    EventStatus.DISPATCHED,
    EventStatus.SKIPPED,
    EventStatus.IGNORED,
    EventStatus.WAITING,
    EventStatus.ERROR,
)


@dataclass(frozen=True)
class Words:
    """A forge's names: its repository, token user and the actions of its requests."""

    vendor: str
    title: str  # as in function names: OnGitlabPushMain
    repository: str
    git_user: str | None  # None: any user name
    request: str  # event type of pull/merge requests
    opened: str
    updated: str
    released: str
    fork: str


FORGES = {
    "github": Words(
        "github",
        "Github",
        "owner/repo",
        "x-access-token",
        "PullRequest",
        "opened",
        "synchronize",
        "published",
        "mallory/repo",
    ),
    "gitea": Words(
        "gitea",
        "Gitea",
        "me/app",
        None,
        "PullRequest",
        "opened",
        "synchronized",
        "published",
        "mallory/app",
    ),
    "forgejo": Words(
        "forgejo",
        "Forgejo",
        "me/app",
        None,
        "PullRequest",
        "opened",
        "synchronized",
        "published",
        "mallory/app",
    ),
    "gitlab": Words(
        "gitlab",
        "Gitlab",
        "team/sub/api",
        "oauth2",
        "MergeRequest",
        "open",
        "update",
        "create",
        "mallory/sub/api",
    ),
}


def _module(w: Words) -> list[dict[str, Any]]:
    """The module's functions, named in the forge's words."""
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    t = w.title
    return [
        fn(f"on{t}PushMain", *base, call=OK),
        fn(f"on{t}Tag", *base, arg("filter", "String"), call=OK),
        fn(f"on{t}{w.request}{w.opened.capitalize()}", *base, call=OK),
        fn(
            f"testOn{t}{w.request}",
            *base,
            arg("filter", "String", default=w.updated),
            arg("onChanges", "String", default="**/*.go"),
            call=OK,
        ),
        fn(f"on{t}Release", *base, arg("filter", "String", default=w.released), call=OK),
        fn(
            "dispatch",
            *base,
            arg("filter", "String"),
            arg("event", "String"),
            arg("vendor", "String", default="gitea,forgejo"),
            call=OK,
        ),
    ]


@dataclass
class Served:
    """The fixture repository behind a forge-like git server, and serve's config."""

    words: Words
    kit: EngineKit
    server: GitHttpServer


@pytest.fixture(params=list(FORGES))
def served(request: pytest.FixtureRequest, tmp_path: Path, hermetic_home: Path) -> Iterator[Served]:
    w = FORGES[request.param]
    kit = EngineKit(tmp_path / "fixture", functions=_module(w))
    # Refuse commit ids, as a forge behind protocol v0 does: heads must come from refs.
    kit.remote.git("config", "uploadpack.allowAnySHA1InWant", "false")
    root = tmp_path / "forge"
    where = root / f"{w.repository}.git"
    where.parent.mkdir(parents=True)
    where.symlink_to(kit.remote.path, target_is_directory=True)
    with GitHttpServer(root, username=w.git_user, password=TEST_TOKEN, protocol_v2=False) as srv:
        write_serve_config(
            hermetic_home,
            repos=f"[{{name: {w.repository}, vendor: {w.vendor}, token: clone-token}}]",
            extra=(
                f"forges: {{{w.vendor}: {{url: '{srv.base_url}'}}}}\n"
                f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n"
            ),
        )
        set_secret_cli("webhook-secret", WEBHOOK_SECRET)
        set_secret_cli("clone-token", TEST_TOKEN)
        yield Served(w, kit, srv)


class Flow:
    """Posts deliveries to a running serve and reads what became of them."""

    def __init__(self, serve: ServeProcess, served: Served, home: Path) -> None:
        self.serve = serve
        self.served = served
        self.home = home
        self.url = f"{serve.url}/webhooks/{served.words.vendor}"
        self.count = 0

    async def post(self, delivery: Delivery) -> str:
        self.count += 1
        delivery_id = f"{delivery.vendor}-{self.count}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url,
                data=delivery.body,
                headers=delivery.headers(WEBHOOK_SECRET, delivery_id),
            ) as resp,
        ):
            text = await resp.text()
        assert resp.status in (200, 202), (delivery.event, resp.status, text)
        return delivery_id

    async def settled(self, delivery_id: str) -> StoredEvent:
        """Wait until the delivery's event is settled and its runs are finished."""
        store = await Store.open(self.home / "data" / "pocketci.db")
        try:
            async with asyncio.timeout(90):
                while True:
                    stored = await self._find(store, delivery_id)
                    if stored is not None and stored.status in SETTLED:
                        assert stored.event.id is not None
                        runs = await store.list_runs(stored.event.id)
                        if all(r.state.finished for r in runs):
                            return stored
                    await asyncio.sleep(0.1)
        except TimeoutError:
            tail = "\n".join(self.serve.lines[-30:])
            raise AssertionError(f"{delivery_id} did not settle:\n{tail}") from None
        finally:
            await store.close()

    @staticmethod
    async def _find(store: Store, delivery_id: str) -> StoredEvent | None:
        for stored in await store.list_events(limit=100):
            if stored.event.delivery_id == delivery_id:
                return stored
        return None

    def calls(self, delivery_id: str) -> list[dict[str, Any]]:
        """The ``dagger call`` invocations made for a delivery."""
        return [
            c for c in self.served.kit.calls() if c["event_trigger"]["delivery_id"] == delivery_id
        ]

    async def run(self, delivery: Delivery) -> tuple[StoredEvent, list[dict[str, Any]]]:
        delivery_id = await self.post(delivery)
        stored = await self.settled(delivery_id)
        return stored, self.calls(delivery_id)


def _only(calls: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(calls) == 1, [c["function"] for c in calls]
    return calls[0]


async def test_a_forge_end_to_end(served: Served, hermetic_home: Path) -> None:
    w, kit, srv = served.words, served.kit, served.server
    remote = kit.remote
    make = forge_kit(w.vendor, w.repository)
    t = w.title
    serve = await ServeProcess.start()
    flow = Flow(serve, served, hermetic_home)
    try:
        # A push to main: the files of before..after.
        before = remote.rev("main")
        after = remote.commit({"main.go": "package main // 2\n", "docs/a.md": "a\n"}, branch="main")
        stored, calls = await flow.run(make.push("main", before, after))
        call = _only(calls)
        assert call["function"] == f"on{t}PushMain"
        trigger = call["event_trigger"]
        assert (trigger["vendor"], trigger["event_type"], trigger["filter"]) == (
            w.vendor,
            "push",
            "main",
        )
        assert (trigger["repo_name"], trigger["sha"]) == (w.repository, after)
        assert trigger["changes"] == ["docs/a.md", "main.go"]

        # A tag: exactly one tag event runs, whatever the forge sends for it.
        remote.tag("v1.0", after, annotated=True)
        tag_calls = []
        for delivery in make.tag("v1.0", after):
            _stored, calls = await flow.run(delivery)
            tag_calls += calls
        call = _only(tag_calls)
        assert call["function"] == f"on{t}Tag"
        assert call["args"]["filter"] == "v1.0"
        assert call["event_trigger"]["sha"] == after

        # A pull/merge request opened: its head only under the forge's request ref.
        number = 7
        # No branch of that name on the base repository: only the request ref holds it.
        head = remote.commit({"lib/x.go": "package lib\n"}, branch=None, parents=[after])
        remote.set_ref(_request_ref(w, number), head)
        main_now = remote.commit({"README.md": "moved on\n"}, branch="main")  # base moves on
        stored, calls = await flow.run(
            make.change(w.opened, number, head=head, head_branch="topic", base=main_now)
        )
        call = _only(calls)
        assert call["function"] == f"on{t}{w.request}{w.opened.capitalize()}"
        trigger = call["event_trigger"]
        assert (trigger["event_type"], trigger["filter"], trigger["sha"]) == (
            _snake(w.request),
            w.opened,
            head,
        )
        assert trigger["changes"] == ["lib/x.go"]  # against the merge base, not main's tip
        assert not stored.event.is_fork

        # Updated with a new commit: the whole request's files, from git.
        newer = remote.commit({"lib/y.go": "package lib\n"}, branch=None, parents=[head])
        remote.set_ref(_request_ref(w, number), newer)
        stored, calls = await flow.run(
            make.change(
                w.updated, number, head=newer, head_branch="topic", base=main_now, oldrev=head
            )
        )
        call = _only(calls)
        assert call["function"] == f"testOn{t}{w.request}"
        assert call["args"]["filter"] == w.updated
        assert call["args"]["onChanges"] == "lib/x.go,lib/y.go"
        assert call["event_trigger"]["changes"] == ["lib/x.go", "lib/y.go"]
        assert call["event_trigger"]["sha"] == newer

        # From a fork: stored, waiting for an approval pinned to its head; nothing runs.
        fork_head = remote.commit({"evil.go": "package evil\n"}, branch=None, parents=[main_now])
        remote.set_ref(_request_ref(w, number + 1), fork_head)
        stored, calls = await flow.run(
            make.change(
                w.opened,
                number + 1,
                head=fork_head,
                head_branch="main",
                base=main_now,
                fork=w.fork,
            )
        )
        assert stored.event.is_fork
        assert stored.status is EventStatus.WAITING, stored.detail
        assert f"waiting for approval of {fork_head[:12]}" in stored.detail
        assert calls == []

        if w.vendor == "gitlab":
            # An update that brought no new commits (a title edit: no oldrev) runs nothing.
            stored, calls = await flow.run(
                make.change(w.updated, number, head=newer, head_branch="topic", base=main_now)
            )
            assert calls == []
            assert stored.status is EventStatus.IGNORED, stored.detail

        # An issue: only the tier-4 `dispatch`, whose `vendor` default is "gitea,forgejo".
        stored, calls = await flow.run(make.issue())
        if w.vendor in ("gitea", "forgejo"):
            call = _only(calls)
            assert call["function"] == "dispatch"
            assert call["args"]["vendor"] == w.vendor
            assert call["event_trigger"]["sha"] == main_now  # the default branch's tip
        else:
            assert calls == []
            assert stored.status is EventStatus.SKIPPED, stored.detail

        # A release at the tag.
        stored, calls = await flow.run(make.release("v1.0", after))
        call = _only(calls)
        assert call["function"] == f"on{t}Release"
        assert call["args"]["filter"] == w.released
        assert call["event_trigger"]["sha"] == after
        assert call["event_trigger"]["changes"] is None  # a release: every file counts
    finally:
        assert await serve.terminate() == 0

    # git asked only the configured server, at the repository's path under the forge's URL,
    # with the token in the forge's form (no 401). Commit statuses, posted to the forge's
    # API beside git, are not this test's concern.
    fetched = [r for r in srv.seen() if ".git/" in r.path]
    assert fetched
    assert {r.status for r in fetched} == {200}, {(r.path, r.status) for r in fetched}
    assert all(r.path.startswith(f"/{w.repository}.git/") for r in fetched)
    # Nothing ran that should not have: every call belongs to one of the deliveries above.
    assert len(kit.calls()) == (6 if w.vendor in ("gitea", "forgejo") else 5)


def _request_ref(w: Words, number: int) -> str:
    if w.vendor == "gitlab":
        return f"refs/merge-requests/{number}/head"
    return f"refs/pull/{number}/head"


def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel).lstrip("_")
