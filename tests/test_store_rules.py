"""The numbered semantic rules and bad inputs, against both implementations (``any_store``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from litesessions import (
    DuplicateSessionError,
    InvalidFilterError,
    InvalidSessionError,
    UserSession,
    UserSessionsFilter,
)
from tests.conftest import T0, FakeClock, cleanup_for, make_session, make_update


def snapshot(store: Any, subjects: tuple[str, ...] = ("subject-1", "subject-2", "a", "b")) -> list[UserSession]:
    """Everything the tests below can have stored, in a comparable form."""
    found: list[UserSession] = []
    for subject in subjects:
        found.extend(store.get_user_sessions(UserSessionsFilter(subject_id=subject)))
    return sorted(found, key=lambda s: s.key)


def test_rule1_duplicate_key_raises_and_keeps_the_stored_session(any_store: Any) -> None:
    first = make_session(key="k")
    any_store.create_user_session(first)
    with pytest.raises(DuplicateSessionError, match="key already exists"):
        any_store.create_user_session(make_session(key="k", subject_id="subject-2", ticket="other"))
    assert any_store.get_user_session("k") == first
    assert snapshot(any_store) == [first]


def test_rule2_session_id_unique_on_create_and_update(any_store: Any) -> None:
    one = make_session(key="k1", session_id="sid")
    two = make_session(key="k2", session_id="other")
    any_store.create_user_session(one)
    any_store.create_user_session(two)
    with pytest.raises(DuplicateSessionError, match="session_id"):
        any_store.create_user_session(make_session(key="k3", session_id="sid"))
    with pytest.raises(DuplicateSessionError, match="session_id"):
        any_store.update_user_session("k2", make_update(session_id="sid"))
    assert snapshot(any_store) == [one, two]
    # once freed, the session id can be taken
    assert any_store.delete_user_session("k1") is True
    assert any_store.update_user_session("k2", make_update(session_id="sid")) is True


def test_rule3_update_of_missing_key_returns_false_and_creates_nothing(any_store: Any) -> None:
    assert any_store.update_user_session("missing", make_update()) is False
    assert any_store.get_user_session("missing") is None
    assert snapshot(any_store) == []


def test_rule3_update_replaces_all_six_fields(any_store: Any) -> None:
    any_store.create_user_session(make_session(key="k", session_id="s"))
    update = make_update(session_id="s2", expires=None)
    assert any_store.update_user_session("k", update) is True
    got = any_store.get_user_session("k")
    assert got is not None and got.key == "k" and got.to_update() == update


def test_rule4_delete_of_missing_key_returns_false(any_store: Any) -> None:
    assert any_store.delete_user_session("missing") is False


def test_rule5_filters(any_store: Any) -> None:
    s1 = make_session(key="1", subject_id="a", session_id="x")
    s2 = make_session(key="2", subject_id="a", session_id=None)
    s3 = make_session(key="3", subject_id="b", session_id="y")
    for s in (s1, s2, s3):
        any_store.create_user_session(s)
    get = any_store.get_user_sessions
    assert sorted(s.key for s in get(UserSessionsFilter(subject_id="a"))) == ["1", "2"]
    assert get(UserSessionsFilter(subject_id="a", session_id="y")) == []  # AND, not OR
    assert get(UserSessionsFilter(subject_id="A")) == []  # case-sensitive
    assert get(UserSessionsFilter(subject_id=" a")) == []  # exact
    assert get(UserSessionsFilter(subject_id="a", session_id="  ")) == get(UserSessionsFilter(subject_id="a"))
    with pytest.raises(InvalidFilterError):
        get(UserSessionsFilter())
    assert any_store.delete_user_sessions(UserSessionsFilter(subject_id="a", session_id="x")) == 1
    assert any_store.delete_user_sessions(UserSessionsFilter(subject_id="a")) == 1
    assert any_store.delete_user_sessions(UserSessionsFilter(subject_id="a")) == 0
    assert snapshot(any_store) == [s3]


def test_rule6_reads_return_expired_sessions_as_new_objects(any_store: Any, clock: FakeClock) -> None:
    session = make_session(key="k", expires=T0 - timedelta(days=1))
    any_store.create_user_session(session)
    first = any_store.get_user_session("k")
    second = any_store.get_user_session("k")
    assert first == second == session
    assert first is not second and first is not session


def test_rule7_cleanup_is_strict_and_spares_never_expiring(any_store: Any, clock: FakeClock) -> None:
    at = T0 + timedelta(minutes=1)
    any_store.create_user_session(make_session(key="at", expires=at))
    any_store.create_user_session(make_session(key="before", expires=at - timedelta(microseconds=1)))
    any_store.create_user_session(make_session(key="never", expires=None))
    clock.now = at
    assert cleanup_for(any_store)() == 1
    assert any_store.get_user_session("before") is None
    assert any_store.get_user_session("at") is not None
    clock.now = T0 + timedelta(days=365 * 100)
    assert cleanup_for(any_store)() == 1
    assert any_store.get_user_session("never") is not None


# -- bad input: the named error, and nothing stored changes ---------------------------------

BAD_CALLS: list[tuple[str, tuple[Any, ...], type[Exception]]] = [
    ("get_user_session", (None,), TypeError),
    ("get_user_session", (1,), TypeError),
    ("get_user_session", (b"k",), TypeError),
    ("get_user_session", ("",), InvalidSessionError),
    ("get_user_session", ("\ud800",), InvalidSessionError),
    ("create_user_session", (None,), TypeError),
    ("create_user_session", ({"key": "k"},), TypeError),
    ("update_user_session", ("k", None), TypeError),
    ("update_user_session", (None, "update"), TypeError),
    ("update_user_session", (" ", "update"), InvalidSessionError),
    ("update_user_session", ("k", "not an update"), TypeError),
    ("delete_user_session", (3.0,), TypeError),
    ("delete_user_session", ("  ",), InvalidSessionError),
    ("get_user_sessions", (None,), TypeError),
    ("get_user_sessions", ("subject-1",), TypeError),
    ("get_user_sessions", (UserSessionsFilter(),), InvalidFilterError),
    ("delete_user_sessions", ({"subject_id": "subject-1"},), TypeError),
    ("delete_user_sessions", (UserSessionsFilter(subject_id=" ", session_id=""),), InvalidFilterError),
]


@pytest.mark.parametrize(("method", "args", "error"), BAD_CALLS)
def test_bad_input_raises_the_named_error_and_changes_nothing(
    any_store: Any, method: str, args: tuple[Any, ...], error: type[Exception]
) -> None:
    for i in range(3):
        any_store.create_user_session(make_session(key=f"k{i}"))
    args = tuple(make_update() if a == "update" else a for a in args)
    before = snapshot(any_store)
    with pytest.raises(error):
        getattr(any_store, method)(*args)
    assert snapshot(any_store) == before


def test_update_is_the_key_argument_checked_before_anything_is_written(any_store: Any) -> None:
    any_store.create_user_session(make_session(key="k"))
    before = snapshot(any_store)
    with pytest.raises(TypeError):
        any_store.update_user_session("k", make_session(key="k"))  # a session is not an update
    assert snapshot(any_store) == before


def test_one_mebibyte_ticket(any_store: Any) -> None:
    ticket = "".join(chr(0x20 + (i % 0x5F)) for i in range(1024 * 1024 - 3)) + "\u20ac"
    session = make_session(key="big", ticket=ticket)
    any_store.create_user_session(session)
    assert any_store.get_user_session("big") == session
    assert any_store.update_user_session("big", session.to_update()) is True
