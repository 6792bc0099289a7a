"""A realistic day on a home server, for the README's screenshots: pushes, pull requests, a
release, a fork waiting for approval, one failing test and a build running. (The snapshot tests
keep their own history, which includes hostile input on purpose.)"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pocketci_tui.model import Event, EventStatus, RunState
from pocketci_tui.paths import AppPaths
from pocketci_tui.store import Store

from .fakes import ScriptedEngine, at, push, run


def pull_request(
    delivery: str,
    repository: str,
    number: int,
    action: str,
    sha: str,
    minutes_ago: float,
    title: str,
    *,
    fork: bool = False,
) -> Event:
    """A pull request event with fixed fields."""
    body = json.dumps({"action": action, "number": number}).encode()
    return Event(
        vendor="github",
        event_type="pull_request",
        filter=action,
        repository=repository,
        ref=f"refs/pull/{number}/head",
        sha=sha,
        base_ref="main",
        base_sha="1" * 40,
        pr_number=number,
        is_fork=fork,
        delivery_id=delivery,
        received_at=at(minutes_ago),
        body=body,
        title=title,
        event_name="pull_request",
    )


def tag(delivery: str, repository: str, name: str, sha: str, minutes_ago: float) -> Event:
    """A pushed tag."""
    body = json.dumps({"ref": f"refs/tags/{name}", "after": sha}).encode()
    return Event(
        vendor="github",
        event_type="tag",
        filter=name,
        repository=repository,
        ref=f"refs/tags/{name}",
        sha=sha,
        base_ref="",
        base_sha="0" * 40,
        pr_number=None,
        is_fork=False,
        delivery_id=delivery,
        received_at=at(minutes_ago),
        body=body,
        title=f"Release {name}",
        event_name="push",
    )


API_TEST_LOG = [
    "dagger call -m ci test-on-github-pull-request --src . --event-trigger event.json",
    "▶ connect 0.2s",
    "▶ load module: ci 0.9s",
    '▶ Ci.testOnGithubPullRequest(filter: "synchronize", src: Directory): Void',
    "  go test ./...",
    "  ok   acme/api/internal/store   0.398s",
    "  --- FAIL: TestRefreshToken (0.02s)",
    "      auth_test.go:88: token expired 2s early: got 3598s, want 3600s",
    "  FAIL acme/api/internal/auth    0.117s",
    "  ok   acme/api/internal/http    0.241s",
    "Error: exit status 1",
]

WEB_BUILD_LOG = [
    "dagger call -m ci on-github-push-main --src . --event-trigger event.json",
    "▶ connect 0.2s",
    "▶ load module: ci 1.2s",
    "▶ Ci.onGithubPushMain(src: Directory, eventTrigger: File): Void",
    "  ▶ container.from(node:22-alpine) 2.1s",
    "  ▶ withExec npm ci 14.8s",
    "    added 612 packages in 14s",
    "  ▶ withExec npm run lint 3.4s",
    "  ▶ withExec npm run build",
    "    vite v6.0.3 building for production...",
    "    transforming (412) src/components/Settings.tsx",
    "    ✓ 1204 modules transformed.",
    "    dist/index.html                 0.48 kB",
    "    dist/assets/index-4f1c2a9b.css 18.92 kB",
    "    rendering chunks (3)...",
    "    computing gzip size (1)...",
]


DAY_CONTEXT: dict[str, dict[str, Any]] = {
    "tag": {"author": "mara", "url": "https://github.com/acme/api/releases/tag/v2.3.0"},
    "morning": {
        "author": "jonas",
        "commits": 3,
        "url": "https://github.com/acme/web/compare/4e1a9c07...8b21d4c0",
    },
    "docs": {
        "author": "mara",
        "commits": 1,
        "url": "https://github.com/acme/docs/commit/e04a77b2",
    },
    "failing": {"author": "priya", "url": "https://github.com/acme/api/pull/128"},
    "fork": {"author": "octo-contrib", "url": "https://github.com/acme/web/pull/131"},
    "running": {
        "author": "jonas",
        "commits": 2,
        "url": "https://github.com/acme/web/compare/8b21d4c0...f19b2c6d",
    },
}
"""Who sent each event of the day, its commits and its page (the context the Events pane and
the details view show)."""


async def seed_day(store: Store, paths: AppPaths, engine: ScriptedEngine) -> dict[str, int]:
    """Store the day's events and runs; return event ids by name."""
    ids: dict[str, int] = {}

    async def add(name: str, event: Event, status: EventStatus, detail: str = "") -> int:
        event = replace(event, **DAY_CONTEXT[name])
        stored, _ = await store.record_event(event, status, detail)
        assert stored.event.id is not None
        ids[name] = stored.event.id
        return stored.event.id

    tagged = await add(
        "tag", tag("d-10", "acme/api", "v2.3.0", "3c9e5f1a" + "0" * 32, 260), EventStatus.DISPATCHED
    )
    morning = await add(
        "morning",
        push("d-11", "acme/web", "main", "8b21d4c0" + "0" * 32, 190, "Bump vite to 6.0"),
        EventStatus.DISPATCHED,
    )
    await add(
        "docs",
        push("d-12", "acme/docs", "main", "e04a77b2" + "0" * 32, 150, "Explain the retry policy"),
        EventStatus.SKIPPED,
        "paths: no changed file matches **/*.go, go.*",
    )
    failing = await add(
        "failing",
        pull_request(
            "d-13",
            "acme/api",
            128,
            "synchronize",
            "5d1f0e93" + "0" * 32,
            64,
            "Refresh tokens early",
        ),
        EventStatus.DISPATCHED,
    )
    await add(
        "fork",
        pull_request(
            "d-14",
            "acme/web",
            131,
            "opened",
            "a7c3b9e4" + "0" * 32,
            31,
            "Fix typo in settings page",
            fork=True,
        ),
        EventStatus.WAITING,
        "pull request from a fork: approve to build",
    )
    running = await add(
        "running",
        push("d-15", "acme/web", "main", "f19b2c6d" + "0" * 32, 1.5, "Dark mode for settings"),
        EventStatus.DISPATCHED,
    )
    runs = [
        run(
            "day-tag-release",
            tagged,
            "releaseOnGithubTag",
            RunState.PASSED,
            started=259,
            seconds=94,
        ),
        run(
            "day-morning-build",
            morning,
            "onGithubPushMain",
            RunState.PASSED,
            started=189,
            seconds=48,
        ),
        run(
            "day-pr-lint",
            failing,
            "lintOnGithubPullRequest",
            RunState.PASSED,
            started=63,
            seconds=21,
        ),
        run(
            "day-pr-test",
            failing,
            "testOnGithubPullRequest",
            RunState.FAILED,
            started=63,
            seconds=38,
            reason="FAIL acme/api/internal/auth 0.117s\nError: exit status 1",
            exit_code=1,
        ),
        run(
            "day-pr-deploy",
            failing,
            "deployOnGithubPushMain",
            RunState.SKIPPED,
            reason="tier 1 matched first",
        ),
        run("day-web-build", running, "onGithubPushMain", RunState.RUNNING, started=1.2),
        run("day-web-e2e", running, "e2eOnGithubPushMain", RunState.QUEUED),
    ]
    await store.add_runs(runs)
    for event_id, name, lines in (
        (failing, "day-pr-test", API_TEST_LOG),
        (failing, "day-pr-lint", ["golangci-lint run ./...", "0 issues."]),
        (morning, "day-morning-build", [*WEB_BUILD_LOG[:12], "build ok"]),
        (tagged, "day-tag-release", ["goreleaser release --clean", "release v2.3.0 published"]),
    ):
        path = paths.logs_dir / f"{event_id}" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine.tails["day-web-build"] = WEB_BUILD_LOG
    engine.queued, engine.running = 1, 1
    return ids
