"""The commit status outbox: rows queued with run states, coalescing, and what a run says."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from pocketci_tui.config import ConfigError, RepoConfig, Settings, parse_settings
from pocketci_tui.model import Event, EventStatus, Run, RunState, utcnow
from pocketci_tui.statuses.routing import SettingsRouter
from pocketci_tui.store import Store
from pocketci_tui.store.outbox import run_status, short_duration

SHA = "a" * 40


def _event(is_fork: bool = False) -> Event:
    return Event(
        vendor="github",
        event_type="push",
        filter="main",
        repository="acme/api",
        ref="refs/heads/main",
        sha=SHA,
        base_ref="",
        base_sha="",
        pr_number=None,
        is_fork=is_fork,
        delivery_id=f"d-{is_fork}",
        received_at=utcnow(),
        body=b"{}",
    )


def _settings(**repo: object) -> Settings:
    return Settings(repos=(RepoConfig(name="acme/api", token="gh", **repo),))  # type: ignore[arg-type]


async def _stored(store: Store, is_fork: bool = False) -> int:
    stored, _ = await store.record_event(_event(is_fork), EventStatus.RECEIVED)
    assert stored.event.id is not None
    return stored.event.id


def _run(event_id: int, state: RunState = RunState.QUEUED, **kw: object) -> Run:
    return Run(id="r1", event_id=event_id, function="test", state=state, **kw)  # type: ignore[arg-type]


async def test_each_state_change_queues_one_status_and_repeats_none(store: Store) -> None:
    store.status_router = SettingsRouter(_settings())
    event_id = await _stored(store)
    run = _run(event_id)
    await store.add_runs([run, replace(run, id="r2", function="lint", state=RunState.SKIPPED)])
    running = replace(run, state=RunState.RUNNING, started_at=utcnow())
    await store.update_run(running)
    await store.update_run(running)  # the same state again: nothing new
    assert running.started_at is not None
    done = replace(
        running,
        state=RunState.PASSED,
        exit_code=0,
        finished_at=running.started_at + timedelta(seconds=72),
    )
    await store.update_run(done)
    await store.update_run(running)  # a stale "running" after the end: nothing
    rows = await store.all_statuses()
    assert [(r.run_id, r.context, r.state, r.description) for r in rows] == [
        ("r1", "pocketci/test", "pending", "queued"),
        ("r1", "pocketci/test", "running", "running"),
        ("r1", "pocketci/test", "success", "passed in 1m 12s"),
    ]
    assert all((r.vendor, r.repository, r.sha) == ("github", "acme/api", SHA) for r in rows)


async def test_statuses_off_or_no_token_queue_nothing(store: Store) -> None:
    event_id = await _stored(store)
    store.status_router = SettingsRouter(_settings(statuses=False))
    await store.add_runs([_run(event_id)])
    store.status_router = SettingsRouter(Settings(repos=(RepoConfig(name="acme/api"),)))
    await store.add_runs([replace(_run(event_id), id="r9")])
    assert await store.all_statuses() == []


async def test_claim_takes_the_newest_and_supersedes_the_rest(store: Store) -> None:
    store.status_router = SettingsRouter(_settings())
    event_id = await _stored(store)
    run = _run(event_id)
    await store.add_runs([run])
    await store.update_run(replace(run, state=RunState.RUNNING))
    await store.update_run(replace(run, state=RunState.FAILED, exit_code=3))
    [due] = {r.key for r in await store.due_statuses()}
    claimed = await store.claim_status(due)
    assert claimed is not None
    assert (claimed.state, claimed.description) == ("failure", "failed: exit 3")
    rows = await store.all_statuses()
    assert [r.status for r in rows] == ["superseded", "superseded", "sending"]
    await store.mark_status(claimed.id, "sent")
    assert await store.due_statuses() == []
    assert await store.claim_status(due) is None
    assert (await store.run_statuses(["r1"]))["r1"].status == "sent"


async def test_a_run_left_running_at_a_crash_reports_an_error(store: Store) -> None:
    store.status_router = SettingsRouter(_settings())
    event_id = await _stored(store)
    await store.add_runs([_run(event_id, RunState.RUNNING)])
    await store.mark_interrupted()
    rows = await store.all_statuses()
    assert [(r.state, r.description) for r in rows][-1] == (
        "error",
        "interrupted: pocketci-tui stopped while this ran",
    )


async def test_a_fork_waiting_for_approval_gets_one_pending_then_approved(store: Store) -> None:
    store.status_router = SettingsRouter(_settings())
    event_id = await _stored(store, is_fork=True)
    why = "fork pull request: waiting for approval of aaaaaaaaaaaa"
    await store.set_event_status(event_id, EventStatus.WAITING, why)
    await store.set_event_status(event_id, EventStatus.WAITING, why)
    await store.set_event_status(event_id, EventStatus.DISPATCHING, "")
    rows = await store.all_statuses()
    assert [(r.context, r.state, r.description, r.run_id) for r in rows] == [
        ("pocketci/approval", "pending", "waiting for approval in pocketci-tui", None),
        ("pocketci/approval", "success", "approved in pocketci-tui", None),
    ]


async def test_an_event_held_for_the_secret_store_gets_no_approval_status(store: Store) -> None:
    store.status_router = SettingsRouter(_settings())
    event_id = await _stored(store, is_fork=True)
    await store.set_event_status(event_id, EventStatus.WAITING, "held: the store did not answer")
    assert await store.all_statuses() == []


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (Run("r", 1, "f", RunState.FAILED, reason="timed out after 60m: last line"),
         ("failure", "timed out after 60m")),
        (Run("r", 1, "f", RunState.FAILED, reason="x" * 500),
         ("failure", "failed: " + "x" * 131 + "…")),
        (Run("r", 1, "f", RunState.CANCELLED), ("canceled", "cancelled")),
        (Run("r", 1, "f", RunState.SKIPPED), None),
    ],
)  # fmt: skip
def test_descriptions_say_what_happened_in_140_characters(
    run: Run, expected: tuple[str, str] | None
) -> None:
    assert run_status(run) == expected
    if expected is not None:
        assert len(expected[1]) <= 140


def test_durations_read_like_a_person_wrote_them() -> None:
    assert [short_duration(s) for s in (4, 60, 72, 3600, 7500)] == [
        "4s",
        "1m",
        "1m 12s",
        "1h",
        "2h 5m",
    ]


def test_config_reads_the_status_keys_and_derives_api_urls() -> None:
    settings = parse_settings(
        {
            "status-context": "ci/{event}/{function}",
            "forges": {
                "gitea": {"url": "https://git.example.org"},
                "gitlab": {"url": "https://gl.example.org", "api-url": "https://api.gl.test/v4"},
            },
            "repos": [
                {"name": "acme/api", "token": "gh", "status-token": "gh-status"},
                {"name": "acme/web", "statuses": False, "token": "gh"},
                {"name": "acme/docs"},
                {"name": "o/r", "vendor": "gitea", "statuses": True},
            ],
        }
    )
    api, web, docs, gitea = settings.repos
    assert (api.status_token_name, api.posts_statuses) == ("gh-status", True)
    assert (web.status_token_name, web.posts_statuses) == ("gh", False)
    assert docs.posts_statuses is False  # no token, nothing said: off
    assert gitea.posts_statuses is True  # asked for: on, and the missing token is reported
    assert settings.api_url("github") == "https://api.github.com"
    assert settings.api_url("gitea") == "https://git.example.org/api/v1"
    assert settings.api_url("gitlab") == "https://api.gl.test/v4"
    assert settings.api_url("forgejo") == ""
    enterprise = parse_settings({"forges": {"github": {"url": "https://ghe.example.com"}}})
    assert enterprise.api_url("github") == "https://ghe.example.com/api/v3"
    assert SettingsRouter(settings).context("github", "acme/api", "push", "lint") == "ci/push/lint"
    assert "gh-status" in settings.own_secrets()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"status-context": "ci/{sha}"}, "status-context"),
        ({"repos": [{"name": "a/b", "statuses": "yes"}]}, "expected true or false"),
        ({"repos": [{"name": "a/b", "status-token": "has space"}]}, "secret NAME"),
    ],
)
def test_config_refuses_bad_status_keys(data: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_settings(data)


class _BrokenRouter:
    """A router that fails, as a bug or a full disk would fail the status's insert."""

    def context(
        self, vendor: str, repository: str, event_type: str, function: str, spec: str = ""
    ) -> str | None:
        raise RuntimeError("cannot queue the status")


async def test_a_run_state_and_its_status_are_stored_together_or_not_at_all(
    store: Store,
) -> None:
    event_id = await _stored(store)
    run = _run(event_id)
    await store.add_runs([run])
    store.status_router = _BrokenRouter()
    with pytest.raises(RuntimeError):
        await store.update_run(replace(run, state=RunState.RUNNING))
    stored = await store.get_run("r1")
    assert stored is not None
    assert stored.state is RunState.QUEUED  # the state change went with the failed status
    store.status_router = SettingsRouter(_settings())
    await store.update_run(replace(run, state=RunState.RUNNING))
    assert [r.state for r in await store.all_statuses()] == ["running"]
