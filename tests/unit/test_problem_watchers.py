"""Problems tell their watchers of each change, so whoever shows them never asks on a timer."""

from __future__ import annotations

from pocketci_tui.problems import Problem, Problems


def test_watchers_are_told_of_each_change_and_only_of_changes() -> None:
    problems = Problems()
    seen: list[list[str]] = []
    stop = problems.watch(lambda: seen.append([p.short for p in problems]))

    missing = Problem(key="dagger", short="dagger not found", detail="x")
    problems.raise_problem(missing)
    problems.raise_problem(missing)  # the same again: nothing changed
    problems.raise_problem(Problem(key="dagger", short="dagger failed", detail="y"))
    problems.clear("git")  # not there: nothing changed
    problems.clear("dagger")
    stop()
    problems.raise_problem(missing)

    assert seen == [["dagger not found"], ["dagger failed"], []]
