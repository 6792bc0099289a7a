"""The parse bound and the values no store can take (R6, R7), and the byte budget (R3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pocketci_tui.forges import github
from pocketci_tui.intake.budget import BodyHold, BudgetLimits, ByteBudget

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_body_of_too_many_values_is_refused_before_decoding() -> None:
    count = github.MAX_JSON_VALUES + 10
    body = b'{"a":[' + b"{}," * (count - 1) + b"{}]}"
    with pytest.raises(github.PayloadError, match="more than 1000000 values"):
        github.parse_payload(body)


def test_a_large_body_of_few_values_is_fine() -> None:
    body = json.dumps({"a": "x" * (github.MAX_JSON_VALUES * 3)}).encode()
    assert len(github.parse_payload(body)["a"]) == github.MAX_JSON_VALUES * 3


def test_count_values_never_undercounts() -> None:
    body = b'{"a": [1, 2, {"b": [3]}], "c": "x,y"}'
    assert github.count_values(body) >= 7


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"n": ' + b"9" * 5000 + b"}", "number too long"),
        (b'{"t": "\\ud800"}', "unpaired surrogate"),
        (b'{"t": ["ok", {"\\udc00": 1}]}', "unpaired surrogate"),
        (b'{"t": "\\ud83d"}', "unpaired surrogate"),
    ],
)
def test_values_no_store_can_take_are_payload_errors(body: bytes, message: str) -> None:
    with pytest.raises(github.PayloadError, match=message):
        github.parse_payload(body)


def test_paired_surrogates_and_plain_text_pass() -> None:
    data = github.parse_payload(b'{"t": "\\ud83d\\ude80 \\u00e9", "u": "\\\\ud800"}')
    assert data == {"t": "\U0001f680 é", "u": "\\ud800"}


@pytest.mark.parametrize("number", [10**30, 0, -5, 2**53 + 1, True])
def test_implausible_pull_request_numbers_are_not_taken(number: Any) -> None:
    payload = {"number": number, "pull_request": {"number": number}}
    event = github.normalize("pull_request", "d", payload, b"{}", received_at=NOW)
    assert event.pr_number is None
    assert event.ref == ""


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "\udfff", "\U0001f680"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.dictionaries(
        st.sampled_from(["ref", "after", "before", "action", "number", "pull_request", "release"]),
        _json,
        max_size=6,
    ),
    event=st.sampled_from(["push", "pull_request", "release", "ping", "issues"]),
)
def test_parsed_payloads_normalize_into_storable_events(
    payload: dict[str, Any], event: str
) -> None:
    """Whatever a body holds: a PayloadError, or an event whose text is UTF-8 and whose pull
    request number fits SQLite."""
    body = json.dumps(payload).encode()
    try:
        data = github.parse_payload(body)
    except github.PayloadError:
        return
    normalized = github.normalize(event, "d", data, body, received_at=NOW)
    for value in (normalized.ref, normalized.sha, normalized.filter, normalized.title):
        value.encode("utf-8")
    assert normalized.pr_number is None or 0 < normalized.pr_number < 2**63


def test_budget_keeps_room_for_small_bodies() -> None:
    budget = ByteBudget(BudgetLimits(total=100, small_reserve=40, small_body=10))
    large = BodyHold(budget)
    assert large.grow(60)
    assert not BodyHold(budget).grow(20)  # a second large body does not fit in 60
    small = [BodyHold(budget) for _ in range(4)]
    assert all(hold.grow(10) for hold in small)  # small ones use the reserve
    assert not BodyHold(budget).grow(5)
    large.release()
    assert budget.held == 40
    assert budget.peak == 100
    for hold in small:
        hold.release()
        hold.release()  # idempotent
    assert budget.held == 0


def test_a_growing_body_becomes_large() -> None:
    budget = ByteBudget(BudgetLimits(total=100, small_reserve=40, small_body=10))
    hold = BodyHold(budget)
    assert hold.grow(8)
    assert hold.grow(60)
    assert not hold.grow(61)  # past total - reserve once it is large
    assert hold.taken == 60
