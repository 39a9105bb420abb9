"""Opening and configuring connections, and the one place that maps ``apsw`` errors to ours."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
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

# Checkpoint policy (see Checkpointer).  SQLite's default: the committing call
# runs a PASSIVE checkpoint whenever its commit leaves at least this many pages
# in the WAL.  We keep it: with one writer at a time it copies everything, and
# the next writer starts the WAL over from its beginning.
AUTOCHECKPOINT_PAGES: Final = 1000
# A PASSIVE checkpoint can only copy frames that no reader still needs, and the
# WAL only restarts from its beginning once every frame was copied: readers
# that overlap without a pause starve it, and the WAL grows without limit
# (measured: 477 MB after 20,000 small writes).  From this many pages on, the
# committing call tries a RESTART checkpoint instead, which waits for the
# readers to move to the newest snapshot and then lets the WAL start over.
RESTART_PAGES: Final = 4000
# How long (ms) that RESTART attempt may wait (for readers, for the write lock).
# It holds the write lock meanwhile, so this bounds what it adds to a writer's
# latency.
RESTART_WAIT_MS: Final = 100
# After a RESTART that readers kept from finishing: the next try comes this many
# frames later, and waits twice as long as the last one, up to this many ms.
RESTART_RETRY_PAGES: Final = 500
RESTART_WAIT_MAX_MS: Final = 1000

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
    """Validate ``path`` and return it absolute; create a missing file with mode 0600; :func:`check_header`.

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
    if not os.access(directory, os.W_OK) and not os.path.exists(full + "-shm"):
        # WAL mode needs to create the -wal and -shm files next to the database.
        raise ReadOnlyDatabaseError(
            f"{full} cannot be used: its directory is not writable, and SQLite must create "
            f"{os.path.basename(full)}-wal and -shm in it; make the directory writable (nothing was changed)"
        )
    if not os.path.exists(full):
        try:
            os.close(os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it first
        except PermissionError as e:
            raise ReadOnlyDatabaseError(f"cannot create {full}: {e.strerror}; fix the directory's permissions") from e
    check_header(full)
    return full


def connect(path: str, busy_timeout_ms: int) -> apsw.Connection:
    """Open ``path`` read/write without creating it, with the busy timeout set."""
    connection = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    # Without a busy timeout a second writer fails at once instead of waiting.
    set_busy_wait(connection, busy_timeout_ms)
    return connection


# The longest sleep between two tries for a lock, in seconds.
BUSY_POLL_MAX_S: Final = 0.002


def set_busy_wait(connection: apsw.Connection, timeout_ms: int) -> None:
    """Make ``connection`` retry a busy lock for up to ``timeout_ms`` ms, polling at least every 2 ms.

    SQLite's own busy timeout backs off to 100 ms sleeps: a writer that waited
    a little then polls rarely, and another thread that writes batch after
    batch (cleanup) takes the lock back each time in between, so the waiter
    can wait hundreds of ms for a lock that is free most of the time.
    """
    deadline_s = timeout_ms / 1000
    started = [0.0]

    def busy(prior_calls: int) -> bool:
        now = time.monotonic()
        if prior_calls == 0:
            started[0] = now
        if now - started[0] >= deadline_s:
            return False
        time.sleep(min(BUSY_POLL_MAX_S, 0.0001 * 2 ** min(prior_calls, 8), deadline_s - (now - started[0])))
        return True

    connection.set_busy_handler(busy)


SQLITE_MAGIC: Final = b"SQLite format 3\x00"


def check_header(path: str) -> None:
    """Read the file's first 100 bytes; refuse a file that is not, or no longer, a whole SQLite database.

    SQLite itself treats a very short file (measured: one byte) as an empty
    database and overwrites it, and reports a database cut inside its first
    page as "not a database"; both are caught here, before SQLite sees them.
    A zero-length file is a new, empty database.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open() below
            raise StoreOpenError(f"{path} is not a regular file; give the path of a database file")
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise StoreOpenError(f"{path} cannot be read ({e.strerror}); check that it is a readable file") from e
    if size == 0:
        return
    if not (header.startswith(SQLITE_MAGIC) or SQLITE_MAGIC.startswith(header)):
        if size < len(SQLITE_MAGIC):  # longer ones SQLite refuses itself (its error becomes our __cause__)
            raise NotADatabaseError(f"{path} is not a SQLite database; check the path (the file was left untouched)")
        return
    page_size = int.from_bytes(header[16:18], "big") if len(header) >= 18 else 0
    page_size = 65536 if page_size == 1 else page_size
    if len(header) < 100 or size < page_size:
        raise DatabaseCorruptError(
            f"{path} is a damaged SQLite database (truncated to {size} bytes); restore it from a backup "
            "or move it aside (the file was left untouched)"
        )


def retry_while_busy(step: Callable[[], None], timeout_ms: int) -> None:
    """Run ``step``, running it again on ``SQLITE_BUSY`` until ``timeout_ms`` have passed.

    Some busy results never reach the busy handler: switching a new file to
    WAL while another process does the same, or reading while another
    connection runs WAL recovery.  Seen with four processes opening one new
    file at once (tests/test_processes.py).  ``step`` must be safe to repeat.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    delay = 0.001
    while True:
        try:
            step()
            return
        except apsw.BusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def check_readable(connection: apsw.Connection, path: str) -> None:
    """Read the file's schema, so a file that is not SQLite fails here, before anything is written."""
    # First: SQLite falls back to read-only when it may not write the file, and a
    # read of a WAL file would then fail with a less helpful "cannot open".
    if connection.readonly("main"):
        raise ReadOnlyDatabaseError(
            f"{path} is read-only (file permissions, or a read-only medium); litesessions needs to write to it: "
            "fix its permissions or move it (the file was left untouched)"
        )
    connection.execute("SELECT count(*) FROM sqlite_schema").fetchall()


def set_wal(connection: apsw.Connection, path: str) -> None:
    """Switch the file to write-ahead logging (persistent: recorded in the file)."""
    # A pragma that returns rows must have its cursor read (apsw runs lazily).
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchall()
    if not mode or str(mode[0][0]).lower() != "wal":
        raise StorageError(f"{path} could not be switched to WAL mode (got {mode!r})")


def configure(connection: apsw.Connection, durability: str, checkpointer: Checkpointer | None = None) -> None:
    """Set the per-connection pragmas (synchronous level, WAL size limit) and the checkpoint policy.

    With a ``checkpointer``, this connection's commits follow its policy (see
    :class:`Checkpointer`); without one, SQLite's own autocheckpoint (PASSIVE
    only) stays in force.
    """
    connection.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}").fetchall()
    connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}").fetchall()
    if checkpointer is not None:
        connection.set_wal_hook(checkpointer.wal_hook)


