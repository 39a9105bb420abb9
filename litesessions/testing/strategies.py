"""Hypothesis strategies for the session models, for use in anyone's tests.

Every strategy here generates only *valid* values (the models' field rules
hold), except :func:`blank_texts`, which generates the blank criteria that a
filter treats as absent.  Text is drawn from two sources at once:

* a small pool of realistic values (``"alice"``, ``"key-1"``, ``"sid-1"``...,
  see :data:`SUBJECT_ID_POOL` and friends), so that generated sessions share
  subjects, keys and session ids often and operations meet existing data;
* arbitrary Unicode text (non-ASCII, control characters, embedded NUL), never
  blank and always encodable as UTF-8 (no lone surrogates).

Example::

    from hypothesis import given
    from litesessions.testing import strategies as lst

    @given(lst.user_sessions())
    def test_round_trip(session):
        store = MyStore()
        store.create_user_session(session)
        assert store.get_user_session(session.key) == session
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final

from hypothesis import strategies as st

from litesessions.models import UserSession, UserSessionsFilter, UserSessionUpdate, from_micros, to_micros

__all__ = [
    "KEY_POOL",
    "SESSION_ID_POOL",
    "SUBJECT_ID_POOL",
    "aware_datetimes",
    "blank_texts",
    "filters",
    "keys",
    "session_ids",
    "subject_ids",
    "tickets",
    "timezones",
    "user_session_updates",
    "user_sessions",
]

KEY_POOL: Final = ("key-1", "key-2", "key-3", "Key-1", "3f9a0c", "ключ")
"""Realistic keys that :func:`keys` draws often (note ``"Key-1"``: matching is case-sensitive)."""

SUBJECT_ID_POOL: Final = ("alice", "bob", "Alice", "carol", "user:42", "ü")
"""Realistic subject ids that :func:`subject_ids` draws often."""

SESSION_ID_POOL: Final = ("sid-1", "sid-2", "SID-1", "sid-3", "b2c7e1d0", "séance")
"""Realistic OpenID Connect session ids that :func:`session_ids` draws often."""

# Whitespace as str.isspace() sees it (what the models treat as blank),
# including non-ASCII spaces and the ASCII separators \x1c-\x1f.
_WHITESPACE: Final = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2003\u2028\u3000"

MIN_INSTANT: Final = datetime(1, 1, 2, tzinfo=timezone.utc)
"""Earliest instant :func:`aware_datetimes` draws by default (a day of margin for time zones)."""

MAX_INSTANT: Final = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=timezone.utc)
"""Latest instant :func:`aware_datetimes` draws by default."""


def _non_blank(text: str) -> bool:
    return bool(text.strip())


def _arbitrary_text(max_size: int) -> st.SearchStrategy[str]:
    # Category Cs (surrogates) is excluded: a lone surrogate is not UTF-8 encodable.
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=max_size).filter(_non_blank)


def _pooled(pool: tuple[str, ...], max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(pool), _arbitrary_text(max_size))


def keys(*, max_size: int = 24) -> st.SearchStrategy[str]:
    """Session keys: non-blank, UTF-8 encodable ``str``, often one of :data:`KEY_POOL`."""
    return _pooled(KEY_POOL, max_size)


def subject_ids(*, max_size: int = 24) -> st.SearchStrategy[str]:
    """Subject ids: non-blank, UTF-8 encodable ``str``, often one of :data:`SUBJECT_ID_POOL`."""
    return _pooled(SUBJECT_ID_POOL, max_size)


def session_ids(*, max_size: int = 24) -> st.SearchStrategy[str]:
    """Session ids (never ``None``; wrap in ``st.none() | session_ids()`` for optional ones)."""
    return _pooled(SESSION_ID_POOL, max_size)


# Aliases for the functions above, whose names the parameters below shadow.
_keys, _subject_ids, _session_ids = keys, subject_ids, session_ids


def blank_texts() -> st.SearchStrategy[str]:
    """Blank strings: ``""`` and whitespace-only text (ASCII and Unicode spaces), which filters treat as absent."""
    return st.text(st.sampled_from(_WHITESPACE), max_size=4)


def tickets(*, max_size: int = 64, large_size: int = 1 << 20) -> st.SearchStrategy[str]:
    """Opaque tickets: empty, short arbitrary text of up to ``max_size`` characters, or large ones.

    A large ticket is one character repeated between 4096 and ``large_size``
    times (the default, 1 MiB of ASCII, is the size litesessions is tested
    with); pass ``large_size=0`` to leave large tickets out.
    """
    small = st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)
    if large_size <= 0:
        return small
    large = st.builds(
        lambda char, size: char * size,
        st.sampled_from("x\u00e9\u20ac\U0001f510"),
        st.integers(min_value=min(4096, large_size), max_value=large_size),
    )
    return st.one_of(small, large)


_tickets = tickets


def timezones() -> st.SearchStrategy[timezone]:
    """Fixed-offset time zones, from UTC-23:59 to UTC+23:59 (no tz database needed)."""
    offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timedelta(minutes=m))
    return st.one_of(st.just(timezone.utc), offsets.map(timezone))


def aware_datetimes(
    *,
    min_value: datetime = MIN_INSTANT,
    max_value: datetime = MAX_INSTANT,
) -> st.SearchStrategy[datetime]:
    """Aware datetimes between two aware instants, in random fixed-offset time zones, to the microsecond.

    The instant is drawn first (in UTC) and then shown in a random time zone,
    so every value is valid for the models (they normalise to UTC and refuse
    values that leave the ``datetime`` range once converted).  Values shrink
    towards the Unix epoch (or the bound nearest to it).
    """
    for name, bound in (("min_value", min_value), ("max_value", max_value)):
        if bound.tzinfo is None or bound.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime, got {bound!r}")
    lo, hi = to_micros(max(min_value, MIN_INSTANT)), to_micros(min(max_value, MAX_INSTANT))
    if lo > hi:
        raise ValueError(f"min_value {min_value!r} is after max_value {max_value!r}")
    return st.builds(
        lambda micros, tz: from_micros(micros).astimezone(tz),
        st.integers(min_value=lo, max_value=hi),
        timezones(),
    )


def user_sessions(
    *,
    keys: st.SearchStrategy[str] | None = None,
    subject_ids: st.SearchStrategy[str] | None = None,
    session_ids: st.SearchStrategy[str | None] | None = None,
    datetimes: st.SearchStrategy[datetime] | None = None,
    tickets: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[UserSession]:
    """Valid :class:`UserSession` objects; any field's strategy can be replaced.

    ``session_ids`` defaults to ``None`` or a session id; ``datetimes`` (used for
    ``created``, ``renewed`` and, unless ``None``, ``expires``) defaults to
    :func:`aware_datetimes`.  No ordering between the three timestamps is
    assumed, as the contract assumes none.
    """
    return st.builds(
        UserSession,
        key=keys if keys is not None else _keys(),
        **_fields(subject_ids, session_ids, datetimes, tickets),
    )


def user_session_updates(
    *,
    subject_ids: st.SearchStrategy[str] | None = None,
    session_ids: st.SearchStrategy[str | None] | None = None,
    datetimes: st.SearchStrategy[datetime] | None = None,
    tickets: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[UserSessionUpdate]:
    """Valid :class:`UserSessionUpdate` objects; any field's strategy can be replaced (as :func:`user_sessions`)."""
    return st.builds(UserSessionUpdate, **_fields(subject_ids, session_ids, datetimes, tickets))


