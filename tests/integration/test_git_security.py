"""SECURITY-CHECKLIST rows G1-G10: hostile refs, ids, URLs, redirects, submodules, hangs.

Each test uses real git against real repositories (served by ``git http-backend`` or by path),
and where a row is about command execution, it plants a marker command and checks the marker
file was never created.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from githttp import TEST_TOKEN as TOKEN
from githttp import GitHttpServer
from gitrepo import BareRepo, Gitlink, push_event

from pocketci_tui.engine.git import (
    Credentials,
    GitCommand,
    GitError,
    GitInputError,
    GitTimeoutError,
    Remote,
    Workspace,
    repo_dir_name,
    validate_ref,
)


def _markers(*roots: Path, prefix: str) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if root.exists():
            found += [p for p in root.rglob(f"{prefix}*") if p.is_file()]
    return found


@pytest.fixture
async def empty_mirror(workspace: Workspace) -> Path:
    mirror = workspace.mirror_path("m")
    mirror.parent.mkdir(parents=True, exist_ok=True)
    await workspace.git.run(["init", "--quiet", "--bare", str(mirror)])
    return mirror


# -- G1 / G2: option-looking refs ------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/--upload-pack=touch${IFS}MARKER",
        "refs/heads/-c",
        "refs/heads/-h",
        "refs/heads/--output=MARKER",
        "refs/heads/ok/--exec=touch${IFS}MARKER",
    ],
)
async def test_g1_g2_option_refs_are_refused_before_any_git_call(
    tmp_path: Path, workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer, ref: str
) -> None:
    marker = tmp_path / "g1-marker"
    ref = ref.replace("MARKER", str(marker).lstrip("/"))
    head = served_repo.commit({"a": "1"})
    with pytest.raises(ValueError, match="starts with"):
        validate_ref(ref)
    with pytest.raises(GitInputError, match="refusing event"):
        await workspace.checkout("r", git_server.url("repo.git"), TOKEN, push_event(ref, head))
    assert git_server.seen() == []
    assert not workspace.mirror_path("r").exists()
    assert not marker.exists()


async def test_g1_upload_pack_injection_is_real_without_end_of_options(
    tmp_path: Path, workspace: Workspace, local_repo: BareRepo, empty_mirror: Path
) -> None:
    """The control experiment: git runs ``--upload-pack`` given after the URL."""
    local_repo.commit({"a": "1"})
    marker = tmp_path / "g1-control"
    res = await workspace.git.run(
        ["fetch", f"file://{local_repo.path}", f"--upload-pack=touch${{IFS}}{marker}"],
        git_dir=empty_mirror,
        protocols=["file"],
        check=False,
    )
    assert not res.ok  # the command is no upload-pack, but it did run
    assert marker.exists()


async def test_g1_end_of_options_stops_the_injection_in_the_lower_layer(
    tmp_path: Path, workspace: Workspace, local_repo: BareRepo, empty_mirror: Path
) -> None:
    """Even if a caller bypassed validation, the fetch treats the ref as a ref, not an option."""
    local_repo.commit({"a": "1"})
    marker = tmp_path / "g1-lower"
    remote = Remote(workspace.git, f"file://{local_repo.path}", "file", None, time.monotonic() + 30)
    for hostile in (
        f"--upload-pack=touch${{IFS}}{marker}",
        f"refs/heads/--upload-pack=touch${{IFS}}{marker}",
        f"--output={marker}",
        "-h",
        "-c",
    ):
        with pytest.raises(GitError):
            await remote.fetch(empty_mirror, [hostile])
        # As a pattern it matches no ref; it is not an option either.
        assert await remote.ls_remote(hostile) == []
    assert not marker.exists()


# -- G3: shell syntax in branch names --------------------------------------------------------


G3_NAMES = [
    "$(touch${IFS}g3-dollar)",
    "`touch${IFS}g3-backtick`",
    "a;touch${IFS}g3-semicolon",
    "a|touch${IFS}g3-pipe",
    "a&&touch${IFS}g3-and",
    "q'uo\"te",
    ">g3-redirect",
]


async def test_g3_shell_syntax_in_branch_names_never_runs(
    tmp_path: Path, workspace: Workspace, strict_repo: BareRepo, strict_server: GitHttpServer
) -> None:
    # A server that refuses commit ids, so the branch name itself goes to git fetch.
    strict_repo.commit({"base": "1"})
    events = []
    for i, name in enumerate(G3_NAMES):
        ref = f"refs/heads/{name}"
        validate_ref(ref)
        target = strict_repo.commit({f"file{i}": name}, branch=name)
        strict_repo.commit({f"later{i}": "x"}, branch=name)  # the event's commit is not a tip
        events.append(push_event(ref, target))
    for i, event in enumerate(events):
        co = await workspace.checkout("strict", strict_server.url("repo.git"), TOKEN, event)
        assert (co.path / f"file{i}").read_text() == G3_NAMES[i]
    paths = {r.path for r in strict_server.seen()}
    assert paths <= {"/repo.git/info/refs", "/repo.git/git-upload-pack"}
    # The commit ids were refused, so the names themselves went through git fetch.
    listed = await workspace.git.run(
        ["for-each-ref", "--format=%(refname)", "refs/pocketci/remote/heads/"],
        git_dir=workspace.mirror_path("strict"),
    )
    fetched = listed.stdout.decode().splitlines()
    assert sorted(fetched) == sorted(f"refs/pocketci/remote/heads/{n}" for n in G3_NAMES)
    assert _markers(tmp_path, workspace.git.home, Path.cwd(), prefix="g3-") == []
    # With a space the name is not a valid ref at all.
    with pytest.raises(GitInputError):
        await workspace.checkout(
            "strict",
            f"file://{strict_repo.path}",
            None,
            push_event("refs/heads/$(touch g3-space)", "a" * 40),
        )


# -- G4: commit ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sha",
    [
        "0" * 40,
        "0" * 64,
        "deadbeef",
        "A" * 40,
        "g" * 40,
        "a" * 41,
        "--upload-pack=x" + "a" * 25,
        "a" * 39 + "\n",
        "HEAD",
        "main",
    ],
)
async def test_g4_bad_commit_ids_are_refused(
    workspace: Workspace, git_server: GitHttpServer, sha: str
) -> None:
    with pytest.raises(GitInputError, match="refusing event"):
        await workspace.checkout(
            "r", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", sha)
        )
    before_bad = push_event("refs/heads/main", "a" * 40, before=sha)
    if sha.strip("0"):
        with pytest.raises(GitInputError, match="refusing event"):
            await workspace.checkout("r", git_server.url("repo.git"), TOKEN, before_bad)
    assert git_server.seen() == []


async def test_g4_deletions_are_not_built(workspace: Workspace, git_server: GitHttpServer) -> None:
    event = replace(push_event("refs/heads/x", "0" * 40, "a" * 40), deleted=True)
    with pytest.raises(GitInputError):
        await workspace.checkout("r", git_server.url("repo.git"), TOKEN, event)
    assert git_server.seen() == []


# -- G5: clone URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "/etc",
        "ext::sh -c touch% g5-marker",
        "--upload-pack=touch g5-marker",
        "http://127.0.0.1:9/repo.git",
        "fd::3",
        "",
    ],
)
async def test_g5_only_configured_transports_are_used(
    tmp_path: Path, git_server: GitHttpServer, served_repo: BareRepo, url: str
) -> None:
    head = served_repo.commit({"a": "1"})
    https_only = Workspace(tmp_path / "ws5", allowed_protocols=("https",))
    with pytest.raises(GitInputError):
        await https_only.checkout("r", url, None, push_event("refs/heads/main", head))
    assert _markers(tmp_path, https_only.root, Path.cwd(), prefix="g5-") == []


async def test_g5_ext_is_refused_even_when_configured(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", allowed_protocols=("ext", "file", "https"))
    with pytest.raises(GitInputError, match="'ext' is not allowed"):
        await ws.checkout(
            "r",
            f"ext::sh -c touch% {tmp_path}/g5-ext",
            None,
            push_event("refs/heads/main", "a" * 40),
        )
    assert not (tmp_path / "g5-ext").exists()


async def test_g5_git_itself_refuses_transports_not_allowed(
    tmp_path: Path, git_runner: GitCommand, local_repo: BareRepo
) -> None:
    """The second line of defence: protocol.allow=never in every git command."""
    marker = tmp_path / "g5-git-ext"
    local_repo.commit({"a": "1"})
    for url in (f"ext::sh -c touch% {marker}", f"file://{local_repo.path}", str(local_repo.path)):
        with pytest.raises(GitError, match="not allowed"):
            await git_runner.run(["ls-remote", "--end-of-options", url], protocols=["https"])
    # ext stays forbidden even when a caller asks for it.
    with pytest.raises(GitError, match="not allowed"):
        await git_runner.run(
            ["ls-remote", "--end-of-options", f"ext::sh -c touch% {marker}"],
            protocols=["ext"],
        )
    assert not marker.exists()


async def test_g5_payload_clone_url_is_ignored(
    tmp_path: Path, workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    other_root = tmp_path / "other"
    BareRepo(other_root / "repo.git").commit({"evil": "1"})
    with GitHttpServer(other_root, password=TOKEN) as other:
        head = served_repo.commit({"good": "1"})
        payload = {
            "repository": {
                "clone_url": other.url("repo.git"),
                "git_url": "ext::sh -c touch% g5-payload",
            }
        }
        body = json.dumps(payload).encode()
        event = replace(push_event("refs/heads/main", head), body=body)
        co = await workspace.checkout("r", git_server.url("repo.git"), TOKEN, event)
        assert (co.path / "good").exists()
        assert other.seen() == []
    assert _markers(tmp_path, Path.cwd(), prefix="g5-") == []


# -- G6: redirects ---------------------------------------------------------------------------


@pytest.fixture
def other_host(tmp_path: Path, served_repo: BareRepo) -> Iterator[GitHttpServer]:
    # Another host (127.0.0.2) that would accept the token if it ever got it.
    with GitHttpServer(tmp_path / "served", host="127.0.0.2", password=TOKEN) as srv:
        yield srv


async def test_g6_redirects_to_another_host_are_not_followed(
    workspace: Workspace,
    served_repo: BareRepo,
    git_server: GitHttpServer,
    other_host: GitHttpServer,
) -> None:
    head = served_repo.commit({"a": "1"})
    git_server.mode = "redirect"
    git_server.redirect_to = other_host.base_url
    with pytest.raises(GitError) as info:
        await workspace.checkout(
            "r", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", head)
        )
    assert TOKEN not in str(info.value)
    assert "redirects are not followed" in str(info.value)
    assert other_host.seen() == []


async def _ls_remote_following_redirects(git: GitCommand, url: str, creds: Credentials) -> None:
    """``git ls-remote`` over http with redirects switched on for this one command."""
    await git.run(
        ["-c", "http.followRedirects=true", "ls-remote", "--end-of-options", url],
        protocols=["http"],
        credentials=creds,
    )


@pytest.mark.parametrize("requires_auth", [False, True])
async def test_g6_token_is_host_scoped_even_when_redirects_are_followed(
    workspace: Workspace,
    served_repo: BareRepo,
    git_server: GitHttpServer,
    other_host: GitHttpServer,
    requires_auth: bool,
) -> None:
    """With redirects switched on, the credential helper still answers only for its host."""
    served_repo.commit({"a": "1"})
    git_server.mode = "redirect"
    git_server.redirect_to = other_host.base_url
    git_server.redirect_requires_auth = requires_auth
    url = git_server.url("repo.git")
    with pytest.raises(GitError) as info:
        await _ls_remote_following_redirects(workspace.git, url, Credentials.for_url(url, TOKEN))
    assert TOKEN not in str(info.value)
    # The redirect was followed to the other host, which never saw any credentials...
    assert other_host.seen()
    assert all(r.authorization is None for r in other_host.seen())
    # ...while the configured host did get them when it asked.
    if requires_auth:
        assert any(
            r.authorization == git_server.expected_authorization() for r in git_server.seen()
        )


@pytest.mark.parametrize("other_needs_auth", [False, True])
async def test_g6_preemptive_token_never_leaves_its_host_even_if_redirects_are_switched_on(
    tmp_path: Path,
    git_runner: GitCommand,
    served_repo: BareRepo,
    git_server: GitHttpServer,
    other_needs_auth: bool,
) -> None:
    """The header mode: the origin's own followRedirects=false beats a generic override.

    With an anonymous other host, a followed redirect would have carried the header to it
    (git keeps sending its extra headers to the new base URL), so the redirect must not be
    followed at all.
    """
    served_repo.commit({"a": "1"})
    with GitHttpServer(
        tmp_path / "served", host="127.0.0.2", password=TOKEN if other_needs_auth else None
    ) as other:
        git_server.mode = "redirect"
        git_server.redirect_to = other.base_url
        url = git_server.url("repo.git")
        with pytest.raises(GitError) as info:
            await _ls_remote_following_redirects(
                git_runner, url, Credentials.for_url(url, TOKEN, preemptive=True)
            )
        assert TOKEN not in str(info.value)
        assert "redirects are not followed" in str(info.value)
        assert other.seen() == []
        assert [r.status for r in git_server.seen()] == [302]


# -- G7: what the checkout does with links pointing outside ----------------------------------


async def test_g7_symlinks_stay_links_and_nothing_outside_is_touched(
    tmp_path: Path, workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    """The workspace checks out links as links; resolving ``module`` inside the checkout is the
    catalog's job (it must resolve symlinks); here we show the link is not followed on write."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file").write_text("untouched")
    blob = served_repo.git("hash-object", "-w", "--stdin", input=str(outside).encode()).strip()
    head = served_repo.commit({"ci/dagger.json": "{}"})
    # Add a symlink entry (mode 120000) named "module" pointing outside.
    tree = served_repo.git(
        "mktree", input=_tree_with_link(served_repo, head, "module", blob)
    ).strip()
    linked = served_repo.git("commit-tree", tree, "-p", head, "-m", "link").strip()
    served_repo.set_ref("refs/heads/main", linked)
    co = await workspace.checkout(
        "r", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", linked)
    )
    link = co.path / "module"
    assert link.is_symlink()
    assert os.readlink(link) == str(outside)
    assert not link.resolve().is_relative_to(co.path.resolve())
    assert (outside / "file").read_text() == "untouched"
    assert sorted(p.name for p in outside.iterdir()) == ["file"]


