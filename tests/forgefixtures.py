"""The real Gitea and GitLab webhook bodies of ``tests/fixtures/go-scm`` and their oracle.

Each body comes with the header its forge sends it under (the bodies do not say it; the table of
``tests/fixtures/go-scm/README.md``) and, for most, a ``.golden`` file: how another project (go-scm)
reads the same body. :func:`gitea_oracle` and :func:`gitlab_oracle` turn a golden reading into
the Event fields it speaks about, so the tests compare our reading with an independent one,
field by field, where the two models have a field in common.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve()


def fixtures_dir() -> Path:
    """The ``go-scm`` bodies kept with the tests (``tests/fixtures/go-scm``)."""
    return Path(__file__).resolve().parent / "fixtures" / "go-scm"


def gitea_event(name: str) -> str:
    """The ``X-Gitea-Event`` a Gitea body file arrives with."""
    if name == "push.json":
        return "push"
    if name.startswith(("branch_create", "tag_create")):
        return "create"
    if name.startswith(("branch_delete", "tag_delete")):
        return "delete"
    if name.startswith(("issue_comment_", "pull_request_comment_")):
        return "issue_comment"
    if name.startswith("issues_"):
        return "issues"
    if name.startswith("pull_request_"):
        return "pull_request"
    raise KeyError(name)


def gitlab_event(name: str) -> str:
    """The ``X-Gitlab-Event`` a GitLab body file arrives with."""
    if "comment" in name:
        return "Note Hook"
    if name.startswith(("push", "branch_")):
        return "Push Hook"
    if name.startswith("tag_"):
        return "Tag Push Hook"
    if name.startswith(("pull_request_", "merge_request_")):
        return "Merge Request Hook"
    if name.startswith("issue_"):
        return "Issue Hook"
    if name.startswith("pipeline_"):
        return "Pipeline Hook"
    raise KeyError(name)


def bodies(forge: str) -> list[str]:
    """The body files of ``gitea`` or ``gitlab``, sorted."""
    return sorted(p.name for p in (fixtures_dir() / forge).glob("*.json"))


def body(forge: str, name: str) -> bytes:
    """A body exactly as the forge sent it."""
    return (fixtures_dir() / forge / name).read_bytes()


def golden(forge: str, name: str) -> dict[str, Any] | None:
    """go-scm's reading of a body, or None when it has none (absent or empty file)."""
    path = fixtures_dir() / forge / (name + ".golden")
    if not path.is_file():
        return None
    text = path.read_text().strip()
    return json.loads(text) if text else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# go-scm names a few actions in its own words; these are the forge's words for the same ones.
_GITEA_ACTIONS = {"updated": "edited"}
_GITLAB_ACTIONS = {
    "opened": "open",
    "closed": "close",
    "reopened": "reopen",
    "merged": "merge",
    "review_ready": "update",
}


def _repository(reading: dict[str, Any]) -> str:
    repo = reading.get("Repo") or reading.get("repo") or {}
    return f"{repo['Namespace']}/{repo['Name']}" if repo.get("Name") else ""


def gitea_oracle(name: str, reading: dict[str, Any]) -> dict[str, Any]:
    """The Event fields go-scm's reading of a Gitea body speaks about, in our terms."""
    expected: dict[str, Any] = {"repository": _repository(reading)}
    pr = reading.get("PullRequest")
    ref = reading.get("Ref")
    if pr and "Comment" not in reading:
        expected.update(
            pr_number=pr["Number"],
            sha=pr["Sha"],
            ref=pr["Ref"],
            base_ref=pr["Target"],
            is_fork=pr["Fork"] != expected["repository"],
            title=_first_line(pr["Title"]),
            filter=_GITEA_ACTIONS.get(reading["Action"], reading["Action"]),
        )
    elif "Commit" in reading:
        expected.update(
            ref=ref,
            base_sha=reading["Before"],
            sha=reading["Commit"]["Sha"],
            title=_first_line(reading["Commit"]["Message"]),
        )
    elif isinstance(ref, dict):
        prefix = "refs/tags/" if name.startswith("tag") else "refs/heads/"
        expected.update(ref=prefix + ref["Name"], deleted=reading["Action"] == "deleted")
        if ref["Sha"]:
            expected["sha"] = ref["Sha"]
    elif "Action" in reading:
        expected["filter"] = reading["Action"]
    return expected


def gitlab_oracle(name: str, reading: dict[str, Any]) -> dict[str, Any]:
    """The Event fields go-scm's reading of a GitLab body speaks about, in our terms.

    go-scm's ``Fork`` of a merge request is built from the source project's namespace and
    name, not from the project ids, and its ``Repo`` of a pipeline has no name: neither is
    compared.
    """
    expected: dict[str, Any] = {}
    repository = _repository(reading)
    if repository:
        expected["repository"] = repository
    pr = reading.get("PullRequest")
    ref = reading.get("Ref")
    if pr and "Action" in reading and "Comment" not in reading:
        expected.update(
            pr_number=pr["Number"],
            sha=pr["Sha"],
            ref=pr["Ref"],
            base_ref=pr["Target"],
            title=_first_line(pr["Title"]),
            filter=_GITLAB_ACTIONS.get(reading["Action"], reading["Action"]),
        )
    elif "Commit" in reading and "After" in reading:
        expected.update(ref=ref, base_sha=reading["Before"], sha=reading["After"])
        expected["filter"] = str(ref).removeprefix("refs/heads/").removeprefix("refs/tags/")
    elif isinstance(ref, dict):
        prefix = "refs/tags/" if name.startswith("tag") else "refs/heads/"
        expected.update(ref=prefix + ref["Name"], deleted=reading["Action"] == "deleted")
    return expected
