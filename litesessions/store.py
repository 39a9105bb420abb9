"""``SqliteUserSessionStore``: the session store on one SQLite file, through ``apsw``.

Transactions: every write method is one transaction that starts with
``BEGIN IMMEDIATE`` (so a writer never deadlocks upgrading a read lock) and
commits before the method returns; inside :meth:`SqliteUserSessionStore.transaction`
it becomes a savepoint of the enclosing transaction instead.  Reads are one
``SELECT`` each, which SQLite runs on a consistent snapshot.

Connections: one per thread (SQLite connections must not interleave
transactions of two threads), opened lazily, and replaced in a child process
after ``os.fork()`` (a connection must never cross a fork).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import starmap as _starmap
from types import TracebackType
from typing import Any, Final

import apsw

from litesessions import _sqlite, paging, schema
from litesessions.errors import ConfigurationError, DuplicateSessionError, StoreClosedError
from litesessions.models import (
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
    _utf8_problem,
    check_clock,
    check_key,
    session_from_row,
    to_micros,
)

__all__ = ["SqliteUserSessionStore"]

_T: Final = schema.TABLE
_COLUMNS: Final = "key, subject_id, session_id, created, renewed, expires, ticket"

GET: Final = f"SELECT {_COLUMNS} FROM {_T} WHERE partition_key = ? AND key = ?"
KEY_EXISTS: Final = f"SELECT 1 FROM {_T} WHERE partition_key = ? AND key = ?"
INSERT: Final = (
    f"INSERT INTO {_T} (partition_key, key, subject_id, session_id, created, renewed, expires, ticket)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE: Final = (
    f"UPDATE {_T} SET subject_id = ?, session_id = ?, created = ?, renewed = ?, expires = ?, ticket = ?"
    " WHERE partition_key = ? AND key = ?"
)
DELETE: Final = f"DELETE FROM {_T} WHERE partition_key = ? AND key = ?"
# A sliding renewal changes renewed, expires and the ticket only.  SQLite
# rewrites the entries of every index holding a column named in SET, even
# when its value stays the same; this statement names no indexed column but
# expires, so a renewal touches two b-trees instead of four (measured: about
# 40% less time per renewal).  It matches only if subject_id, session_id and
# created are already the new values, so the row ends up exactly as UPDATE
# would leave it; otherwise UPDATE runs, in the same transaction.
RENEW: Final = (
    f"UPDATE {_T} SET renewed = ?, expires = ?, ticket = ?"
    " WHERE partition_key = ? AND key = ? AND subject_id = ? AND session_id IS ? AND created = ?"
)

# Filter statements, indexed by (has subject id, has session id).
_WHERE: Final = {
    (True, False): "partition_key = ? AND subject_id = ?",
    (False, True): "partition_key = ? AND session_id = ?",
    (True, True): "partition_key = ? AND subject_id = ? AND session_id = ?",
}
SELECT_FILTERED: Final = {k: f"SELECT {_COLUMNS} FROM {_T} WHERE {w}" for k, w in _WHERE.items()}
DELETE_FILTERED: Final = {k: f"DELETE FROM {_T} WHERE {w}" for k, w in _WHERE.items()}

_SAVEPOINT: Final = "litesessions_op"

# A bulk import inserts into indexes of random keys, touching pages all over
# them: with SQLite's default 2 MiB page cache those pages are spilled and
# read back again and again.  create_user_sessions raises this connection's
# cache to this many KiB for its duration (measured by tools/bench.py and
# tools/scale.py; 48 MiB keeps a million-session import under 100 MB of RSS).
IMPORT_CACHE_KIB: Final = 48 * 1024

# Connections inherited across fork() are kept referenced here, never used
# or closed: closing them in the child could disturb the parent's locks.
_ABANDONED: list[apsw.Connection] = []
_STORES: weakref.WeakSet[SqliteUserSessionStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _begin(connection: apsw.Connection) -> bool:
    """Start a write; return True if it is a savepoint inside an open transaction."""
    if connection.in_transaction:
        connection.execute(f"SAVEPOINT {_SAVEPOINT}")
        return True
    connection.execute("BEGIN IMMEDIATE")
    return False


def _commit(connection: apsw.Connection, nested: bool) -> None:
    connection.execute(f"RELEASE {_SAVEPOINT}" if nested else "COMMIT")


def _rollback(connection: apsw.Connection, nested: bool) -> None:
    if nested:
        connection.execute(f"ROLLBACK TO {_SAVEPOINT}")
        connection.execute(f"RELEASE {_SAVEPOINT}")
    elif connection.in_transaction:
        connection.execute("ROLLBACK")


def session_params(partition_key: str, session: UserSession) -> tuple[Any, ...]:
    expires = session.expires
    return (
        partition_key,
        session.key,
        session.subject_id,
        session.session_id,
        to_micros(session.created),
        to_micros(session.renewed),
        None if expires is None else to_micros(expires),
        session.ticket,
    )


def _filter_query(
    filter: object, partition_key: str, statements: dict[tuple[bool, bool], str]
) -> tuple[str, tuple[str, ...]]:
    """Return the statement (from ``statements``) and parameters for ``filter``; raise like ``criteria()``."""
    if not isinstance(filter, UserSessionsFilter):
        raise TypeError(f"filter must be a UserSessionsFilter, got {type(filter).__name__}")
    subject_id, session_id = filter.criteria()
    if session_id is None:
        return statements[True, False], (partition_key, subject_id)  # type: ignore[return-value]
    if subject_id is None:
        return statements[False, True], (partition_key, session_id)
    return statements[True, True], (partition_key, subject_id, session_id)


class SqliteUserSessionStore:
    """User sessions in one SQLite file (WAL mode), implementing :class:`~litesessions.UserSessionStore`.

    ``path``: the database file; created (mode 0600, with the schema) if missing.
    The directory must exist.  The file may be shared with an application's
    own tables: litesessions' tables are prefixed ``litesessions_``.

    ``partition_key``: scopes every operation but expiry cleanup, like Duende's
    ``ApplicationName``; stores with different partition keys on one file
    never see each other's sessions.

    ``clock``: a zero-argument callable returning an aware ``datetime``, used by
    :class:`~litesessions.SessionCleanup` unless it gets its own.

    ``durability``: ``"normal"`` (``synchronous=NORMAL``: a power loss may undo the
    last transactions, never corrupt the file) or ``"full"`` (``synchronous=FULL``:
    a call that returned survives power loss).

    ``busy_timeout``: seconds to wait for another writer before raising
    :class:`~litesessions.StoreBusyError`.

    Raises at construction: ``TypeError`` for arguments of the wrong type,
    :class:`~litesessions.ConfigurationError` for values out of range,
    :class:`~litesessions.StoreOpenError` (and its subclasses
    ``NotADatabaseError``, ``DatabaseCorruptError``, ``ReadOnlyDatabaseError``)
    when the file cannot be used, :class:`~litesessions.SchemaVersionError` for a
    file of a newer schema.  Files that are refused are left untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        partition_key: str = "",
        clock: Callable[[], datetime] | None = None,
        durability: str = "normal",
        busy_timeout: float = 5.0,
    ) -> None:
        if not isinstance(partition_key, str):
            raise TypeError(f"partition_key must be a str, got {type(partition_key).__name__}")
        problem = _utf8_problem(partition_key)
        if problem:
            raise ConfigurationError(f"partition_key {problem}")
        self.clock: Callable[[], datetime] = check_clock(clock)
        if not isinstance(durability, str):
            raise TypeError(f"durability must be a str, got {type(durability).__name__}")
        if durability not in _sqlite.SYNCHRONOUS:
            raise ConfigurationError(f"durability must be 'normal' or 'full', got {durability!r}")
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise TypeError(f"busy_timeout must be a number of seconds, got {type(busy_timeout).__name__}")
        if not 0 <= busy_timeout <= 24 * 3600:
            raise ConfigurationError(f"busy_timeout must be between 0 and 86400 seconds, got {busy_timeout!r}")
        self._partition_key = partition_key
        self._durability = durability
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._closed = False
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: weakref.WeakSet[apsw.Connection] = weakref.WeakSet()
        self._path = _sqlite.prepare_path(path)
        # The checkpoint policy shared by this store's connections (keeps the -wal file bounded).
        self._checkpointer = _sqlite.Checkpointer(self._path, self._busy_timeout_ms)
        self._open_first_connection()
        _STORES.add(self)

    # -- connections ---------------------------------------------------------

    def _open_first_connection(self) -> None:
        path = self._path
        try:
            connection = _sqlite.connect(path, self._busy_timeout_ms)
        except apsw.Error as e:
            raise _sqlite.translate(e, path) from e

        def prepare() -> None:
            # Everything up to set_wal only reads: a file we refuse stays byte-for-byte unchanged.
            _sqlite.check_readable(connection, path)
            schema.check_version(connection, path)
            _sqlite.set_wal(connection, path)
            _sqlite.configure(connection, self._durability, self._checkpointer)
            schema.migrate(connection, path)

        try:
            _sqlite.retry_while_busy(prepare, self._busy_timeout_ms)
        except apsw.Error as e:
            connection.close()
            raise _sqlite.translate(e, path) from e
        except BaseException:
            connection.close()
            raise
        self._local.connection = connection
        self._connections.add(connection)

    def _open_thread_connection(self) -> apsw.Connection:
        connection = _sqlite.connect(self._path, self._busy_timeout_ms)
        try:
            _sqlite.configure(connection, self._durability, self._checkpointer)
        except BaseException:
            connection.close()
            raise
        with self._lock:
            if self._closed:
                connection.close()
                raise StoreClosedError("the store was closed; open a new SqliteUserSessionStore")
            self._connections.add(connection)
        self._local.connection = connection
        return connection

    def _connection(self) -> apsw.Connection:
        """This thread's connection (opened on first use). Raises ``StoreClosedError`` after close."""
        if self._closed:
            raise StoreClosedError("the store was closed; open a new SqliteUserSessionStore")
        try:
            return self._local.connection  # type: ignore[no-any-return]
        except AttributeError:
            return self._open_thread_connection()

    def _forget_connections(self) -> None:
        # In a forked child: the parent's connections must not be used, nor closed.
        _ABANDONED.extend(self._connections)
        self._connections = weakref.WeakSet()
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------

    @property
    def path(self) -> str:
        """The absolute path of the database file."""
        return self._path

    @property
    def partition_key(self) -> str:
        """The partition this store reads and writes."""
        return self._partition_key

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close every connection of this store; later calls raise ``StoreClosedError``. Idempotent."""
        with self._lock:
            self._closed = True
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        self._checkpointer.close()
        for connection in connections:
            with contextlib.suppress(apsw.Error):
                connection.close()

    def __enter__(self) -> SqliteUserSessionStore:
        if self._closed:
            raise StoreClosedError("the store was closed; open a new SqliteUserSessionStore")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SqliteUserSessionStore {self._path!r} partition={self._partition_key!r} {state}>"

    # -- the UserSessionStore protocol ---------------------------------------

    def get_user_session(self, key: str) -> UserSession | None:
        """Return the session under ``key`` in this partition (expired or not), or ``None``.

        One ``SELECT``, no explicit transaction.  Raises ``TypeError`` for a
        non-``str`` key, ``InvalidSessionError`` for a blank one.
        """
        check_key(key)
        try:
            for row in self._connection().execute(GET, (self._partition_key, key)):
                return session_from_row(*row)
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e
        return None

    def create_user_session(self, session: UserSession) -> None:
        """Store a new session, in one ``BEGIN IMMEDIATE`` transaction.

        Raises ``TypeError`` if ``session`` is not a :class:`UserSession`, and
        :class:`DuplicateSessionError` (storing nothing) if this partition
        already holds its key, or another session with its session id.
        """
        if not isinstance(session, UserSession):
            raise TypeError(f"session must be a UserSession, got {type(session).__name__}")
        params = session_params(self._partition_key, session)
        try:
            connection = self._connection()
            nested = _begin(connection)
            try:
                connection.execute(INSERT, params)
                _commit(connection, nested)
            except apsw.ConstraintError as e:
                _rollback(connection, nested)
                raise self._duplicate(connection, session.key) from e
            except BaseException:
                _rollback(connection, nested)
                raise
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e

    def _duplicate(self, connection: apsw.Connection, key: str) -> DuplicateSessionError:
        if connection.execute(KEY_EXISTS, (self._partition_key, key)).fetchone() is not None:
            return DuplicateSessionError("a session with this key already exists in this partition")
        return DuplicateSessionError("another session in this partition already has this session_id")

    def create_user_sessions(self, sessions: Iterable[UserSession]) -> int:
        """Store many new sessions in one transaction (all or nothing); return how many.

        Raises like :meth:`create_user_session`; on any error nothing is stored.
        """
        partition_key = self._partition_key

        def rows() -> Iterator[tuple[Any, ...]]:
            for session in sessions:
                if not isinstance(session, UserSession):
                    raise TypeError(f"sessions must hold UserSession objects, got {type(session).__name__}")
                yield session_params(partition_key, session)

        try:
            connection = self._connection()
            before = connection.total_changes()
            cache_size = int(connection.execute("PRAGMA cache_size").fetchall()[0][0])  # type: ignore[arg-type]
            connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}").fetchall()
            try:
                nested = _begin(connection)
                try:
                    connection.executemany(INSERT, rows())
                    count = connection.total_changes() - before
                    _commit(connection, nested)
                except apsw.ConstraintError as e:
                    _rollback(connection, nested)
                    raise DuplicateSessionError(
                        "a session's key or session_id already exists in this partition (or twice in the input); "
                        "nothing was stored"
                    ) from e
                except BaseException:
                    _rollback(connection, nested)
                    raise
            finally:
                # Back to the usual cache (SQLite frees the pages above it), even after an error.
                with contextlib.suppress(apsw.Error):
                    connection.execute(f"PRAGMA cache_size={cache_size}").fetchall()
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e
        return count

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        """Replace all six fields but the key of the session under ``key``, in one transaction.

        Returns ``False`` (creating nothing) if there is no such session.
        Raises ``TypeError`` for arguments of the wrong type, and
        :class:`DuplicateSessionError` (changing nothing) if another session in
        this partition holds ``update.session_id``.
        """
        check_key(key)
        if not isinstance(update, UserSessionUpdate):
            raise TypeError(f"update must be a UserSessionUpdate, got {type(update).__name__}")
        expires = update.expires
        subject_id, session_id, created = update.subject_id, update.session_id, to_micros(update.created)
        renewed, expires_micros = to_micros(update.renewed), None if expires is None else to_micros(expires)
        partition_key = self._partition_key
        try:
            connection = self._connection()
            nested = _begin(connection)
            try:
                connection.execute(
                    RENEW, (renewed, expires_micros, update.ticket, partition_key, key, subject_id, session_id, created)
                )
                changed = connection.changes()
                if not changed:  # missing, or more than a renewal: replace every field
                    connection.execute(
                        UPDATE,
                        (subject_id, session_id, created, renewed, expires_micros, update.ticket, partition_key, key),
                    )
                    changed = connection.changes()
                _commit(connection, nested)
            except apsw.ConstraintError as e:
                _rollback(connection, nested)
                raise DuplicateSessionError(
                    "another session in this partition already has this session_id; nothing was changed"
                ) from e
            except BaseException:
                _rollback(connection, nested)
                raise
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e
        return changed > 0

    def delete_user_session(self, key: str) -> bool:
        """Delete the session under ``key``, in one transaction; ``False`` if there was none."""
        check_key(key)
        return self._delete(DELETE, (self._partition_key, key)) > 0

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        """Return every session of this partition matching all criteria of ``filter``.

        Blank criteria count as absent; with none left, raises
        :class:`InvalidFilterError`.  Matching is exact and case-sensitive.
        One ``SELECT``, on an index.
        """
        sql, params = _filter_query(filter, self._partition_key, SELECT_FILTERED)
        try:
            return list(_starmap(session_from_row, self._connection().execute(sql, params)))
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        """Delete every session of this partition matching ``filter``, in one transaction; return how many.

        Raises like :meth:`get_user_sessions`.
        """
        sql, params = _filter_query(filter, self._partition_key, DELETE_FILTERED)
        return self._delete(sql, params)

    def _delete(self, sql: str, params: tuple[Any, ...]) -> int:
        try:
            connection = self._connection()
            nested = _begin(connection)
            try:
                connection.execute(sql, params)
                deleted = connection.changes()
                _commit(connection, nested)
            except BaseException:
                _rollback(connection, nested)
                raise
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e
        return deleted

    # -- admin queries -------------------------------------------------------

    def query_user_sessions(
        self,
        *,
        subject_id: str | None = None,
        session_id: str | None = None,
        page_size: int = 25,
        page_token: str | None = None,
    ) -> paging.SessionPage:
        """Return one page of this partition's sessions in ascending key order (IdentityServer's QuerySessions).

        Criteria as in :class:`UserSessionsFilter` (blank counts as absent; none
        at all pages through every session).  Keyset paging on the
        ``(partition_key, key)`` index: a page costs the same wherever it is.
        Pass ``next_token`` / ``previous_token`` of a page as ``page_token`` to
        move on.  One read transaction (``BEGIN`` ... ``COMMIT``; inside
        :meth:`transaction` it joins the open one).  Raises ``TypeError``,
        ``InvalidFilterError``, ``ConfigurationError`` (page_size outside
        1..1000) and ``InvalidPageTokenError`` (a malformed token, or one from a
        query with other criteria).
        """
        criteria, size, token = paging.check_page_args(subject_id, session_id, page_size, page_token)
        try:
            return paging.query_page(self._connection(), self._partition_key, criteria, size, token)
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e

    # -- grouping ------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteUserSessionStore]:
        """Group this thread's calls into one ``BEGIN IMMEDIATE`` transaction.

        Commits when the block ends, rolls everything back if it raises.
        Nested use becomes a savepoint.  Other threads are not affected (they
        wait for the write lock, up to ``busy_timeout``).
        """
        try:
            connection = self._connection()
            nested = _begin(connection)
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e
        try:
            yield self
        except BaseException:
            try:
                _rollback(connection, nested)
            except apsw.Error as e:
                raise _sqlite.translate(e, self._path) from e
            raise
        try:
            _commit(connection, nested)
        except apsw.Error as e:
            raise _sqlite.translate(e, self._path) from e
