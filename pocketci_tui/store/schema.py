"""The database schema, as numbered migrations applied in order (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: events (one row per delivery, unique on vendor + delivery id), their raw bodies in a
    # table of their own so listing never reads payloads, and runs.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        vendor TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        event_name TEXT NOT NULL DEFAULT '',
        event_type TEXT NOT NULL,
        filter TEXT NOT NULL DEFAULT '',
        repository TEXT NOT NULL DEFAULT '',
        ref TEXT NOT NULL DEFAULT '',
        sha TEXT NOT NULL DEFAULT '',
        base_ref TEXT NOT NULL DEFAULT '',
        base_sha TEXT NOT NULL DEFAULT '',
        pr_number INTEGER,
        is_fork INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        title TEXT NOT NULL DEFAULT '',
        hook_id TEXT NOT NULL DEFAULT '',
        hook_ids TEXT NOT NULL DEFAULT '',
        received_at TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        redeliveries INTEGER NOT NULL DEFAULT 0,
        last_redelivery_at TEXT,
        approved_sha TEXT NOT NULL DEFAULT '',
        UNIQUE (vendor, delivery_id)
    );
    CREATE INDEX events_status ON events (status, id);
    CREATE INDEX events_received ON events (received_at);
    CREATE TABLE event_bodies (
        event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
        body BLOB NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        function TEXT NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        args TEXT NOT NULL DEFAULT '[]',
        reason TEXT NOT NULL DEFAULT '',
        exit_code INTEGER,
        created_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        log_path TEXT NOT NULL DEFAULT '',
        parent_id TEXT
    );
    CREATE INDEX runs_event ON runs (event_id);
    CREATE INDEX runs_state ON runs (state);
    """,
    # 2: the signature of every stored body (HMAC-SHA256 under the webhook secret, so equal
    # bodies have equal digests), kept for the retention days even when its event goes, so a
    # captured body sent again under a new delivery id is recognised as a replay.
    """
    CREATE TABLE body_digests (
        vendor TEXT NOT NULL,
        digest TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (vendor, digest)
    ) WITHOUT ROWID;
    CREATE INDEX body_digests_received ON body_digests (received_at);
    """,
    # 3: the process group of every running `dagger call`, with its leader's start time and the
    # boot id, so a restart after a crash can stop the calls the dead process left running
    # (and never a process that merely reuses the pid). A row lives while its run runs.
    """
    CREATE TABLE run_calls (
        run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
        pgid INTEGER NOT NULL,
        start_ticks INTEGER NOT NULL,
        boot_id TEXT NOT NULL DEFAULT '',
        recorded_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 4: what an event's last full dispatch matched against: the module's content key (the
    # catalog cache's key), the secret names its spec fed and the changed files (JSON, NULL when
    # unknown), so the fire picker can match the stored event against the cached catalog again
    # without checking anything out or running anything.
    """
    CREATE TABLE match_inputs (
        event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
        module_key TEXT NOT NULL,
        secret_names TEXT NOT NULL DEFAULT '[]',
        changes TEXT
    );
    """,
    # 5: the commit status outbox (store/outbox.py): every status the forge should get, queued
    # in the transaction that stores the run state it reports, then marked as it is delivered.
    # Retention removes rows with their events, except those not delivered yet.
    """
    CREATE TABLE status_outbox (
        id INTEGER PRIMARY KEY,
        event_id INTEGER NOT NULL,
        run_id TEXT,
        vendor TEXT NOT NULL,
        repository TEXT NOT NULL,
        sha TEXT NOT NULL,
        context TEXT NOT NULL,
        state TEXT NOT NULL,
        description TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT
    );
    CREATE INDEX status_outbox_due ON status_outbox (status, id);
    CREATE INDEX status_outbox_key ON status_outbox (vendor, repository, sha, context, id);
    CREATE INDEX status_outbox_run ON status_outbox (run_id, id);
    CREATE INDEX status_outbox_event ON status_outbox (event_id);
    """,
    # 6: the context a person reads an event by (forges/context.py): who sent it, how many
    # commits a push carries and the event's page on the forge. Events stored before have none.
    """
    ALTER TABLE events ADD COLUMN author TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN commits INTEGER;
    ALTER TABLE events ADD COLUMN url TEXT NOT NULL DEFAULT '';
    """,
    # 7: polling. The change each push or tag event stands for (a hash of forge, repository,
    # ref, before and after) and whether polling reported it, so the same change reported by a
    # webhook and by polling is one event; it goes with its event. Each polled repository's
    # refs as last seen, and when it was first polled (the first poll records the refs without
    # firing anything). An index on events by ref finds the last event of a branch, which a
    # polled change may repeat.
    """
    CREATE TABLE event_changes (
        vendor TEXT NOT NULL,
        change TEXT NOT NULL,
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        polled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (vendor, change)
    ) WITHOUT ROWID;
    CREATE INDEX event_changes_event ON event_changes (event_id);
    CREATE TABLE polled_repos (
        vendor TEXT NOT NULL,
        repository TEXT NOT NULL,
        first_polled_at TEXT NOT NULL,
        last_polled_at TEXT NOT NULL,
        PRIMARY KEY (vendor, repository)
    ) WITHOUT ROWID;
    CREATE TABLE polled_refs (
        vendor TEXT NOT NULL,
        repository TEXT NOT NULL,
        ref TEXT NOT NULL,
        sha TEXT NOT NULL,
        PRIMARY KEY (vendor, repository, ref)
    ) WITHOUT ROWID;
    CREATE INDEX events_ref ON events (vendor, ref, repository COLLATE NOCASE, id);
    """,
    # 8: the Dagger engine each run ran on (dagger.engines), by name; empty for runs stored
    # before, or that never reached an engine.
    """
    ALTER TABLE runs ADD COLUMN engine TEXT NOT NULL DEFAULT '';
    """,
    # 9: the pocketci.yaml spec each run belongs to, for a repository listing several specs
    # (empty for the single-spec form, and for runs stored before).
    """
    ALTER TABLE runs ADD COLUMN spec TEXT NOT NULL DEFAULT '';
    """,
)
"""Migration N (1-based) brings the schema from version N-1 to N."""


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations in one transaction.

    Args:
        conn: A connection in autocommit mode (``isolation_level=None``).

    Returns:
        The schema version after migrating.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"the database has schema version {version}, newer than this program knows "
                f"({len(MIGRATIONS)}); upgrade pocketci-tui"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
