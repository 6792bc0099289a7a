"""Commit ids and ref names from payloads: one set of rules for the intake and the workspace."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pocketci_tui.forges import github
from pocketci_tui.gitrefs import (
    is_commit_id,
    is_no_commit,
    ref_problem,
    sha_problem,
    validate_ref,
    validate_sha,
)
from pocketci_tui.model import Event, utcnow

HEAD = "e4d909c290d0fb1ca068ffaddf22cbd0e4d909c2"


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/main",
        "refs/heads/feature/login",
        "refs/tags/v1.2.3",
        "refs/pull/12/head",
        "refs/heads/ünïcødé",
        "refs/heads/a;b",
        "refs/heads/a|b",
        "refs/heads/$(id)",
    ],
)
def test_validate_ref_accepts(ref: str) -> None:
    validate_ref(ref)
    assert ref_problem(ref) == ""
    assert github.unsafe_ref_reason(ref) == ""


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "main",
        "refs/heads",
        "refs/heads/",
        "/refs/heads/x",
        "refs/heads//x",
        "refs/heads/a..b",
        "refs/heads/a@{1}",
        "refs/heads/a b",
        "refs/heads/a\tb",
        "refs/heads/a\nb",
        "refs/heads/a\x7fb",
        "refs/heads/a~1",
        "refs/heads/a^",
        "refs/heads/a:b",
        "refs/heads/a?",
        "refs/heads/a*",
        "refs/heads/a[b",
        "refs/heads/a\\b",
        "refs/heads/.hidden",
        "refs/heads/x/.y",
        "refs/heads/x.lock",
        "refs/heads/x.lock/y",
        "refs/heads/x.",
        "refs/heads/-x",
        "refs/heads/ok/--upload-pack=x",
        "refs/heads/" + "a" * 250,
    ],
)
def test_validate_ref_rejects(ref: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        validate_ref(ref)


def test_validate_sha() -> None:
    validate_sha("a" * 40)
    validate_sha("0123456789abcdef" * 4)
    for bad in ["", "a" * 39, "a" * 41, "A" * 40, "g" * 40, "0" * 40, "0" * 64, " " + "a" * 39]:
        with pytest.raises(ValueError):  # noqa: PT011
            validate_sha(bad)


REFUSED_BY_BOTH = [
    "refs/heads/-c",
    "refs/heads/--output=x",
    "refs/heads/a..b",
    "refs/heads/a b",
    "refs/heads/x.lock",
    "refs/heads//x",
    "refs/heads/a\x00",
    "refs/heads/@{u}",
    # Refused by the workspace, let through by the intake before the rules were one.
    "refs/heads/x.",
    "refs/heads/x/.",
    "refs/heads",
    "main",
    "refs/heads/" + "a" * 250,
]


@pytest.mark.parametrize("ref", REFUSED_BY_BOTH)
def test_the_intake_refuses_every_ref_the_workspace_refuses(ref: str) -> None:
    """An event the intake lets through is never refused later for its ref."""
    with pytest.raises(ValueError, match="ref"):
        validate_ref(ref)
    assert github.unsafe_ref_reason(ref) == ref_problem(ref) != ""


def _push(ref: str, sha: str) -> Event:
    payload = {"ref": ref, "after": sha, "repository": {"full_name": "a/b"}}
    return github.normalize("push", "d", payload, b"{}", received_at=utcnow())


def test_the_intake_ignores_what_the_workspace_would_refuse() -> None:
    assert github.ignore_reason(_push("refs/heads/main", HEAD)) == ""
    assert "ends with '.'" in github.ignore_reason(_push("refs/heads/v1.", HEAD))
    pull = github.normalize(
        "pull_request",
        "d",
        {
            "number": 7,
            "pull_request": {"number": 7, "head": {"sha": "0" * 64}, "base": {"ref": "main"}},
            "repository": {"full_name": "a/b"},
        },
        b"{}",
        received_at=utcnow(),
    )
    assert "not a commit sha" in github.ignore_reason(pull)
    assert github.ignore_reason(replace(pull, sha=HEAD)) == ""


def test_commit_id_shapes() -> None:
    assert is_commit_id(HEAD)
    assert is_commit_id("0" * 64)
    assert not is_commit_id(HEAD + "\n")
    assert not is_commit_id(HEAD.upper())
    assert is_no_commit("")
    assert is_no_commit("0" * 40)
    assert is_no_commit("0" * 64)
    assert not is_no_commit("0" * 39)
    assert not is_no_commit(HEAD)
    assert sha_problem(HEAD) == ""
    assert len(sha_problem("x" * 10_000)) < 120  # a payload value, bounded


_REF_TEXT = st.text(alphabet="ab-./@{}~^:?*[\\ \tü", min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(name=_REF_TEXT, namespace=st.sampled_from(["refs/heads/", "refs/tags/", "refs/pull/"]))
@example(name="v1.", namespace="refs/tags/")
@example(name="a/", namespace="refs/heads/")
@example(name="x.lock", namespace="refs/heads/")
def test_git_accepts_every_ref_the_intake_lets_through(name: str, namespace: str) -> None:
    """The rules are git's own (``git check-ref-format``) plus stricter ones, never looser."""
    ref = namespace + name
    if github.unsafe_ref_reason(ref):
        return
    checked = subprocess.run(
        ["git", "check-ref-format", ref],
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=Path("/"),
    )
    assert checked.returncode == 0, ref
