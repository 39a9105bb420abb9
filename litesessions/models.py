"""The session models: frozen, keyword-only ``attrs`` classes that validate on construction.

Field rules (the same for every store):

* ``key`` and ``subject_id`` are non-blank ``str``;
* ``session_id`` is ``None`` or a non-blank ``str``;
* ``created`` and ``renewed`` are timezone-aware ``datetime`` objects, ``expires``
  is ``None`` (never expires) or aware.  They are normalised to UTC on
  construction, so what a store returns compares equal, to the microsecond;
* ``ticket`` is an opaque ``str`` (it may be large);
* every string must be encodable as UTF-8 (no lone surrogates).

A violation raises :class:`~litesessions.errors.InvalidSessionError` (or
:class:`~litesessions.errors.InvalidFilterError` for a filter) naming the
field and saying what to do.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Final

import attrs

from litesessions.errors import ConfigurationError, InvalidFilterError, InvalidSessionError

__all__ = [
    "UserSession",
    "UserSessionUpdate",
    "UserSessionsFilter",
    "from_micros",
    "to_micros",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICROSECOND: Final = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """Return an aware datetime as whole microseconds since the Unix epoch (exact)."""
    return (value - _EPOCH) // _ONE_MICROSECOND


def from_micros(micros: int) -> datetime:
    """Return the UTC datetime ``micros`` microseconds after the Unix epoch (exact)."""
    return _EPOCH + timedelta(microseconds=micros)


def _where(field: attrs.Attribute[Any]) -> str:
    owner = field.metadata.get("owner", "")
    return f"{owner}.{field.name}" if owner else field.name


def _utf8_problem(value: str) -> str | None:
    # isascii() is O(n) in C and true for nearly every real ticket, so the
    # encode (which allocates a copy) only runs for non-ASCII text.
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"contains a lone surrogate at index {e.start} and cannot be encoded as UTF-8; "
            "decode your bytes with errors='strict' or 'replace' instead of 'surrogateescape'"
        )
    return None


def check_text(value: object, where: str, *, error: type[Exception] = InvalidSessionError) -> str:
    """Return ``value`` if it is a non-blank, UTF-8 encodable ``str``; raise ``error`` otherwise."""
    if not isinstance(value, str):
        raise error(f"{where} must be a non-blank str, got {type(value).__name__}")
    if not value.strip():
        raise error(f"{where} must be a non-blank str, got {value!r}")
    problem = _utf8_problem(value)
    if problem:
        raise error(f"{where} {problem}")
    return value


def _required_text(value: object, field: attrs.Attribute[Any]) -> str:
    return check_text(value, _where(field))


def _optional_text(value: object, field: attrs.Attribute[Any]) -> str | None:
    if value is None:
        return None
    return check_text(value, _where(field) + " (None or a non-blank str)")


def _ticket(value: object, field: attrs.Attribute[Any]) -> str:
    if not isinstance(value, str):
        raise InvalidSessionError(f"{_where(field)} must be a str, got {type(value).__name__}")
    problem = _utf8_problem(value)
    if problem:
        raise InvalidSessionError(f"{_where(field)} {problem}")
    return value


def _aware(value: object, where: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidSessionError(
            f"{where} must be a timezone-aware datetime, got {type(value).__name__}; use datetime.now(timezone.utc)"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidSessionError(f"{where} is a naive datetime; pass an aware one, e.g. datetime.now(timezone.utc)")
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError as e:
        raise InvalidSessionError(f"{where} is out of range once converted to UTC") from e
    if type(utc) is not datetime:  # a subclass (e.g. pandas.Timestamp): keep plain datetimes only
        utc = datetime(
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
            tzinfo=timezone.utc,
        )
    return utc


def _required_time(value: object, field: attrs.Attribute[Any]) -> datetime:
    return _aware(value, _where(field))


def _optional_time(value: object, field: attrs.Attribute[Any]) -> datetime | None:
    if value is None:
        return None
    return _aware(value, _where(field) + " (None for never, or an aware datetime)")


def _text_field(owner: str) -> Any:
    return attrs.field(converter=attrs.Converter(_required_text, takes_field=True), metadata={"owner": owner})


def _optional_text_field(owner: str) -> Any:
    return attrs.field(
        default=None, converter=attrs.Converter(_optional_text, takes_field=True), metadata={"owner": owner}
    )


def _time_field(owner: str) -> Any:
    return attrs.field(converter=attrs.Converter(_required_time, takes_field=True), metadata={"owner": owner})


def _optional_time_field(owner: str) -> Any:
    return attrs.field(
        default=None, converter=attrs.Converter(_optional_time, takes_field=True), metadata={"owner": owner}
    )


def _ticket_field(owner: str) -> Any:
    return attrs.field(converter=attrs.Converter(_ticket, takes_field=True), metadata={"owner": owner}, repr=False)


@attrs.frozen(kw_only=True)
class UserSession:
    """A server-side user session, as Duende BFF's ``UserSession``.

    ``key`` identifies the session within its store partition (the browser
    cookie carries only this key).  The ticket is excluded from ``repr`` so
    tokens do not end up in logs.
    """

    key: str = _text_field("UserSession")
    subject_id: str = _text_field("UserSession")
    session_id: str | None = _optional_text_field("UserSession")
    created: datetime = _time_field("UserSession")
    renewed: datetime = _time_field("UserSession")
    expires: datetime | None = _optional_time_field("UserSession")
    ticket: str = _ticket_field("UserSession")

    def to_update(self) -> UserSessionUpdate:
        """Return everything of this session but its key, as an update."""
        update: UserSessionUpdate = _trusted(
            UserSessionUpdate,
            subject_id=self.subject_id,
            session_id=self.session_id,
            created=self.created,
            renewed=self.renewed,
            expires=self.expires,
            ticket=self.ticket,
        )
        return update

    def with_update(self, update: UserSessionUpdate) -> UserSession:
        """Return a new session with this key and all six other fields taken from ``update``."""
        session: UserSession = _trusted(
            UserSession,
            key=self.key,
            subject_id=update.subject_id,
            session_id=update.session_id,
            created=update.created,
            renewed=update.renewed,
            expires=update.expires,
            ticket=update.ticket,
        )
        return session


@attrs.frozen(kw_only=True)
class UserSessionUpdate:
    """Everything of a :class:`UserSession` but its key (Duende's ``UserSessionUpdate``)."""

    subject_id: str = _text_field("UserSessionUpdate")
    session_id: str | None = _optional_text_field("UserSessionUpdate")
    created: datetime = _time_field("UserSessionUpdate")
    renewed: datetime = _time_field("UserSessionUpdate")
    expires: datetime | None = _optional_time_field("UserSessionUpdate")
    ticket: str = _ticket_field("UserSessionUpdate")


def _filter_text(value: object, field: attrs.Attribute[Any]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFilterError(f"UserSessionsFilter.{field.name} must be None or a str, got {type(value).__name__}")
    problem = _utf8_problem(value)
    if problem:
        raise InvalidFilterError(f"UserSessionsFilter.{field.name} {problem}")
    return value


def _filter_field() -> Any:
    return attrs.field(default=None, converter=attrs.Converter(_filter_text, takes_field=True))


@attrs.frozen(kw_only=True)
class UserSessionsFilter:
    """Criteria for :meth:`get_user_sessions` / :meth:`delete_user_sessions`.

    A blank or whitespace-only criterion counts as absent (as Duende's
    ``string.IsNullOrWhiteSpace``).  A filter with no criterion at all can be
    built, but every store refuses it with :class:`InvalidFilterError`.
    """

    subject_id: str | None = _filter_field()
    session_id: str | None = _filter_field()

    def criteria(self) -> tuple[str | None, str | None]:
        """Return ``(subject_id, session_id)`` with blank criteria as ``None``.

        Raises :class:`InvalidFilterError` when both are absent.
        """
        subject_id = self.subject_id if self.subject_id and self.subject_id.strip() else None
        session_id = self.session_id if self.session_id and self.session_id.strip() else None
        if subject_id is None and session_id is None:
            raise InvalidFilterError("UserSessionsFilter needs a subject_id or a session_id (blank counts as absent)")
        return subject_id, session_id

    def matches(self, session: UserSession) -> bool:
        """Return whether ``session`` meets every criterion (raises like :meth:`criteria`)."""
        subject_id, session_id = self.criteria()
        return (subject_id is None or session.subject_id == subject_id) and (
            session_id is None or session.session_id == session_id
        )


_set = object.__setattr__
_new = object.__new__
_UTC: Final = timezone.utc
_timedelta = timedelta
_fromtimestamp = datetime.fromtimestamp
# Below 2**31 s after the epoch (2038-01-19) the float micros / 1e6 is within
# 0.12 us of the exact value, so fromtimestamp (which rounds to the nearest
# microsecond) gives back the exact datetime, about 1.5x faster than adding a
# timedelta to the epoch; other values take the exact timedelta path.
_FAST_MICROS: Final = 2**31 * 1_000_000


def _trusted(cls: type[Any], **fields: Any) -> Any:
    # Builds a model from values that are already valid (read back from our
    # own file, or taken from another valid model) without running the
    # converters: this is the hot path of every read.
    obj = object.__new__(cls)
    for name, value in fields.items():
        _set(obj, name, value)
    return obj


def _slot_setter(cls: type[Any], name: str) -> Any:
    # The slot's own descriptor: setting through it skips the frozen class's
    # __setattr__ and the by-name lookup of object.__setattr__ (measured ~20%
    # faster per read by tools/convert_bench.py).
    return cls.__dict__[name].__set__


_set_key = _slot_setter(UserSession, "key")
_set_subject_id = _slot_setter(UserSession, "subject_id")
_set_session_id = _slot_setter(UserSession, "session_id")
_set_created = _slot_setter(UserSession, "created")
_set_renewed = _slot_setter(UserSession, "renewed")
_set_expires = _slot_setter(UserSession, "expires")
_set_ticket = _slot_setter(UserSession, "ticket")


def session_from_row(
    key: str,
    subject_id: str,
    session_id: str | None,
    created: int,
    renewed: int,
    expires: int | None,
    ticket: str,
) -> UserSession:
    """Build a :class:`UserSession` from a stored row (timestamps in microseconds), unvalidated.

    This is the hot path of every read (measured by ``tools/bench.py`` and
    ``tools/convert_bench.py``): it fills the slots directly instead of running
    the converters, and converts timestamps the fastest exact way (see
    :data:`_FAST_MICROS`).
    """
    obj = _new(UserSession)
    _set_key(obj, key)
    _set_subject_id(obj, subject_id)
    _set_session_id(obj, session_id)
    when = _fromtimestamp(created / 1e6, _UTC) if 0 <= created < _FAST_MICROS else _EPOCH + _timedelta(0, 0, created)
    _set_created(obj, when)
    if renewed != created:  # a new session has renewed == created: one conversion, one shared immutable object
        when = (
            _fromtimestamp(renewed / 1e6, _UTC) if 0 <= renewed < _FAST_MICROS else _EPOCH + _timedelta(0, 0, renewed)
        )
    _set_renewed(obj, when)
    if expires is not None:
        _set_expires(
            obj,
            _fromtimestamp(expires / 1e6, _UTC) if 0 <= expires < _FAST_MICROS else _EPOCH + _timedelta(0, 0, expires),
        )
    else:
        _set_expires(obj, None)
    _set_ticket(obj, ticket)
    return obj


def check_key(key: object, where: str = "key") -> str:
    """Validate a key argument: ``TypeError`` if not a ``str``, ``InvalidSessionError`` if blank or not UTF-8."""
    if not isinstance(key, str):
        raise TypeError(f"{where} must be a str, got {type(key).__name__}")
    if not key or key.isspace():
        raise InvalidSessionError(f"{where} must be a non-blank str, got {key!r}")
    if not key.isascii():
        problem = _utf8_problem(key)
        if problem:
            raise InvalidSessionError(f"{where} {problem}")
    return key


def utc_now() -> datetime:
    """The default clock: ``datetime.now(timezone.utc)``."""
    return datetime.now(timezone.utc)


def read_clock(clock: Any) -> datetime:
    """Call ``clock`` and return its value, refusing anything but an aware ``datetime``."""
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ConfigurationError(
            f"the clock returned {now!r}; it must return an aware datetime, e.g. datetime.now(timezone.utc)"
        )
    return now


def check_clock(clock: object) -> Any:
    """Return ``clock`` if callable (``None`` means :func:`utc_now`); ``TypeError`` otherwise."""
    if clock is None:
        return utc_now
    if not callable(clock):
        raise TypeError(f"clock must be a zero-argument callable returning an aware datetime, got {clock!r}")
    return clock
