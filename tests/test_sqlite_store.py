"""What is particular to the SQLite store: the file, persistence, partitions, threads, schema versions."""

from __future__ import annotations

import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litesessions import (
    ConfigurationError,
    DuplicateSessionError,
    NotADatabaseError,
    SchemaVersionError,
    SessionCleanup,
    SqliteUserSessionStore,
    StoreClosedError,
    StoreOpenError,
    UserSession,
    UserSessionsFilter,
)
from litesessions.schema import SCHEMA_VERSION
from tests.conftest import T0, FakeClock, make_session, make_update


def test_reopening_finds_everything(db_path: Path) -> None:
    sessions = [make_session(subject_id="s", expires=None if i % 2 else T0) for i in range(20)]
    with SqliteUserSessionStore(db_path) as store:
        for s in sessions:
            store.create_user_session(s)
        store.update_user_session(sessions[0].key, make_update(subject_id="s"))
        store.delete_user_session(sessions[1].key)
    with SqliteUserSessionStore(db_path) as store:
        found = sorted(store.get_user_sessions(UserSessionsFilter(subject_id="s")), key=lambda s: s.key)
    expected = sorted([sessions[0].with_update(make_update(subject_id="s")), *sessions[2:]], key=lambda s: s.key)
    assert found == expected


def test_new_file_has_the_schema_in_wal_mode_and_mode_0600(db_path: Path) -> None:
    old = os.umask(0o000)
    try:
        with SqliteUserSessionStore(db_path) as store:
            store.create_user_session(make_session())
            assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
            for suffix in ("-wal", "-shm"):
                assert stat.S_IMODE(os.stat(f"{db_path}{suffix}").st_mode) == 0o600
    finally:
        os.umask(old)
    connection = apsw.Connection(str(db_path))
    assert connection.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
    version = connection.execute("SELECT value FROM litesessions_meta WHERE name = 'schema_version'").fetchall()
    assert version == [(SCHEMA_VERSION,)]
    connection.close()


def test_partitions_are_isolated(db_path: Path, clock: FakeClock) -> None:
    with (
        SqliteUserSessionStore(db_path, partition_key="one", clock=clock) as one,
        SqliteUserSessionStore(db_path, partition_key="two", clock=clock) as two,
    ):
        a = make_session(key="k", session_id="sid", subject_id="sub")
        b = make_session(key="k", session_id="sid", subject_id="sub", ticket="two")
        one.create_user_session(a)
        two.create_user_session(b)
        assert one.get_user_session("k") == a and two.get_user_session("k") == b
        assert one.delete_user_sessions(UserSessionsFilter(subject_id="sub")) == 1
        assert two.get_user_sessions(UserSessionsFilter(session_id="sid")) == [b]
        assert one.update_user_session("k", make_update()) is False
        # cleanup spans partitions, whichever store it is attached to
        clock.advance(days=1)
        assert SessionCleanup(one).delete_expired_sessions() == 1
        assert two.get_user_session("k") is None


def test_an_application_can_keep_its_own_tables_in_the_same_file(db_path: Path) -> None:
    app = apsw.Connection(str(db_path))
    app.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    app.execute("INSERT INTO users (name) VALUES ('alice')")
    app.execute("PRAGMA user_version = 42")
    with SqliteUserSessionStore(db_path) as store:
        store.create_user_session(make_session(key="k"))
    assert app.execute("SELECT name FROM users").fetchall() == [("alice",)]
    assert app.execute("PRAGMA user_version").fetchall() == [(42,)]
    app.close()
    with SqliteUserSessionStore(db_path) as store:
        assert store.get_user_session("k") is not None


def test_two_threads_share_one_store(sqlite_store: SqliteUserSessionStore) -> None:
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for i in range(200):
                key = f"{name}-{i}"
                sqlite_store.create_user_session(make_session(key=key, subject_id=name, session_id=key))
                assert sqlite_store.update_user_session(key, make_update(subject_id=name, session_id=key))
                if i % 3 == 0:
                    assert sqlite_store.delete_user_session(key)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for name in ("t1", "t2"):
        got = sqlite_store.get_user_sessions(UserSessionsFilter(subject_id=name))
        assert sorted(s.key for s in got) == sorted(f"{name}-{i}" for i in range(200) if i % 3)
        assert all(s.ticket == "updated-ticket" for s in got)


