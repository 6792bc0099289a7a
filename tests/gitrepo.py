"""Build real git repositories for tests, with git's plumbing (no work tree needed).

A :class:`BareRepo` is a bare repository (servable by :mod:`tests.githttp` or by path) in which
tests write commits directly: each commit is given as a mapping of paths to new contents (``None``
deletes, :class:`Gitlink` adds a submodule entry), on top of its parent's tree. Renames are a
deletion plus an addition; file names may hold spaces, newlines or any UTF-8.

Event factories (:func:`push_event`, :func:`pr_event`, :func:`tag_event`) build
:class:`~pocketci_tui.model.Event` values the way the forge layer would.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pocketci_tui.model import ZERO_SHA, Event

__all__ = ["BareRepo", "Gitlink", "git_env", "pr_event", "push_event", "tag_event"]


@dataclass(frozen=True)
class Gitlink:
    """A submodule entry (mode 160000) pointing at a commit id."""

    sha: str


def git_env(home: Path | None = None) -> dict[str, str]:
    """A hermetic environment for test-side git commands (no user config, fixed identity)."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home or tempfile.gettempdir()),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.invalid",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.invalid",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    return env


class BareRepo:
    """A bare repository that tests write commits into.

    Args:
        path: Where to create it (must not exist, or be an existing bare repository).
        default_branch: The branch HEAD points at.
        allow_any_sha: Serve any commit id on request (``uploadpack.allowAnySHA1InWant``),
            like GitHub serves reachable ones.
    """

    def __init__(self, path: Path, *, default_branch: str = "main", allow_any_sha: bool = True):
        self.path = Path(path)
        self._counter = 0
        if not (self.path / "HEAD").exists():
            subprocess.run(
                [
                    "git",
                    "init",
                    "--quiet",
                    "--bare",
                    f"--initial-branch={default_branch}",
                    str(path),
                ],
                env=git_env(),
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
        if allow_any_sha:
            self.git("config", "uploadpack.allowAnySHA1InWant", "true")
        self.git("config", "http.receivepack", "false")

    def git(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        """Run git in this repository and return its stdout (raises on failure)."""
        full_env = git_env()
        if env:
            full_env.update(env)
        res = subprocess.run(
            ["git", "--git-dir", str(self.path), *args],
            input=input,
            capture_output=True,
            env=full_env,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if res.returncode != 0:
            raise RuntimeError(f"git {args!r} failed: {res.stderr.decode(errors='replace')}")
        return res.stdout.decode("utf-8", "surrogateescape")

    def rev(self, rev: str) -> str:
        """Resolve a revision to an object id."""
        return self.git("rev-parse", "--verify", rev).strip()

    def has(self, ref: str) -> bool:
        """True when the ref exists."""
        try:
            self.git("rev-parse", "--verify", "--quiet", ref)
        except RuntimeError:
            return False
        return True

    def commit(
        self,
        files: Mapping[str, str | bytes | Gitlink | None],
        *,
        branch: str | None = "main",
        parents: Sequence[str] | None = None,
        message: str | None = None,
    ) -> str:
        """Write a commit and (optionally) move a branch to it.

        Args:
            files: Path -> new content (``None`` deletes the path, a :class:`Gitlink` adds a
                submodule entry). Unlisted paths keep the parent's content.
            branch: The branch (short name) to move to the commit; its tip is the default
                parent (the default branch's tip for a new branch). None leaves every branch
                alone (and the default parent is the default branch's tip).
            parents: Explicit parents (an empty list makes a root commit).
            message: The commit message.

        Returns:
            The commit id.
        """
        self._counter += 1
        if parents is None:
            # Continue the branch; a new branch starts from the default branch's tip.
            start = f"refs/heads/{branch}" if branch else "HEAD"
            if not self.has(start):
                start = "HEAD"
            parents = [self.rev(start)] if self.has(start) else []
        with tempfile.TemporaryDirectory() as tmp:
            index_env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parents:
                self.git("read-tree", parents[0], env=index_env)
            else:
                self.git("read-tree", "--empty", env=index_env)
            records = b""
            for path, content in files.items():
                raw_path = os.fsencode(path)
                if content is None:
                    records += b"0 " + b"0" * 40 + b"\t" + raw_path + b"\0"
                    continue
                if isinstance(content, Gitlink):
                    records += f"160000 commit {content.sha}\t".encode() + raw_path + b"\0"
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = self.git("hash-object", "-w", "--stdin", input=data).strip()
                records += f"100644 blob {blob}\t".encode() + raw_path + b"\0"
            if records:
                self.git("update-index", "-z", "--index-info", input=records, env=index_env)
            tree = self.git("write-tree", env=index_env).strip()
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        args += ["-m", message or f"commit {self._counter}"]
        env = {"GIT_COMMITTER_DATE": f"2026-01-01T00:00:{self._counter % 60:02d}Z"}
        sha = self.git(*args, env=env).strip()
        if branch:
            self.git("update-ref", f"refs/heads/{branch}", sha)
        return sha

    def set_ref(self, ref: str, sha: str) -> None:
        """Point a full ref at an object (creating it)."""
        self.git("update-ref", "--", ref, sha)

    def delete_ref(self, ref: str) -> None:
        """Delete a full ref."""
        self.git("update-ref", "-d", "--", ref)

    def tag(self, name: str, sha: str, *, annotated: bool = False) -> str:
        """Create a tag; return what ``refs/tags/<name>`` points at (a tag object if annotated)."""
        if annotated:
            self.git("tag", "-a", "-m", f"tag {name}", "--", name, sha)
        else:
            self.git("tag", "--", name, sha)
        return self.rev(f"refs/tags/{name}")

    def set_head(self, branch: str) -> None:
        """Make ``branch`` the default branch."""
        self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def files(self, sha: str) -> list[str]:
        """All paths in a commit's tree."""
        out = self.git("ls-tree", "-r", "-z", "--name-only", sha)
        return sorted(p for p in out.split("\0") if p)


def _event(**kw: object) -> Event:
    base: dict[str, object] = {
        "vendor": "github",
        "event_type": "push",
        "filter": "main",
        "repository": "owner/repo",
        "ref": "refs/heads/main",
        "sha": "",
        "base_ref": "",
        "base_sha": "",
        "pr_number": None,
        "is_fork": False,
        "delivery_id": "d-1",
        "received_at": datetime(2026, 1, 1, tzinfo=UTC),
        "body": b"{}",
    }
    base.update(kw)
    return Event(**base)  # type: ignore[arg-type]


def push_event(ref: str, after: str, before: str = ZERO_SHA, **kw: object) -> Event:
    """A push event as the forge layer builds it (``before`` goes to ``base_sha``)."""
    return _event(
        event_type="push",
        filter=ref.removeprefix("refs/heads/"),
        ref=ref,
        sha=after,
        base_sha=before,
        **kw,
    )


def tag_event(name: str, after: str, before: str = ZERO_SHA, **kw: object) -> Event:
    """A tag push event."""
    return _event(
        event_type="tag", filter=name, ref=f"refs/tags/{name}", sha=after, base_sha=before, **kw
    )


def pr_event(number: int, head: str, base_sha: str, base_ref: str = "main", **kw: object) -> Event:
    """A pull request event (``ref`` is ``refs/pull/<n>/head``)."""
    return _event(
        event_type="pull_request",
        filter="opened",
        ref=f"refs/pull/{number}/head",
        sha=head,
        base_ref=base_ref,
        base_sha=base_sha,
        pr_number=number,
        **kw,
    )
