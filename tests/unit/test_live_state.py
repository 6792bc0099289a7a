"""The engine's live state and dispatch queue, through their public seams: the tails a run leaves
behind, the positions the UI continues from, the problems with one owner, the order of requests."""

from __future__ import annotations

from pocketci_tui.engine.dispatch import DispatchQueue, DispatchRequest, LiveState
from pocketci_tui.engine.dispatch.live import (
    RECENT_BYTES,
    RECENT_RUNS,
    TAIL_BYTES,
    TAIL_LINES,
    held,
)
from pocketci_tui.model import Run, RunState, utcnow
from pocketci_tui.problems import Problem


def run(run_id: str, event_id: int = 1, state: RunState = RunState.QUEUED) -> Run:
    return Run(id=run_id, event_id=event_id, function="build", state=state, created_at=utcnow())


def test_a_live_tail_keeps_its_last_lines_and_counts_every_one() -> None:
    live = LiveState()
    entry = live.add(run("r1"))
    end = entry.add_output([f"line {i}" for i in range(TAIL_LINES + 5)])

    assert end == TAIL_LINES + 5
    tail = live.tail("r1")
    assert len(tail) == TAIL_LINES
    assert tail[0] == "line 5"
    assert tail[-1] == f"line {TAIL_LINES + 4}"
    assert live.tail_end("r1") == TAIL_LINES + 5


def test_an_ended_run_keeps_its_tail_until_newer_ones_push_it_out() -> None:
    live = LiveState()
    first = live.add(run("first"))
    first.add_output(["one", "two"])
    live.ended(first)

    assert live.get("first") is None
    assert live.tail("first") == ["one", "two"]
    assert live.tail_end("first") == 2

    for i in range(RECENT_RUNS):
        other = live.add(run(f"r{i}"))
        other.add_output([f"out {i}"])
        live.ended(other)

    assert live.tail("first") == []
    assert live.tail_end("first") is None
    assert live.tail("r0") == ["out 0"]
    assert live.tail_end(f"r{RECENT_RUNS - 1}") == 1


def test_counts_and_the_runs_of_one_event() -> None:
    live = LiveState()
    live.add(run("a", event_id=1))
    live.add(run("b", event_id=1, state=RunState.RUNNING))
    live.add(run("c", event_id=2, state=RunState.RUNNING))

    assert live.counts() == (1, 2)
    assert {entry.run.id for entry in live.of_event(1)} == {"a", "b"}
    assert live.tail_end("unknown") is None


def test_a_problem_is_replaced_by_key_and_cleared_by_key() -> None:
    live = LiveState()
    live.raise_problem(Problem(key="dagger", short="dagger not found", detail="first"))
    live.raise_problem(Problem(key="cloud-token", short="cloud token missing", detail="x"))
    live.raise_problem(Problem(key="dagger", short="dagger failed", detail="second"))

    assert [(p.key, p.detail) for p in live.problems()] == [
        ("dagger", "second"),
        ("cloud-token", "x"),
    ]
    live.clear_problems("dagger", "git")
    assert [p.key for p in live.problems()] == ["cloud-token"]


async def test_the_queue_hands_requests_out_in_the_order_they_came() -> None:
    queue = DispatchQueue()
    rerun = DispatchRequest(7, frozenset({"build"}), "parent")
    queue.put(DispatchRequest(5))
    queue.put(rerun)

    assert len(queue) == 2
    assert await queue.get() == DispatchRequest(5, None, None)
    assert await queue.get() is rerun
    assert len(queue) == 0


def test_watchers_are_told_of_each_change_of_the_counts_or_problems() -> None:
    live = LiveState()
    told: list[tuple[tuple[int, int], list[str]]] = []

    def note() -> None:
        told.append((live.counts(), [p.key for p in live.problems()]))

    stop = live.watch(note)
    entry = live.add(run("a"))
    live.raise_problem(Problem(key="dagger", short="dagger not found", detail="x"))
    live.clear_problems("cloud-token")  # nothing to clear: nothing changed, nothing told
    live.clear_problems("dagger")
    live.ended(entry)
    stop()
    live.add(run("b"))

    assert told == [((1, 0), []), ((1, 0), ["dagger"]), ((1, 0), []), ((0, 0), [])]


def test_a_failing_watcher_does_not_stop_the_others_nor_the_engine() -> None:
    live = LiveState()
    told: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    live.watch(broken)
    live.watch(lambda: told.append("told"))
    live.add(run("a"))

    assert told == ["told"]
    assert live.counts() == (1, 0)


def test_a_live_tail_of_long_lines_keeps_its_newest_within_the_bytes() -> None:
    live = LiveState()
    entry = live.add(run("r1"))
    width = 64 * 1024
    count = 3 * TAIL_BYTES // width
    lines = [f"{i:05d}" + "x" * width for i in range(count)]
    for line in lines:
        end = entry.add_output([line], [float(len(line))])

    tail = live.tail("r1")
    assert end == count == live.tail_end("r1")
    assert 1 < len(tail) < count
    assert sum(held(line) for line in tail) <= TAIL_BYTES
    assert tail == lines[count - len(tail) :]
    assert len(live.tail_times("r1")) == len(tail)


def test_the_tails_of_finished_runs_stay_within_the_bytes_for_them_all() -> None:
    live = LiveState()
    line = "x" * (TAIL_BYTES // 4)
    for i in range(3 * RECENT_BYTES // TAIL_BYTES):
        entry = live.add(run(f"r{i}"))
        entry.add_output([f"{i}{line}" for _ in range(3)])
        live.ended(entry)
    newest = 3 * RECENT_BYTES // TAIL_BYTES - 1

    kept = [i for i in range(newest + 1) if live.tail(f"r{i}")]
    assert kept == list(range(newest + 1 - len(kept), newest + 1)), "the newest are kept"
    assert 1 < len(kept) <= newest
    assert sum(held(x) for i in kept for x in live.tail(f"r{i}")) <= RECENT_BYTES
    assert live.tail_end("r0") is None
    assert live.tail_end(f"r{newest}") == 3
