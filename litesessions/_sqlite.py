"""Opening and configuring connections, and the one place that maps ``apsw`` errors to ours."""

from __future__ import annotations

import os
from typing import Final

import apsw

from litesessions.errors import (
    DatabaseCorruptError,
    LitesessionsError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    StorageError,
    StoreBusyError,
    StoreClosedError,
    StoreOpenError,
)

# WAL files are truncated back to this size after a checkpoint, so a burst
# of writes does not leave a large -wal file behind for good.
JOURNAL_SIZE_LIMIT: Final = 8 * 1024 * 1024

# Checkpoint policy (see configure_checkpoints).  SQLite's default is a PASSIVE
# checkpoint whenever a commit leaves at least 1000 pages in the WAL; we keep it.
AUTOCHECKPOINT_PAGES: Final = 1000
# A PASSIVE checkpoint can only copy frames that no reader still needs, and the
# WAL only restarts from its beginning once every frame was copied: readers
# that overlap without a pause starve it, and the WAL grows without limit
# (measured: 477 MB after 20,000 small writes).  From this many pages on, the
# committing writer tries a RESTART checkpoint instead, which waits for the
# readers to move to the newest snapshot and then lets the WAL start over.
RESTART_PAGES: Final = 4000
# How long (ms) that RESTART attempt may wait for readers.  It runs inside the
# writer's call after its commit, so this bounds the extra latency; a failed
# attempt is repeated at the next commit.
RESTART_WAIT_MS: Final = 100

SYNCHRONOUS: Final = {"normal": "NORMAL", "full": "FULL"}


def translate(error: apsw.Error, path: str) -> LitesessionsError:
    """Return the litesessions error for an ``apsw`` error (the caller raises it ``from`` the original)."""
    if isinstance(error, (apsw.BusyError, apsw.LockedError)):
        return StoreBusyError(
            f"{path} stayed locked by another connection for longer than busy_timeout; retry, or raise busy_timeout"
        )
    if isinstance(error, (apsw.ConnectionClosedError, apsw.CursorClosedError)):
        return StoreClosedError("the store was closed; open a new SqliteUserSessionStore")
    if isinstance(error, apsw.NotADBError):
        return NotADatabaseError(f"{path} is not a SQLite database; check the path (the file was left untouched)")
    if isinstance(error, apsw.CorruptError):
        return DatabaseCorruptError(
            f"{path} is a damaged SQLite database; restore it from a backup or move it aside "
            "(the file was left untouched)"
        )
    if isinstance(error, apsw.ReadOnlyError):
        return ReadOnlyDatabaseError(
            f"{path} cannot be written (read-only file, directory or medium); fix its permissions"
        )
    if isinstance(error, (apsw.CantOpenError, apsw.PermissionsError)):
        return StoreOpenError(f"{path} cannot be opened ({error}); check that it is a writable file")
    return StorageError(f"SQLite error on {path}: {error}")


def prepare_path(path: object) -> str:
    """Validate ``path`` and return it absolute; create a missing file with mode 0600.

    Creating the file ourselves (rather than letting SQLite do it) sets its
    mode, and SQLite gives the ``-wal`` and ``-shm`` files the same mode.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    raw = os.fspath(path)
    if not isinstance(raw, str):
        raise TypeError("path must be a str path, not bytes")
    if raw in ("", ":memory:") or raw.startswith("file:"):
        raise StoreOpenError(f"path {raw!r} is not a file path; litesessions stores sessions in a file")
    full = os.path.abspath(raw)
    directory = os.path.dirname(full)
    if not os.path.isdir(directory):
        raise StoreOpenError(f"directory {directory} does not exist; create it first")
    if os.path.isdir(full):
        raise StoreOpenError(f"{full} is a directory; give the path of a database file")
    if not os.path.exists(full):
        try:
            os.close(os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it first
        except PermissionError as e:
            raise ReadOnlyDatabaseError(f"cannot create {full}: {e.strerror}; fix the directory's permissions") from e
    return full


def connect(path: str, busy_timeout_ms: int) -> apsw.Connection:
    """Open ``path`` read/write without creating it, with the busy timeout set."""
    connection = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    # Without a busy timeout a second writer fails at once instead of waiting.
    connection.set_busy_timeout(busy_timeout_ms)
    return connection


def check_readable(connection: apsw.Connection, path: str) -> None:
    """Read the file's schema, so a file that is not SQLite fails here, before anything is written."""
    connection.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    if connection.readonly("main"):
        raise ReadOnlyDatabaseError(f"{path} is read-only; litesessions needs to write to it")


def set_wal(connection: apsw.Connection, path: str) -> None:
    """Switch the file to write-ahead logging (persistent: recorded in the file)."""
    # A pragma that returns rows must have its cursor read (apsw runs lazily).
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchall()
    if not mode or str(mode[0][0]).lower() != "wal":
        raise StorageError(f"{path} could not be switched to WAL mode (got {mode!r})")


def configure(connection: apsw.Connection, durability: str) -> None:
    """Set the per-connection pragmas (synchronous level, WAL size limit) and the checkpoint policy."""
    connection.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}").fetchall()
    connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}").fetchall()
    configure_checkpoints(connection)


def configure_checkpoints(connection: apsw.Connection) -> None:
    """Install the WAL hook that keeps the ``-wal`` file bounded (replaces SQLite's autocheckpoint).

    After each commit that leaves ``pages`` frames in the WAL: below
    :data:`AUTOCHECKPOINT_PAGES` nothing happens; below :data:`RESTART_PAGES`
    a PASSIVE checkpoint runs (SQLite's default behaviour, it never waits);
    from :data:`RESTART_PAGES` on, a RESTART checkpoint that waits at most
    :data:`RESTART_WAIT_MS` for readers.  The connection's busy timeout is
    restored afterwards.  A checkpoint that fails (busy, I/O error) is never
    reported to the caller, whose transaction has already committed; the next
    commit tries again.
    """
    busy_rows = connection.execute("PRAGMA busy_timeout").fetchall()
    busy_ms = int(str(busy_rows[0][0])) if busy_rows else 0

    def wal_hook(conn: apsw.Connection, name: str, pages: int) -> int:
        if pages < AUTOCHECKPOINT_PAGES:
            return apsw.SQLITE_OK
        try:
            if pages < RESTART_PAGES:
                conn.wal_checkpoint(name, apsw.SQLITE_CHECKPOINT_PASSIVE)
            else:
                conn.set_busy_timeout(min(busy_ms, RESTART_WAIT_MS))
                try:
                    conn.wal_checkpoint(name, apsw.SQLITE_CHECKPOINT_RESTART)
                finally:
                    conn.set_busy_timeout(busy_ms)
        except apsw.Error:
            pass  # the commit stands; a later commit checkpoints again
        return apsw.SQLITE_OK

    connection.set_wal_hook(wal_hook)
