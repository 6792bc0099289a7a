"""Admission: what the configuration builds, decided before anything is fetched.

A stored event is refused when its repository is not configured, when it deletes a branch or
tag, when the fork policy skips it or waits for a person's approval, or when its ref or commit
is not one git could be safely asked for. Pure: the pipeline records the refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from pocketci_tui.config import RepoConfig, Settings
from pocketci_tui.engine.git import validate_ref, validate_sha
from pocketci_tui.model import EventStatus, StoredEvent, change_request_noun

COMMIT_IN_PAYLOAD = frozenset({"push", "tag", "pull_request"})
"""Event types whose payload must name the commit; the others are resolved on the remote."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event is not dispatched, as its status and detail."""

    status: EventStatus
    detail: str


def admit(stored: StoredEvent, settings: Settings) -> RepoConfig | Refusal:
    """Decide whether ``stored`` is dispatched under ``settings``.

    Returns:
        The repository's entry in the configuration, or the refusal to record (ignored,
        skipped, waiting for approval, refused).
    """
    event = stored.event
    repo = settings.repo_for(event.vendor, event.repository)
    if repo is None:
        return Refusal(EventStatus.IGNORED, f"{event.repository} is not in the config")
    if event.deleted:
        return Refusal(EventStatus.IGNORED, "deleted: nothing to build")
    fork_mode = settings.fork_pull_requests
    if event.is_fork and fork_mode == "skip":
        return Refusal(
            EventStatus.SKIPPED,
            f"fork {change_request_noun(event.vendor)}: not built (fork-pull-requests: skip)",
        )
    if event.is_fork and fork_mode == "approve" and stored.approved_sha != event.sha:
        why = f"fork {change_request_noun(event.vendor)}: waiting for approval of {event.sha[:12]}"
        if stored.approved_sha:
            why += f" (approved {stored.approved_sha[:12]}, a newer commit came)"
        return Refusal(EventStatus.WAITING, why)
    try:
        if event.ref:
            validate_ref(event.ref)
        if event.sha or event.event_type in COMMIT_IN_PAYLOAD:
            validate_sha(event.sha)
    except ValueError as exc:
        return Refusal(EventStatus.ERROR, f"refused: {exc}")
    return repo
