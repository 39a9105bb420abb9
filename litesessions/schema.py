"""DDL and forward-only migrations of litesessions' own tables.

litesessions keeps its tables under the ``litesessions_`` prefix and records
its schema version in a table of its own (not ``PRAGMA user_version``, which
belongs to whoever owns the file), so an application may keep its sessions in
a database file it already uses.

Each migration runs in the same ``BEGIN IMMEDIATE`` transaction as the update
of the version record, so a file is always at exactly one version.  A file
whose version is newer than :data:`SCHEMA_VERSION` is refused with
:class:`~litesessions.errors.SchemaVersionError` before anything is written.
"""

from __future__ import annotations

from typing import Final

import apsw

from litesessions.errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TABLE", "migrate", "read_version"]

TABLE: Final = "litesessions_sessions"
META_TABLE: Final = "litesessions_meta"

# Index i holds the statements that take a file from version i to i + 1.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        f"CREATE TABLE {META_TABLE} (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID",
        # Timestamps are integer microseconds since the epoch (UTC), so the
        # expiry index is a plain range scan and round trips are exact.
        f"""CREATE TABLE {TABLE} (
            id INTEGER PRIMARY KEY,
            partition_key TEXT NOT NULL,
            key TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            session_id TEXT,
            created INTEGER NOT NULL,
            renewed INTEGER NOT NULL,
            expires INTEGER,
            ticket TEXT NOT NULL
        )""",
        f"CREATE UNIQUE INDEX {TABLE}_key ON {TABLE} (partition_key, key)",
        # Duende's unique index on (ApplicationName, SessionId): only for sessions that have one.
        f"CREATE UNIQUE INDEX {TABLE}_session_id ON {TABLE} (partition_key, session_id) WHERE session_id IS NOT NULL",
        f"CREATE INDEX {TABLE}_subject ON {TABLE} (partition_key, subject_id, session_id)",
        f"CREATE INDEX {TABLE}_expires ON {TABLE} (expires) WHERE expires IS NOT NULL",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)

INDEXES: Final = (f"{TABLE}_key", f"{TABLE}_session_id", f"{TABLE}_subject", f"{TABLE}_expires")

_HAS_META = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?"
_READ_VERSION = f"SELECT value FROM {META_TABLE} WHERE name = 'schema_version'"
_WRITE_VERSION = f"INSERT OR REPLACE INTO {META_TABLE} (name, value) VALUES ('schema_version', ?)"


def read_version(connection: apsw.Connection) -> int:
    """Return the litesessions schema version of the file (0: no litesessions tables yet)."""
    if connection.execute(_HAS_META, (META_TABLE,)).fetchone() is None:
        return 0
    row = connection.execute(_READ_VERSION).fetchone()
    return 0 if row is None else int(row[0])


def check_version(connection: apsw.Connection, path: str) -> int:
    """Return the file's schema version; ``SchemaVersionError`` if it is newer than this code."""
    version = read_version(connection)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has litesessions schema version {version}, but this litesessions only knows "
            f"versions up to {SCHEMA_VERSION}; upgrade litesessions (the file was left untouched)"
        )
    return version


def migrate(connection: apsw.Connection, path: str) -> None:
    """Bring the file to :data:`SCHEMA_VERSION`, one migration per transaction.

    Each step starts with ``BEGIN IMMEDIATE`` and re-reads the version, so two
    processes opening a new file at once apply each migration exactly once.
    """
    while True:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = check_version(connection, path)
            if version == SCHEMA_VERSION:
                connection.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                connection.execute(statement)
            connection.execute(_WRITE_VERSION, (version + 1,))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
