"""Operations on a store file: stats, listing, integrity check, online backup, vacuum, export and import.

These back the ``litesessions`` command line and need no schema of their own.
They work on an open :class:`~litesessions.SqliteUserSessionStore` (so they
share its connection handling and error translation), except :func:`check`
and :func:`open_existing`'s probe, which read the file without changing it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import IO, Any, Final

import apsw
import attrs

from litesessions import _sqlite, schema
from litesessions.errors import InvalidSessionError, StoreOpenError
from litesessions.models import UserSession, from_micros, session_from_row, to_micros
from litesessions.serialization import decode_session, encode_session
from litesessions.store import SqliteUserSessionStore, session_params

__all__ = [
    "BackupResult",
    "CheckItem",
    "ImportResult",
    "InvalidImportError",
    "backup",
    "check",
    "count_expired",
    "export_sessions",
    "import_sessions",
    "list_sessions",
    "open_existing",
    "stats",
    "vacuum",
]

_T: Final = schema.TABLE
_COLUMNS: Final = "key, subject_id, session_id, created, renewed, expires, ticket"

STATS: Final = (
    f"SELECT partition_key, count(*), count(expires < ?1 OR NULL), count(*) - count(expires),"
    f" min(created), max(created) FROM {_T} GROUP BY partition_key ORDER BY partition_key"
)
COUNT_EXPIRED: Final = f"SELECT count(*) FROM {_T} WHERE expires < ?"
COUNT_PARTITION: Final = f"SELECT count(*) FROM {_T} WHERE partition_key = ?"

# Listing statements by (has subject id, has session id, expired only); the
# parameters follow in that order, then the limit.  Ordered by key, like pages.
# INDEXED BY because, without ANALYZE statistics, SQLite prefers walking the
# key index (to skip the sort) and filtering every row of the partition, even
# for a subject with one session.  "Expired only" alone walks the key index:
# LIMIT stops it early when many have expired, which is when anyone asks.
_LIST_WHERE: Final = ("subject_id = ?", "session_id = ?", "expires < ?")


def _list_index(subject: bool, session: bool) -> str:
    return f"{_T}_session_id" if session else f"{_T}_subject" if subject else f"{_T}_key"


LIST_QUERIES: Final = {
    (s, i, e): f"SELECT {_COLUMNS} FROM {_T} INDEXED BY {_list_index(s, i)} WHERE "
    + " AND ".join(["partition_key = ?"] + [w for w, on in zip(_LIST_WHERE, (s, i, e), strict=True) if on])
    + " ORDER BY key LIMIT ?"
    for s in (False, True)
    for i in (False, True)
    for e in (False, True)
}

EXPORT_ALL: Final = f"SELECT {_COLUMNS} FROM {_T} WHERE partition_key = ? ORDER BY key"
EXPORT_SUBJECT: Final = (
    f"SELECT {_COLUMNS} FROM {_T} INDEXED BY {_T}_subject WHERE partition_key = ? AND subject_id = ? ORDER BY key"
)
INSERT: Final = (
    f"INSERT INTO {_T} (partition_key, key, subject_id, session_id, created, renewed, expires, ticket)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# "skip": a session whose key or session id is already taken is left out.
INSERT_OR_SKIP: Final = INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
KEY_EXISTS: Final = f"SELECT 1 FROM {_T} WHERE partition_key = ? AND key = ?"
INDEX_NAMES: Final = f"SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = '{_T}'"

PROGRESS_EVERY: Final = 10_000
_MAX_REPORTED: Final = 10

Progress = Callable[[int, int | None], None]
"""A progress callback: (done so far, total or None if unknown)."""


# -- opening -----------------------------------------------------------------


def open_existing(
    path: str, *, partition_key: str = "", busy_timeout: float = 5.0, clock: Callable[[], datetime] | None = None
) -> SqliteUserSessionStore:
    """Open the store on an existing litesessions file, refusing to create or adopt one.

    Opening a store creates a missing file and adds litesessions' tables to a
    foreign SQLite file; an admin command pointed at the wrong path should say
    so instead.  Raises :class:`StoreOpenError` if ``path`` does not exist or
    holds no litesessions tables, and whatever the store's constructor raises.
    """
    full = os.path.abspath(path)
    if not os.path.exists(full):
        raise StoreOpenError(f"{full} does not exist; check --db (or LITESESSIONS_DB)")
    if os.path.isdir(full):
        raise StoreOpenError(f"{full} is a directory; give the path of a database file")
    if _read_version(full) == 0:
        raise StoreOpenError(f"{full} holds no litesessions tables; check --db (or LITESESSIONS_DB)")
    return SqliteUserSessionStore(full, partition_key=partition_key, busy_timeout=busy_timeout, clock=clock)


def _read_only(path: str) -> apsw.Connection:
    try:
        connection = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        connection.set_busy_timeout(5000)
    except apsw.Error as e:
        raise _sqlite.translate(e, path) from e
    return connection


def _read_version(path: str) -> int:
    connection = _read_only(path)
    try:
        return schema.read_version(connection)
    except apsw.Error as e:
        raise _sqlite.translate(e, path) from e
    finally:
        connection.close()


# -- stats -------------------------------------------------------------------


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def stats(store: SqliteUserSessionStore, *, now: datetime, partition_key: str | None = None) -> dict[str, Any]:
    """Return counts per partition, expired counts, oldest/newest ``created``, file sizes, schema version.

    ``partition_key`` limits the partitions reported (``None``: all).  One
    ``SELECT`` (a full scan: it counts every session); timestamps in the
    result are aware datetimes (or ``None`` for an empty partition list).
    """
    try:
        connection = store._connection()
        rows: list[Any] = connection.execute(STATS, (to_micros(now),)).fetchall()
        version = schema.read_version(connection)
    except apsw.Error as e:
        raise _sqlite.translate(e, store.path) from e
    partitions = [
        {
            "partition": str(p),
            "sessions": int(n),
            "expired": int(expired),
            "never_expire": int(never),
            "oldest_created": from_micros(int(oldest)),
            "newest_created": from_micros(int(newest)),
        }
        for p, n, expired, never, oldest, newest in rows
        if partition_key is None or p == partition_key
    ]
    return {
        "path": store.path,
        "file_bytes": _size(store.path),
        "wal_bytes": _size(store.path + "-wal"),
        "schema_version": version,
        "now": now,
        "sessions": sum(p["sessions"] for p in partitions),
        "expired": sum(p["expired"] for p in partitions),
        "partitions": partitions,
    }


def count_expired(store: SqliteUserSessionStore, now: datetime) -> int:
    """Return how many sessions of every partition have ``expires < now`` (one ``SELECT`` on the expiry index)."""
    try:
        row = store._connection().execute(COUNT_EXPIRED, (to_micros(now),)).fetchone()
    except apsw.Error as e:
        raise _sqlite.translate(e, store.path) from e
    return int(row[0]) if row else 0


# -- listing -----------------------------------------------------------------


def list_sessions(
    store: SqliteUserSessionStore,
    *,
    subject_id: str | None = None,
    session_id: str | None = None,
    expired_at: datetime | None = None,
    limit: int | None = None,
) -> Iterator[UserSession]:
    """Yield this partition's sessions in key order, optionally only a subject's / a session id's / expired ones.

    ``expired_at``: only sessions with ``expires < expired_at``.  ``limit``:
    at most that many (``None``: all).  One ``SELECT``, read as the caller
    iterates (a consistent snapshot while the iterator is open).
    """
    shape = (subject_id is not None, session_id is not None, expired_at is not None)
    params: list[Any] = [store.partition_key]
    params += [v for v in (subject_id, session_id) if v is not None]
    if expired_at is not None:
        params.append(to_micros(expired_at))
    params.append(-1 if limit is None else limit)  # LIMIT -1: no limit
    try:
        for row in store._connection().execute(LIST_QUERIES[shape], params):
            yield session_from_row(*row)
    except apsw.Error as e:
        raise _sqlite.translate(e, store.path) from e


# -- check -------------------------------------------------------------------


@attrs.frozen
class CheckItem:
    """One line of :func:`check`: what was checked, whether it is fine, and the detail."""

    name: str
    ok: bool
    detail: str


def check(path: str) -> list[CheckItem]:
    """Check a store file without changing it: integrity, schema version, indexes, journal mode.

    Reads through a read-only connection (``PRAGMA integrity_check`` reads the
    whole file).  Raises :class:`StoreOpenError` (or a subclass) if the file
    does not exist or cannot be opened at all; a damaged file gives failed
    items rather than an exception.
    """
    full = os.path.abspath(path)
    if not os.path.exists(full):
        raise StoreOpenError(f"{full} does not exist; check --db (or LITESESSIONS_DB)")
    connection = _read_only(full)
    items: list[CheckItem] = []
    try:
        items.append(_check_integrity(connection, full))
        try:
            version = schema.read_version(connection)
            names = {str(r[0]) for r in connection.execute(INDEX_NAMES)}
            mode = str(connection.execute("PRAGMA journal_mode").fetchall()[0][0]).lower()
        except apsw.Error as e:
            items.append(CheckItem("schema", False, str(_sqlite.translate(e, full))))
            return items
    finally:
        connection.close()
    if version == schema.SCHEMA_VERSION:
        items.append(CheckItem("schema version", True, f"{version}"))
    elif version == 0:
        items.append(CheckItem("schema version", False, "no litesessions tables in this file"))
    else:
        items.append(CheckItem("schema version", False, f"{version}, this litesessions knows {schema.SCHEMA_VERSION}"))
    missing = [name for name in schema.INDEXES if name not in names]
    if missing:
        items.append(CheckItem("indexes", False, "missing: " + ", ".join(missing)))
    else:
        items.append(CheckItem("indexes", True, f"all {len(schema.INDEXES)} present"))
    items.append(CheckItem("journal mode", mode == "wal", mode))
    return items


def _check_integrity(connection: apsw.Connection, path: str) -> CheckItem:
    try:
        rows = [str(r[0]) for r in connection.execute("PRAGMA integrity_check(20)")]
    except apsw.Error as e:
        return CheckItem("integrity", False, str(_sqlite.translate(e, path)))
    if rows == ["ok"]:
        return CheckItem("integrity", True, "ok")
    return CheckItem("integrity", False, "; ".join(rows))


# -- backup and vacuum ---------------------------------------------------------


@attrs.frozen
class BackupResult:
    """What :func:`backup` copied."""

    path: str
    pages: int
    bytes: int
    seconds: float


def backup(store: SqliteUserSessionStore, dest: str) -> BackupResult:
    """Copy the whole file to ``dest`` through SQLite's online backup API, while others keep writing.

    The copy is one backup step, which reads one snapshot: it holds every
    transaction committed before the step began and none that committed
    after.  In WAL mode a reader does not block writers, so other processes
    keep writing meanwhile.  The copy is written to a temporary file (mode
    0600) in ``dest``'s directory and renamed into place, so ``dest`` never
    holds a partial copy.  Raises :class:`StoreOpenError` if ``dest`` exists or
    its directory does not, and translated SQLite errors.
    """
    full = os.path.abspath(dest)
    directory = os.path.dirname(full)
    if os.path.exists(full):
        raise StoreOpenError(f"{full} already exists; remove it or choose another destination")
    if not os.path.isdir(directory):
        raise StoreOpenError(f"directory {directory} does not exist; create it first")
    started = time.perf_counter()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(full)}.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            target = apsw.Connection(tmp)
        except apsw.Error as e:
            raise _sqlite.translate(e, full) from e
        try:
            # One step of -1 pages copies everything under one read snapshot;
            # a backup in small steps restarts whenever another connection
            # writes in between, and under steady writes might never finish.
            with target.backup("main", store._connection(), "main") as copy:
                copy.step(-1)
                pages = copy.page_count
            # The copy inherits WAL mode from the source's header; fold its
            # WAL into the file so the single renamed file is complete.
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except apsw.Error as e:
            raise _sqlite.translate(e, store.path) from e
        finally:
            target.close()
        os.replace(tmp, full)
    except BaseException:
        for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)
        raise
    return BackupResult(full, pages, _size(full), time.perf_counter() - started)


def vacuum(store: SqliteUserSessionStore) -> tuple[int, int]:
    """Rebuild the file without free pages and truncate the WAL; return (bytes before, bytes after).

    ``VACUUM`` is one write transaction (other writers wait, up to their busy
    timeout) and needs free disk space of about the file's size.
    """
    before = _size(store.path) + _size(store.path + "-wal")
    try:
        connection = store._connection()
        connection.execute("VACUUM").fetchall()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except apsw.Error as e:
        raise _sqlite.translate(e, store.path) from e
    return before, _size(store.path) + _size(store.path + "-wal")


# -- export and import --------------------------------------------------------


def export_sessions(
    store: SqliteUserSessionStore,
    out: IO[str],
    *,
    subject_id: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Write this partition's sessions (or one subject's) to ``out``, one JSON line each, in key order; return how many.

    One ``SELECT`` read row by row, so memory stays constant and the export
    is one consistent snapshot.  ``progress`` is called every
    :data:`PROGRESS_EVERY` sessions and at the end.
    """
    count = 0
    total: int | None = None
    try:
        connection = store._connection()
        if progress is not None and subject_id is None:
            counted: Any = connection.execute(COUNT_PARTITION, (store.partition_key,)).fetchall()[0][0]
            total = int(counted)
        if subject_id is None:
            cursor = connection.execute(EXPORT_ALL, (store.partition_key,))
        else:
            cursor = connection.execute(EXPORT_SUBJECT, (store.partition_key, subject_id))
        write = out.write
        for row in cursor:
            write(encode_session(session_from_row(*row)))
            write("\n")
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count, total)
    except apsw.Error as e:
        raise _sqlite.translate(e, store.path) from e
    if progress is not None:
        progress(count, total)
    return count


