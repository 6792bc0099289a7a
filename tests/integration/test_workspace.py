"""The git workspace against real repositories served by ``git http-backend`` with basic auth."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from githttp import TEST_TOKEN as TOKEN
from githttp import GitHttpServer
from gitrepo import BareRepo, git_env, pr_event, push_event, tag_event

from pocketci_tui.engine.git import (
    Checkout,
    GitCommand,
    GitError,
    GitInputError,
    MirrorLimits,
    Workspace,
    default_clone_url,
    repo_dir_name,
)
from pocketci_tui.model import ZERO_SHA


def _git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        env=git_env(),
        stdin=subprocess.DEVNULL,
    ).stdout


def _git_cmdlines_without_token(url: str) -> list[str]:
    """Command lines of all processes mentioning ``url``; fails if any holds the token."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        assert TOKEN.encode() not in cmdline
        if url.encode() in cmdline:
            found.append(cmdline.decode(errors="replace"))
    return found


def _all_bytes_under(root: Path) -> Iterator[tuple[Path, bytes]]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                yield path, path.read_bytes()


# -- plain checkouts -------------------------------------------------------------------------


async def test_private_repository_checks_out_over_http_with_basic_auth(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    first = served_repo.commit({"README.md": "hello\n", "ci/main.go": "package main\n"})
    head = served_repo.commit({"README.md": "hello again\n"})
    co = await workspace.checkout(
        "owner/repo", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", head, first)
    )
    assert co.sha == head
    assert _git(co.path, "rev-parse", "HEAD").strip() == head
    assert (co.path / "README.md").read_text() == "hello again\n"
    # The catalog hashes module directories this way: it must work in the checkout.
    assert _git(co.path, "rev-parse", "HEAD:ci").strip() == served_repo.rev(f"{head}:ci")
    assert _git(co.path, "status", "--porcelain") == ""
    assert co.path.is_relative_to(workspace.root / "checkouts")
    assert co.mirror == workspace.mirror_path("owner/repo")
    # Only correctly authenticated requests got an answer other than 401.
    seen = git_server.seen()
    assert any(r.status == 200 for r in seen)
    assert all(
        r.authorization == git_server.expected_authorization() for r in seen if r.status == 200
    )
    # Protocol v2 was spoken.
    assert all(r.git_protocol == "version=2" for r in seen)


async def test_checkout_works_without_the_mirror(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    """A checkout is self-contained (its packs are links), e.g. for git inside a container."""
    served_repo.commit({"a": "1"})
    head = served_repo.commit({"b": "1"})
    co = await workspace.checkout(
        "r", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", head)
    )
    assert not (co.path / ".git" / "objects" / "info" / "alternates").exists()
    co.mirror.rename(co.mirror.with_name("moved-away"))
    assert _git(co.path, "rev-parse", "HEAD:b").strip() == served_repo.rev(f"{head}:b")
    assert _git(co.path, "log", "--format=%H").split() == [head, served_repo.rev(f"{head}^")]
    _git(co.path, "fsck", "--no-dangling")


def test_clone_urls_with_passwords_are_refused(workspace: Workspace) -> None:
    for url in ("https://user:ghp_x@github.com/o/r.git", "http://:tok@127.0.0.1/r.git"):
        with pytest.raises(GitInputError, match="password"):
            workspace.check_clone_url(url)
    assert workspace.check_clone_url("ssh://git@github.com/o/r.git") == "ssh"


async def test_wrong_or_missing_token_fails_with_a_clear_masked_message(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    first = served_repo.commit({"a": "1"})
    head = served_repo.commit({"a": "2"})
    event = push_event("refs/heads/main", head, first)
    wrong = "ghs_WRONGwrongWRONG_98765"
    with pytest.raises(GitError) as info:
        await workspace.checkout("r", git_server.url("repo.git"), wrong, event)
    message = str(info.value)
    assert "Authentication failed" in message
    assert wrong not in message
    assert TOKEN not in message
    # One authenticated attempt: a rejected token is not retried (no ref fallback).
    assert len([r for r in git_server.seen() if r.authorization]) == 1
    with pytest.raises(GitError) as info:
        await workspace.checkout("r", git_server.url("repo.git"), None, event)
    assert "could not read Username" in str(info.value) or "Authentication" in str(info.value)
    # Nothing of the token was written anywhere in the workspace.
    for path, data in _all_bytes_under(workspace.root):
        assert wrong.encode() not in data, path


async def test_one_event_makes_two_http_requests_and_no_anonymous_one(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    """Warm mirror, one push: the capability advertisement and one fetch, both authenticated.

    The token goes with the first request, so there is no anonymous ``401`` round trip, and
    the commit is fetched by id, so there is no ``ls-refs`` request either.
    """
    url = git_server.url("repo.git")
    one = served_repo.commit({"a": "1"})
    await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", one))
    for n in range(2):
        git_server.clear()
        before = served_repo.rev("main")
        head = served_repo.commit({"a": f"{n + 2}"})
        co = await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", head, before))
        assert co.sha == head
        assert co.base == before
        seen = git_server.seen()
        assert [(r.method, r.path, r.status) for r in seen] == [
            ("GET", "/repo.git/info/refs", 200),
            ("POST", "/repo.git/git-upload-pack", 200),
        ]
        assert all(r.authorization == git_server.expected_authorization() for r in seen)


async def test_a_refused_token_is_sent_once_in_one_request(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    """Also for a new branch, where the default branch is looked up before the fetch."""
    head = served_repo.commit({"a": "1"})
    wrong = "ghs_WRONGwrongWRONG_98765"
    with pytest.raises(GitError) as info:
        await workspace.checkout(
            "r", git_server.url("repo.git"), wrong, push_event("refs/heads/new", head)
        )
    message = str(info.value)
    assert "Authentication failed" in message
    assert "refused the token" in message
    assert wrong not in message
    seen = git_server.seen()
    assert [(r.method, r.status) for r in seen] == [("GET", 401)]
    assert seen[0].authorization is not None
    assert seen[0].authorization != git_server.expected_authorization()


async def test_token_is_never_in_a_file_of_the_workspace(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1"})
    co = await workspace.checkout(
        "r", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", head)
    )
    assert co.sha == head
    files = list(_all_bytes_under(workspace.root))
    assert len(files) > 10
    for path, data in files:
        assert TOKEN.encode() not in data, path


async def test_token_is_never_in_the_argv_of_git_processes(
    tmp_path: Path, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1"})
    ws = Workspace(tmp_path / "ws-hang", timeout=3)
    git_server.mode = "hang"
    url = git_server.url("repo.git")
    task = asyncio.create_task(ws.checkout("r", url, TOKEN, push_event("refs/heads/main", head)))
    seen_git: list[str] = []
    while not task.done():
        seen_git += _git_cmdlines_without_token(url)
        await asyncio.sleep(0.05)
    with pytest.raises(GitError):
        task.result()
    # We did watch the git processes of this fetch while they waited on the server.
    assert any("fetch" in c or "remote-http" in c for c in seen_git)


async def test_mirror_is_cloned_once_and_then_fetched_into(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    url = git_server.url("repo.git")
    one = served_repo.commit({"a": "1"})
    await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", one))
    mirror = workspace.mirror_path("r")
    marker = mirror / "kept-across-fetches"
    marker.write_text("x")
    git_server.clear()
    two = served_repo.commit({"b": "2"})
    co = await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", two, one))
    assert co.sha == two
    assert marker.exists()
    refs = set(_git(mirror, "for-each-ref", "--format=%(refname)").split())
    assert {f"refs/pocketci/commits/{one}", f"refs/pocketci/commits/{two}"} <= refs
    assert [r.path for r in git_server.seen() if r.method == "POST"] == [
        "/repo.git/git-upload-pack"
    ]
    # A re-fired event whose commits are already mirrored needs no network at all.
    git_server.clear()
    again = await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", two, one))
    assert again.sha == two
    assert again.path != co.path
    assert git_server.seen() == []


async def test_the_mirror_stays_compact_and_keeps_every_commit(
    tmp_path: Path, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    """Packs are rolled up and old pins dropped; no commit is lost, none is fetched again."""
    limits = MirrorLimits(max_packs=4, max_pins=6, keep_pins=3)
    workspace = Workspace(tmp_path / "ws", timeout=30, mirror_limits=limits)
    url = git_server.url("repo.git")
    mirror = workspace.mirror_path("r")
    shas = [served_repo.commit({"a": "0"})]
    await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", shas[0]))
    for n in range(1, 14):
        shas.append(served_repo.commit({"a": str(n), f"f{n}": "x"}))
        co = await workspace.checkout(
            "r", url, TOKEN, push_event("refs/heads/main", shas[-1], shas[-2])
        )
        await workspace.remove(co)
        await workspace.upkeep_done()
        packs = list((mirror / "objects" / "pack").glob("*.pack"))
        pins = list((mirror / "refs" / "pocketci" / "commits").iterdir())
        assert len(packs) <= 4
        assert len(pins) <= 6
    # The newest pins are the ones kept.
    kept = {p.name for p in (mirror / "refs" / "pocketci" / "commits").iterdir()}
    assert shas[-1] in kept
    _git(mirror, "fsck", "--no-dangling", "--connectivity-only", *shas)
    # An old commit whose pin was dropped checks out again from the mirror alone.
    assert shas[1] not in kept
    git_server.clear()
    co = await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", shas[1], shas[0]))
    assert (co.path / "f1").read_text() == "x"
    assert await workspace.changed_files(co, push_event("refs/heads/main", shas[1], shas[0])) == [
        "a",
        "f1",
    ]
    assert git_server.seen() == []
    # A checkout made after a repack is complete on its own.
    co.mirror.rename(co.mirror.with_name("moved-away"))
    _git(co.path, "fsck", "--no-dangling")


async def test_concurrent_checkouts_of_one_repository(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    shas = [served_repo.commit({f"f{i}": str(i)}) for i in range(6)]
    url = git_server.url("repo.git")
    results = await asyncio.gather(
        *(workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", s)) for s in shas)
    )
    assert [c.sha for c in results] == shas
    assert len({c.path for c in results}) == len(shas)
    for i, co in enumerate(results):
        assert (co.path / f"f{i}").read_text() == str(i)
        assert not (co.path / f"f{i + 1}").exists()


async def test_fallback_to_refs_when_the_server_refuses_commit_ids(
    workspace: Workspace, strict_repo: BareRepo, strict_server: GitHttpServer
) -> None:
    old = strict_repo.commit({"a": "1"})
    strict_repo.commit({"a": "2"})  # main moved on: ``old`` is no longer a tip
    url = strict_server.url("repo.git")
    co = await workspace.checkout("s", url, TOKEN, push_event("refs/heads/main", old))
    assert co.sha == old
    assert (co.path / "a").read_text() == "1"
    # A commit the remote does not have at all is reported as such.
    with pytest.raises(GitError, match="not on the remote"):
        await workspace.checkout("s", url, TOKEN, push_event("refs/heads/main", "1" * 40))
    # What was laid out for it is gone again; the earlier checkout stays.
    assert list(workspace.checkouts_dir("s").iterdir()) == [co.path]


async def test_pull_request_head_is_fetched_from_its_pull_ref(
    workspace: Workspace, strict_repo: BareRepo, strict_server: GitHttpServer
) -> None:
    base = strict_repo.commit({"a": "1"})
    head = strict_repo.commit({"b": "1"}, branch=None, parents=[base])
    strict_repo.set_ref("refs/pull/7/head", head)
    strict_repo.commit({"a": "2"})
    event = pr_event(7, head, base)
    co = await workspace.checkout("s", strict_server.url("repo.git"), TOKEN, event)
    assert co.sha == head
    assert await workspace.changed_files(co, event) == ["b"]


async def test_event_without_sha_resolves_its_ref(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1"})
    served_repo.tag("v1.0", head, annotated=True)
    event = replace(tag_event("v1.0", ""), event_type="release", sha="")
    co = await workspace.checkout("r", git_server.url("repo.git"), TOKEN, event)
    assert co.sha == head
    assert await workspace.changed_files(co, event) is None


async def test_annotated_tag_checks_out_its_commit(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1", "b/c": "2"})
    tag_object = served_repo.tag("v2", head, annotated=True)
    assert tag_object != head
    event = tag_event("v2", tag_object)
    co = await workspace.checkout("r", git_server.url("repo.git"), TOKEN, event)
    assert co.sha == head
    assert _git(co.path, "rev-parse", "HEAD").strip() == head
    # A new tag: every file of the tagged commit counts as changed.
    assert await workspace.changed_files(co, event) == ["a", "b/c"]


async def test_deletion_events_are_refused(workspace: Workspace, git_server: GitHttpServer) -> None:
    event = replace(push_event("refs/heads/gone", ZERO_SHA, "a" * 40), sha="", deleted=True)
    with pytest.raises(GitInputError):
        await workspace.checkout("r", git_server.url("repo.git"), TOKEN, event)
    assert git_server.seen() == []


async def test_remove_and_prune(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    url = git_server.url("repo.git")
    shas = [served_repo.commit({"a": str(i)}) for i in range(4)]
    checkouts: list[Checkout] = []
    for sha in shas:
        checkouts.append(
            await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", sha))
        )
        os.utime(checkouts[-1].path, (1_000_000 + len(checkouts), 1_000_000 + len(checkouts)))
    await workspace.remove(checkouts[0])
    assert not checkouts[0].path.exists()
    assert await workspace.prune(keep=1) == 2
    assert [c.path.exists() for c in checkouts] == [False, False, False, True]
    assert workspace.mirror_path("r").exists()
    with pytest.raises(GitInputError):
        await workspace.remove(replace(checkouts[3], path=workspace.root / "mirrors"))


# -- changed files ---------------------------------------------------------------------------


async def _changed(ws: Workspace, server: GitHttpServer, event: object) -> list[str] | None:
    from pocketci_tui.model import Event

    assert isinstance(event, Event)
    co = await ws.checkout("r", server.url("repo.git"), TOKEN, event)
    return await ws.changed_files(co, event)


async def test_pull_request_uses_the_merge_base_three_dot(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    root = served_repo.commit({"shared.txt": "1", "other.txt": "1"})
    head = served_repo.commit({"feature.txt": "new", "shared.txt": "2"}, branch="feature")
    # The base branch moves on after the branch was made: its changes must not count.
    base = served_repo.commit({"other.txt": "2", "base-only.txt": "x"})
    assert served_repo.rev("refs/heads/feature^") == root
    event = pr_event(1, head, base)
    assert await _changed(workspace, git_server, event) == ["feature.txt", "shared.txt"]


async def test_pull_request_with_base_branch_only(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    served_repo.commit({"a": "1"})
    head = served_repo.commit({"b": "1"}, branch="feature")
    served_repo.commit({"c": "1"})
    # No base sha in the event (an odd payload): the base branch's tip stands in.
    event = replace(pr_event(2, head, ""), base_sha="")
    assert await _changed(workspace, git_server, event) == ["b"]
    # And when the base branch is gone too, nothing can be compared.
    event = replace(pr_event(3, head, ""), base_sha="", base_ref="gone")
    assert await _changed(workspace, git_server, event) is None


async def test_gitlab_merge_request_uses_the_merge_base_of_its_target_branch(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    """GitLab sends no base commit: the target branch's tip stands in, as for a pull request."""
    served_repo.commit({"a": "1"})
    head = served_repo.commit({"b": "1", "a": "2"}, branch="feature")
    served_repo.commit({"c": "1"})
    event = replace(
        pr_event(4, head, ""),
        vendor="gitlab",
        event_type="merge_request",
        filter="open",
        ref="refs/merge-requests/4/head",
    )
    assert await _changed(workspace, git_server, event) == ["a", "b"]


async def test_push_diffs_before_and_after(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    before = served_repo.commit({"a": "1", "b": "1", "c": "1"})
    served_repo.commit({"a": "2"})
    after = served_repo.commit({"b": None, "d": "1"})
    assert await _changed(workspace, git_server, push_event("refs/heads/main", after, before)) == [
        "a",
        "b",
        "d",
    ]


async def test_one_push_runs_four_git_commands_and_its_changes_are_ready(
    workspace: Workspace,
    served_repo: BareRepo,
    git_server: GitHttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warm mirror, new commit: fetch, peel, read-tree and the diff (run alongside read-tree)."""
    url = git_server.url("repo.git")
    before = served_repo.commit({"a": "1", "b": "1"})
    await workspace.checkout("r", url, TOKEN, push_event("refs/heads/main", before))
    after = served_repo.commit({"b": "2", "c": "1"})
    event = push_event("refs/heads/main", after, before)
    commands: list[str] = []
    run = GitCommand.run

    async def counting(self: GitCommand, args: Sequence[str], **kw: Any) -> Any:
        commands.append(args[0])
        return await run(self, args, **kw)

    monkeypatch.setattr(GitCommand, "run", counting)
    co = await workspace.checkout("r", url, TOKEN, event)
    assert sorted(commands) == ["diff-tree", "fetch", "read-tree", "rev-parse"]
    assert await workspace.changed_files(co, event) == ["b", "c"]
    assert len(commands) == 4  # the answer was the one worked out during the checkout
    # Asked about another event (or again), it works the answer out itself.
    other = replace(event, ref="refs/heads/x")
    assert await workspace.changed_files(co, other) == ["b", "c"]
    assert await workspace.changed_files(co, event) == ["b", "c"]
    assert len(commands) == 6


async def test_removing_a_checkout_drops_its_pending_changes(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    url = git_server.url("repo.git")
    before = served_repo.commit({"a": "1"})
    after = served_repo.commit({"a": "2"})
    event = push_event("refs/heads/main", after, before)
    co = await workspace.checkout("r", url, TOKEN, event)
    assert workspace.checkouts.pending_changes == 1
    await workspace.remove(co)
    assert workspace.checkouts.pending_changes == 0
    assert not co.path.exists()
    # The mirror still answers for a new checkout of the same event.
    again = await workspace.checkout("r", url, TOKEN, event)
    assert await workspace.changed_files(again, event) == ["a"]
    assert workspace.checkouts.pending_changes == 0


async def test_renames_count_both_paths(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    content = "same content, long enough to be detected as a rename\n" * 20
    before = served_repo.commit({"old/name.txt": content, "keep": "k"})
    after = served_repo.commit({"old/name.txt": None, "new/name.txt": content})
    assert await _changed(workspace, git_server, push_event("refs/heads/main", after, before)) == [
        "new/name.txt",
        "old/name.txt",
    ]


async def test_odd_file_names_come_back_exactly(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    before = served_repo.commit({"plain": "1"})
    names = [
        "with space.txt",
        "ünïcødé/файл.txt",
        "line\nbreak",
        "tab\there",
        '"quoted"',
        "-rf",
        "back\\slash",
        "$(touch pwned)",
    ]
    after = served_repo.commit(dict.fromkeys(names, "x"))
    assert await _changed(
        workspace, git_server, push_event("refs/heads/main", after, before)
    ) == sorted(names)
    assert not list(Path.cwd().glob("pwned"))


async def test_force_push_compares_the_old_and_new_tips(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    root = served_repo.commit({"a": "1", "b": "1"})
    before = served_repo.commit({"a": "2", "gone.txt": "x"})
    # History rewritten: the new tip does not contain ``before``.
    after = served_repo.commit({"b": "2"}, parents=[root])
    served_repo.set_ref("refs/heads/old-tip", before)  # the server still has it
    assert await _changed(workspace, git_server, push_event("refs/heads/main", after, before)) == [
        "a",
        "b",
        "gone.txt",
    ]


async def test_unreachable_before_gives_none(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1"})
    missing = "e" * 40
    assert (
        await _changed(workspace, git_server, push_event("refs/heads/main", head, missing)) is None
    )


async def test_new_branch_diffs_against_the_default_branch(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    served_repo.commit({"a": "1", "b": "1"})
    served_repo.commit({"b": "2"}, branch="feature")
    head = served_repo.commit({"c": "1"}, branch="feature")
    served_repo.commit({"a": "3"})  # main moves on; not a change of the branch
    event = push_event("refs/heads/feature", head)
    co = await workspace.checkout("r", git_server.url("repo.git"), TOKEN, event)
    assert co.default_ref == "refs/heads/main"
    assert await workspace.changed_files(co, event) == ["b", "c"]


async def test_new_branch_without_common_history_lists_its_files(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    served_repo.commit({"a": "1"})
    head = served_repo.commit({"x": "1", "y/z": "2"}, branch="orphan", parents=[])
    assert await _changed(workspace, git_server, push_event("refs/heads/orphan", head)) == [
        "x",
        "y/z",
    ]


async def test_first_push_of_the_default_branch_lists_its_files(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    served_repo.commit({"a": "1"})
    head = served_repo.commit({"b": "1"})
    assert await _changed(workspace, git_server, push_event("refs/heads/main", head)) == ["a", "b"]


async def test_moved_tag_diffs_like_a_push(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    before = served_repo.commit({"a": "1"})
    after = served_repo.commit({"b": "1"})
    served_repo.tag("latest", after)
    assert await _changed(workspace, git_server, tag_event("latest", after, before)) == ["b"]


async def test_local_path_remote(workspace: Workspace, local_repo: BareRepo) -> None:
    before = local_repo.commit({"a": "1"})
    after = local_repo.commit({"b": "1"})
    event = push_event("refs/heads/main", after, before)
    co = await workspace.checkout("local", str(local_repo.path), None, event)
    assert await workspace.changed_files(co, event) == ["b"]


# -- validators ------------------------------------------------------------------------------


def test_default_clone_url() -> None:
    assert default_clone_url("github", "octo-org/hello.world") == (
        "https://github.com/octo-org/hello.world.git"
    )
    for bad in [
        "octo",
        "a/b/c",
        "../x",
        "-x/y",
        "x/..",
        "x/.",
        "o/n?x",
        "o/n#x",
        "o/ n",
        "o/r.git",
    ]:
        with pytest.raises(ValueError):  # noqa: PT011
            default_clone_url("github", bad)
    with pytest.raises(ValueError, match=r"forges\.gitea\.url"):
        default_clone_url("gitea", "o/r")


def test_repo_dir_names_are_distinct_and_flat() -> None:
    keys = ["o/r", "o_r", "../../etc", "/abs/path", "..", ".", "", "a/../b", "ü/ñ"]
    names = [repo_dir_name(k) for k in keys]
    assert len(set(names)) == len(keys)
    for name in names:
        assert "/" not in name
        assert not name.startswith(".")
        assert name
