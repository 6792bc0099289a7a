"""What ``pocketci-tui serve`` logs about results: a line per event outcome, failures at
WARNING, and under systemd the syslog priority journald files them by (real serve process)."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import aiohttp
import pytest
from conftest import WEBHOOK_SECRET, ServeProcess, set_secret_cli, write_serve_config
from daggerstub import arg, fn
from enginekit import REPOSITORY, EngineKit
from signing import send_signed
from test_serve_e2e import _push_payload

from pocketci_tui.logging_setup import LineWriter, describe_notice, notice_level
from pocketci_tui.model import (
    EventSettled,
    EventStatus,
    EventUpdated,
    Run,
    RunState,
    RunUpdated,
)

pytestmark = pytest.mark.timeout(180)


def _functions() -> list[dict[str, object]]:
    base = [arg("src", "Directory"), arg("eventTrigger", "File")]
    return [
        fn("onGithubPushMain", *base, call={"output": ["build ok"], "exit": 0}),
        fn("testOnGithubPushMain", *base, call={"output": ["FAIL test_login"], "exit": 2}),
    ]


async def _wait_line(serve: ServeProcess, needle: str) -> str:
    try:
        async with asyncio.timeout(60):
            while True:
                for line in serve.lines:
                    if needle in line:
                        return line
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no line with {needle!r}:\n" + "\n".join(serve.lines)) from None


async def test_serve_logs_the_outcome_and_failures_at_warning_for_the_journal(
    hermetic_home: Path, tmp_path: Path
) -> None:
    kit = EngineKit(tmp_path / "fixture", functions=_functions())
    write_serve_config(
        hermetic_home,
        repos=f"[{{name: {REPOSITORY}, clone-url: '{kit.remote.path}'}}]",
        extra=f"dagger: {{cli: '{kit.bin_dir / 'dagger'}'}}\n",
    )
    set_secret_cli("webhook-secret", WEBHOOK_SECRET)
    before = kit.remote.rev("main")
    after = kit.remote.commit({"main.go": "package main // log\n"}, branch="main")
    serve = await ServeProcess.start(journal=True)
    try:
        async with aiohttp.ClientSession() as session:
            reply = await send_signed(
                session,
                serve.hook_url,
                WEBHOOK_SECRET,
                _push_payload(before, after),
                delivery="log-1",
            )
        assert reply.status == 202, reply.body
        outcome = await _wait_line(serve, "WARNING event 1 failed: ")
    finally:
        assert await serve.terminate() == 0

    # journald reads the priority from the prefix: 4 is warning, 6 is info.
    assert outcome.startswith("<4>")
    assert "onGithubPushMain passed exit=0" in outcome
    assert "testOnGithubPushMain failed exit=2" in outcome
    failed = next(
        line for line in serve.lines if "testOnGithubPushMain (event 1" in line and "failed" in line
    )
    assert failed.startswith("<4>")
    assert " WARNING run " in failed
    passed = next(
        line for line in serve.lines if "onGithubPushMain (event 1" in line and ": passed" in line
    )
    assert passed.startswith("<6>")
    assert " INFO    run " in passed
    # The plaintext secret store (what write_serve_config selects) is warned about at start.
    plaintext = next(line for line in serve.lines if "UNENCRYPTED" in line)
    assert plaintext.startswith("<4>")
    assert " WARNING " in plaintext
    listening = next(line for line in serve.lines if " listening on " in line)
    assert listening.startswith("<6>")
    assert all(line.startswith("<") for line in serve.lines if line)


def test_without_the_journal_lines_carry_the_level_word_and_no_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    stream = io.StringIO()
    out = LineWriter(stream)
    failed = Run(id="r" * 12, event_id=3, function="test", state=RunState.FAILED, exit_code=1)
    settled = EventSettled(3, "failed", (failed,))
    for notice in (RunUpdated(failed), settled):
        text = describe_notice(notice)
        assert text is not None
        out.log(notice_level(notice), text)
    out.flush()
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["WARNING", "WARNING"]
    assert lines[1].endswith("WARNING event 3 failed: test failed exit=1")
    assert not any(line.startswith("<") for line in lines)


def test_levels_of_notices() -> None:
    def run(state: RunState) -> RunUpdated:
        return RunUpdated(Run(id="x", event_id=1, function="f", state=state))

    assert notice_level(run(RunState.FAILED)) == logging.WARNING
    assert notice_level(run(RunState.INTERRUPTED)) == logging.WARNING
    assert notice_level(run(RunState.PASSED)) == logging.INFO
    assert notice_level(run(RunState.CANCELLED)) == logging.INFO  # the user's own doing
    assert notice_level(EventSettled(1, "passed")) == logging.INFO
    assert notice_level(EventSettled(1, "interrupted")) == logging.WARNING
    assert notice_level(EventUpdated(1, EventStatus.ERROR, "checkout failed")) == logging.WARNING
    assert notice_level(EventUpdated(1, EventStatus.SKIPPED, "no function")) == logging.INFO
