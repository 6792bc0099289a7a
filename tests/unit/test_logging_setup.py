"""Headless logging: only pocketci-tui's own lines reach stdout at INFO."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pocketci_tui import logging_setup


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and the quietened loggers back as they were."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in logging_setup.QUIET_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restore_logging")
def test_third_party_info_lines_are_dropped_warnings_kept() -> None:
    out = io.StringIO()
    logging_setup.configure(out)
    logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1:1234/query")
    logging.getLogger("httpcore.http11").info("send_request_headers.started")
    logging.getLogger("gql.transport.httpx").info(">>> query")
    logging.getLogger("dagger.client").info("connecting")
    logging.getLogger("pocketci_tui.serve").info("listening on http://127.0.0.1:1")
    logging.getLogger("httpx").warning("the engine went away")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("INFO    listening on http://127.0.0.1:1")
    assert lines[1].endswith("WARNING the engine went away")


def test_safe_text_escapes_and_cuts_but_returns_plain_text_as_is() -> None:
    plain = "push acme/api main"
    assert logging_setup.safe_text(plain) is plain
    assert logging_setup.safe_text("a\x1b[31mb") == "a\\x1b[31mb"
    assert logging_setup.safe_text("x\u202ey") == "x\\u202ey"
    assert logging_setup.safe_text("abcdef", limit=4) == "abc…"
