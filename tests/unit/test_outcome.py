"""An event's outcome: the latest attempt of each function decides, older attempts are history."""

from __future__ import annotations

from pocketci_tui.model import (
    NOTHING_RAN,
    EventStatus,
    Run,
    RunState,
    event_outcome,
    latest_attempts,
)


def run(function: str, state: RunState, attempt: int = 1, run_id: str = "") -> Run:
    return Run(
        id=run_id or f"{function}-{attempt}",
        event_id=1,
        function=function,
        state=state,
        attempt=attempt,
    )


DISPATCHED = EventStatus.DISPATCHED


def test_a_passing_rerun_replaces_the_failure() -> None:
    runs = [
        run("build", RunState.PASSED),
        run("test", RunState.FAILED),
        run("test", RunState.PASSED, attempt=2),
    ]
    assert event_outcome(DISPATCHED, runs) == "passed"
    assert [r.id for r in latest_attempts(runs)] == ["build-1", "test-2"]


def test_a_failing_rerun_of_a_passed_function_fails_the_event() -> None:
    runs = [run("build", RunState.PASSED), run("build", RunState.FAILED, attempt=2)]
    assert event_outcome(DISPATCHED, runs) == "failed"


def test_another_function_still_failing_keeps_the_event_failed() -> None:
    runs = [
        run("build", RunState.FAILED),
        run("test", RunState.FAILED),
        run("test", RunState.PASSED, attempt=2),
    ]
    assert event_outcome(DISPATCHED, runs) == "failed"


def test_a_running_or_queued_attempt_decides_before_any_failure() -> None:
    runs = [run("build", RunState.FAILED), run("test", RunState.RUNNING, attempt=2)]
    assert event_outcome(DISPATCHED, runs) == "running"
    runs = [run("build", RunState.FAILED), run("test", RunState.QUEUED, attempt=2)]
    assert event_outcome(DISPATCHED, runs) == "queued"


def test_a_refire_that_skips_a_function_drops_its_old_failure() -> None:
    runs = [
        run("build", RunState.FAILED),
        run("deploy", RunState.PASSED),
        run("build", RunState.SKIPPED, attempt=2),
        run("deploy", RunState.PASSED, attempt=2),
    ]
    assert event_outcome(DISPATCHED, runs) == "passed"


def test_cancelled_and_interrupted_latest_attempts() -> None:
    assert event_outcome(DISPATCHED, [run("a", RunState.CANCELLED)]) == "cancelled"
    runs = [run("a", RunState.PASSED), run("a", RunState.INTERRUPTED, attempt=2)]
    assert event_outcome(DISPATCHED, runs) == "interrupted"


def test_nothing_ran_and_statuses_before_dispatch() -> None:
    assert event_outcome(DISPATCHED, [run("a", RunState.SKIPPED)]) == NOTHING_RAN
    assert event_outcome(DISPATCHED, []) == NOTHING_RAN
    assert event_outcome(DISPATCHED, None) == "dispatched"  # runs not known yet
    for status in (EventStatus.RECEIVED, EventStatus.WAITING, EventStatus.ERROR):
        assert event_outcome(status, [run("a", RunState.FAILED)]) == str(status)


def test_same_attempt_twice_the_later_run_wins() -> None:
    runs = [
        run("a", RunState.FAILED, attempt=2, run_id="first"),
        run("a", RunState.PASSED, attempt=2, run_id="second"),
        run("a", RunState.FAILED, attempt=1, run_id="oldest-last"),
    ]
    assert [r.id for r in latest_attempts(runs)] == ["second"]
    assert event_outcome(DISPATCHED, runs) == "passed"
