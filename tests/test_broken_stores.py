"""The harness finds bugs: ``check_store`` with its default settings must fail on each of these stores.

Each store below is a correct store (in-memory or SQLite) with ONE realistic
bug.  ``tools/harness_timing.py`` imports :data:`BROKEN` to measure how long
the harness takes to find each one.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import Phase

from litesessions import (
    InMemoryUserSessionStore,
    SessionCleanup,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from litesessions.errors import InvalidFilterError
from litesessions.models import to_micros
from litesessions.store import _COLUMNS, session_params
from litesessions.testing import check_store, harness_settings, strategies

Clock = Callable[[], datetime]
NewPath = Callable[..., str]


def _raw(session: UserSession, **fields: Any) -> UserSession:
    """A copy of ``session`` with ``fields`` set without validation (how a buggy store builds results)."""
    values = {a.name: getattr(session, a.name) for a in attrs.fields(UserSession)}
    values.update(fields)
    obj = object.__new__(UserSession)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


_NAMES = ("key", "subject_id", "session_id", "created", "renewed", "expires", "ticket")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _decode(row: tuple[Any, ...]) -> tuple[Any, ...]:
    key, subject_id, session_id, created, renewed, expires, ticket = row
    at = lambda us: _EPOCH + timedelta(microseconds=us)  # noqa: E731
    return key, subject_id, session_id, at(created), at(renewed), None if expires is None else at(expires), ticket


def _from_rows(rows: Any) -> list[UserSession]:
    return [UserSession(**dict(zip(_NAMES, _decode(row), strict=True))) for row in rows]


# -- in-memory stores with one bug ---------------------------------------------


class OrFilters(InMemoryUserSessionStore):
    """Filters with both criteria match sessions meeting EITHER of them."""

    def _match(self, filter: UserSessionsFilter, s: UserSession) -> bool:
        subject_id, session_id = filter.criteria()
        return (subject_id is not None and s.subject_id == subject_id) or (
            session_id is not None and s.session_id == session_id
        )

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        return [s for s in self._sessions.values() if self._match(filter, s)]

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        doomed = [k for k, s in self._sessions.items() if self._match(filter, s)]
        for key in doomed:
            self._remove(key)
        return len(doomed)


class WhitespaceCriterionIsAValue(InMemoryUserSessionStore):
    """Only ``""`` counts as absent: a criterion of ``" "`` is matched literally."""

    def _criteria(self, filter: UserSessionsFilter) -> tuple[str | None, str | None]:
        subject_id, session_id = filter.subject_id or None, filter.session_id or None
        if subject_id is None and session_id is None:
            raise InvalidFilterError("no criterion")
        return subject_id, session_id

    def _match(self, filter: UserSessionsFilter, s: UserSession) -> bool:
        subject_id, session_id = self._criteria(filter)
        return (subject_id is None or s.subject_id == subject_id) and (session_id is None or s.session_id == session_id)

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        self._criteria(filter)
        return [s for s in self._sessions.values() if self._match(filter, s)]

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        self._criteria(filter)
        doomed = [k for k, s in self._sessions.items() if self._match(filter, s)]
        for key in doomed:
            self._remove(key)
        return len(doomed)


class UpdateUpserts(InMemoryUserSessionStore):
    """Updating a missing key creates the session (an upsert)."""

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        if key not in self._sessions:
            self.create_user_session(UserSession(key=key, **attrs.asdict(update, recurse=False)))
            return True
        return super().update_user_session(key, update)


class CleanupLessOrEqual(InMemoryUserSessionStore):
    """Cleanup deletes sessions with ``expires <= now`` (the contract: strictly before now)."""

    def delete_expired_sessions(self) -> int:
        now = self.clock()
        doomed = [k for k, s in self._sessions.items() if s.expires is not None and s.expires <= now]
        for key in doomed:
            self._remove(key)
        return len(doomed)


class MillisecondTimestamps(InMemoryUserSessionStore):
    """Timestamps are kept to the millisecond (as a JavaScript ``Date`` or ``isoformat(timespec='milliseconds')``)."""

    @staticmethod
    def _truncate(value: datetime | None) -> datetime | None:
        return None if value is None else value.replace(microsecond=value.microsecond // 1000 * 1000)

    def create_user_session(self, session: UserSession) -> None:
        t = self._truncate
        super().create_user_session(
            attrs.evolve(session, created=t(session.created), renewed=t(session.renewed), expires=t(session.expires))
        )

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        t = self._truncate
        return super().update_user_session(
            key, attrs.evolve(update, created=t(update.created), renewed=t(update.renewed), expires=t(update.expires))
        )


class NaiveDatetimes(InMemoryUserSessionStore):
    """Reads return naive UTC datetimes (as ``datetime.utcfromtimestamp`` gives)."""

    @staticmethod
    def _naive(s: UserSession) -> UserSession:
        return _raw(
            s,
            created=s.created.replace(tzinfo=None),
            renewed=s.renewed.replace(tzinfo=None),
            expires=None if s.expires is None else s.expires.replace(tzinfo=None),
        )

    def get_user_session(self, key: str) -> UserSession | None:
        s = super().get_user_session(key)
        return None if s is None else self._naive(s)

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        return [self._naive(s) for s in super().get_user_sessions(filter)]


class UpdateIgnoresIds(InMemoryUserSessionStore):
    """An update (thought of as "renew") replaces the times and the ticket but keeps subject and session id."""

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        old = self._sessions.get(key)
        if old is None:
            return False
        self._sessions[key] = attrs.evolve(
            old, created=update.created, renewed=update.renewed, expires=update.expires, ticket=update.ticket
        )
        return True


class HidesExpiredSessions(InMemoryUserSessionStore):
    """Reads leave out expired sessions (the contract: they are returned until cleanup deletes them)."""

    def _alive(self, s: UserSession) -> bool:
        return s.expires is None or s.expires >= self.clock()

    def get_user_session(self, key: str) -> UserSession | None:
        s = super().get_user_session(key)
        return s if s is not None and self._alive(s) else None

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        return [s for s in super().get_user_sessions(filter) if self._alive(s)]


# -- SQLite stores with one bug ------------------------------------------------


class EmptyFilterAccepted(SqliteUserSessionStore):
    """The WHERE clause is built from the criteria present; with none, it matches the whole partition."""

    def _where(self, filter: UserSessionsFilter) -> tuple[str, tuple[str, ...]]:
        clauses, values = ["partition_key = ?"], [self.partition_key]
        for column in ("subject_id", "session_id"):
            value = getattr(filter, column)
            if value and value.strip():
                clauses.append(f"{column} = ?")
                values.append(value)
        return " AND ".join(clauses), tuple(values)

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        where, values = self._where(filter)
        sql = f"SELECT {_COLUMNS} FROM litesessions_sessions WHERE {where}"
        return _from_rows(self._connection().execute(sql, values))

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        where, values = self._where(filter)
        connection = self._connection()
        with connection:
            connection.execute(f"DELETE FROM litesessions_sessions WHERE {where}", values)
            return connection.changes()


class DuplicateCreateOverwrites(SqliteUserSessionStore):
    """``INSERT OR REPLACE``: creating an existing key replaces the stored session."""

    def create_user_session(self, session: UserSession) -> None:
        connection = self._connection()
        with connection:
            connection.execute(
                "INSERT OR REPLACE INTO litesessions_sessions"
                " (partition_key, key, subject_id, session_id, created, renewed, expires, ticket)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                session_params(self.partition_key, session),
            )


def drop_session_id_index(path: str) -> None:
    """The bug of "session id not unique": a file whose unique index on (partition_key, session_id) is missing."""
    with SqliteUserSessionStore(path) as store:
        store._connection().execute("DROP INDEX litesessions_sessions_session_id")


class TotalChangesAsCount(SqliteUserSessionStore):
    """Deletes report ``connection.total_changes()`` (changes since the connection opened) as their count."""

    def _delete(self, sql: str, params: tuple[Any, ...]) -> int:
        connection = self._connection()
        with connection:
            connection.execute(sql, params)
        return connection.total_changes()


class CaseInsensitiveMatching(SqliteUserSessionStore):
    """Filters compare with ``COLLATE NOCASE``: ``"alice"`` also finds ``"Alice"``."""

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        subject_id, session_id = filter.criteria()
        sql = f"SELECT {_COLUMNS} FROM litesessions_sessions WHERE partition_key = ?"
        values: list[str] = [self.partition_key]
        if subject_id is not None:
            sql += " AND subject_id = ? COLLATE NOCASE"
            values.append(subject_id)
        if session_id is not None:
            sql += " AND session_id = ? COLLATE NOCASE"
            values.append(session_id)
        return _from_rows(self._connection().execute(sql, values))


class PartitionLeak(SqliteUserSessionStore):
    """``get_user_sessions`` forgets ``partition_key = ?``: it also returns other partitions' sessions."""

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        subject_id, session_id = filter.criteria()
        clauses = [c for c, v in (("subject_id = ?", subject_id), ("session_id = ?", session_id)) if v is not None]
        values = [v for v in (subject_id, session_id) if v is not None]
        sql = f"SELECT {_COLUMNS} FROM litesessions_sessions WHERE {' AND '.join(clauses)}"
        return _from_rows(self._connection().execute(sql, values))