class Checkpointer:
    """The WAL hook of a store's connections: SQLite's autocheckpoint, plus RESTART when readers starve it.

    After a commit that leaves ``pages`` frames in the WAL, in the committing
    call (which has just released the write lock, so nobody else waits for it):

    * from :data:`AUTOCHECKPOINT_PAGES` on, a PASSIVE checkpoint (never waits;
      exactly SQLite's default behaviour);
    * from :data:`RESTART_PAGES` on, a RESTART checkpoint instead, which takes
      the write lock, copies every frame, waits at most :data:`RESTART_WAIT_MS`
      for readers to leave the WAL, and so lets the next writer start the WAL
      over from its beginning (truncated to :data:`JOURNAL_SIZE_LIMIT`).  If
      another connection is checkpointing right then, the next commit tries
      again; if readers were in the way, :data:`RESTART_RETRY_PAGES` frames
      later, waiting twice as long (at most :data:`RESTART_WAIT_MAX_MS`).

    A checkpoint that fails (busy, I/O error) is never reported to the caller,
    whose transaction has already committed.  Measured alternatives: running
    the checkpoints on a background thread instead made the tail latency of
    writers worse (its RESTARTs competed with them for the write lock and the
    GIL, and under a constant stream of writes the WAL never started over by
    itself); see ``tools/cleanup_load.py``.
    """

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._restart_at = RESTART_PAGES
        self._wait_ms = RESTART_WAIT_MS

    def wal_hook(self, connection: apsw.Connection, name: str, pages: int) -> int:
        """SQLite's WAL hook (``sqlite3_wal_hook``): called after each commit; returns ``SQLITE_OK``."""
        if name != "main" or pages < AUTOCHECKPOINT_PAGES:
            return apsw.SQLITE_OK
        if pages < RESTART_PAGES:
            self._restart_at = RESTART_PAGES
        elif pages >= self._restart_at:
            outcome = self._restart(connection)
            if outcome is not None:
                # Readers kept it from finishing: wait twice as long next time (up to
                # RESTART_WAIT_MAX_MS), so slow readers cannot keep the WAL growing.
                self._wait_ms = RESTART_WAIT_MS if outcome else min(2 * self._wait_ms, RESTART_WAIT_MAX_MS)
                self._restart_at = pages + (AUTOCHECKPOINT_PAGES if outcome else RESTART_RETRY_PAGES)
            return apsw.SQLITE_OK
        try:
            connection.wal_checkpoint(name, apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.Error:
            pass  # another checkpoint runs, or an I/O error: the next commit tries again
        return apsw.SQLITE_OK

    def _restart(self, connection: apsw.Connection) -> bool | None:
        """Try a RESTART checkpoint: True if done, False if readers (or an error) stopped it, None if
        it could not even start because another connection is checkpointing."""
        started = time.monotonic()
        set_busy_wait(connection, min(self._busy_timeout_ms, self._wait_ms))
        try:
            connection.wal_checkpoint("main", apsw.SQLITE_CHECKPOINT_RESTART)
        except apsw.BusyError:
            # SQLite returns at once, without waiting, when another checkpoint is running.
            return False if time.monotonic() - started > 0.001 else None
        except apsw.Error:
            return False  # an I/O error: tried again later
        finally:
            set_busy_wait(connection, self._busy_timeout_ms)
        return True

    def close(self) -> None:
        """Nothing to release (kept so a store can close its checkpointer like its connections). Idempotent."""
