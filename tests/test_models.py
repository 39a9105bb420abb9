"""Field rules of the models: what is accepted, what is refused, and with which error."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litesessions import (
    InvalidFilterError,
    InvalidSessionError,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from tests.conftest import T0

VALID: dict[str, Any] = {
    "key": "k",
    "subject_id": "sub",
    "session_id": "sid",
    "created": T0,
    "renewed": T0,
    "expires": T0 + timedelta(hours=1),
    "ticket": "t",
}

BAD_VALUES: list[tuple[str, Any, str]] = [
    ("key", "", "non-blank"),
    ("key", "   ", "non-blank"),
    ("key", "\t\n", "non-blank"),
    ("key", None, "got NoneType"),
    ("key", 42, "got int"),
    ("key", b"k", "got bytes"),
    ("key", "k\ud800", "UTF-8"),
    ("subject_id", "", "non-blank"),
    ("subject_id", 1.5, "got float"),
    ("subject_id", None, "got NoneType"),
    ("subject_id", "\udfff", "UTF-8"),
    ("session_id", "", "non-blank"),
    ("session_id", " ", "non-blank"),
    ("session_id", 7, "got int"),
    ("session_id", "s\udc80", "UTF-8"),
    ("created", datetime(2026, 1, 1), "naive"),
    ("created", "2026-01-01T00:00:00Z", "got str"),
    ("created", 1767225600, "got int"),
    ("created", date(2026, 1, 1), "got date"),
    ("created", None, "got NoneType"),
    ("renewed", datetime(2026, 1, 1), "naive"),
    ("expires", datetime(2026, 1, 1), "naive"),
    ("expires", 0, "got int"),
    ("created", datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))), "out of range"),
    ("ticket", None, "got NoneType"),
    ("ticket", b"bytes", "got bytes"),
    ("ticket", "x" * 10 + "\ud83d", "UTF-8"),
]


@pytest.mark.parametrize(("field", "value", "fragment"), BAD_VALUES)
def test_bad_field_values_raise_invalid_session_error_naming_the_field(field: str, value: Any, fragment: str) -> None:
    with pytest.raises(InvalidSessionError) as info:
        UserSession(**{**VALID, field: value})
    message = str(info.value)
    assert f"UserSession.{field}" in message
    assert fragment in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("field", "value", "fragment"), [b for b in BAD_VALUES if b[0] != "key"])
def test_update_has_the_same_rules(field: str, value: Any, fragment: str) -> None:
    fields = {k: v for k, v in VALID.items() if k != "key"}
    with pytest.raises(InvalidSessionError, match=f"UserSessionUpdate.{field}"):
        UserSessionUpdate(**{**fields, field: value})


def test_naive_datetime_message_says_what_to_do() -> None:
    with pytest.raises(InvalidSessionError, match=r"datetime\.now\(timezone\.utc\)"):
        UserSession(**{**VALID, "created": datetime.now()})


def test_models_are_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        UserSession("k", "sub", None, T0, T0, None, "t")  # type: ignore[misc]
    session = UserSession(**VALID)
    with pytest.raises(AttributeError):
        session.key = "other"  # type: ignore[misc]


def test_defaults_session_id_and_expires_are_none() -> None:
    session = UserSession(key="k", subject_id="s", created=T0, renewed=T0, ticket="")
    assert session.session_id is None
    assert session.expires is None
    assert session.ticket == ""


def test_datetimes_are_normalised_to_utc_and_stay_equal() -> None:
    local = datetime(2026, 3, 29, 2, 30, 0, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    offset = datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    session = UserSession(**{**VALID, "created": local, "renewed": offset, "expires": offset})
    assert session.created.tzinfo is timezone.utc
    assert session.renewed == offset
    assert session.renewed.tzinfo is timezone.utc
    assert session.renewed.microsecond == 1


def test_ticket_is_not_in_repr() -> None:
    session = UserSession(**{**VALID, "ticket": "secret-refresh-token"})
    assert "secret-refresh-token" not in repr(session)


def test_large_ticket_is_accepted() -> None:
    ticket = "\u00e9" * (1024 * 1024)
    assert UserSession(**{**VALID, "ticket": ticket}).ticket == ticket


def test_to_update_and_with_update_round_trip() -> None:
    session = UserSession(**VALID)
    assert session.with_update(session.to_update()) == session
    update = UserSessionUpdate(subject_id="x", created=T0, renewed=T0, ticket="n")
    changed = session.with_update(update)
    assert changed.key == "k"
    assert changed.to_update() == update


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"subject_id": 1}, "subject_id"), ({"session_id": b"x"}, "session_id"), ({"subject_id": "\ud800"}, "UTF-8")],
)
def test_bad_filter_values_raise_invalid_filter_error(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidFilterError, match=fragment):
        UserSessionsFilter(**kwargs)


def test_filter_criteria_treat_blank_as_absent() -> None:
    assert UserSessionsFilter(subject_id=" a ", session_id=" ").criteria() == (" a ", None)
    assert UserSessionsFilter(subject_id="\u3000", session_id="s").criteria() == (None, "s")
    with pytest.raises(InvalidFilterError, match="needs a subject_id or a session_id"):
        UserSessionsFilter(subject_id="\t", session_id="").criteria()


@given(
    key=st.text(min_size=1).filter(lambda s: s.strip() != ""),
    when=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()),
)
def test_any_valid_text_and_aware_datetime_is_accepted(key: str, when: datetime) -> None:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidSessionError):
            UserSession(**{**VALID, "key": key})
        return
    session = UserSession(**{**VALID, "key": key, "created": when, "expires": None})
    assert session.key == key
    # Compare instants: Python never calls an aware datetime in a DST fold equal
    # to one in another zone (PEP 495), even for the same instant.
    assert session.created == when.astimezone(timezone.utc)
    assert session.created.timestamp() == when.timestamp()
    assert session.created.utcoffset() == timedelta(0)
