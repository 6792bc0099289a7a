"""The context of an event (author, commit count, page on the forge) read from each forge's
payload, bounded and cleaned, and kept by the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from forgefixtures import body, gitea_event, gitlab_event

from pocketci_tui.forges import context, gitea, github, gitlab
from pocketci_tui.model import Event, EventStatus, utcnow
from pocketci_tui.store import Store
from pocketci_tui.store.schema import MIGRATIONS


def _github(payloads_dir: Path, name: str, event: str) -> Event:
    raw = (payloads_dir / f"{name}.json").read_bytes()
    return github.normalize(event, "d-1", github.parse_payload(raw), raw, received_at=utcnow())


def _gitea(name: str) -> Event:
    raw = body("gitea", name)
    return gitea.normalize(
        "gitea", gitea_event(name), "d-1", json.loads(raw), raw, received_at=utcnow()
    )


def _gitlab(name: str) -> Event:
    raw = body("gitlab", name)
    return gitlab.normalize(gitlab_event(name), "d-1", json.loads(raw), raw, received_at=utcnow())


def test_github_push_names_sender_commits_and_compare_page(payloads_dir: Path) -> None:
    e = _github(payloads_dir, "push_branch", "push")
    assert (e.author, e.commits) == ("octocat", 1)
    assert e.url == "https://github.com/acme/api/compare/3c1b8a2d4e6f...9f2c1a7e3b5d"


def test_github_pull_request_links_to_itself(payloads_dir: Path) -> None:
    e = _github(payloads_dir, "pull_request_opened", "pull_request")
    assert (e.author, e.commits, e.url) == ("octocat", None, "https://github.com/acme/api/pull/42")


def test_github_other_events_link_to_the_repository(payloads_dir: Path) -> None:
    e = _github(payloads_dir, "ping", "ping")
    assert (e.author, e.commits, e.url) == ("octocat", None, "https://github.com/acme/api")


def test_gitea_push_and_pull_request() -> None:
    push = _gitea("push.json")
    assert (push.author, push.commits) == ("unknwon", 1)
    assert push.url == (
        "http://try.gitea.io/gogits/hello-world/compare/"
        "9836a96a253cce25d17988fcf41b8c4205cf779f...4522cbcefc20728a5b72b3a86af35e608622c514"
    )
    pr = _gitea("pull_request_opened.json")
    assert (pr.author, pr.commits) == ("jcitizen", None)
    assert pr.url == "https://try.gitea.io/jcitizen/my-repo/pulls/1"


def test_gitlab_push_tag_and_merge_request() -> None:
    push = _gitlab("push.json")
    assert (push.author, push.commits) == ("sytses", 1)
    assert push.url == (
        "https://gitlab.com/gitlab-org/hello-world/-/commit/2adc9465c4edfc33834e173fe89436a7cb899a1d"
    )
    tag = _gitlab("tag_create.json")
    assert tag.url == "https://gitlab.com/gitlab-org/hello-world/-/tags/v1.0.0"
    mr = _gitlab("pull_request_create.json")
    assert (mr.author, mr.commits) == ("sytses", None)
    assert mr.url == "https://gitlab.com/gitlab-org/hello-world/merge_requests/1"


def test_untrusted_author_is_one_clean_bounded_line() -> None:
    payload = {"sender": {"login": "  eve\u202egnp.exe\x1b[2J\nsecond line " + "x" * 500}}
    fields = context.github("push", payload)
    assert fields["author"].startswith("evegnp.exe[2J")
    assert "\n" not in fields["author"]
    assert "\x1b" not in fields["author"]
    assert len(fields["author"]) <= context.AUTHOR_MAX


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "https://user:pw@github.com/acme/api",
        "https://github.com/a b",
        "https://github.com/\x1b]8;;evil\x07",
        "http://[::1",
        "https://github.com/" + "a" * 600,
        "https://g\u0456thub.com/acme",  # a Cyrillic i
        "file:///etc/passwd",
    ],
)
def test_unsafe_page_addresses_are_dropped(url: str) -> None:
    payload = {"repository": {"html_url": url}, "compare": url}
    assert context.github("push", payload)["url"] == ""
    assert context.gitea("push", {"compare_url": url})["url"] == ""


def test_junk_types_give_empty_context() -> None:
    payload = {"sender": ["x"], "commits": "many", "compare": 3, "total_commits": -1}
    assert context.github("push", payload) == {"author": "", "commits": None, "url": ""}
    assert context.gitea("push", payload) == {"author": "", "commits": None, "url": ""}
    assert context.gitlab("push", {"total_commits_count": True, "project": []}) == {
        "author": "",
        "commits": None,
        "url": "",
    }


async def test_store_keeps_the_context(tmp_path: Path, payloads_dir: Path) -> None:
    store = await Store.open(tmp_path / "pocketci.db")
    try:
        event = _github(payloads_dir, "push_branch", "push")
        stored, _ = await store.record_event(event, EventStatus.RECEIVED)
        assert stored.event.id is not None
        again = await store.get_event(stored.event.id)
        assert again is not None
        listed = await store.list_events(limit=5, text="octocat")
    finally:
        await store.close()
    for got in (again.event, listed[0].event):
        assert (got.author, got.commits, got.url) == (event.author, 1, event.url)


async def test_migration_keeps_older_events_with_no_context(tmp_path: Path) -> None:
    db = tmp_path / "pocketci.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for script in MIGRATIONS[:5]:
        conn.executescript(script)
    conn.execute(
        "INSERT INTO events (vendor, delivery_id, event_type, received_at, status) "
        "VALUES ('github', 'old', 'push', ?, 'received')",
        (utcnow().isoformat(),),
    )
    conn.execute("PRAGMA user_version = 5")
    conn.close()
    store = await Store.open(db)
    try:
        (old,) = await store.list_events(limit=5)
    finally:
        await store.close()
    assert (old.event.delivery_id, old.event.author, old.event.commits, old.event.url) == (
        "old",
        "",
        None,
        "",
    )
