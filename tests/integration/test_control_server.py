"""The control socket's routes, against real services (lock, listener, SQLite, engine, git and
the stand-in dagger) over the real Unix socket: every route answers what the in-process core
answers, errors come typed, junk is a 400 and never a 500, and the socket is private."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from controlkit import frame, running
from daggerstub import arg, fn
from enginekit import EngineKit

from pocketci_tui.config import Settings
from pocketci_tui.contract import (
    CountsChanged,
    HeadSecrets,
    OutputTail,
    ProblemsChanged,
    SecretChanged,
    StatusDelivery,
)
from pocketci_tui.control.server import MAX_BODY, ROUTES
from pocketci_tui.control.wire import PROTOCOL_VERSION, decode, decode_notice, encode
from pocketci_tui.intake.rejections import Rejection
from pocketci_tui.model import (
    Event,
    EventStatus,
    MatchResult,
    RepoSummary,
    Run,
    RunState,
    StoredEvent,
)
from pocketci_tui.services import Services

BASE = (arg("src", "Directory"), arg("eventTrigger", "File"))


async def deliver(services: Services, event: Event) -> int:
    """Store an event and hand it to the engine, as the listener does."""
    assert services.store is not None
    assert services.engine is not None
    stored, duplicate = await services.store.record_event(event, EventStatus.RECEIVED)
    await services.engine.submit(stored, duplicate)
    assert stored.event.id is not None
    return stored.event.id


async def until(check: Callable[[], Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def runs_finished(services: Services, event_id: int, count: int) -> list[Run]:
    async def done() -> bool:
        runs = await services.runs(event_id)
        return len(runs) >= count and all(r.state.finished for r in runs)

    await until(done, f"{count} finished runs of event {event_id}")
    return await services.runs(event_id)


async def test_every_route_answers_what_the_core_answers(tmp_path: Path) -> None:
    kit = EngineKit(
        tmp_path,
        secrets={"webhook-secret": "w" * 32},
        functions=[fn("onGithubPushMain", *BASE, call={"output": ["hello from dagger"]})],
    )
    async with running(kit) as (services, control):
        event_id = await deliver(services, kit.push({"main.go": "2\n"}))
        [run] = await runs_finished(services, event_id, 1)
        assert run.state is RunState.PASSED

        hello = await control.get("/v1/hello")
        assert services.control is not None
        assert services.lock is not None
        assert hello == {
            "version": PROTOCOL_VERSION,
            "instance": services.control.hub.instance,
            "seq": services.control.hub.seq,
            "pid": os.getpid(),
            "mode": "serve",
            "data_dir": str(kit.paths.data_dir),
            "url": services.url,
            "started_at": services.lock.owner.started_at,
            "config_file": str(kit.paths.config_file),
        }
        assert hello["seq"] > 0  # the run's notices were numbered

        snap = await control.get("/v1/snapshot", limit="10", event=str(event_id))
        assert snap["instance"] == hello["instance"]
        assert snap["seq"] >= hello["seq"]
        assert snap["url"] == services.url
        assert decode(list[StoredEvent], snap["events"]) == await services.events_page(limit=10)
        assert decode(list[Run], snap["runs"]) == [run]
        assert decode(CountsChanged, snap["counts"]) == CountsChanged(0, 0)
        assert decode(ProblemsChanged, snap["problems"]) == ProblemsChanged(())
        assert snap["refusals"] is None
        assert decode(Settings, snap["settings"]) == services.settings

        page = await control.get("/v1/events", limit="5", text="state:passed")
        assert decode(list[StoredEvent], page) == await services.events_page(
            limit=5, text="state:passed"
        )
        assert decode(list[StoredEvent], await control.get("/v1/events", before="1")) == []
        one = decode(StoredEvent | None, await control.get(f"/v1/events/{event_id}"))
        assert one == await services.event(event_id)
        assert one is not None
        assert one.event.body
        assert await control.get("/v1/events/999") is None
        assert decode(list[Run], await control.get(f"/v1/events/{event_id}/runs")) == [run]
        preview = decode(MatchResult | None, await control.get(f"/v1/events/{event_id}/preview"))
        assert preview == await services.preview(event_id)
        assert preview is not None
        assert [c.function for c in preview.calls] == ["onGithubPushMain"]
        head = decode(HeadSecrets, await control.get(f"/v1/events/{event_id}/head-secrets"))
        assert head == await services.head_secrets(event_id)

        tail = await control.post("/v1/output-tail", {"run": encode(run), "lines": 100})
        assert decode(OutputTail, tail) == await services.output_tail(run, 100)
        assert "hello from dagger" in decode(OutputTail, tail).lines

        repos = decode(list[RepoSummary], await control.get("/v1/repositories"))
        assert repos == await services.repositories()
        deliveries = await control.post("/v1/status-deliveries", {"run_ids": [run.id]})
        assert decode(dict[str, StatusDelivery], deliveries) == await services.status_deliveries(
            [run.id]
        )
        assert decode(CountsChanged, await control.get("/v1/counts")) == CountsChanged(0, 0)
        assert await control.get("/v1/refusals") == {"recent": [], "total": 0}
        assert await control.get("/v1/webhook-secret-problem") == {"problem": ""}
        assert await control.get("/v1/queue") == []

        # Actions: fire again, re-run, cancel; each reaches the engine.
        assert await control.post(f"/v1/events/{event_id}/fire") == {"ok": True}
        await runs_finished(services, event_id, 2)
        assert await control.post(f"/v1/runs/{run.id}/rerun") == {"ok": True}
        runs = await runs_finished(services, event_id, 3)
        assert [r.attempt for r in runs] == [1, 2, 3]
        assert await control.post(f"/v1/runs/{run.id}/cancel") == {"cancelled": False}
        assert await control.post(f"/v1/events/{event_id}/cancel") == {"cancelled": 0}


async def test_a_long_run_is_cancelled_through_the_socket(tmp_path: Path) -> None:
    kit = EngineKit(
        tmp_path,
        functions=[fn("onGithubPushMain", *BASE, call={"output": ["long"], "sleep": 120})],
    )
    async with running(kit) as (services, control):
        event_id = await deliver(services, kit.push({"main.go": "2\n"}))

        async def started() -> bool:
            return any(r.state is RunState.RUNNING for r in await services.runs(event_id))

        await until(started, "the run to start")
        [run] = await services.runs(event_id)
        assert await control.get("/v1/counts") == encode(CountsChanged(0, 1))
        assert await control.post(f"/v1/runs/{run.id}/cancel") == {"cancelled": True}
        [done] = await runs_finished(services, event_id, 1)
        assert done.state is RunState.CANCELLED


async def test_a_fork_is_approved_at_the_sha_shown_and_a_stale_one_is_a_conflict(
    tmp_path: Path,
) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, control):
        event = kit.pull_request({"main.go": "fork\n"}, fork=True)
        event_id = await deliver(services, event)

        async def waiting() -> bool:
            stored = await services.event(event_id)
            return stored is not None and stored.status is EventStatus.WAITING

        await until(waiting, "the fork to wait for approval")
        status, answer = await control.call(
            "POST", f"/v1/events/{event_id}/approve", body={"sha": "f" * 40}
        )
        assert status == 409
        assert answer["error"]["kind"] == "conflict"
        assert "look at the pull request again" in answer["error"]["message"]

        assert await control.post(f"/v1/events/{event_id}/approve", {"sha": event.sha}) == {
            "ok": True
        }
        stored = await services.event(event_id)
        assert stored is not None
        assert stored.approved_sha == event.sha


async def test_the_secrets_are_the_owners_and_every_change_is_a_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit = EngineKit(tmp_path, secrets={"webhook-secret": "w" * 32})
    async with running(kit) as (_services, control):
        ws = await control.notices(0, "another start")
        resync = await frame(ws)
        assert resync["resync"] is True

        listed = await control.get("/v1/secrets")
        assert listed == {"backend": "memory", "warning": None, "names": ["webhook-secret"]}
        status, answer = await control.call(
            "PUT", "/v1/secrets/gh-token", body={"value": "ghp_" + "x" * 30}
        )
        assert (status, answer) == (200, {"ok": True})
        assert await kit.secrets.get("gh-token") == "ghp_" + "x" * 30
        with caplog.at_level(logging.INFO, logger="pocketci_tui.control"):
            assert await control.get("/v1/secrets/gh-token") == {"value": "ghp_" + "x" * 30}
        read = [r.getMessage() for r in caplog.records if "gh-token" in r.getMessage()]
        assert read == [
            f"the secret gh-token was read through the control socket by pid {os.getpid()}"
        ]
        assert "x" * 30 not in caplog.text
        assert await control.get("/v1/secrets/missing") == {"value": None}
        status, answer = await control.call("DELETE", "/v1/secrets/gh-token")
        assert (status, answer) == (200, {"ok": True})
        assert await kit.secrets.get("gh-token") is None

        told = [decode_notice((await frame(ws))["notice"]) for _ in range(2)]
        assert told == [SecretChanged("gh-token"), SecretChanged("gh-token")]
        # A change made in the owner's own process (its UI) reaches attached clients too.
        await kit.secrets.set("other", "o" * 32)
        assert decode_notice((await frame(ws))["notice"]) == SecretChanged("other")
        await ws.close()


async def test_config_reload_runs_the_owners_reloader(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, control):
        answer = await control.post("/v1/config/reload")
        assert answer == {
            "ok": False,
            "message": "this pocketci-tui does not reload its configuration on request",
        }
        calls: list[str] = []

        async def reload() -> tuple[bool, str]:
            calls.append("reload")
            return True, "reloaded config.yaml: nothing changed"

        services.reload_config = reload
        answer = await control.post("/v1/config/reload")
        assert answer == {"ok": True, "message": "reloaded config.yaml: nothing changed"}
        assert calls == ["reload"]


JUNK_BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b"3",
    b'"text"',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"run": 5, "lines": 1}',
    b'{"run": {"id": [], "event_id": 1, "function": "f", "state": "queued"}, "lines": 1}',
    b'{"run": {"id": "r", "event_id": 1, "function": "f", "state": "lost"}, "lines": 1}',
    b'{"run": {"id": "r", "event_id": 99999999999999999999999, "function": "f", '
    b'"state": "queued"}, "lines": 1}',
    b'{"lines": 1e400}',
    b'{"lines": -1, "run": null}',
    b'{"sha": 5}',
    b'{"sha": "\\u0000"}',
    b'{"run_ids": [1]}',
    b'{"run_ids": "r1"}',
    b'{"value": null}',
    b'{"value": ""}',
    b"\xff\xfe\x00",
]

JUNK_IDS = ["abc", "-1", "0", str(2**70), "1e3", "%00", "x" * 2000]


async def test_junk_is_refused_with_400_and_never_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (_, control):
        statuses: dict[tuple[str, str, str], int] = {}
        for method, route in ROUTES:
            if route == "/v1/notices":
                continue
            for junk_id in JUNK_IDS if "{" in route else ["-"]:
                path = route.replace("{id}", junk_id).replace("{name}", junk_id)
                bodies = JUNK_BODIES if method in ("POST", "PUT") else [b""]
                for body in bodies:
                    status, answer = await control.call(method, path, data=body)
                    statuses[(method, path[:40], body[:20].decode("latin-1"))] = status
                    assert status != 500, (method, path, body[:60], answer)
                    if status >= 400:
                        assert set(answer["error"]) == {"kind", "message"}
        # Query parameters are checked too.
        for params in ({"limit": "x"}, {"limit": "0"}, {"limit": "100000"}, {"before": "-5"}):
            status, answer = await control.call("GET", "/v1/events", params=params)
            assert (status, answer["error"]["kind"]) == (400, "bad_request")
        status, _ = await control.call("GET", "/v1/events", params={"text": "a\x00b"})
        assert status == 400
        status, _ = await control.call("GET", "/v1/snapshot", params={"event": "x"})
        assert status == 400
        assert "Traceback" not in caplog.text
    refused = [s for s in statuses.values() if s >= 400]
    assert len(refused) > 100


@pytest.mark.parametrize(
    ("method", "route", "body", "status", "kind"),
    [
        ("GET", "/v1/nothing", None, 404, "not_found"),
        ("GET", "/v1/notices", None, 400, "bad_request"),
        ("GET", "/v1/notices?after=x", None, 400, "bad_request"),
        ("DELETE", "/v1/events", None, 405, "not_found"),
        ("GET", "/v1/events/abc", None, 400, "bad_request"),
        ("POST", "/v1/events/999/fire", {}, 409, "conflict"),
        ("POST", "/v1/runs/nope/rerun", {}, 409, "conflict"),
        (
            "POST",
            "/v1/output-tail",
            {"run": {"id": "nope", "event_id": 1, "function": "f", "state": "queued"}, "lines": 5},
            404,
            "not_found",
        ),
        ("POST", "/v1/output-tail", {"run": {"id": "r"}, "lines": 5}, 400, "bad_request"),
        ("PUT", "/v1/secrets/bad name", {"value": "v" * 20}, 400, "secret_store"),
        ("PUT", "/v1/secrets/ok", {"value": ""}, 400, "secret_store"),
        ("PUT", "/v1/secrets/ok", {"value": 5}, 400, "bad_request"),
    ],
)
async def test_each_error_has_its_kind(
    tmp_path: Path, method: str, route: str, body: Any, status: int, kind: str
) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (_, control):
        got, answer = await control.call(method, route, body=body)
        assert (got, answer["error"]["kind"]) == (status, kind), answer
        assert answer["error"]["message"]


async def test_a_body_over_the_bound_is_refused_unread(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (_, control):
        big = json.dumps({"run_ids": ["r" * 100] * (MAX_BODY // 100)}).encode()
        assert len(big) > MAX_BODY
        status, answer = await control.call("POST", "/v1/status-deliveries", data=big)
        assert (status, answer["error"]["kind"]) == (413, "bad_request")
        # The server is still there for the next request.
        assert (await control.get("/v1/hello"))["version"] == PROTOCOL_VERSION


async def test_the_socket_is_0600_in_a_0700_folder_and_removed_at_stop(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, _):
        assert services.control is not None
        path = services.control.path
        st = path.lstat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(path.parent.lstat().st_mode) == 0o700
        assert path.parent.lstat().st_uid == os.getuid()
    assert not path.exists()


async def test_a_dead_owners_socket_is_replaced(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, _):
        assert services.control is not None
        path = services.control.path
    # A crashed owner leaves its socket file behind; nothing listens on it.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    assert path.exists()
    async with running(kit) as (services, control):
        assert (await control.get("/v1/hello"))["pid"] == os.getpid()


@pytest.mark.parametrize("fault", ["folder open to others", "a file in the way"])
async def test_a_control_socket_that_cannot_open_is_a_problem_not_a_failed_start(
    tmp_path: Path, fault: str
) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, _):
        assert services.control is not None
        path = services.control.path
    if fault == "folder open to others":
        path.parent.chmod(0o755)  # opened up by mistake: refused, and left as it is
        expected = ["open to other users (mode 0755)", f"chmod 700 {path.parent}"]
    else:
        path.write_text("not a socket")  # never removed: it is not a dead owner's socket
        expected = [f"{path} is in the way of the control socket and is not a socket"]
    services = Services(kit.settings, kit.paths, secrets=kit.secrets)
    await services.start(port=0)
    try:
        assert services.control is None
        assert services.started
        told: list[Any] = []
        services.subscribe(told.append)
        [problems] = [n for n in told if isinstance(n, ProblemsChanged)]
        [problem] = problems.problems
        assert problem.key == "control-socket"
        assert problem.warning
        for text in expected:
            assert text in problem.detail
        if fault == "folder open to others":
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
        else:
            assert path.read_text() == "not a socket"
    finally:
        await services.stop()


async def test_refusals_are_the_listeners(tmp_path: Path) -> None:
    kit = EngineKit(tmp_path)
    async with running(kit) as (services, control):
        services.rejections.note(401, "bad signature", remote="10.0.0.1")
        answer = await control.get("/v1/refusals")
        assert answer["total"] == 1
        [refused] = decode(list[Rejection], answer["recent"])
        assert (refused.status, refused.reason, refused.remote) == (
            401,
            "bad signature",
            "10.0.0.1",
        )


def test_the_route_table_is_the_designs() -> None:
    assert len(ROUTES) == len(set(ROUTES)) == 25
    assert all(route.startswith("/v1/") for _, route in ROUTES)
