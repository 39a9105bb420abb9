"""Opening and configuring connections, and the one place that maps ``apsw`` errors to ours."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
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

# Checkpoint policy (see Checkpointer).  SQLite's default is a PASSIVE
# checkpoint whenever a commit leaves at least 1000 pages in the WAL; we keep
# the threshold but move the checkpoint off the committing call.
AUTOCHECKPOINT_PAGES: Final = 1000
# A PASSIVE checkpoint can only copy frames that no reader still needs, and the
# WAL only restarts from its beginning once every frame was copied: readers
# that overlap without a pause starve it, and the WAL grows without limit
# (measured: 477 MB after 20,000 small writes).  From this many pages on, a
# RESTART checkpoint is tried instead, which waits for the readers to move to
# the newest snapshot and then lets the WAL start over.
RESTART_PAGES: Final = 4000
# If the WAL still reaches this many pages, the committing call tries RESTART itself.
FALLBACK_RESTART_PAGES: Final = 2 * RESTART_PAGES
# How long (ms) that RESTART attempt may wait for readers.  It holds the write
# lock while it waits, so this bounds what it adds to a writer's latency; a
# failed attempt is repeated at the next request.
RESTART_WAIT_MS: Final = 100
# At most one checkpoint per this many seconds: each one costs two fsyncs.
CHECKPOINT_GAP_S: Final = 0.01
# The checkpoint thread closes its connection and ends after this long idle.
IDLE_S: Final = 2.0

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


def check_readable(connection: apsw.Connection, path: str) -> None:
    """Read the file's schema, so a file that is not SQLite fails here, before anything is written."""
    check_header(path)
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

    With a ``checkpointer``, this connection's commits hand their checkpoints
    to it (see :class:`Checkpointer`); without one, SQLite's own autocheckpoint
    (a PASSIVE checkpoint in the committing call) stays in force.
    """
    connection.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}").fetchall()
    connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}").fetchall()
    if checkpointer is not None:
        connection.set_wal_hook(checkpointer.wal_hook)


# Every Checkpointer of this process, so a forked child can drop their threads.
_CHECKPOINTERS: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


def _checkpointers_after_fork_in_child() -> None:
    for checkpointer in list(_CHECKPOINTERS):
        checkpointer._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_checkpointers_after_fork_in_child)


class Checkpointer:
    """Runs a store's WAL checkpoints on a daemon thread of its own, off the writers' calls.

    A checkpoint copies WAL frames into the database file and fsyncs both
    files; done inside a commit (SQLite's default), that time lands on whichever
    call crossed the threshold (measured here: 30 to 500 ms).  Instead, each
    connection's WAL hook only calls :meth:`wal_hook`, which wakes this thread:

    * from :data:`AUTOCHECKPOINT_PAGES` frames in the WAL, a PASSIVE checkpoint
      (never waits for anyone; writers go on appending meanwhile);
    * from :data:`RESTART_PAGES` frames (the background checkpoints cannot
      keep up, or are starved by readers that overlap without a pause, so the
      WAL never starts over), the committing call itself runs a RESTART
      checkpoint that waits at most :data:`RESTART_WAIT_MS` for readers to reach
      the newest snapshot, after which the next writer starts the WAL over
      from its beginning (and truncates it to :data:`JOURNAL_SIZE_LIMIT`);
      if it fails, the next try is :data:`AUTOCHECKPOINT_PAGES` frames later.

    Background checkpoints are at least :data:`CHECKPOINT_GAP_S` apart.  The thread opens
    its connection when first needed and closes it, and ends, after
    :data:`IDLE_S` without work or on :meth:`close`.  A failed checkpoint
    (busy, I/O error) is retried on the next request; it never reaches a caller.
    """

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closed = False
        self._restart_at = FALLBACK_RESTART_PAGES
        self._thread: threading.Thread | None = None
        _CHECKPOINTERS.add(self)

    def wal_hook(self, connection: apsw.Connection, name: str, pages: int) -> int:
        """The WAL hook of the store's connections: ask for a checkpoint once the WAL is big enough."""
        if name != "main":
            return apsw.SQLITE_OK
        if pages >= self._restart_at:
            # The checkpoint thread cannot keep up (its RESTART competes with the writers for the
            # write lock, and for the GIL): the committing call, which holds neither, tries.  If a
            # checkpoint is running right now, the next commit tries again; if readers were in the
            # way, AUTOCHECKPOINT_PAGES frames later.
            if self._restart(connection):
                self._restart_at = pages + AUTOCHECKPOINT_PAGES
            return apsw.SQLITE_OK
        if pages < RESTART_PAGES:
            self._restart_at = FALLBACK_RESTART_PAGES
        if pages >= AUTOCHECKPOINT_PAGES:
            with self._lock:
                if self._closed:
                    return apsw.SQLITE_OK
                self._wake.set()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="litesessions-checkpoint", daemon=True)
                    self._thread.start()
        return apsw.SQLITE_OK

    def _restart(self, connection: apsw.Connection) -> bool:
        """Try a RESTART checkpoint; False if it could not even start (another checkpoint holds its lock)."""
        started = time.monotonic()
        set_busy_wait(connection, min(self._busy_timeout_ms, RESTART_WAIT_MS))
        try:
            connection.wal_checkpoint("main", apsw.SQLITE_CHECKPOINT_RESTART)
        except apsw.BusyError:
            # SQLite returns at once, without waiting, when another checkpoint is running.
            return time.monotonic() - started > 0.001
        except apsw.Error:
            pass  # an I/O error: tried again later
        finally:
            set_busy_wait(connection, self._busy_timeout_ms)
        return True

    def close(self) -> None:
        """End the thread (after the checkpoint in progress, if any) and close its connection. Idempotent."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _forget(self) -> None:
        # In a forked child the thread does not exist; its connection belongs to the parent.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None

    def _run(self) -> None:
        connection: apsw.Connection | None = None
        try:
            while True:
                self._wake.wait(IDLE_S)
                with self._lock:
                    # Checked under the lock: a request made after the wait timed out is not lost.
                    if self._closed or not self._wake.is_set():
                        self._thread = None
                        return
                    self._wake.clear()
                try:
                    if connection is None:
                        connection = connect(self._path, self._busy_timeout_ms)
                        connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}").fetchall()
                        # A connection opens the WAL on its first read; until then a checkpoint is a no-op.
                        connection.execute("SELECT count(*) FROM sqlite_schema").fetchall()
                    frames, _ = connection.wal_checkpoint("main", apsw.SQLITE_CHECKPOINT_PASSIVE)
                    if frames >= RESTART_PAGES:
                        # The WAL did not start over: writers never left a moment in which every
                        # frame was copied, or readers kept old snapshots.  RESTART takes the write
                        # lock (so no new frames), copies what PASSIVE just left, waits for readers
                        # (bounded), and lets the next writer start the WAL over.
                        self._restart(connection)
                except apsw.Error:
                    pass  # busy or I/O trouble: the next commit past the threshold asks again
                self._stop.wait(CHECKPOINT_GAP_S)
        finally:
            if connection is not None:
                with contextlib.suppress(apsw.Error):
                    connection.close()
