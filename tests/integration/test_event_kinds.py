"""Every event kind the README names runs, through a real ``pocketci-tui serve`` (issue 10).

The repository is served by git's own ``http-backend`` behind basic auth, with the clone token
in the secret store; the module has one ``dispatch`` function, which accepts any event. Each
kind is sent as GitHub sends it (the project's payload fixtures, signed) and must end in a
``dagger call`` whose event trigger file names the commit that was built and where it came
from. Releases, created refs and ``issues`` carry no commit id: the commit is asked of the
configured remote (the release's tag, else its target branch; the created ref; the default
branch), never taken from a payload URL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import PAYLOADS_DIR, WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit
from githttp import TEST_TOKEN, GitHttpServer
from signing import send_signed

from pocketci_tui.model import EventStatus
from pocketci_tui.store import Store

pytestmark = pytest.mark.timeout(240)

OK = {"output": ["built"], "exit": 0}
DISPATCH = fn(
    "dispatch",
    arg("src", "Directory"),
    arg("eventTrigger", "File"),
    arg("filter", "String"),
    arg("event", "String"),
    arg("vendor", "String"),
    call=OK,
)


def _fixture(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((PAYLOADS_DIR / f"{name}.json").read_text())
    payload["repository"]["full_name"] = REPOSITORY
    # A payload URL must never be used: point every one somewhere that does not exist.
    payload["repository"]["clone_url"] = "http://127.0.0.1:9/evil.git"
    return payload


@pytest.fixture
def served_kit(tmp_path: Path, hermetic_home: Path) -> Iterator[tuple[EngineKit, GitHttpServer]]:
    """The fixture repository behind git http-backend, and a serve config that clones it."""
    kit = EngineKit(tmp_path / "fixture", functions=[DISPATCH])
    with GitHttpServer(kit.remote.path.parent, password=TEST_TOKEN) as srv:
        write_serve_config(
            hermetic_home,
            repos=(
                f"[{{name: {REPOSITORY}, clone-url: '{srv.url(kit.remote.path.name)}', "
                "token: clone-token}]"
            ),
            extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
        )
        set_secret_cli("webhook-secret", WEBHOOK_SECRET)
        set_secret_cli("clone-token", TEST_TOKEN)
        yield kit, srv


async def _wait_calls(kit: EngineKit, serve: ServeProcess, home: Path, count: int) -> None:
    try:
        async with asyncio.timeout(120):
            while len(kit.calls()) < count:
                await asyncio.sleep(0.1)
    except TimeoutError:
        store = await Store.open(home / "data" / "pocketci.db")
        try:
            events = await store.list_events(limit=20)
        finally:
            await store.close()
        states = "\n".join(f"{s.event.event_name}: {s.status} {s.detail}" for s in events)
        raise AssertionError(states + "\n" + "\n".join(serve.lines[-30:])) from None


async def test_every_event_kind_the_readme_names_runs_at_the_right_commit(
    served_kit: tuple[EngineKit, GitHttpServer], hermetic_home: Path
) -> None:
    kit, srv = served_kit
    remote = kit.remote
    first = remote.rev("main")
    # A release tag on an older commit than the branch it targets: the tag wins.
    tagged = remote.commit({"CHANGELOG.md": "1.4.0\n"}, branch="main")
    remote.tag("v1.4.0", tagged, annotated=True)
    main_tip = remote.commit({"main.go": "package main // tip\n"}, branch="main")
    created = remote.commit({"login.go": "package main\n"}, branch="feature/login")
    trunk_tip = remote.commit({"TRUNK": "yes\n"}, branch="trunk")
    # The default branch is whatever the remote says, not the payload's "default_branch".
    remote.set_head("trunk")
    pr_head = remote.commit({"a.go": "package a\n"}, branch="topic")
    tag_commit = remote.commit({"v2": "x\n"}, branch=None)
    remote.tag("v2.0.0", tag_commit)

    push = _fixture("push_branch")
    push.update(ref="refs/heads/main", before=first, after=main_tip)
    push_tag = _fixture("push_tag")
    push_tag.update(ref="refs/tags/v2.0.0", before="0" * 40, after=tag_commit)
    pull = _fixture("pull_request_opened")
    pull["pull_request"]["head"].update(sha=pr_head, ref="topic")
    pull["pull_request"]["head"]["repo"]["full_name"] = REPOSITORY
    pull["pull_request"]["base"].update(sha=main_tip, ref="main")
    pull["pull_request"]["base"]["repo"]["full_name"] = REPOSITORY
    release = _fixture("release_published")
    assert release["release"]["target_commitish"] == "main"  # a branch name: the usual case
    draft = _fixture("release_published")
    draft["release"].update(tag_name="v9.9.9", draft=True)  # its tag does not exist yet
    issues = _fixture("issues_opened")
    create = _fixture("create_branch")

    # (X-GitHub-Event, payload, expected ref, expected sha, expected commit source)
    cases = [
        ("push", push, "refs/heads/main", main_tip, "payload"),
        ("push", push_tag, "refs/tags/v2.0.0", tag_commit, "payload"),
        ("pull_request", pull, "refs/pull/", pr_head, "payload"),
        ("release", release, "refs/tags/v1.4.0", tagged, "release tag"),
        ("release", draft, "refs/heads/main", main_tip, "release target branch"),
        ("issues", issues, "refs/heads/trunk", trunk_tip, "default branch"),
        ("create", create, "refs/heads/feature/login", created, "created branch"),
    ]
    serve = await ServeProcess.start()
    try:
        async with aiohttp.ClientSession() as session:
            for i, (name, payload, *_rest) in enumerate(cases):
                reply = await send_signed(
                    session,
                    serve.hook_url,
                    WEBHOOK_SECRET,
                    json.dumps(payload).encode(),
                    event=name,
                    delivery=f"kind-{i}",
                )
                assert reply.status == 202, (name, reply.body)
        await _wait_calls(kit, serve, hermetic_home, len(cases))
    finally:
        assert await serve.terminate() == 0

    by_delivery = {c["event_trigger"]["delivery_id"]: c for c in kit.calls()}
    for i, (name, _payload, ref, sha, source) in enumerate(cases):
        trigger = by_delivery[f"kind-{i}"]["event_trigger"]
        got = (trigger["ref"], trigger["sha"], trigger["commit_source"])
        assert got[0].startswith(ref), (name, got)
        assert got[1:] == (sha, source), (name, got)
        assert by_delivery[f"kind-{i}"]["env"]["GITHUB_SHA"] == sha
    # Nothing ever went to a URL from a payload, and every request carried the token.
    assert srv.seen()
    assert all(r.authorization == srv.expected_authorization() for r in srv.seen())
    # The stored events say which commit they were built at, and all were dispatched.
    store = await Store.open(hermetic_home / "data" / "pocketci.db")
    try:
        events = {s.event.delivery_id: s for s in await store.list_events(limit=20)}
    finally:
        await store.close()
    assert events["kind-5"].event.sha == trunk_tip
    assert events["kind-5"].event.ref == "refs/heads/trunk"
    # serve's log (and the UI's Events pane, from the same notice) says which commit it is.
    said = f"checking out refs/heads/trunk at {trunk_tip[:12]} (default branch)"
    assert any(said in line for line in serve.lines), "\n".join(serve.lines)
    assert {s.status for s in events.values()} == {EventStatus.DISPATCHED}


async def test_an_event_whose_ref_the_remote_lacks_says_so(
    served_kit: tuple[EngineKit, GitHttpServer], hermetic_home: Path
) -> None:
    kit, _srv = served_kit
    create = _fixture("create_branch")
    create["ref"] = "gone"
    serve = await ServeProcess.start()
    try:
        async with aiohttp.ClientSession() as session:
            reply = await send_signed(
                session,
                serve.hook_url,
                WEBHOOK_SECRET,
                json.dumps(create).encode(),
                event="create",
                delivery="gone-1",
            )
            assert reply.status == 202
        store = await Store.open(hermetic_home / "data" / "pocketci.db")
        try:
            async with asyncio.timeout(60):
                while True:
                    [stored] = await store.list_events(limit=1)
                    if stored.status is EventStatus.ERROR:
                        break
                    await asyncio.sleep(0.1)
        finally:
            await store.close()
    finally:
        assert await serve.terminate() == 0
    assert "cannot tell which commit to build" in stored.detail
    assert "refs/heads/gone is not on the remote" in stored.detail
    assert kit.calls() == []


async def _fire_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pocketci_tui",
        "fire",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_fire_example_push_runs_against_the_configured_repository(
    served_kit: tuple[EngineKit, GitHttpServer], hermetic_home: Path
) -> None:
    """Issue 10: the Quickstart's payload.json was never provided. `fire --example push`
    sends a push of the configured repository's default branch tip to the running listener."""
    kit, srv = served_kit
    tip = kit.remote.commit({"main.go": "package main // example\n"}, branch="main")
    serve = await ServeProcess.start()
    try:
        code, out, err = await _fire_cli("--example", "push", "--print")
        assert code == 0, err
        printed = json.loads(out)
        assert (printed["ref"], printed["after"]) == ("refs/heads/main", tip)
        assert printed["repository"]["full_name"] == REPOSITORY
        # No --url: fire finds the running owner's listener.
        code, out, err = await _fire_cli("--example", "push", "--repo", REPOSITORY)
        assert code == 0, err
        assert out.startswith("202 delivery=")
        await _wait_calls(kit, serve, hermetic_home, 1)
    finally:
        assert await serve.terminate() == 0
    [call] = kit.calls()
    trigger = call["event_trigger"]
    assert (trigger["event_type"], trigger["filter"], trigger["sha"]) == ("push", "main", tip)
    assert trigger["changes"] is not None
    assert "main.go" in trigger["changes"]
    # The remote was asked with the configured clone token, and only the configured remote.
    assert all(r.authorization == srv.expected_authorization() for r in srv.seen())
