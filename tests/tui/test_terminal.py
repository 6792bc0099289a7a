"""The terminal writer: writes never block the caller, even when nothing reads the terminal."""

from __future__ import annotations

import os
import threading
import time

from pocketci_tui.tui.terminal import TerminalWriter


def _wait(check: object, timeout: float = 10.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_writes_never_block_while_nothing_reads_then_one_repaint_when_it_drains() -> None:
    """A pipe stands for a tty whose reader stalled: once its buffer is full, the writer thread
    blocks in write. Frame after frame must still return at once, memory stays bounded (frames
    are dropped), and when the reader drains the pipe, the writer says so once (the app then
    repaints the whole screen) and writes again in order."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, True)
    drained = threading.Event()
    with os.fdopen(write_fd, "w", encoding="utf-8") as pipe:
        writer = TerminalWriter(pipe, drained.set, max_pending=100_000)
        writer.start()
        frame = "x" * 10_000
        slowest = 0.0
        for _ in range(1_000):  # 10 MB: far more than the pipe (64 KiB) and the bound hold
            began = time.monotonic()
            writer.write(frame)
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.001)  # frames come at a pace; the thread writes until the pipe is full
        assert slowest < 0.5
        assert writer.stalls >= 1
        assert writer.dropped > 900
        assert not drained.is_set()

        # The reader comes back: what the thread held is written, then "drained".
        received = 0

        def read_all() -> None:
            nonlocal received
            while chunk := os.read(read_fd, 1 << 16):
                received += len(chunk)

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        _wait(drained.is_set)
        writer.write("after the stall\n")
        assert writer.stop()
    reader.join(10)
    os.close(read_fd)
    assert received <= 100_000 + 10_000 + 64 * 1024 + len("after the stall\n")


def test_everything_is_written_in_order_while_the_terminal_reads() -> None:
    read_fd, write_fd = os.pipe()
    chunks: list[bytes] = []

    def read_all() -> None:
        while chunk := os.read(read_fd, 1 << 16):
            chunks.append(chunk)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    with os.fdopen(write_fd, "w", encoding="utf-8") as pipe:
        writer = TerminalWriter(pipe, lambda: None)
        writer.start()
        for n in range(5_000):
            writer.write(f"{n}\n")
        assert writer.stop()
    reader.join(10)
    os.close(read_fd)
    assert b"".join(chunks).decode().splitlines() == [str(n) for n in range(5_000)]
    assert writer.dropped == 0
