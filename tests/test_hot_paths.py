"""The optimised read path (``session_from_row``) gives exactly what the plain conversion gives.

``session_from_row`` converts timestamps with ``datetime.fromtimestamp`` below
2**31 seconds after the epoch and with ``epoch + timedelta`` elsewhere; both
must give back the stored microsecond exactly, on either side of the bound.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litesessions import (
    DuplicateSessionError,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from litesessions.models import _FAST_MICROS, from_micros, session_from_row, to_micros
from litesessions.store import RENEW, UPDATE
from tests.conftest import T0, make_session

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_MICROS = to_micros(datetime(1, 1, 2, tzinfo=timezone.utc))
MAX_MICROS = to_micros(datetime(9999, 12, 30, tzinfo=timezone.utc))

# The whole datetime range, and a dense band around each edge of the fast path.
micros = st.one_of(
    st.integers(min_value=MIN_MICROS, max_value=MAX_MICROS),
    st.integers(min_value=-5_000_000, max_value=5_000_000),
    st.integers(min_value=_FAST_MICROS - 5_000_000, max_value=_FAST_MICROS + 5_000_000),
    st.integers(min_value=0, max_value=_FAST_MICROS - 1),
)


def reference(m: int) -> datetime:
    return EPOCH + timedelta(microseconds=m)


@given(created=micros, renewed=micros, expires=st.none() | micros)
def test_session_from_row_is_exact(created: int, renewed: int, expires: int | None) -> None:
    session = session_from_row("k", "s", None, created, renewed, expires, "t")
    assert type(session) is UserSession
    assert session.created == reference(created)
    assert session.renewed == reference(renewed)
    assert session.expires == (None if expires is None else reference(expires))
    for value in (session.created, session.renewed, session.expires):
        if value is not None:
            assert type(value) is datetime
            assert value.tzinfo is timezone.utc
    assert to_micros(session.created) == created
    assert to_micros(session.renewed) == renewed


def test_the_edges_of_the_fast_path() -> None:
    for m in (0, 1, -1, 999_999, 1_000_000, _FAST_MICROS - 1, _FAST_MICROS, _FAST_MICROS + 1):
        assert session_from_row("k", "s", None, m, m, m, "t").created == from_micros(m) == reference(m)


def test_equal_to_a_validated_session_and_fields_are_shared_only_when_equal() -> None:
    c = to_micros(datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=timezone.utc))
    built = session_from_row("key", "alice", "sid", c, c, c + 1, "ticket")
    validated = UserSession(
        key="key",
        subject_id="alice",
        session_id="sid",
        created=from_micros(c),
        renewed=from_micros(c),
        expires=from_micros(c + 1),
        ticket="ticket",
    )
    assert built == validated
    assert hash(built) == hash(validated)
    assert built.renewed is built.created  # one immutable object for two equal fields
    assert built.expires != built.created


@given(
    times=st.lists(st.integers(min_value=MIN_MICROS, max_value=MAX_MICROS), min_size=3, max_size=3),
    none_expires=st.booleans(),
)
def test_store_round_trip_through_the_read_paths(
    tmp_path_factory: pytest.TempPathFactory, times: list[int], none_expires: bool
) -> None:
    path = tmp_path_factory.mktemp("hot") / "s.db"
    created, renewed, expires = (from_micros(m) for m in times)
    session = UserSession(
        key="k",
        subject_id="alice",
        session_id="sid",
        created=created,
        renewed=renewed,
        expires=None if none_expires else expires,
        ticket="t",
    )
    with SqliteUserSessionStore(path) as store:
        store.create_user_session(session)
        assert store.get_user_session("k") == session
        assert store.get_user_sessions(UserSessionsFilter(subject_id="alice")) == [session]
        assert store.get_user_sessions(UserSessionsFilter(session_id="sid")) == [session]
        assert store.get_user_sessions(UserSessionsFilter(subject_id="alice", session_id="sid")) == [session]


# -- renewal: the RENEW statement first, UPDATE when more than a renewal changes ---------


def renewal_of(session: UserSession, **changes: object) -> UserSessionUpdate:
    fields: dict[str, object] = {
        "subject_id": session.subject_id,
        "session_id": session.session_id,
        "created": session.created,
        "renewed": session.renewed + timedelta(minutes=5),
        "expires": None if session.expires is None else session.expires + timedelta(minutes=5),
        "ticket": session.ticket + "-renewed",
    }
    fields.update(changes)
    return UserSessionUpdate(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {},  # a plain sliding renewal: RENEW alone
        {"expires": None},
        {"subject_id": "bob"},  # each of these makes RENEW miss, so UPDATE runs
        {"session_id": None},
        {"session_id": "sid-new"},
        {"created": datetime(2025, 1, 1, tzinfo=timezone.utc)},
    ],
)
@pytest.mark.parametrize("session_id", ["sid", None])
def test_update_replaces_every_field_whichever_statement_runs(
    sqlite_store: SqliteUserSessionStore, changes: dict[str, object], session_id: str | None
) -> None:
    session = make_session(session_id=session_id)
    neighbour = make_session()
    sqlite_store.create_user_session(session)
    sqlite_store.create_user_session(neighbour)
    update = renewal_of(session, **changes)
    assert sqlite_store.update_user_session(session.key, update)
    assert sqlite_store.get_user_session(session.key) == session.with_update(update)
    assert sqlite_store.get_user_session(neighbour.key) == neighbour


def test_update_of_a_missing_key_creates_nothing_on_either_path(sqlite_store: SqliteUserSessionStore) -> None:
    session = make_session()
    assert not sqlite_store.update_user_session(session.key, renewal_of(session))
    assert sqlite_store.get_user_session(session.key) is None


def test_update_into_a_taken_session_id_changes_nothing(sqlite_store: SqliteUserSessionStore) -> None:
    session, holder = make_session(), make_session()
    sqlite_store.create_user_session(session)
    sqlite_store.create_user_session(holder)
    with pytest.raises(DuplicateSessionError):
        sqlite_store.update_user_session(session.key, renewal_of(session, session_id=holder.session_id))
    assert sqlite_store.get_user_session(session.key) == session


def test_renew_is_a_search_on_the_key_index(sqlite_store: SqliteUserSessionStore) -> None:
    for sid in ("sid", None):
        rows = (
            sqlite_store._connection()
            .execute("EXPLAIN QUERY PLAN " + RENEW, (1, 2, "t", "p", "k", "s", sid, 3))
            .fetchall()
        )
        assert [str(r[3]) for r in rows] == [
            "SEARCH litesessions_sessions USING INDEX litesessions_sessions_key (partition_key=? AND key=?)"
        ]


def test_a_renewal_rewrites_fewer_pages_than_a_full_update(sqlite_store: SqliteUserSessionStore) -> None:
    # Why RENEW exists: SQLite skips the indexes whose columns are not in SET.
    # Count the b-tree pages each statement dirties via the WAL frames it appends.
    sessions = [make_session(subject_id=f"subject-{i}") for i in range(2000)]
    sqlite_store.create_user_sessions(sessions)
    connection = sqlite_store._connection()
    target = sessions[1000]
    c, r, e = to_micros(target.created), to_micros(target.renewed) + 1, to_micros(T0) + 10**10

    def frames(sql: str, params: tuple[object, ...]) -> int:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(sql, params)
        assert connection.changes() == 1
        connection.execute("COMMIT")
        return int(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0][1])

    renew = frames(RENEW, (r, e, "t2", "", target.key, target.subject_id, target.session_id, c))
    full = frames(UPDATE, (target.subject_id, target.session_id, c, r + 1, e + 1, "t3", "", target.key))
    assert renew < full, (renew, full)
