"""Polling's pure parts (issue 17): the ``poll`` setting, reading listings, telling changes,
and the events they become, read by each forge's own normalizer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pocketci_tui.config import ConfigError, parse_settings
from pocketci_tui.forges import forge_for
from pocketci_tui.model import ZERO_SHA, EventStatus
from pocketci_tui.polling import RefChange, delivery_id, diff_refs, parse_listing
from pocketci_tui.polling.changes import MAX_REFS, ListingError, polled_change
from pocketci_tui.store import change_key
from pocketci_tui.store.changes import event_change

A, B, C = "a" * 40, "b" * 40, "c" * 40
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "seconds"), [("30s", 30.0), ("5m", 300.0), (10, 10.0)])
def test_poll_takes_a_duration(raw: object, seconds: float) -> None:
    settings = parse_settings({"repos": [{"name": "acme/api", "poll": raw}]})
    assert settings.repos[0].poll == seconds


def test_poll_is_off_unless_set() -> None:
    assert parse_settings({"repos": [{"name": "acme/api"}]}).repos[0].poll == 0


@pytest.mark.parametrize("raw", ["5s", "9.9s", "500ms", 1])
def test_poll_refuses_intervals_under_the_minimum(raw: object) -> None:
    too_often = r"repos\[0\]\.poll: .* too often; poll at most every 10s"
    with pytest.raises(ConfigError, match=too_often):
        parse_settings({"repos": [{"name": "acme/api", "poll": raw}]})


@pytest.mark.parametrize("raw", ["soon", True, "-5m", "0s"])
def test_poll_refuses_what_is_not_a_duration(raw: object) -> None:
    with pytest.raises(ConfigError, match=r"repos\[0\]\.poll"):
        parse_settings({"repos": [{"name": "acme/api", "poll": raw}]})


def test_a_pattern_cannot_be_polled() -> None:
    with pytest.raises(ConfigError, match="cannot be polled"):
        parse_settings({"repos": [{"name": "acme/*", "poll": "60s"}]})


def test_listing_keeps_branches_and_tags_and_drops_the_rest() -> None:
    text = "\n".join(
        [
            f"{A}\trefs/heads/main",
            f"{B}\trefs/tags/v1",
            f"{C}\trefs/tags/v1^{{}}",
            f"{C}\trefs/pull/1/head",
            f"{C}\tHEAD",
            f"{C}\trefs/heads/--upload-pack=x",
            f"{C}\trefs/heads/a..b",
            "nothex\trefs/heads/bad",
            f"{ZERO_SHA}\trefs/heads/zero",
            "garbage",
            f"{'d' * 64}\trefs/heads/sha256",
        ]
    )
    assert parse_listing(text) == {
        "refs/heads/main": A,
        "refs/tags/v1": B,
        "refs/heads/sha256": "d" * 64,
    }


def test_a_listing_with_too_many_refs_is_refused() -> None:
    text = "\n".join(f"{A}\trefs/heads/b{i}" for i in range(MAX_REFS + 1))
    with pytest.raises(ListingError, match="more than"):
        parse_listing(text)


def test_changes_are_new_moved_and_deleted_refs() -> None:
    known = {"refs/heads/main": A, "refs/heads/old": B, "refs/tags/v1": C}
    seen = {"refs/heads/main": B, "refs/heads/new": C, "refs/tags/v1": C, "refs/tags/v2": A}
    assert diff_refs(known, seen) == [
        RefChange("refs/heads/main", A, B),
        RefChange("refs/heads/new", ZERO_SHA, C),
        RefChange("refs/heads/old", B, ZERO_SHA),
        RefChange("refs/tags/v2", ZERO_SHA, A),
    ]
    assert diff_refs(seen, seen) == []


def test_the_delivery_id_is_the_change() -> None:
    change = RefChange("refs/heads/main", A, B)
    first = delivery_id("github", "Acme/API", change)
    assert first == delivery_id("github", "acme/api", change)
    assert first.startswith("poll-")
    assert first != delivery_id("github", "acme/api", RefChange("refs/heads/main", C, B))
    assert first != delivery_id("gitea", "acme/api", change)


@pytest.mark.parametrize("vendor", ["github", "gitea", "forgejo", "gitlab"])
def test_a_polled_push_is_the_event_a_webhook_gives(vendor: str) -> None:
    polled = polled_change(forge_for(vendor), "acme/api", RefChange("refs/heads/main", A, B), WHEN)
    event = polled.event
    assert polled.status is EventStatus.RECEIVED
    assert (event.vendor, event.repository) == (vendor, "acme/api")
    assert (event.event_type, event.filter, event.ref) == ("push", "main", "refs/heads/main")
    assert (event.base_sha, event.sha) == (A, B)
    assert not event.deleted
    assert event.payload()["pocketci_polled"] is True
    # The change a webhook of the same push records is the same.
    assert event_change(event) == change_key(vendor, "acme/api", "refs/heads/main", A, B)


@pytest.mark.parametrize("vendor", ["github", "gitea", "forgejo", "gitlab"])
def test_a_polled_tag_and_a_deletion_read_as_the_forge_sends_them(vendor: str) -> None:
    forge = forge_for(vendor)
    tag = polled_change(forge, "acme/api", RefChange("refs/tags/v1.2", ZERO_SHA, C), WHEN)
    assert (tag.event.event_type, tag.event.filter, tag.event.sha) == ("tag", "v1.2", C)
    assert tag.status is EventStatus.RECEIVED
    gone = polled_change(forge, "acme/api", RefChange("refs/heads/topic", A, ZERO_SHA), WHEN)
    assert gone.event.deleted
    assert gone.status is EventStatus.IGNORED
    assert gone.detail == "branch deleted"