def _tree_with_link(repo: BareRepo, commit: str, name: str, blob: str) -> bytes:
    entries = repo.git("ls-tree", commit).encode()
    return entries + f"120000 blob {blob}\t{name}\n".encode()


# -- G8: submodules --------------------------------------------------------------------------


async def test_g8_submodules_are_never_fetched(
    tmp_path: Path, workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    marker = tmp_path / "g8-marker"
    secret = BareRepo(tmp_path / "secret.git")
    secret_sha = secret.commit({"private-key": "SECRET"})
    gitmodules = (
        '[submodule "evil"]\n'
        "\tpath = evil\n"
        f"\turl = ext::sh -c touch% {marker}\n"
        '[submodule "local"]\n'
        "\tpath = local\n"
        f"\turl = file://{secret.path}\n"
    )
    head = served_repo.commit(
        {
            ".gitmodules": gitmodules,
            "evil": Gitlink(secret_sha),
            "local": Gitlink(secret_sha),
            "main.txt": "x",
        }
    )
    co = await workspace.checkout(
        "r", git_server.url("repo.git"), TOKEN, push_event("refs/heads/main", head)
    )
    assert (co.path / "main.txt").exists()
    for sub in ("evil", "local"):
        path = co.path / sub
        assert not path.exists() or list(path.iterdir()) == []
    assert not marker.exists()
    present = await workspace.git.run(
        ["cat-file", "-e", secret_sha], git_dir=co.mirror, check=False
    )
    assert not present.ok
    assert {r.path for r in git_server.seen()} <= {
        "/repo.git/info/refs",
        "/repo.git/git-upload-pack",
    }


# -- G9: directory names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["../../escape", "/abs/escape", "a/../../escape", "..", ".", "", "o/r\n../x"]
)
async def test_g9_repository_keys_cannot_escape_the_root(
    tmp_path: Path, served_repo: BareRepo, git_server: GitHttpServer, key: str
) -> None:
    ws = Workspace(tmp_path / "deep" / "ws", timeout=30)
    head = served_repo.commit({"a": "1"})
    event = replace(push_event("refs/heads/main", head), repository="../../../etc")
    co = await ws.checkout(key, git_server.url("repo.git"), TOKEN, event)
    assert co.path.resolve().is_relative_to((ws.root / "checkouts").resolve())
    assert co.mirror.resolve().parent == (ws.root / "mirrors").resolve()
    assert co.mirror.name == repo_dir_name(key) + ".git"
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["ws"]
    assert sorted(p.name for p in ws.root.iterdir()) == ["checkouts", "home", "mirrors"]
    assert not (tmp_path / "escape").exists()


# -- G10: hung remotes -----------------------------------------------------------------------


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if text.encode() in cmdline and state != "Z":
                pids.append(int(entry.name))
    return pids


async def test_g10_a_hung_remote_times_out_and_leaves_no_process(
    tmp_path: Path, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1"})
    git_server.mode = "hang"
    ws = Workspace(tmp_path / "ws10", timeout=1.5)
    url = git_server.url("repo.git")
    with pytest.raises(GitTimeoutError, match="timed out"):
        await ws.checkout("r", url, TOKEN, push_event("refs/heads/main", head))
    assert git_server.seen()  # it really did reach the server and wait
    assert _processes_mentioning(url) == []


async def test_g10_missing_credentials_fail_instead_of_prompting(
    workspace: Workspace, served_repo: BareRepo, git_server: GitHttpServer
) -> None:
    head = served_repo.commit({"a": "1"})
    with pytest.raises(GitError) as info:
        await workspace.checkout(
            "r", git_server.url("repo.git"), None, push_event("refs/heads/main", head)
        )
    assert not isinstance(info.value, GitTimeoutError)
    assert "could not read Username" in str(info.value)