def test_every_method_raises_after_close(db_path: Path) -> None:
    store = SqliteUserSessionStore(db_path)
    store.create_user_session(make_session(key="k"))
    store.close()
    store.close()  # idempotent
    calls = [
        lambda: store.get_user_session("k"),
        lambda: store.create_user_session(make_session()),
        lambda: store.create_user_sessions([make_session()]),
        lambda: store.update_user_session("k", make_update()),
        lambda: store.delete_user_session("k"),
        lambda: store.get_user_sessions(UserSessionsFilter(subject_id="subject-1")),
        lambda: store.delete_user_sessions(UserSessionsFilter(subject_id="subject-1")),
        lambda: SessionCleanup(store).delete_expired_sessions(),
        lambda: store.transaction().__enter__(),
        lambda: store.__enter__(),
    ]
    for call in calls:
        with pytest.raises(StoreClosedError):
            call()
    with SqliteUserSessionStore(db_path) as again:
        assert again.get_user_session("k") is not None


def test_close_from_another_thread_closes_every_connection(db_path: Path) -> None:
    store = SqliteUserSessionStore(db_path)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (store.get_user_session("k"), done.set()))
    thread.start()
    thread.join()
    assert done.is_set()
    store.close()
    # with every connection closed, SQLite removed the WAL file on the last close
    assert not os.path.exists(f"{db_path}-wal")


def test_newer_schema_version_is_refused_and_the_file_left_untouched(db_path: Path) -> None:
    with SqliteUserSessionStore(db_path) as store:
        store.create_user_session(make_session())
    connection = apsw.Connection(str(db_path))
    connection.execute("UPDATE litesessions_meta SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION + 1,))
    connection.close()
    before = db_path.read_bytes()
    with pytest.raises(SchemaVersionError, match="upgrade litesessions"):
        SqliteUserSessionStore(db_path)
    assert db_path.read_bytes() == before


@pytest.mark.parametrize("content", [b"hello, this is not a database" * 100, os.urandom(8192)])
def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(db_path: Path, content: bytes) -> None:
    db_path.write_bytes(content)
    with pytest.raises(NotADatabaseError, match="not a SQLite database") as info:
        SqliteUserSessionStore(db_path)
    assert isinstance(info.value.__cause__, apsw.Error)
    assert db_path.read_bytes() == content


@pytest.mark.parametrize("path", [":memory:", ""])
def test_non_file_paths_are_refused(path: str) -> None:
    with pytest.raises(StoreOpenError):
        SqliteUserSessionStore(path)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="does not exist"):
        SqliteUserSessionStore(tmp_path / "nope" / "sessions.db")
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"durability": "fast"}, ConfigurationError),
        ({"durability": 1}, TypeError),
        ({"busy_timeout": -1}, ConfigurationError),
        ({"busy_timeout": "5"}, TypeError),
        ({"busy_timeout": True}, TypeError),
        ({"partition_key": None}, TypeError),
        ({"partition_key": "\ud800"}, ConfigurationError),
        ({"clock": "now"}, TypeError),
    ],
)
def test_bad_options_are_refused_before_the_file_is_created(
    db_path: Path, kwargs: dict[str, object], error: type
) -> None:
    with pytest.raises(error):
        SqliteUserSessionStore(db_path, **kwargs)  # type: ignore[arg-type]
    assert not db_path.exists()
    with pytest.raises(TypeError):
        SqliteUserSessionStore(42)  # type: ignore[arg-type]


def test_clock_returning_naive_datetime_is_a_configuration_error(db_path: Path) -> None:
    from datetime import datetime

    with SqliteUserSessionStore(db_path, clock=datetime.now) as store:
        with pytest.raises(ConfigurationError, match="aware"):
            SessionCleanup(store).delete_expired_sessions()


def test_durability_full_sets_synchronous_full(db_path: Path) -> None:
    with SqliteUserSessionStore(db_path, durability="full") as store:
        assert store._connection().execute("PRAGMA synchronous").fetchall() == [(2,)]
    with SqliteUserSessionStore(db_path) as store:
        assert store._connection().execute("PRAGMA synchronous").fetchall() == [(1,)]