class StaleReadCache:
    """A read-through cache in front of a SQLite store, cleared on create and delete but NOT on update."""

    def __init__(self, store: SqliteUserSessionStore) -> None:
        self.store = store
        self.cache: dict[str, UserSession | None] = {}

    def get_user_session(self, key: str) -> UserSession | None:
        if key not in self.cache:
            self.cache[key] = self.store.get_user_session(key)
        return self.cache[key]

    def create_user_session(self, session: UserSession) -> None:
        self.cache.pop(session.key, None)
        self.store.create_user_session(session)

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        return self.store.update_user_session(key, update)

    def delete_user_session(self, key: str) -> bool:
        self.cache.pop(key, None)
        return self.store.delete_user_session(key)

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        return self.store.get_user_sessions(filter)

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        self.cache.clear()
        return self.store.delete_user_sessions(filter)

    def close(self) -> None:
        self.store.close()


class _BrokenCleanup(SessionCleanup):
    """A ``SessionCleanup`` whose batch statement or loop has a bug."""

    sql = (
        "DELETE FROM litesessions_sessions WHERE id IN (SELECT id FROM litesessions_sessions WHERE expires < ? LIMIT ?)"
    )
    one_batch_only = False

    def delete_expired_sessions(self) -> int:
        now = to_micros(self.clock())
        connection = self.store._connection()
        total = 0
        while True:
            with connection:
                connection.execute(self.sql, (now, self.batch_size))
                deleted = connection.changes()
            total += deleted
            if self.one_batch_only or deleted < self.batch_size:
                return total