class InvalidImportError(InvalidSessionError):
    """An import held malformed lines (or duplicates, with ``on_duplicate="fail"``); nothing was imported.

    ``problems`` holds the first few ``(line number, message)`` pairs,
    ``count`` how many lines had a problem.
    """

    def __init__(self, source: str, problems: list[tuple[int, str]], count: int) -> None:
        lines = ", ".join(str(n) for n, _ in problems) + (", ..." if count > len(problems) else "")
        first_line, first = problems[0]
        super().__init__(
            f"{source}: {count} bad line{'s' if count != 1 else ''} ({lines}); nothing was imported; "
            f"line {first_line}: {first}"
        )
        self.problems = problems
        self.count = count


@attrs.frozen
class ImportResult:
    """What :func:`import_sessions` stored."""

    imported: int
    skipped: int
    lines: int


def import_sessions(
    store: SqliteUserSessionStore,
    lines: Iterable[bytes],
    *,
    source: str = "input",
    on_duplicate: str = "fail",
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Store the sessions of JSON lines (as :func:`export_sessions` writes) in this partition, all or nothing.

    Everything happens in one ``BEGIN IMMEDIATE`` transaction, committed only
    if every line is a valid session: with any malformed line (or, with
    ``on_duplicate="fail"``, a session whose key or session id is taken) it is
    rolled back and :class:`InvalidImportError` lists the line numbers.
    ``on_duplicate="skip"`` leaves such sessions out and counts them.  Blank
    lines are ignored.  Lines are read one at a time (constant memory);
    ``progress`` gets the number of lines read every :data:`PROGRESS_EVERY`
    lines.  Other writers wait while the import runs (up to their busy timeout).
    """
    if on_duplicate not in ("skip", "fail"):
        raise ValueError(f"on_duplicate must be 'skip' or 'fail', got {on_duplicate!r}")
    skip = on_duplicate == "skip"
    insert = INSERT_OR_SKIP if skip else INSERT
    partition_key = store.partition_key
    problems: list[tuple[int, str]] = []
    bad = imported = skipped = number = 0
    try:
        connection = store._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            for number, line in enumerate(lines, start=1):
                if progress is not None and number % PROGRESS_EVERY == 0:
                    progress(number)
                if not line.strip():
                    continue
                try:
                    session = decode_session(line)
                except InvalidSessionError as e:
                    bad += 1
                    if len(problems) < _MAX_REPORTED:
                        problems.append((number, str(e)))
                    continue
                if bad:
                    continue  # nothing will be stored: only look for more bad lines
                try:
                    connection.execute(insert, session_params(partition_key, session))
                except apsw.ConstraintError:
                    bad += 1
                    if len(problems) < _MAX_REPORTED:
                        problems.append((number, _duplicate(connection, partition_key, session.key)))
                    continue
                if connection.changes():
                    imported += 1
                else:
                    skipped += 1
            if bad:
                connection.execute("ROLLBACK")
                raise InvalidImportError(source, problems, bad)
            connection.execute("COMMIT")
        finally:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
    except apsw.Error as e:
        raise _sqlite.translate(e, store.path) from e
    if progress is not None:
        progress(number)
    return ImportResult(imported, skipped, number)


def _duplicate(connection: apsw.Connection, partition_key: str, key: str) -> str:
    if connection.execute(KEY_EXISTS, (partition_key, key)).fetchone() is not None:
        return f"a session with key {key!r} already exists (use --on-duplicate skip to leave it out)"
    return "another session already has this session_id (use --on-duplicate skip to leave it out)"