def test_transaction_commits_together_and_rolls_back_on_error(sqlite_store: SqliteUserSessionStore) -> None:
    with sqlite_store.transaction():
        sqlite_store.create_user_session(make_session(key="a"))
        sqlite_store.create_user_session(make_session(key="b"))
    assert sqlite_store.get_user_session("a") and sqlite_store.get_user_session("b")
    with pytest.raises(RuntimeError), sqlite_store.transaction():
        sqlite_store.create_user_session(make_session(key="c"))
        sqlite_store.delete_user_session("a")
        raise RuntimeError("boom")
    assert sqlite_store.get_user_session("c") is None
    assert sqlite_store.get_user_session("a") is not None


def test_a_duplicate_inside_a_transaction_undoes_only_that_call(sqlite_store: SqliteUserSessionStore) -> None:
    with sqlite_store.transaction():
        sqlite_store.create_user_session(make_session(key="a"))
        with pytest.raises(DuplicateSessionError):
            sqlite_store.create_user_session(make_session(key="a"))
        sqlite_store.create_user_session(make_session(key="b"))
    assert sqlite_store.get_user_session("a") and sqlite_store.get_user_session("b")


def test_cleanup_deletes_in_bounded_batches(sqlite_store: SqliteUserSessionStore, clock: FakeClock) -> None:
    sqlite_store.create_user_sessions(make_session(expires=T0 + timedelta(seconds=i)) for i in range(1000))
    sqlite_store.create_user_sessions(make_session(expires=None) for _ in range(10))
    statements: list[str] = []

    def trace(cursor: apsw.Cursor, sql: str, bindings: object) -> bool:
        statements.append(sql)
        return True

    connection = sqlite_store._connection()
    connection.exec_trace = trace
    clock.advance(days=1)
    assert SessionCleanup(sqlite_store, batch_size=64).delete_expired_sessions() == 1000
    connection.exec_trace = None
    # 1000 rows in batches of 64: 15 full batches and one short one, each its own transaction
    assert statements.count("BEGIN IMMEDIATE") == 16
    assert statements.count("COMMIT") == 16
    assert len(sqlite_store.get_user_sessions(UserSessionsFilter(subject_id="subject-1"))) == 10


def test_cleanup_rejects_bad_options(sqlite_store: SqliteUserSessionStore) -> None:
    with pytest.raises(ConfigurationError):
        SessionCleanup(sqlite_store, batch_size=0)
    with pytest.raises(TypeError):
        SessionCleanup(sqlite_store, batch_size="10")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SessionCleanup(object())  # type: ignore[arg-type]


_text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and s.encode("utf-8", "ignore").decode() == s)
_when = st.datetimes(timezones=st.timezones(), allow_imaginary=True).filter(
    lambda d: d.utcoffset() is not None and 1 < d.year < 9999
)


@st.composite
def sessions(draw: st.DrawFn) -> UserSession:
    return UserSession(
        key=draw(_text),
        subject_id=draw(_text),
        session_id=draw(st.none() | _text),
        created=draw(_when),
        renewed=draw(_when),
        expires=draw(st.none() | _when),
        ticket=draw(st.text(max_size=2000).filter(lambda s: s.encode("utf-8", "ignore").decode() == s)),
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(session=sessions())
def test_random_sessions_round_trip_through_the_file(tmp_path: Path, session: UserSession) -> None:
    path = tmp_path / "roundtrip.db"
    with SqliteUserSessionStore(path, partition_key="p") as store:
        store.delete_user_session(session.key)
        if session.session_id is not None:
            store.delete_user_sessions(UserSessionsFilter(session_id=session.session_id))
        store.create_user_session(session)
    with SqliteUserSessionStore(path, partition_key="p") as store:
        got = store.get_user_session(session.key)
        assert got == session
        assert got is not None and all(
            d is None or d.utcoffset() == timedelta(0) for d in (got.created, got.renewed, got.expires)
        )
        if session.session_id is not None and session.session_id.strip():
            assert store.get_user_sessions(
                UserSessionsFilter(subject_id=session.subject_id, session_id=session.session_id)
            ) == [session]
        store.delete_user_session(session.key)