class CleanupDeletesNeverExpiring(_BrokenCleanup):
    """``COALESCE(expires, 0) < now``: sessions that never expire (NULL) count as expired in 1970."""

    sql = (
        "DELETE FROM litesessions_sessions WHERE id IN"
        " (SELECT id FROM litesessions_sessions WHERE COALESCE(expires, 0) < ? LIMIT ?)"
    )


class CleanupStopsAfterOneBatch(_BrokenCleanup):
    """Cleanup deletes one batch and returns, leaving the rest of the expired sessions."""

    one_batch_only = True


# -- the cases -----------------------------------------------------------------

Factory = Callable[[NewPath], tuple[Callable[[Clock], Any], Callable[[Any, Clock], Any] | None]]


def _memory(cls: type[InMemoryUserSessionStore]) -> Factory:
    def factory(new_path: NewPath) -> tuple[Callable[[Clock], Any], None]:
        def make_store(clock: Clock) -> Any:
            return cls(clock=clock)

        make_store.__qualname__ = f"broken_{cls.__name__}"
        return make_store, None

    return factory


def _sqlite(
    cls: type[SqliteUserSessionStore] = SqliteUserSessionStore,
    cleanup: type[SessionCleanup] = SessionCleanup,
    *,
    batch_size: int = 100,
    wrap: Callable[[SqliteUserSessionStore], Any] | None = None,
    populate: Callable[[str], None] | None = None,
    name: str = "",
) -> Factory:
    def factory(new_path: NewPath) -> tuple[Callable[[Clock], Any], Callable[[Any, Clock], Any]]:
        def make_store(clock: Clock) -> Any:
            store = cls(new_path(populate), clock=clock)
            return wrap(store) if wrap is not None else store

        def make_cleanup(store: Any, clock: Clock) -> Any:
            return cleanup(getattr(store, "store", store), batch_size=batch_size)

        make_store.__qualname__ = f"broken_{name or cls.__name__}"
        return make_store, make_cleanup

    return factory


# Sessions of another application in the same file: one for every subject id
# and session id of the strategies' pools, which the harness draws often.
OTHER_PARTITION = "other-application"


def populate_other_partition(path: str) -> None:
    """Fill partition :data:`OTHER_PARTITION` of ``path`` with never-expiring sessions."""
    t = datetime(2000, 1, 1, tzinfo=timezone.utc)
    with SqliteUserSessionStore(path, partition_key=OTHER_PARTITION) as other:
        other.create_user_sessions(
            UserSession(key=f"other-{i}", subject_id=subject, session_id=sid, created=t, renewed=t, ticket="theirs")
            for i, (subject, sid) in enumerate(zip(strategies.SUBJECT_ID_POOL, strategies.SESSION_ID_POOL, strict=True))
        )


def _partitioned(cls: type[SqliteUserSessionStore]) -> Factory:
    """The store under test in partition "mine" of a file whose other partition is already populated."""

    def factory(new_path: NewPath) -> tuple[Callable[[Clock], Any], Callable[[Any, Clock], Any]]:
        def make_store(clock: Clock) -> Any:
            return cls(new_path(populate_other_partition), partition_key="mine", clock=clock)

        def make_cleanup(store: Any, clock: Clock) -> Any:
            return SessionCleanup(store)

        make_store.__qualname__ = f"partitioned_{cls.__name__}"
        return make_store, make_cleanup

    return factory


