"""Fetching from each forge the way it serves git (issue 13), against git's own http-backend.

Each forge expects a token in its own basic-auth form, and keeps the head of a pull or merge
request under its own ref on the base repository, where a fork's commits are fetched from
when the server refuses commit ids (the servers here speak protocol v0 and refuse them).
GitLab names repositories by nested group paths.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from githttp import TEST_TOKEN, GitHttpServer
from gitrepo import BareRepo, pr_event, push_event

from pocketci_tui.engine.git import GitError, Workspace
from pocketci_tui.forges.git_access import git_access


@pytest.fixture
def gitlab(tmp_path: Path) -> Iterator[tuple[BareRepo, GitHttpServer]]:
    """``team/sub/api`` on a GitLab-like server: ``oauth2`` user, commit ids refused."""
    repo = BareRepo(tmp_path / "gl" / "team" / "sub" / "api.git", allow_any_sha=False)
    with GitHttpServer(
        tmp_path / "gl", username="oauth2", password=TEST_TOKEN, protocol_v2=False
    ) as srv:
        yield repo, srv


@pytest.fixture
def gitea(tmp_path: Path) -> Iterator[tuple[BareRepo, GitHttpServer]]:
    """``me/app`` on a Gitea-like server: the token as password of any user, ids refused."""
    repo = BareRepo(tmp_path / "gt" / "me" / "app.git", allow_any_sha=False)
    with GitHttpServer(
        tmp_path / "gt", username=None, password=TEST_TOKEN, protocol_v2=False
    ) as srv:
        yield repo, srv


async def test_gitlab_nested_project_is_fetched_with_the_oauth2_user(
    workspace: Workspace, gitlab: tuple[BareRepo, GitHttpServer]
) -> None:
    repo, srv = gitlab
    before = repo.commit({"a": "1"})
    after = repo.commit({"b": "2"})
    access = git_access("gitlab")
    url = access.clone_url(srv.base_url, "team/sub/api")
    assert url == f"{srv.base_url}/team/sub/api.git"
    event = push_event("refs/heads/main", after, before, repository="team/sub/api")
    co = await workspace.checkout("gitlab/team/sub/api", url, TEST_TOKEN, event, username="oauth2")
    assert co.sha == after
    assert await workspace.changed_files(co, event) == ["b"]
    seen = srv.seen()
    assert seen
    assert {r.authorization for r in seen} == {srv.expected_authorization()}
    assert all(r.status == 200 for r in seen)


async def test_gitlab_refuses_the_github_user(
    workspace: Workspace, gitlab: tuple[BareRepo, GitHttpServer]
) -> None:
    """The token alone is not enough: GitLab wants it as the password of ``oauth2``."""
    repo, srv = gitlab
    after = repo.commit({"a": "1"})
    url = f"{srv.base_url}/team/sub/api.git"
    with pytest.raises(GitError, match="Authentication failed"):
        await workspace.checkout("k", url, TEST_TOKEN, push_event("refs/heads/main", after))


async def test_gitlab_fork_merge_request_head_comes_from_the_target_project(
    workspace: Workspace, gitlab: tuple[BareRepo, GitHttpServer]
) -> None:
    """A fork's merge request: its commits exist on the target project only under
    ``refs/merge-requests/<iid>/head``; the source branch is a branch of the fork, and a
    branch of the same name on the target is another commit."""
    repo, srv = gitlab
    base = repo.commit({"main.go": "package main\n"})
    head = repo.commit({"lib/x.go": "package lib\n"}, branch=None, parents=[base])
    repo.set_ref("refs/merge-requests/7/head", head)
    repo.commit({"other": "same name, other commit"}, branch="feature")
    repo.commit({"main.go": "package main // moved on\n"})  # the target branch moved on
    event = replace(
        pr_event(7, head, base, repository="team/sub/api", is_fork=True),
        ref="refs/heads/feature",  # the fork's branch, as the payload names it
    )
    access = git_access("gitlab")
    co = await workspace.checkout(
        "gitlab/team/sub/api",
        access.clone_url(srv.base_url, "team/sub/api"),
        TEST_TOKEN,
        event,
        username=access.username,
        change_refs=access.change_refs(event.pr_number),
    )
    assert co.sha == head
    assert (co.path / "lib" / "x.go").read_text() == "package lib\n"
    assert await workspace.changed_files(co, event) == ["lib/x.go"]
    paths = {r.path for r in srv.seen()}
    assert paths <= {"/team/sub/api.git/info/refs", "/team/sub/api.git/git-upload-pack"}


async def test_gitea_pull_request_from_a_fork_with_the_token_as_password(
    workspace: Workspace, gitea: tuple[BareRepo, GitHttpServer]
) -> None:
    repo, srv = gitea
    base = repo.commit({"a": "1"})
    head = repo.commit({"b": "1"}, branch=None, parents=[base])
    repo.set_ref("refs/pull/3/head", head)
    repo.commit({"a": "2"})
    event = replace(
        pr_event(3, head, base, repository="me/app", is_fork=True), ref="refs/heads/patch-1"
    )
    access = git_access("gitea")
    co = await workspace.checkout(
        "gitea/me/app",
        access.clone_url(srv.base_url, "me/app"),
        TEST_TOKEN,
        event,
        username=access.username,
        change_refs=access.change_refs(event.pr_number),
    )
    assert co.sha == head
    assert await workspace.changed_files(co, event) == ["b"]
    sent = {r.authorization for r in srv.seen()}
    basic = base64.b64encode(f"{access.username}:{TEST_TOKEN}".encode()).decode()
    assert sent == {f"Basic {basic}"}


async def test_resolve_commit_sends_the_forge_user(
    workspace: Workspace, gitlab: tuple[BareRepo, GitHttpServer]
) -> None:
    """Events without a commit id (a release at a tag) ask the remote as the forge wants."""
    repo, srv = gitlab
    sha = repo.commit({"a": "1"})
    repo.tag("v1.0", sha, annotated=True)
    url = f"{srv.base_url}/team/sub/api.git"
    assert await workspace.resolve_commit(
        url, TEST_TOKEN, ["refs/tags/v1.0"], username="oauth2"
    ) == ("refs/tags/v1.0", sha)
    with pytest.raises(GitError, match="Authentication failed"):
        await workspace.resolve_commit(url, TEST_TOKEN, ["refs/tags/v1.0"])
