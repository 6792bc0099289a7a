"""What every connection to the store shares: how it is opened, and the store's error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

DEFAULT_BUSY_TIMEOUT = 5.0
"""Seconds a write waits for another process's lock before giving up (then intake answers 503)."""


class StoreError(Exception):
    """Something could not be stored durably (disk full, locked, read-only, closed)."""


def connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open a connection in autocommit mode with rows by name, the busy timeout and foreign keys."""
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=busy_timeout, check_same_thread=True
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def connect_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open a connection that can only read: no schema change, no write, no recovery.

    Used by the commands that run beside the data folder's owner (``events``, ``check``,
    ``fire``). The database must exist.
    """
    conn = sqlite3.connect(
        f"{path.absolute().as_uri()}?mode=ro",
        uri=True,
        isolation_level=None,
        timeout=busy_timeout,
        check_same_thread=True,
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    conn.execute("PRAGMA query_only = ON")
    return conn
