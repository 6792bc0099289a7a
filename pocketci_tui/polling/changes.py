"""From two listings of a repository's refs to the events a forge's webhooks would have sent.

Pure: nothing here touches the network or the store. A listing is what ``git ls-remote``
printed (``<id>\\t<ref>`` lines) for the branches and tags; the refs a poll saw are compared
with those the previous poll saw, and each difference becomes one change: a new ref (``before``
all zeros, as forges report it), a moved one (a push or a force push: forges report both the
same way, ``before..after``) or a deleted one (``after`` all zeros).

Each change becomes the forge's own push payload, read by the forge's own :meth:`Forge.normalize`
into the same :class:`~pocketci_tui.model.Event` a webhook would give, with the same ignore
rules (a deletion is stored and shown, never run). Its delivery id is derived from the change,
so the same change is the same delivery however often it is seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pocketci_tui.forges import Forge
from pocketci_tui.gitrefs import is_commit_id, ref_problem
from pocketci_tui.model import EventStatus
from pocketci_tui.store import PolledChange, change_key

POLLED_PREFIXES = ("refs/heads/", "refs/tags/")
"""The refs polling watches: branches and tags (pull/merge request refs are left out)."""

MAX_REFS = 20_000
"""The most refs one listing may hold; a repository with more is refused (say why)."""

DELIVERY_PREFIX = "poll-"
"""How a delivery that polling made up is told apart from a forge's."""


class ListingError(ValueError):
    """A listing cannot be used (too many refs)."""


@dataclass(frozen=True, slots=True)
class RefChange:
    """One ref that differs between two polls.

    Attributes:
        ref: The full ref.
        before: Its value at the previous poll (all zeros when it is new).
        after: Its value now (all zeros when it is gone).
    """

    ref: str
    before: str
    after: str


def parse_listing(text: str) -> dict[str, str]:
    """Read ``git ls-remote`` output into ``{ref: id}`` for the branches and tags.

    Lines that are not an object id and a ref under :data:`POLLED_PREFIXES`, or that name a
    ref git would refuse in a payload (a component starting with ``-``...), are skipped:
    nothing the remote says reaches git or an event unchecked.

    Raises:
        ListingError: More than :data:`MAX_REFS` refs.
    """
    refs: dict[str, str] = {}
    for line in text.splitlines():
        value, sep, ref = line.partition("\t")
        if not sep or not ref.startswith(POLLED_PREFIXES) or ref.endswith("^{}"):
            continue
        if not is_commit_id(value) or set(value) == {"0"} or ref_problem(ref):
            continue
        refs[ref] = value
        if len(refs) > MAX_REFS:
            raise ListingError(f"the remote has more than {MAX_REFS} branches and tags")
    return refs


def _zeros(like: str) -> str:
    return "0" * len(like)


def diff_refs(known: dict[str, str], seen: dict[str, str]) -> list[RefChange]:
    """The changes between two listings, branches first, then tags, each by name."""
    changes = [
        RefChange(ref, known.get(ref, _zeros(sha)), sha)
        for ref, sha in seen.items()
        if known.get(ref) != sha
    ]
    changes += [RefChange(ref, sha, _zeros(sha)) for ref, sha in known.items() if ref not in seen]
    return sorted(changes, key=lambda c: (not c.ref.startswith("refs/heads/"), c.ref))


def delivery_id(vendor: str, repository: str, change: RefChange) -> str:
    """The delivery id of a polled change: stable, so the same change is one delivery."""
    key = change_key(vendor, repository, change.ref, change.before, change.after)
    return DELIVERY_PREFIX + key[:32]


def push_payload(vendor: str, repository: str, change: RefChange) -> tuple[str, dict[str, Any]]:
    """The event name and push payload the forge would send for a change.

    Only what a listing of refs tells: no commits, no pusher. ``pocketci_polled`` says where
    it came from, for anyone reading the event trigger file.

    Returns:
        The forge's event header value and the payload.
    """
    created = set(change.before) == {"0"}
    deleted = set(change.after) == {"0"}
    common: dict[str, Any] = {
        "ref": change.ref,
        "before": change.before,
        "after": change.after,
        "commits": [],
        "pocketci_polled": True,
    }
    if vendor == "gitlab":
        tag = change.ref.startswith("refs/tags/")
        kind = "tag_push" if tag else "push"
        payload = {
            "object_kind": kind,
            "event_name": kind,
            **common,
            "checkout_sha": None if deleted else change.after,
            "total_commits_count": 0,
            "project": {"path_with_namespace": repository},
        }
        return ("Tag Push Hook" if tag else "Push Hook"), payload
    payload = {
        **common,
        "created": created,
        "deleted": deleted,
        "head_commit": None,
        "repository": {"full_name": repository, "name": repository.rsplit("/", 1)[-1]},
    }
    return "push", payload


def polled_change(
    forge: Forge, repository: str, change: RefChange, received_at: datetime
) -> PolledChange:
    """The event a webhook would have given for a change, with the status intake would store.

    Args:
        forge: The repository's forge.
        repository: Its full name, as configured.
        change: The change.
        received_at: When the poll saw it.
    """
    event_name, payload = push_payload(forge.vendor, repository, change)
    body = json.dumps(payload, separators=(",", ":")).encode()
    event = forge.normalize(
        event_name,
        delivery_id(forge.vendor, repository, change),
        payload,
        body,
        received_at=received_at,
        headers={},
    )
    reason = forge.hook_reason(event) or forge.ignore_reason(event)
    if reason:
        return PolledChange(event, EventStatus.IGNORED, reason)
    return PolledChange(event, EventStatus.RECEIVED)
