"""``SqliteUserSessionStore.transaction()`` and ``create_user_sessions``: grouping, all-or-nothing, bulk import."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from litesessions import (
    DuplicateSessionError,
    InMemoryUserSessionStore,
    SqliteUserSessionStore,
    StoreClosedError,
    UserSession,
    UserSessionsFilter,
)
from litesessions.store import IMPORT_CACHE_KIB
from tests.conftest import T0, FakeClock, make_session, make_update


def keys_of(store: SqliteUserSessionStore, subject_id: str = "subject-1") -> set[str]:
    return {s.key for s in store.get_user_sessions(UserSessionsFilter(subject_id=subject_id))}


@pytest.fixture
def other(db_path: Path, sqlite_store: SqliteUserSessionStore) -> Iterator[SqliteUserSessionStore]:
    """A second store (its own connection) on the same file, to look from outside a transaction."""
    with SqliteUserSessionStore(db_path) as store:
        yield store


# -- transaction() -----------------------------------------------------------------


def test_transaction_commits_every_call_at_the_end(
    sqlite_store: SqliteUserSessionStore, other: SqliteUserSessionStore
) -> None:
    first, second = make_session(), make_session()
    with sqlite_store.transaction() as tx:
        assert tx is sqlite_store
        sqlite_store.create_user_session(first)
        sqlite_store.create_user_session(second)
        assert sqlite_store.update_user_session(first.key, make_update(subject_id="subject-1"))
        # Its own connection sees the uncommitted work; another connection does not yet.
        assert sqlite_store.get_user_session(second.key) == second
        assert other.get_user_session(first.key) is None
        assert other.get_user_session(second.key) is None
    assert other.get_user_session(second.key) == second
    assert other.get_user_session(first.key) == first.with_update(make_update(subject_id="subject-1"))


def test_transaction_rolls_everything_back_when_the_block_raises(sqlite_store: SqliteUserSessionStore) -> None:
    kept = make_session()
    sqlite_store.create_user_session(kept)
    new = make_session()
    with pytest.raises(RuntimeError, match="boom"), sqlite_store.transaction():
        sqlite_store.create_user_session(new)
        assert sqlite_store.update_user_session(kept.key, make_update())
        assert sqlite_store.delete_user_sessions(UserSessionsFilter(subject_id="subject-2")) == 1
        raise RuntimeError("boom")
    assert sqlite_store.get_user_session(new.key) is None
    assert sqlite_store.get_user_session(kept.key) == kept


def test_a_failed_call_inside_a_transaction_undoes_only_itself(sqlite_store: SqliteUserSessionStore) -> None:
    taken = make_session()
    sqlite_store.create_user_session(taken)
    first, clash = make_session(), make_session(key=taken.key)
    with sqlite_store.transaction():
        sqlite_store.create_user_session(first)
        with pytest.raises(DuplicateSessionError):
            sqlite_store.create_user_session(clash)
        with pytest.raises(DuplicateSessionError):
            sqlite_store.create_user_sessions([make_session(), make_session(session_id=taken.session_id)])
        assert sqlite_store.get_user_session(first.key) == first
    assert sqlite_store.get_user_session(first.key) == first
    assert sqlite_store.get_user_session(taken.key) == taken
    assert keys_of(sqlite_store) == {taken.key, first.key}


def test_nested_transaction_is_a_savepoint(sqlite_store: SqliteUserSessionStore) -> None:
    outer, inner, after = make_session(), make_session(), make_session()
    with sqlite_store.transaction():
        sqlite_store.create_user_session(outer)
        with pytest.raises(KeyError), sqlite_store.transaction():
            sqlite_store.create_user_session(inner)
            raise KeyError("inner only")
        assert sqlite_store.get_user_session(inner.key) is None
        with sqlite_store.transaction():
            sqlite_store.create_user_session(after)
    assert keys_of(sqlite_store) == {outer.key, after.key}


def test_nested_commit_is_still_undone_by_the_outer_rollback(sqlite_store: SqliteUserSessionStore) -> None:
    session = make_session()
    with pytest.raises(ValueError, match="outer"), sqlite_store.transaction():
        with sqlite_store.transaction():
            sqlite_store.create_user_session(session)
        raise ValueError("outer")
    assert sqlite_store.get_user_session(session.key) is None


def test_transaction_on_a_closed_store_raises(sqlite_store: SqliteUserSessionStore) -> None:
    sqlite_store.close()
    with pytest.raises(StoreClosedError), sqlite_store.transaction():
        pass


def test_another_thread_writes_after_the_transaction_commits(sqlite_store: SqliteUserSessionStore) -> None:
    mine, theirs = make_session(), make_session()
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            sqlite_store.create_user_session(theirs)  # its own connection: waits for our write lock
        except BaseException as e:
            errors.append(e)
        done.set()

    with sqlite_store.transaction():
        sqlite_store.create_user_session(mine)
        thread = threading.Thread(target=write)
        thread.start()
        # The other thread is outside our transaction: it cannot finish while we hold the lock.
        assert not done.wait(0.2)
    thread.join(10)
    assert errors == []
    assert keys_of(sqlite_store) == {mine.key, theirs.key}


# -- create_user_sessions ----------------------------------------------------------


def test_bulk_import_stores_everything_and_returns_the_count(sqlite_store: SqliteUserSessionStore) -> None:
    sessions = [make_session(expires=None if i % 3 == 0 else T0 + timedelta(hours=i)) for i in range(50)]
    assert sqlite_store.create_user_sessions(sessions) == 50
    for session in sessions:
        assert sqlite_store.get_user_session(session.key) == session


def test_bulk_import_takes_any_iterable(sqlite_store: SqliteUserSessionStore) -> None:
    sessions = [make_session() for _ in range(5)]
    assert sqlite_store.create_user_sessions(s for s in sessions) == 5
    assert sqlite_store.create_user_sessions(()) == 0
    assert sqlite_store.create_user_sessions(iter([])) == 0
    assert keys_of(sqlite_store) == {s.key for s in sessions}


def test_bulk_import_of_an_existing_key_stores_nothing(sqlite_store: SqliteUserSessionStore) -> None:
    taken = make_session()
    sqlite_store.create_user_session(taken)
    batch = [make_session(), make_session(key=taken.key, ticket="other"), make_session()]
    with pytest.raises(DuplicateSessionError, match="nothing was stored"):
        sqlite_store.create_user_sessions(batch)
    assert keys_of(sqlite_store) == {taken.key}
    assert sqlite_store.get_user_session(taken.key) == taken


def test_bulk_import_of_a_taken_session_id_stores_nothing(sqlite_store: SqliteUserSessionStore) -> None:
    taken = make_session()
    sqlite_store.create_user_session(taken)
    with pytest.raises(DuplicateSessionError):
        sqlite_store.create_user_sessions([make_session(), make_session(session_id=taken.session_id)])
    assert keys_of(sqlite_store) == {taken.key}


@pytest.mark.parametrize("field", ["key", "session_id"])
def test_bulk_import_with_a_duplicate_inside_the_input_stores_nothing(
    sqlite_store: SqliteUserSessionStore, field: str
) -> None:
    first = make_session()
    second = make_session(**{field: getattr(first, field)})
    with pytest.raises(DuplicateSessionError):
        sqlite_store.create_user_sessions([first, make_session(), second])
    assert keys_of(sqlite_store) == set()


def test_bulk_import_of_a_wrong_item_raises_type_error_and_stores_nothing(
    sqlite_store: SqliteUserSessionStore,
) -> None:
    batch: list[Any] = [make_session(), make_session(), {"key": "not a session"}]
    with pytest.raises(TypeError, match="UserSession"):
        sqlite_store.create_user_sessions(batch)
    assert keys_of(sqlite_store) == set()


def test_an_error_raised_by_the_input_stores_nothing(sqlite_store: SqliteUserSessionStore) -> None:
    def sessions() -> Iterator[UserSession]:
        yield make_session()
        yield make_session()
        raise OSError("the export file ended early")

    with pytest.raises(OSError, match="ended early"):
        sqlite_store.create_user_sessions(sessions())
    assert keys_of(sqlite_store) == set()
    # The store is still usable, and not left inside a transaction.
    session = make_session()
    sqlite_store.create_user_session(session)
    assert sqlite_store.get_user_session(session.key) == session


def test_bulk_import_respects_the_partition(db_path: Path, clock: FakeClock) -> None:
    shared = make_session()
    with (
        SqliteUserSessionStore(db_path, partition_key="a", clock=clock) as a,
        SqliteUserSessionStore(db_path, partition_key="b", clock=clock) as b,
    ):
        assert a.create_user_sessions([shared]) == 1
        assert b.create_user_sessions([shared]) == 1  # same key and session id, other partition
        assert b.get_user_sessions(UserSessionsFilter(subject_id=shared.subject_id)) == [shared]
        assert a.delete_user_session(shared.key)
        assert b.get_user_session(shared.key) == shared


def test_bulk_import_inside_a_transaction_is_rolled_back_with_it(sqlite_store: SqliteUserSessionStore) -> None:
    sessions = [make_session() for _ in range(3)]
    with pytest.raises(RuntimeError), sqlite_store.transaction():
        assert sqlite_store.create_user_sessions(sessions) == 3
        raise RuntimeError
    assert keys_of(sqlite_store) == set()


def test_bulk_import_restores_the_page_cache_size(sqlite_store: SqliteUserSessionStore) -> None:
    # The import raises the cache for its own duration only: afterwards (even
    # after a failure) the connection's memory use is back to normal.
    connection = sqlite_store._connection()
    before = connection.execute("PRAGMA cache_size").fetchall()[0][0]
    assert before != -IMPORT_CACHE_KIB
    sqlite_store.create_user_sessions([make_session() for _ in range(3)])
    assert connection.execute("PRAGMA cache_size").fetchall()[0][0] == before
    with pytest.raises(TypeError):
        sqlite_store.create_user_sessions([make_session(), "x"])  # type: ignore[list-item]
    assert connection.execute("PRAGMA cache_size").fetchall()[0][0] == before


def test_bulk_import_on_a_closed_store_raises(sqlite_store: SqliteUserSessionStore) -> None:
    sqlite_store.close()
    with pytest.raises(StoreClosedError):
        sqlite_store.create_user_sessions([make_session()])


# -- against the reference: bulk import == one create after another, or nothing ---------

_pool = st.sampled_from(["k1", "k2", "k3", "k4", "k5", "k6"])
_sids = st.none() | st.sampled_from(["s1", "s2", "s3", "s4"])
_micros = st.integers(min_value=-(10**15), max_value=10**16)  # 1938 .. 2286: both conversion paths


@st.composite
def batches(draw: st.DrawFn) -> list[UserSession]:
    from litesessions.models import from_micros

    count = draw(st.integers(min_value=0, max_value=6))
    out = []
    for _ in range(count):
        expires = draw(st.none() | _micros)
        out.append(
            UserSession(
                key=draw(_pool),
                subject_id="subject-1",
                session_id=draw(_sids),
                created=from_micros(draw(_micros)),
                renewed=from_micros(draw(_micros)),
                expires=None if expires is None else from_micros(expires),
                ticket=draw(st.text(max_size=8)),
            )
        )
    return out


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(existing=batches(), batch=batches())
def test_bulk_import_is_all_or_nothing_like_the_reference(
    tmp_path: Path, existing: list[UserSession], batch: list[UserSession]
) -> None:
    reference = InMemoryUserSessionStore()
    path = tmp_path / f"prop-{os.getpid()}-{id(batch)}.db"
    with SqliteUserSessionStore(path) as store:
        for session in existing:
            try:
                reference.create_user_session(session)
            except DuplicateSessionError:
                continue
            store.create_user_session(session)
        before = sorted(s.key for s in reference.get_user_sessions(UserSessionsFilter(subject_id="subject-1")))
        # The reference, one create after another, decides whether the whole batch may go in.
        trial = InMemoryUserSessionStore()
        for session in reference.get_user_sessions(UserSessionsFilter(subject_id="subject-1")):
            trial.create_user_session(session)
        try:
            for session in batch:
                trial.create_user_session(session)
            expected: InMemoryUserSessionStore | None = trial
        except DuplicateSessionError:
            expected = None
        if expected is None:
            with pytest.raises(DuplicateSessionError):
                store.create_user_sessions(batch)
            assert sorted(keys_of(store)) == before
        else:
            assert store.create_user_sessions(batch) == len(batch)
            want = expected.get_user_sessions(UserSessionsFilter(subject_id="subject-1"))
            got = store.get_user_sessions(UserSessionsFilter(subject_id="subject-1"))
            assert sorted(got, key=lambda s: s.key) == sorted(want, key=lambda s: s.key)
    path.unlink()


# -- a large import (CI: shortened; LITESESSIONS_FULL=1: a million) ---------------------


@pytest.mark.slow
def test_large_bulk_import(tmp_path: Path) -> None:
    count = 1_000_000 if os.environ.get("LITESESSIONS_FULL") else 20_000
    ticket = "t" * 2048

    def sessions() -> Iterator[UserSession]:
        for i in range(count):
            yield UserSession(
                key=f"key-{i}",
                subject_id=f"subject-{i // 10}",
                session_id=f"sid-{i}",
                created=T0,
                renewed=T0 + timedelta(microseconds=i),
                expires=T0 + timedelta(hours=8, microseconds=i),
                ticket=ticket,
            )

    with SqliteUserSessionStore(tmp_path / "large.db") as store:
        assert store.create_user_sessions(sessions()) == count
        for i in (0, count // 2, count - 1):
            got = store.get_user_session(f"key-{i}")
            assert got is not None
            assert got.renewed == T0 + timedelta(microseconds=i)
            assert got.session_id == f"sid-{i}"
        assert len(store.get_user_sessions(UserSessionsFilter(subject_id=f"subject-{count // 10 - 1}"))) == 10
        with pytest.raises(DuplicateSessionError):
            store.create_user_sessions([make_session(), make_session(key=f"key-{count - 1}")])
        assert store.get_user_session(f"key-{count - 1}") is not None