BROKEN: dict[str, Factory] = {
    "filters ORed instead of ANDed": _memory(OrFilters),
    "empty filter accepted": _sqlite(EmptyFilterAccepted),
    "whitespace criterion treated as a value": _memory(WhitespaceCriterionIsAValue),
    "update that upserts": _memory(UpdateUpserts),
    "duplicate create that overwrites": _sqlite(DuplicateCreateOverwrites),
    "cleanup with <=": _memory(CleanupLessOrEqual),
    "cleanup deleting never-expiring sessions": _sqlite(cleanup=CleanupDeletesNeverExpiring, name="never_expiring"),
    "cleanup that stops after one batch": _sqlite(cleanup=CleanupStopsAfterOneBatch, batch_size=2, name="one_batch"),
    "wrong counts returned (total_changes)": _sqlite(TotalChangesAsCount),
    "datetimes truncated to milliseconds": _memory(MillisecondTimestamps),
    "datetimes returned naive": _memory(NaiveDatetimes),
    "update that ignores subject/session id": _memory(UpdateIgnoresIds),
    "read cache not invalidated on update": _sqlite(wrap=StaleReadCache, name="stale_cache"),
    "partition leak in get_user_sessions": _partitioned(PartitionLeak),
    "session id not unique (index missing)": _sqlite(populate=drop_session_id_index, name="no_sid_index"),
    "expired sessions hidden from reads": _memory(HidesExpiredSessions),
    "case-insensitive matching (COLLATE NOCASE)": _sqlite(CaseInsensitiveMatching),
}


def path_factory(directory: str | os.PathLike[str]) -> NewPath:
    """A new database file in ``directory`` on every call (make_store runs once per test case).

    Each is a copy of one store file made on the first call (empty, or
    filled by ``populate``): creating
    a store from nothing costs ~50 ms of fsyncs (WAL switch, schema
    migration, checkpoint), a copy well under 1 ms, and Hypothesis calls
    make_store hundreds of times while shrinking.
    """
    counter = itertools.count()

    def new_path(populate: Callable[[str], None] | None = None) -> str:
        template = os.path.join(directory, f"template-{populate.__name__ if populate else 'empty'}.db")
        if not os.path.exists(template):
            SqliteUserSessionStore(template).close()
            if populate is not None:
                populate(template)
        path = os.path.join(directory, f"store-{next(counter)}.db")
        shutil.copyfile(template, path)
        return path

    return new_path


TIMINGS: dict[str, float] = {}


# CI runs the shortened form: check_store's default settings minus the shrink
# phase, so the search (what finds the bug) is exactly the default one but the
# minimal example is not sought; LITESESSIONS_FULL=1 runs the true defaults
# (tools/harness_timing.py measures those, shrinking included).
FULL = bool(os.environ.get("LITESESSIONS_FULL"))
SEARCH_ONLY = harness_settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BROKEN))
def test_check_store_finds_the_bug(
    name: str, tmp_path: Path, record_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> None:
    make_store, make_cleanup = BROKEN[name](path_factory(tmp_path))
    start = time.perf_counter()
    with pytest.raises(AssertionError) as failure:
        check_store(make_store, make_cleanup=make_cleanup, settings=None if FULL else SEARCH_ONLY)
    elapsed = time.perf_counter() - start
    TIMINGS[name] = elapsed
    record_property("seconds_to_fail", round(elapsed, 2))
    # The report names an operation, expected vs actual, and carries the reproduction.
    message = str(failure.value)
    assert "expected" in message
    assert "state = CheckStore[" in message
    with capsys.disabled():
        print(f"\n[harness] {name}: failed after {elapsed:.2f} s ({'default settings' if FULL else 'no shrinking'})")


def test_a_correct_store_beside_a_populated_partition_passes(tmp_path: Path) -> None:
    """The control for the partition-leak case: the same setup with the real store passes."""
    make_store, make_cleanup = _partitioned(SqliteUserSessionStore)(path_factory(tmp_path))
    check_store(make_store, make_cleanup=make_cleanup)


def test_the_other_partition_really_overlaps_what_the_harness_draws() -> None:
    # Guard for the partition-leak case: it is only found if the pools overlap the pre-populated ids.
    path = os.path.join(tempfile.mkdtemp(), "overlap.db")
    populate_other_partition(path)
    with SqliteUserSessionStore(path, partition_key=OTHER_PARTITION) as other:
        found = other.get_user_sessions(UserSessionsFilter(subject_id=strategies.SUBJECT_ID_POOL[0]))
    assert [s.ticket for s in found] == ["theirs"]