def _fields(
    subject_ids: st.SearchStrategy[str] | None,
    session_ids: st.SearchStrategy[str | None] | None,
    datetimes: st.SearchStrategy[datetime] | None,
    tickets: st.SearchStrategy[str] | None,
) -> dict[str, st.SearchStrategy[object]]:
    times = datetimes if datetimes is not None else aware_datetimes()
    return {
        "subject_id": subject_ids if subject_ids is not None else _subject_ids(),
        "session_id": session_ids if session_ids is not None else st.none() | _session_ids(),
        "created": times,
        "renewed": times,
        "expires": st.none() | times,
        "ticket": tickets if tickets is not None else _tickets(),
    }


def filters(
    *,
    valid: bool | None = True,
    subject_ids: st.SearchStrategy[str] | None = None,
    session_ids: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[UserSessionsFilter]:
    """:class:`UserSessionsFilter` objects whose criteria are ``None``, blank, or a real id.

    ``valid=True`` (the default): at least one criterion is a non-blank id, so
    stores must accept the filter; the other may be ``None``, ``""`` or
    whitespace (which count as absent).  ``valid=False``: every criterion is
    ``None`` or blank, so stores must refuse it.  ``valid=None``: either.
    """
    subjects = subject_ids if subject_ids is not None else _subject_ids()
    sids = session_ids if session_ids is not None else _session_ids()
    absent: st.SearchStrategy[str | None] = st.none() | blank_texts()
    invalid = st.builds(UserSessionsFilter, subject_id=absent, session_id=absent)
    if valid is False:
        return invalid
    good = st.one_of(
        st.builds(UserSessionsFilter, subject_id=subjects, session_id=absent),
        st.builds(UserSessionsFilter, subject_id=absent, session_id=sids),
        st.builds(UserSessionsFilter, subject_id=subjects, session_id=sids),
    )
    return good if valid else st.one_of(good, invalid)
