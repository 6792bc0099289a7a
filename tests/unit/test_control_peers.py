"""Who is at the other end of a control connection, and how refusals are logged: the kernel's
word on the peer, our uid or root admitted, and a flood of strangers logged at a bounded rate;
and an output tail answer bounded in size."""

from __future__ import annotations

import logging
import os
import socket

import pytest

from pocketci_tui.contract import OutputTail
from pocketci_tui.control.answers import bounded_tail
from pocketci_tui.control.peers import Peer, RefusalLog, allowed, peer_of


def test_the_peer_is_the_kernels_word_on_the_other_end() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_of(left) == Peer(os.getpid(), os.getuid(), os.getgid())
    assert peer_of(object()) is None
    assert peer_of(None) is None


def test_only_our_uid_and_root_are_admitted() -> None:
    other = os.getuid() + 12345
    assert allowed(Peer(1, os.getuid(), 1))
    assert allowed(Peer(1, 0, 0))
    assert not allowed(Peer(1, other, other))
    assert not allowed(None)


def test_refusals_are_counted_and_logged_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    refusals = RefusalLog(interval=10.0, clock=lambda: now[0])
    stranger = Peer(42, os.getuid() + 1, 0)
    with caplog.at_level(logging.WARNING, logger="pocketci_tui.control"):
        for _ in range(1000):
            refusals.note(stranger)
            now[0] += 0.001
        now[0] += 10.0
        refusals.note(None)
    assert refusals.count == 1001
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"refused a control connection from pid 42 uid {os.getuid() + 1}: only user id "
        f"{os.getuid()} (and root) may attach",
        f"refused a control connection from an unknown peer: only user id {os.getuid()} "
        "(and root) may attach (999 more refused since the last line)",
    ]


def test_an_output_tail_answer_keeps_its_newest_lines_within_the_bound() -> None:
    tail = OutputTail(("a" * 10, "b" * 10, "c" * 10), 40)
    assert bounded_tail(tail, 1000) is tail
    assert bounded_tail(tail, 22) == OutputTail(("b" * 10, "c" * 10), 40)
    assert bounded_tail(tail, 21) == OutputTail(("c" * 10,), 40)
    assert bounded_tail(tail, 5) == OutputTail((), 40)


def test_an_output_tail_answer_cut_to_the_bound_keeps_when_each_line_came() -> None:
    tail = OutputTail(("a" * 10, "b" * 10, "c" * 10), 40, (1.0, 2.0, 3.0))
    assert bounded_tail(tail, 22) == OutputTail(("b" * 10, "c" * 10), 40, (2.0, 3.0))
    assert bounded_tail(tail, 5) == OutputTail((), 40, ())
