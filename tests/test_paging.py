"""``query_user_sessions``: keyset paging forward and backward, criteria, tokens, concurrent writes, query plans."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import T0, make_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litesessions import (
    ConfigurationError,
    InvalidFilterError,
    InvalidPageTokenError,
    LitesessionsError,
    SessionPage,
    SqliteUserSessionStore,
    UserSession,
    paging,
)


def walk_forward(store: SqliteUserSessionStore, page_size: int, **criteria: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    token = None
    while True:
        page = store.query_user_sessions(page_size=page_size, page_token=token, **criteria)
        pages.append([s.key for s in page.sessions])
        if page.next_token is None:
            return pages
        token = page.next_token


def walk_backward(store: SqliteUserSessionStore, page_size: int, **criteria: Any) -> list[list[str]]:
    """Walk forward to the last page, then back to the first; return the pages in the order seen."""
    token = None
    while True:
        page = store.query_user_sessions(page_size=page_size, page_token=token, **criteria)
        if page.next_token is None:
            break
        token = page.next_token
    pages = [[s.key for s in page.sessions]]
    while page.previous_token is not None:
        page = store.query_user_sessions(page_size=page_size, page_token=page.previous_token, **criteria)
        pages.append([s.key for s in page.sessions])
    return pages


def fill(store: SqliteUserSessionStore, count: int, subjects: int = 3) -> list[UserSession]:
    sessions = [
        make_session(key=f"k{i:05d}", subject_id=f"subject-{i % subjects}", session_id=f"sid-{i}") for i in range(count)
    ]
    store.create_user_sessions(sessions)
    return sessions


def test_forward_walk_sees_every_session_once_in_key_order(sqlite_store: SqliteUserSessionStore) -> None:
    sessions = fill(sqlite_store, 103)
    pages = walk_forward(sqlite_store, 10)
    assert [len(p) for p in pages] == [10] * 10 + [3]
    keys = [k for p in pages for k in p]
    assert keys == sorted(s.key for s in sessions)


def test_backward_walk_sees_the_same_pages_in_reverse(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 103)
    forward = walk_forward(sqlite_store, 10)
    backward = walk_backward(sqlite_store, 10)
    # Walking back from the last page ends on exactly the first page: same boundaries, reversed.
    assert backward == forward[::-1]


def test_pages_return_whole_sessions_equal_to_what_was_stored(sqlite_store: SqliteUserSessionStore) -> None:
    sessions = fill(sqlite_store, 5)
    page = sqlite_store.query_user_sessions(page_size=5)
    assert isinstance(page, SessionPage)
    assert list(page.sessions) == sorted(sessions, key=lambda s: s.key)
    assert page.next_token is None and page.previous_token is None


def test_first_page_has_no_previous_and_last_page_has_no_next(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 20)
    first = sqlite_store.query_user_sessions(page_size=10)
    assert first.previous_token is None and first.next_token is not None
    second = sqlite_store.query_user_sessions(page_size=10, page_token=first.next_token)
    assert second.next_token is None and second.previous_token is not None
    back = sqlite_store.query_user_sessions(page_size=10, page_token=second.previous_token)
    assert back == first


def test_empty_store_gives_one_empty_page(sqlite_store: SqliteUserSessionStore) -> None:
    page = sqlite_store.query_user_sessions()
    assert page == SessionPage(sessions=(), next_token=None, previous_token=None)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"subject_id": "subject-1"}, [f"k{i:05d}" for i in range(50) if i % 3 == 1]),
        ({"session_id": "sid-7"}, ["k00007"]),
        ({"subject_id": "subject-1", "session_id": "sid-7"}, ["k00007"]),
        ({"subject_id": "subject-2", "session_id": "sid-7"}, []),
        ({"subject_id": "  ", "session_id": ""}, [f"k{i:05d}" for i in range(50)]),  # blank counts as absent
    ],
)
def test_criteria_select_like_filters(
    sqlite_store: SqliteUserSessionStore, criteria: dict[str, str], expected: list[str]
) -> None:
    fill(sqlite_store, 50)
    assert [k for p in walk_forward(sqlite_store, 4, **criteria) for k in p] == expected
    assert sorted(k for p in walk_backward(sqlite_store, 4, **criteria) for k in p) == expected


def test_partitions_are_paged_separately(db_path: Path) -> None:
    with (
        SqliteUserSessionStore(db_path, partition_key="a") as a,
        SqliteUserSessionStore(db_path, partition_key="b") as b,
    ):
        fill(a, 7)
        b.create_user_session(make_session(key="k00003"))
        assert [k for p in walk_forward(a, 3) for k in p] == [f"k{i:05d}" for i in range(7)]
        assert [k for p in walk_forward(b, 3) for k in p] == ["k00003"]


def test_a_token_of_one_partition_pages_another_by_key(db_path: Path) -> None:
    # Tokens carry a boundary key, not a position: in another partition they still
    # mean "after this key" (and are not secret: partition isolation is the store's job).
    with SqliteUserSessionStore(db_path, partition_key="a") as a, SqliteUserSessionStore(db_path) as other:
        fill(a, 4)
        fill(other, 0)
        token = a.query_user_sessions(page_size=2).next_token
        assert other.query_user_sessions(page_size=2, page_token=token).sessions == ()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.sets(st.text(st.characters(codec="utf-8"), min_size=1, max_size=6).filter(str.strip), max_size=40),
    page_size=st.integers(1, 12),
)
def test_any_keys_walk_forward_and_backward_exactly_once(tmp_path: Path, keys: set[str], page_size: int) -> None:
    db = tmp_path / f"walk-{abs(hash((frozenset(keys), page_size)))}.db"
    with SqliteUserSessionStore(db) as store:
        store.create_user_sessions(make_session(key=k, session_id=None) for k in keys)
        forward = [k for p in walk_forward(store, page_size) for k in p]
        backward = [k for p in walk_backward(store, page_size) for k in p]
    # SQLite compares text as UTF-8 bytes (BINARY collation).
    assert forward == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert len(backward) == len(keys) and set(backward) == keys
    db.unlink()


def test_concurrent_inserts_and_deletes_do_not_break_a_walk(
    sqlite_store: SqliteUserSessionStore, db_path: Path
) -> None:
    original = fill(sqlite_store, 300)
    stop = threading.Event()
    inserted: list[str] = []

    def writer() -> None:
        with SqliteUserSessionStore(db_path) as other:
            n = 0
            while not stop.is_set():
                # keys that sort before, between and after the original ones
                for prefix in ("a", "k", "z"):
                    key = f"{prefix}{n:05d}x"
                    other.create_user_session(make_session(key=key, session_id=None))
                    inserted.append(key)
                n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[str] = []
        token = None
        while True:
            page = sqlite_store.query_user_sessions(page_size=7, page_token=token)
            seen.extend(s.key for s in page.sessions)
            if page.next_token is None:
                break
            token = page.next_token
        backward: list[str] = []
        while page.previous_token is not None:
            page = sqlite_store.query_user_sessions(page_size=7, page_token=page.previous_token)
            backward.extend(s.key for s in page.sessions)
    finally:
        stop.set()
        thread.join()
    assert inserted, "the writer never ran during the walk"
    assert len(seen) == len(set(seen)), "a session appeared twice"
    assert seen == sorted(seen)
    assert {s.key for s in original} <= set(seen), "a session that existed all along was skipped"
    assert {s.key for s in original} <= set(backward)
    assert len(backward) == len(set(backward))


def test_deleted_boundary_keys_do_not_break_a_walk(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 30)
    page = sqlite_store.query_user_sessions(page_size=10)
    for session in page.sessions:
        sqlite_store.delete_user_session(session.key)
    following = sqlite_store.query_user_sessions(page_size=10, page_token=page.next_token)
    assert [s.key for s in following.sessions] == [f"k{i:05d}" for i in range(10, 20)]
    assert following.previous_token is None  # nothing is left before it


def test_a_page_past_everything_offers_the_walk_again_from_the_end(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 12)
    first = sqlite_store.query_user_sessions(page_size=10)
    for i in range(10, 12):
        sqlite_store.delete_user_session(f"k{i:05d}")
    empty = sqlite_store.query_user_sessions(page_size=10, page_token=first.next_token)
    assert empty.sessions == () and empty.next_token is None
    assert empty.previous_token is not None
    last = sqlite_store.query_user_sessions(page_size=10, page_token=empty.previous_token)
    assert [s.key for s in last.sessions] == [f"k{i:05d}" for i in range(10)]


# -- tokens ----------------------------------------------------------------------


def _b64(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "!!!!",
        "eyJ2Ijox",  # truncated
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _b64([1, 2]),
        _b64({"v": 1, "d": "n", "k": "k1"}),  # a member missing
        _b64({"v": 2, "d": "n", "k": "k1", "q": [None, None]}),  # unknown version
        _b64({"v": 1, "d": "x", "k": "k1", "q": [None, None]}),
        _b64({"v": 1, "d": "n", "k": 5, "q": [None, None]}),
        _b64({"v": 1, "d": "n", "k": "k1", "q": [None]}),
        _b64({"v": 1, "d": "n", "k": "k1", "q": [None, None], "extra": 1}),
    ],
)
def test_malformed_tokens_raise_and_never_mean_page_one(sqlite_store: SqliteUserSessionStore, token: str) -> None:
    fill(sqlite_store, 3)
    with pytest.raises(InvalidPageTokenError) as info:
        sqlite_store.query_user_sessions(page_token=token)
    assert isinstance(info.value, LitesessionsError) and isinstance(info.value, ValueError)


@settings(max_examples=200)
@given(token=st.text(max_size=80))
def test_arbitrary_text_is_not_a_token(tmp_path_factory: pytest.TempPathFactory, token: str) -> None:
    with pytest.raises(InvalidPageTokenError):
        paging.decode_token(token)


def test_tampered_tokens_raise(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 30)
    token = sqlite_store.query_user_sessions(page_size=5).next_token
    assert token is not None
    for cut in (1, 2, 5):
        with pytest.raises(InvalidPageTokenError):
            sqlite_store.query_user_sessions(page_size=5, page_token=token[:-cut])


def test_a_token_from_other_criteria_is_refused(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 30)
    token = sqlite_store.query_user_sessions(subject_id="subject-1", page_size=2).next_token
    with pytest.raises(InvalidPageTokenError, match="other subject_id"):
        sqlite_store.query_user_sessions(page_size=2, page_token=token)
    with pytest.raises(InvalidPageTokenError):
        sqlite_store.query_user_sessions(subject_id="subject-2", page_size=2, page_token=token)
    # the same criteria accept it
    page = sqlite_store.query_user_sessions(subject_id="subject-1", page_size=2, page_token=token)
    assert [s.subject_id for s in page.sessions] == ["subject-1", "subject-1"]


def test_tokens_are_opaque_url_safe_strings(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 30)
    page = sqlite_store.query_user_sessions(page_size=5, page_token=None)
    token = page.next_token
    assert token is not None
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


# -- arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"page_size": 0}, ConfigurationError),
        ({"page_size": 1001}, ConfigurationError),
        ({"page_size": "10"}, TypeError),
        ({"page_size": True}, TypeError),
        ({"page_token": 5}, TypeError),
        ({"subject_id": 5}, InvalidFilterError),
        ({"session_id": b"x"}, InvalidFilterError),
    ],
)
def test_bad_arguments_raise(sqlite_store: SqliteUserSessionStore, kwargs: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        sqlite_store.query_user_sessions(**kwargs)


def test_arguments_are_keyword_only(sqlite_store: SqliteUserSessionStore) -> None:
    with pytest.raises(TypeError):
        sqlite_store.query_user_sessions("subject-1")  # type: ignore[misc]


def test_page_size_bounds_are_accepted(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 3)
    assert len(sqlite_store.query_user_sessions(page_size=1).sessions) == 1
    assert len(sqlite_store.query_user_sessions(page_size=paging.MAX_PAGE_SIZE).sessions) == 3


def test_paging_joins_an_open_transaction(sqlite_store: SqliteUserSessionStore) -> None:
    with sqlite_store.transaction():
        sqlite_store.create_user_session(make_session(key="inside"))
        page = sqlite_store.query_user_sessions()
        assert [s.key for s in page.sessions] == ["inside"]
    assert [s.key for s in sqlite_store.query_user_sessions().sessions] == ["inside"]


def test_closed_store_raises(db_path: Path) -> None:
    store = SqliteUserSessionStore(db_path)
    store.close()
    with pytest.raises(LitesessionsError):
        store.query_user_sessions()


# -- query plans -----------------------------------------------------------------


def _plans(store: SqliteUserSessionStore) -> Iterator[tuple[str, str]]:
    connection = store._connection()
    statements = [*paging.PAGE_QUERIES.values(), *paging.EXISTS_AFTER.values(), *paging.EXISTS_BEFORE.values()]
    for sql in statements:
        plan = " / ".join(str(r[3]) for r in connection.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?")))
        yield sql, plan


def test_every_page_statement_searches_an_index_without_offset(sqlite_store: SqliteUserSessionStore) -> None:
    fill(sqlite_store, 50)
    for sql, plan in _plans(sqlite_store):
        assert "OFFSET" not in sql.upper()
        assert plan.startswith("SEARCH litesessions_sessions USING "), (sql, plan)
        assert "INDEX" in plan and "SCAN" not in plan, (sql, plan)


def test_unfiltered_pages_are_ordered_by_the_key_index_itself(sqlite_store: SqliteUserSessionStore) -> None:
    connection = sqlite_store._connection()
    for direction in ("n", "p"):
        sql = paging.PAGE_QUERIES[(False, False), direction, True]
        plan = [str(r[3]) for r in connection.execute("EXPLAIN QUERY PLAN " + sql, ["p", "k", 10])]
        assert plan == [
            "SEARCH litesessions_sessions USING INDEX litesessions_sessions_key (partition_key=? AND key"
            + (">?)" if direction == "n" else "<?)")
        ]


def test_expired_sessions_are_paged_too(sqlite_store: SqliteUserSessionStore) -> None:
    sqlite_store.create_user_session(make_session(key="old", expires=T0 - timedelta(days=1)))
    assert [s.key for s in sqlite_store.query_user_sessions().sessions] == ["old"]


def test_the_readme_paging_example_walks_every_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(tmp_path)
    with SqliteUserSessionStore("sessions.db", partition_key="my-bff") as store:
        store.create_user_sessions(make_session(subject_id="alice") for _ in range(60))
        store.create_user_sessions(make_session(subject_id="bob") for _ in range(5))
    namespace: dict[str, Any] = {}
    exec(compile(block, "README paging example", "exec"), namespace)
    assert len(namespace["seen"]) == 60 and {s.subject_id for s in namespace["seen"]} == {"alice"}
