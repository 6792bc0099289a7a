"""The control protocol's codec: every value the API carries survives a JSON round trip equal,
and a value of the wrong shape is refused by name, never built half-way."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pocketci_tui.config import (
    DaggerSettings,
    EngineSettings,
    ForgeSettings,
    RepoConfig,
    Settings,
)
from pocketci_tui.contract import (
    CountsChanged,
    EngineLoadInfo,
    HeadSecrets,
    LinkChanged,
    OutputTail,
    ProblemsChanged,
    SecretChanged,
    SettingsChanged,
    StatusDelivery,
)
from pocketci_tui.control.wire import (
    NOTICE_TYPES,
    PROTOCOL_VERSION,
    WireError,
    decode,
    decode_notice,
    encode,
    encode_notice,
)
from pocketci_tui.intake.rejections import Rejection, RejectionSummary
from pocketci_tui.model import (
    Decision,
    Event,
    EventMatched,
    EventSettled,
    EventStatus,
    EventStored,
    EventUpdated,
    FunctionCall,
    MatchResult,
    RepoSummary,
    Run,
    RunOutput,
    RunState,
    RunUpdated,
    StoredEvent,
)
from pocketci_tui.problems import Problem

WHEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

EVENT = Event(
    vendor="gitea",
    event_type="pull_request",
    filter="opened",
    repository="acme/api",
    ref="refs/pull/7/head",
    sha="a" * 40,
    base_ref="main",
    base_sha="b" * 40,
    pr_number=7,
    is_fork=True,
    delivery_id="d-1",
    received_at=WHEN,
    # Raw bytes as signed, not all of it valid UTF-8: they must come back byte for byte.
    body=b'{"x": "caf\xc3\xa9"}\xff\x00',
    deleted=False,
    title="Add \u202e things",
    hook_id="42",
    event_name="pull_request",
    id=12,
    author="octocat",
    commits=None,
    url="https://git.example/acme/api/pulls/7",
)
STORED = StoredEvent(EVENT, EventStatus.WAITING, "waiting for approval", 2, "c" * 40)
RUN = Run(
    id="r1",
    event_id=12,
    function="build",
    state=RunState.FAILED,
    attempt=3,
    args=(("filter", "main"), ("secret", "ghToken")),
    reason="exit 1",
    exit_code=1,
    created_at=WHEN,
    started_at=WHEN + timedelta(seconds=1),
    finished_at=WHEN.astimezone(timezone(timedelta(hours=2))),
    log_path="12/r1.log",
    parent_id="r0",
    engine="big",
    spec="api",
)
MATCH = MatchResult(
    tier=2,
    decisions=(
        Decision(
            "onPush",
            2,
            True,
            "push to main",
            FunctionCall("onPush", (("filter", "main"),), ("ghToken",)),
        ),
        Decision("lint", None, False, "not an event function"),
    ),
)
PROBLEM = Problem("dagger", "dagger not found", "no dagger CLI on PATH", "install it", True)
REJECTION = Rejection(WHEN, 401, "bad signature", "127.0.0.1", "push", "d-2", "sha256 differs")
SETTINGS = Settings(
    host="0.0.0.0",
    port=9090,
    webhook_secret="hook",
    concurrency=4,
    timeout=12.5,
    repos=(
        RepoConfig(
            "acme/*",
            vendor="gitlab",
            clone_url="https://gitlab.example/acme/x.git",
            token="gl-token",
            secrets=("a", "b"),
            env=("HOME",),
            webhook_secret="gl-hook",
            statuses=False,
            status_token="st",
            poll=30.0,
        ),
        RepoConfig("acme/api"),
    ),
    forges={"gitea": ForgeSettings("https://git.example", "", "gitea-hook")},
    fork_pull_requests="no-secrets",
    dagger=DaggerSettings(
        cli="/usr/bin/dagger",
        runner_host="tcp://x:1",
        cloud_token="dc",
        engines=(EngineSettings("big", "tcp://big:1", 8),),
    ),
    retention_events=10,
    retention_days=1.5,
    secrets_backend="file",
    keymap={"run-rerun": "R"},
    status_context="ci/{spec}/{function}",
    public_url="https://ci.example",
    source=Path("/etc/pocketci/config.yaml"),
)

VALUES: list[tuple[Any, Any]] = [
    (StoredEvent, STORED),
    (Run, RUN),
    (MatchResult, MATCH),
    (
        RepoSummary,
        RepoSummary("acme/api", "gitea", STORED, "waiting", "passed", WHEN, 11),
    ),
    (Problem, PROBLEM),
    (Rejection, REJECTION),
    (RejectionSummary, RejectionSummary(9, REJECTION)),
    (HeadSecrets, HeadSecrets(("a: entry 'a'",), ("b: not granted",), "")),
    (CountsChanged, CountsChanged(1, 2, (EngineLoadInfo("big", 2, 8, True),))),
    (ProblemsChanged, ProblemsChanged((PROBLEM,))),
    (StatusDelivery, StatusDelivery("r1", 12, "failed", "422: no such sha")),
    (OutputTail, OutputTail(("one", "", "three \x1b[1m"), 3)),
    (OutputTail, OutputTail((), None)),
    (Settings, SETTINGS),
    (Settings, Settings()),
    (list[StoredEvent], [STORED, StoredEvent(EVENT, EventStatus.RECEIVED)]),
    (StoredEvent | None, None),
    (MatchResult | None, MATCH),
    (dict[str, StatusDelivery], {"r1": StatusDelivery("r1", 12, "sent")}),
    (list[str], ["r1", "r2"]),
    (tuple[list[Rejection], int], ([REJECTION], 9)),
]

NOTICES: list[Any] = [
    EventStored(STORED, duplicate=True),
    EventUpdated(12, EventStatus.ERROR, "clone failed"),
    EventMatched(12, MATCH),
    RunUpdated(RUN),
    RunOutput("r1", ("a", "b"), 40),
    RunOutput("r1", ("a",)),
    EventSettled(12, "failed", (RUN,)),
    CountsChanged(0, 1),
    ProblemsChanged(()),
    StatusDelivery("r1", 12, "queued"),
    LinkChanged(False, "pocketci-tui serve (pid 9)", "reconnecting in 4s", resync=True),
    SecretChanged("webhook-secret"),
    SettingsChanged(SETTINGS),
    RejectionSummary(1, REJECTION),
]


def round_trip(tp: Any, value: Any) -> Any:
    return decode(tp, json.loads(json.dumps(encode(value))))


@pytest.mark.parametrize(("tp", "value"), VALUES, ids=lambda v: getattr(v, "__name__", None))
def test_every_value_of_the_api_comes_back_equal(tp: Any, value: Any) -> None:
    back = round_trip(tp, value)
    assert back == value
    assert type(back) is type(value)


def test_what_equality_does_not_see_comes_back_too() -> None:
    back = round_trip(StoredEvent, STORED)
    assert back.event.body == EVENT.body  # the body is left out of the repr, not of the wire
    assert back.status is EventStatus.WAITING
    run = round_trip(Run, RUN)
    assert run.state is RunState.FAILED
    assert run.finished_at == RUN.finished_at
    assert run.finished_at.utcoffset() == timedelta(hours=2)
    settings = round_trip(Settings, SETTINGS)
    assert settings.source == Path("/etc/pocketci/config.yaml")
    assert isinstance(settings.repos, tuple)
    assert settings.forges["gitea"].webhook_secret == "gitea-hook"
    assert settings.engine_pool() == SETTINGS.engine_pool()


def test_the_encoding_is_plain_readable_json() -> None:
    data = encode(RUN)
    assert data["state"] == "failed"
    assert data["created_at"] == "2026-03-01T12:30:15.123456+00:00"
    assert data["args"] == [["filter", "main"], ["secret", "ghToken"]]
    assert encode(CountsChanged(1, 2, (EngineLoadInfo("big", 2, 8, True),)))["engines"] == [
        {"name": "big", "busy": 2, "capacity": 8, "up": True}
    ]
    assert encode(SETTINGS)["source"] == "/etc/pocketci/config.yaml"
    assert PROTOCOL_VERSION == 1


def test_every_notice_type_is_tested_and_comes_back_equal() -> None:
    assert {type(n).__name__ for n in NOTICES} == set(NOTICE_TYPES)
    for notice in NOTICES:
        data = json.loads(json.dumps(encode_notice(notice)))
        assert data["type"] == type(notice).__name__
        assert decode_notice(data) == notice


@pytest.mark.parametrize(
    ("tp", "data", "where"),
    [
        (Run, {"id": "r", "event_id": 1, "function": "f"}, "lacks its field 'state'"),
        (Run, {"id": "r", "event_id": "1", "function": "f", "state": "queued"}, "$.event_id"),
        (Run, {"id": "r", "event_id": True, "function": "f", "state": "queued"}, "$.event_id"),
        (Run, {"id": "r", "event_id": 1, "function": "f", "state": "lost"}, "$.state"),
        (Run, ["r", 1, "f", "queued"], "expected an object"),
        (
            Run,
            {"id": "r", "event_id": 1, "function": "f", "state": "queued", "args": [["a"]]},
            "$.args[0]",
        ),
        (
            Run,
            {"id": "r", "event_id": 1, "function": "f", "state": "queued", "created_at": "x"},
            "ISO 8601",
        ),
        (Settings, {"fork_pull_requests": "always"}, "not one of"),
        (Settings, {"port": 1.5}, "$.port"),
        (list[str], "r1", "expected an array"),
        (dict[str, int], {"a": "1"}, "$.a"),
        (StoredEvent, {"event": {**encode(EVENT), "body": "%%%"}, "status": "received"}, "base64"),
        (OutputTail, {"lines": [1], "end": None}, "$.lines[0]"),
        (OutputTail, {"lines": ["a", "b", None, "c"], "end": None}, "$.lines[2]"),
        (RunOutput, {"run_id": "r", "lines": ["a", "b"], "times": [1.5, True]}, "$.times[1]"),
        (RunOutput, {"run_id": "r", "lines": ["a"], "times": ["1.5"]}, "$.times[0]"),
        (int | None, "3", "expected a whole number"),
    ],
)
def test_a_wrong_shape_is_refused_saying_where(tp: Any, data: Any, where: str) -> None:
    with pytest.raises(WireError, match=where.replace("$", r"\$").replace("[", r"\[")):
        decode(tp, data)


def test_output_times_that_are_whole_numbers_come_back_as_numbers() -> None:
    """Times are read in one pass when all are JSON floats; a whole number among them (a
    moment on the second) is read as a float, as one alone would be."""
    data = {"run_id": "r", "lines": ["a", "b", "c"], "end": 3, "times": [1.5, 2, 2.5]}
    notice = decode(RunOutput, data)
    assert notice == RunOutput("r", ("a", "b", "c"), 3, (1.5, 2.0, 2.5))
    assert [type(t) for t in notice.times] == [float, float, float]


def test_unknown_fields_are_ignored_and_defaults_fill_missing_ones() -> None:
    data = {"id": "r", "event_id": 1, "function": "f", "state": "queued", "new_field": [1, 2]}
    assert decode(Run, data) == Run("r", 1, "f", RunState.QUEUED)


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Settings"},
        {"type": "object"},
        {"type": "__class__"},
        {"type": 3},
        {"queued": 1, "running": 1},
        [],
        None,
    ],
)
def test_a_notice_type_outside_the_table_is_never_built(data: Any) -> None:
    with pytest.raises(WireError):
        decode_notice(data)


def test_what_the_protocol_does_not_carry_is_refused_on_the_way_out() -> None:
    with pytest.raises(WireError, match="set"):
        encode({"a": {1, 2}})
    with pytest.raises(WireError, match="not a notice"):
        encode_notice(Run("r", 1, "f", RunState.QUEUED))  # type: ignore[arg-type]
