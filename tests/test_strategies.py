"""The public strategies of ``litesessions.testing.strategies``: valid values, and the awkward ones."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from litesessions import (
    InMemoryUserSessionStore,
    InvalidFilterError,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from litesessions.testing import strategies as lst

_LARGE_OK = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


def _aware_utc_equal(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


@given(lst.user_sessions())
@_LARGE_OK
def test_user_sessions_are_valid_and_normalised(session: UserSession) -> None:
    assert isinstance(session, UserSession)
    for value in (session.created, session.renewed, session.expires):
        assert value is None or (_aware_utc_equal(value) and value.utcoffset() == timedelta(0))
    # Building it again from its fields runs every validator: nothing is refused.
    assert (
        UserSession(
            **{
                f: getattr(session, f)
                for f in ("key", "subject_id", "session_id", "created", "renewed", "expires", "ticket")
            }
        )
        == session
    )


@given(lst.user_session_updates())
@_LARGE_OK
def test_updates_are_valid(update: UserSessionUpdate) -> None:
    assert isinstance(update, UserSessionUpdate)
    assert update.subject_id.strip()


@given(lst.keys(), lst.subject_ids(), lst.session_ids())
def test_ids_are_non_blank_and_utf8(key: str, subject_id: str, session_id: str) -> None:
    for value in (key, subject_id, session_id):
        assert value.strip()
        value.encode("utf-8")


@given(lst.blank_texts())
def test_blank_texts_are_blank(text: str) -> None:
    assert not text.strip()


@given(lst.filters())
def test_valid_filters_have_a_criterion(filter: UserSessionsFilter) -> None:
    filter.criteria()


@given(lst.filters(valid=False))
def test_invalid_filters_have_none(filter: UserSessionsFilter) -> None:
    with pytest.raises(InvalidFilterError):
        filter.criteria()


@given(lst.aware_datetimes())
def test_aware_datetimes_are_aware_and_in_range(value: datetime) -> None:
    assert _aware_utc_equal(value)
    assert lst.MIN_INSTANT <= value <= lst.MAX_INSTANT
    value.astimezone(timezone.utc)  # no OverflowError


@given(
    lst.aware_datetimes(
        min_value=datetime(2030, 1, 1, tzinfo=timezone.utc),
        max_value=datetime(2030, 1, 2, tzinfo=timezone(timedelta(hours=5))),
    )
)
def test_aware_datetimes_respect_bounds(value: datetime) -> None:
    assert datetime(2030, 1, 1, tzinfo=timezone.utc) <= value <= datetime(2030, 1, 1, 19, tzinfo=timezone.utc)


def test_aware_datetimes_refuse_naive_or_crossed_bounds() -> None:
    with pytest.raises(ValueError, match="aware"):
        lst.aware_datetimes(min_value=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="after"):
        lst.aware_datetimes(
            min_value=datetime(2031, 1, 1, tzinfo=timezone.utc), max_value=datetime(2030, 1, 1, tzinfo=timezone.utc)
        )


# -- the awkward values are really generated -----------------------------------

_FIND = settings(max_examples=2000, database=None, suppress_health_check=list(HealthCheck), deadline=None)


def test_filters_include_blank_and_whitespace_criteria() -> None:
    found = find(
        lst.filters(),
        lambda f: f.subject_id is not None and f.subject_id != "" and not f.subject_id.strip(),
        settings=_FIND,
    )
    assert found.session_id and found.session_id.strip()  # the other criterion carries the filter


def test_text_includes_non_ascii_and_the_pools() -> None:
    assert not find(lst.subject_ids(), lambda s: not s.isascii(), settings=_FIND).isascii()
    assert find(lst.keys(), lambda s: s in lst.KEY_POOL, settings=_FIND) in lst.KEY_POOL


def test_tickets_include_large_ones() -> None:
    assert len(find(lst.tickets(), lambda t: len(t) >= 4096, settings=_FIND)) >= 4096
    assert find(lst.tickets(), lambda t: t == "", settings=_FIND) == ""


def test_datetimes_include_other_time_zones_and_microseconds() -> None:
    value = find(lst.aware_datetimes(), lambda d: d.utcoffset() != timedelta(0) and d.microsecond != 0, settings=_FIND)
    assert value.utcoffset() != timedelta(0)


# -- the values are storable: round trips through both stores ------------------


@given(st.lists(lst.user_sessions(tickets=lst.tickets(large_size=64 * 1024)), max_size=5, unique_by=lambda s: s.key))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_generated_sessions_round_trip_through_both_stores(sessions: list[UserSession]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        with SqliteUserSessionStore(Path(directory) / "s.db") as sqlite:
            memory = InMemoryUserSessionStore()
            for session in sessions:
                if session.session_id is not None and any(
                    s.session_id == session.session_id for s in sessions[: sessions.index(session)]
                ):
                    continue  # unique per partition; another test covers the refusal
                sqlite.create_user_session(session)
                memory.create_user_session(session)
                assert sqlite.get_user_session(session.key) == session
                assert memory.get_user_session(session.key) == session
            for session in sessions:
                by_subject = UserSessionsFilter(subject_id=session.subject_id)
                assert sorted(s.key for s in sqlite.get_user_sessions(by_subject)) == sorted(
                    s.key for s in memory.get_user_sessions(by_subject)
                )
