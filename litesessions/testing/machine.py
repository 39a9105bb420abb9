"""``UserSessionStoreMachine``: a Hypothesis state machine that checks a store against the contract.

The machine runs random sequences of every operation of
:class:`~litesessions.UserSessionStore` and
:class:`~litesessions.UserSessionStoreCleanup` against the store under test
and against a model (a plain dict holding the reference semantics, written
here independently of any store), and fails with an ``AssertionError`` naming
the operation, its arguments and the expected vs actual result at the first
difference.  After every step an invariant reads the store's whole content
(``get_user_session`` for every key ever used, ``get_user_sessions`` for every
subject id ever used: every session has a subject id) and compares it with
the model.

Use it through :func:`litesessions.testing.check_store`, or subclass it::

    class TestMyStore(UserSessionStoreMachine):
        def make_store(self, clock):
            return MyStore(clock=clock)

    TestMyStoreCase = TestMyStore.TestCase  # collected by pytest / unittest
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Final

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, multiple, precondition, rule

from litesessions.models import UserSession, UserSessionsFilter, UserSessionUpdate
from litesessions.testing import strategies

__all__ = ["DEFAULT_START", "HarnessClock", "UserSessionStoreMachine"]

DEFAULT_START: Final = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
"""Where the harness clock starts (with microseconds, so truncation to milliseconds shows)."""

ON_DUPLICATE: Final = ("raise", "ignore")

_HOUR_US: Final = 3600 * 1_000_000

# Timestamps of generated sessions are the clock's "now" plus one of these
# offsets, so that sessions expire within a few clock moves and cleanup has
# work; 0 (where offsets shrink to) is the strict/non-strict expiry boundary.
_OFFSETS: Final = st.integers(min_value=-2 * _HOUR_US, max_value=4 * _HOUR_US).map(
    lambda us: timedelta(microseconds=us)
)
_CLOCK_STEPS: Final = st.integers(min_value=0, max_value=3 * _HOUR_US).map(lambda us: timedelta(microseconds=us))
_ZONES: Final = st.sampled_from(
    (
        timezone.utc,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(timedelta(hours=-8)),
        timezone(timedelta(hours=14)),
    )
)
# Mostly small tickets; large ones sometimes (kept at 64 KiB so a run stays fast).
_TICKETS: Final = strategies.tickets(max_size=32, large_size=64 * 1024)


class HarnessClock:
    """The harness's fake clock: a zero-argument callable returning an aware UTC ``datetime``.

    It only moves when the machine moves it, and only forward.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta`` (``ValueError`` if negative)."""
        if delta < timedelta(0):
            raise ValueError(f"the harness clock only moves forward, got {delta!r}")
        self.now += delta

    def __repr__(self) -> str:
        return f"HarnessClock({self.now.isoformat()})"


def _short(text: str) -> str:
    if len(text) <= 40:
        return repr(text)
    return f"<{len(text)} chars: {text[:24]!r}...>"


def _fmt_time(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat() if value.tzinfo is not None else f"{value.isoformat()} (NAIVE)"
    return repr(value)


def describe(value: object) -> str:
    """A readable one-line form of a session, update or filter, with every field (the ticket shortened)."""
    if isinstance(value, (UserSession, UserSessionUpdate)):
        parts = [f"key={value.key!r}"] if isinstance(value, UserSession) else []
        parts += [
            f"subject_id={value.subject_id!r}",
            f"session_id={value.session_id!r}",
            f"created={_fmt_time(value.created)}",
            f"renewed={_fmt_time(value.renewed)}",
            f"expires={_fmt_time(value.expires)}",
            f"ticket={_short(value.ticket) if isinstance(value.ticket, str) else repr(value.ticket)}",
        ]
        return f"{type(value).__name__}({', '.join(parts)})"
    if isinstance(value, UserSessionsFilter):
        return f"UserSessionsFilter(subject_id={value.subject_id!r}, session_id={value.session_id!r})"
    return repr(value)


_FIELDS: Final = ("key", "subject_id", "session_id", "created", "renewed", "expires", "ticket")


def _differences(expected: UserSession, actual: UserSession) -> list[str]:
    out = []
    for name in _FIELDS:
        want, got = getattr(expected, name), getattr(actual, name, "<missing>")
        naive = isinstance(got, datetime) and got.tzinfo is None
        if naive or type(want) is not type(got) or want != got:
            if name == "ticket" and isinstance(want, str) and isinstance(got, str):
                out.append(f"ticket: expected {_short(want)}, got {_short(got)}")
            elif type(want) is not type(got) and want == got:
                out.append(f"{name}: expected a {type(want).__name__}, got a {type(got).__name__}")
            else:
                out.append(f"{name}: expected {_fmt_time(want)}, got {_fmt_time(got)}")
    return out


# Near-duplicates of a value already in use: a store that matches
# case-insensitively, by prefix (LIKE 'x%'), or after trimming, confuses them.
_VARIANTS: Final = st.sampled_from(("upper", "lower", "swapcase", "pad", "prefix", "extend"))


def _variant(base: str, how: str) -> str:
    if how == "pad":
        return f" {base} "
    if how == "prefix":
        value = base[:-1]
    elif how == "extend":
        value = base + "_"
    else:
        value = getattr(str, how)(base)
    # Case mappings keep text UTF-8 encodable; a blank result (a one-character prefix) falls back.
    return value if value.strip() else base + base


def _seed(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(values, min_size=1, max_size=4, unique=True)


_SEED_VARIANTS: Final = st.lists(st.tuples(st.integers(min_value=0, max_value=3), _VARIANTS), max_size=2)


def _with_variants(values: list[str], variants: list[tuple[int, str]]) -> list[str]:
    out = list(values)
    for index, how in variants:
        variant = _variant(values[index % len(values)], how)
        if variant not in out:
            out.append(variant)
    return out


def _criterion(value: str | None) -> str | None:
    # The model's own reading of "blank counts as absent" (str.strip: Unicode whitespace).
    if value is None or not value.strip():
        return None
    return value


class UserSessionStoreMachine(RuleBasedStateMachine):
    """Checks a store against a model of the contract, step by step.

    Subclasses override :meth:`make_store` (and optionally
    :meth:`make_cleanup`) and may set the class attributes
    ``unique_session_id`` and ``on_duplicate`` (see
    :func:`litesessions.testing.check_store` for their meaning).
    """

    unique_session_id: ClassVar[bool] = True
    on_duplicate: ClassVar[str] = "raise"

    keys = Bundle("keys")
    subject_ids = Bundle("subject_ids")
    session_ids = Bundle("session_ids")

    def __init__(self) -> None:
        super().__init__()
        if self.on_duplicate not in ON_DUPLICATE:
            raise ValueError(f"on_duplicate must be 'raise' or 'ignore', got {self.on_duplicate!r}")
        self.clock = HarnessClock()
        self.model: dict[str, UserSession] = {}
        self.known_keys: set[str] = set()
        self.known_subjects: set[str] = set()
        self.store: Any = self.make_store(self.clock)
        self.cleanup: Any = self.make_cleanup(self.store, self.clock)

    # -- hooks for subclasses ------------------------------------------------

    def make_store(self, clock: Callable[[], datetime]) -> Any:
        """Return a fresh, empty store that reads "now" from ``clock``. Called once per test case."""
        raise NotImplementedError("subclass UserSessionStoreMachine and override make_store(self, clock)")

    def make_cleanup(self, store: Any, clock: Callable[[], datetime]) -> Any:
        """Return the object whose ``delete_expired_sessions()`` is checked, or ``None`` to skip cleanup.

        By default: the store itself if it has ``delete_expired_sessions``.
        """
        return store if callable(getattr(store, "delete_expired_sessions", None)) else None

    def teardown(self) -> None:
        """Close the store (if it has ``close()``) at the end of each test case."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()

    # -- calling the store ---------------------------------------------------

    def _call(self, op: str, function: Callable[..., Any], *args: Any) -> Any:
        """Call the store where the contract says the call succeeds."""
        try:
            return function(*args)
        except Exception as e:
            raise AssertionError(
                f"{op} raised {type(e).__name__}: {e}\n  expected: success (the contract allows this call here)"
            ) from e

    def _refused(self, op: str, why: str, function: Callable[..., Any], *args: Any) -> None:
        """Call the store where the contract says the call raises (changing nothing: the invariant checks)."""
        try:
            result = function(*args)
        except Exception:
            return
        raise AssertionError(f"{op} returned {result!r}\n  expected: an exception, because {why}")

    def _flag(self, op: str, result: object, expected: bool) -> None:
        if result is None:  # Duende's stores return nothing; accepted
            return
        if type(result) is not bool or result != expected:
            raise AssertionError(f"{op} returned {result!r}\n  expected: {expected!r} (or None)")

    def _count(self, op: str, result: object, expected: list[str], what: str) -> None:
        """Check a returned count against the keys the model says were deleted."""
        if result is None:
            return
        if type(result) is not int or result != len(expected):
            raise AssertionError(
                f"{op} returned {result!r}\n  expected: {len(expected)} (or None), {what}: {sorted(expected)!r}"
            )

    def _check_one(self, op: str, actual: object, expected: UserSession | None) -> None:
        if expected is None:
            if actual is not None:
                raise AssertionError(f"{op} returned {describe(actual)}\n  expected: None (no such session)")
            return
        if not isinstance(actual, UserSession):
            raise AssertionError(f"{op} returned {describe(actual)}\n  expected: {describe(expected)}")
        problems = _differences(expected, actual)
        if problems:
            raise AssertionError(
                f"{op} returned {describe(actual)}\n  expected: {describe(expected)}\n  differences: "
                + "; ".join(problems)
            )

    def _check_many(self, op: str, actual: object, expected: list[UserSession]) -> None:
        if not isinstance(actual, (list, tuple)):
            raise AssertionError(f"{op} returned {actual!r}\n  expected: a list of {len(expected)} sessions")
        for item in actual:
            if not isinstance(item, UserSession):
                raise AssertionError(f"{op} returned a list holding {item!r}\n  expected: UserSession objects")
        by_key = {s.key: s for s in expected}
        counts = collections.Counter(s.key for s in actual)
        missing = sorted(set(by_key) - set(counts))
        extra = sorted(set(counts) - set(by_key))
        repeated = sorted(k for k, n in counts.items() if n > 1)
        wrong = [
            f"{s.key!r}: " + "; ".join(_differences(by_key[s.key], s))
            for s in actual
            if s.key in by_key and _differences(by_key[s.key], s)
        ]
        if missing or extra or repeated or wrong:
            lines = [f"{op} returned {len(actual)} sessions, expected {len(expected)}"]
            if missing:
                lines.append(f"  missing: {[describe(by_key[k]) for k in missing]}")
            if extra:
                lines.append(f"  unexpected: {[describe(s) for s in actual if s.key in extra]}")
            if repeated:
                lines.append(f"  returned more than once: {repeated}")
            if wrong:
                lines.append(f"  differences: {wrong}")
            raise AssertionError("\n".join(lines))

    # -- the model -----------------------------------------------------------

    def _session_id_holder(self, session_id: str | None, besides: str | None = None) -> str | None:
        """The key of another session holding ``session_id``, if session ids must be unique."""
        if session_id is None or not self.unique_session_id:
            return None
        for key, session in self.model.items():
            if key != besides and session.session_id == session_id:
                return key
        return None

    def _matching(self, subject_id: str | None, session_id: str | None) -> list[UserSession]:
        return [
            s
            for s in self.model.values()
            if (subject_id is None or s.subject_id == subject_id) and (session_id is None or s.session_id == session_id)
        ]

    def _at(self, offset: timedelta, zone: timezone) -> datetime:
        return (self.clock.now + offset).astimezone(zone)

    # -- seeding the bundles -------------------------------------------------

    # Each bundle is filled once per test case with a few values and some
    # near-duplicates of them, and every operation draws from it: operations
    # keep meeting the same sessions, and look-alike ids meet each other.

    @initialize(target=keys, values=_seed(strategies.keys()), variants=_SEED_VARIANTS)
    def seed_keys(self, values: list[str], variants: list[tuple[int, str]]) -> Any:
        return multiple(*_with_variants(values, variants))

    @initialize(target=subject_ids, values=_seed(strategies.subject_ids()), variants=_SEED_VARIANTS)
    def seed_subject_ids(self, values: list[str], variants: list[tuple[int, str]]) -> Any:
        return multiple(*_with_variants(values, variants))

    @initialize(target=session_ids, values=_seed(strategies.session_ids()), variants=_SEED_VARIANTS)
    def seed_session_ids(self, values: list[str], variants: list[tuple[int, str]]) -> Any:
        return multiple(*_with_variants(values, variants))

    # -- IUserSessionStore ---------------------------------------------------

    def _create(self, session: UserSession) -> None:
        op = f"create_user_session({describe(session)})"
        self.known_keys.add(session.key)
        self.known_subjects.add(session.subject_id)
        if session.key in self.model:
            why = f"a session with key {session.key!r} exists"
        else:
            holder = self._session_id_holder(session.session_id)
            why = "" if holder is None else f"session {holder!r} holds session_id {session.session_id!r}"
        if not why:
            self._call(op, self.store.create_user_session, session)
            self.model[session.key] = session
        elif self.on_duplicate == "raise":
            self._refused(op, why + " (on_duplicate='raise')", self.store.create_user_session, session)
        else:
            self._call(op + f" [a duplicate: {why}; on_duplicate='ignore']", self.store.create_user_session, session)

    @rule(
        key=keys,
        subject_id=subject_ids,
        session_id=st.none() | session_ids,
        created=_OFFSETS,
        renewed=_OFFSETS,
        expires=st.none() | _OFFSETS,
        zone=_ZONES,
        ticket=_TICKETS,
    )
    def create_session(
        self,
        key: str,
        subject_id: str,
        session_id: str | None,
        created: timedelta,
        renewed: timedelta,
        expires: timedelta | None,
        zone: timezone,
        ticket: str,
    ) -> None:
        self._create(
            UserSession(
                key=key,
                subject_id=subject_id,
                session_id=session_id,
                created=self._at(created, zone),
                renewed=self._at(renewed, zone),
                expires=None if expires is None else self._at(expires, zone),
                ticket=ticket,
            )
        )

    @rule(
        key=keys,
        subject_id=subject_ids,
        count=st.integers(min_value=1, max_value=6),
        expires=st.integers(min_value=-_HOUR_US, max_value=_HOUR_US),
    )
    def create_many_sessions(self, key: str, subject_id: str, count: int, expires: int) -> None:
        """Many sessions of one subject expiring around the same time (so cleanup has several batches)."""
        for i in range(count):
            offset = timedelta(microseconds=expires + 7919 * i)
            self._create(
                UserSession(
                    key=f"{key}/{i}",
                    subject_id=subject_id,
                    created=self._at(-timedelta(hours=1), timezone.utc),
                    renewed=self._at(timedelta(0), timezone.utc),
                    expires=self._at(offset, timezone.utc),
                    ticket=f"ticket {i}",
                )
            )

    def _update(self, key: str, update: UserSessionUpdate) -> None:
        op = f"update_user_session({key!r}, {describe(update)})"
        self.known_keys.add(key)
        self.known_subjects.add(update.subject_id)
        old = self.model.get(key)
        if old is None:
            self._flag(op, self._call(op, self.store.update_user_session, key, update), False)
            return
        holder = self._session_id_holder(update.session_id, besides=key)
        if holder is None:
            self._flag(op, self._call(op, self.store.update_user_session, key, update), True)
            self.model[key] = old.with_update(update)
            return
        why = f"session {holder!r} holds session_id {update.session_id!r}"
        if self.on_duplicate == "raise":
            self._refused(op, why + " (on_duplicate='raise')", self.store.update_user_session, key, update)
        else:
            # With on_duplicate='ignore' a refused update may raise or not; either way nothing
            # may change (the invariant checks), and its return value is not checked.
            try:
                self.store.update_user_session(key, update)
            except Exception:
                pass

    @rule(
        key=keys,
        subject_id=subject_ids,
        session_id=st.none() | session_ids,
        created=_OFFSETS,
        renewed=_OFFSETS,
        expires=st.none() | _OFFSETS,
        zone=_ZONES,
        ticket=_TICKETS,
    )
    def update_session(
        self,
        key: str,
        subject_id: str,
        session_id: str | None,
        created: timedelta,
        renewed: timedelta,
        expires: timedelta | None,
        zone: timezone,
        ticket: str,
    ) -> None:
        self._update(
            key,
            UserSessionUpdate(
                subject_id=subject_id,
                session_id=session_id,
                created=self._at(created, zone),
                renewed=self._at(renewed, zone),
                expires=None if expires is None else self._at(expires, zone),
                ticket=ticket,
            ),
        )

    @precondition(lambda self: bool(self.model))
    @rule(
        pick=st.integers(min_value=0, max_value=63),
        expires=st.none() | _OFFSETS,
        take_session_id_of=st.none() | st.integers(min_value=0, max_value=63),
    )
    def renew_session(self, pick: int, expires: timedelta | None, take_session_id_of: int | None) -> None:
        """Sliding expiration: keep everything but ``renewed`` and ``expires``, and the session id
        unless ``take_session_id_of`` picks another session's (a duplicate session id)."""
        keys = sorted(self.model)
        key = keys[pick % len(keys)]
        old = self.model[key]
        session_id = old.session_id
        holders = [s.session_id for k, s in sorted(self.model.items()) if s.session_id is not None and k != key]
        if take_session_id_of is not None and holders:
            session_id = holders[take_session_id_of % len(holders)]
        self._update(
            key,
            UserSessionUpdate(
                subject_id=old.subject_id,
                session_id=session_id,
                created=old.created,
                renewed=self.clock.now,
                expires=None if expires is None else self.clock.now + expires,
                ticket=old.ticket + "+",
            ),
        )

    @precondition(lambda self: bool(self.model))
    @rule(
        pick=st.integers(min_value=0, max_value=63),
        same=st.sampled_from(("key", "session_id")),
        subject_id=subject_ids,
        ticket=_TICKETS,
    )
    def create_duplicate(self, pick: int, same: str, subject_id: str, ticket: str) -> None:
        """A create that reuses an existing session's key, or its session id under a new key
        (the existing key + ``"~"``), with other content."""
        sessions = [s for _, s in sorted(self.model.items())]
        if same == "session_id":
            sessions = [s for s in sessions if s.session_id is not None] or sessions
        existing = sessions[pick % len(sessions)]
        now = self.clock.now
        self._create(
            UserSession(
                key=existing.key if same == "key" else existing.key + "~",
                subject_id=subject_id,
                session_id=existing.session_id if same == "session_id" else None,
                created=now,
                renewed=now,
                expires=now + timedelta(hours=1),
                ticket=ticket,
            )
        )

    @rule(key=keys)
    def delete_session(self, key: str) -> None:
        op = f"delete_user_session({key!r})"
        self.known_keys.add(key)
        self._flag(op, self._call(op, self.store.delete_user_session, key), key in self.model)
        self.model.pop(key, None)

    @rule(key=keys)
    def get_session(self, key: str) -> None:
        op = f"get_user_session({key!r})"
        self.known_keys.add(key)
        self._check_one(op, self._call(op, self.store.get_user_session, key), self.model.get(key))

    @rule(
        subject_id=st.none() | strategies.blank_texts() | subject_ids,
        session_id=st.none() | strategies.blank_texts() | session_ids,
        delete=st.booleans(),
    )
    def query_sessions(self, subject_id: str | None, session_id: str | None, delete: bool) -> None:
        """``get_user_sessions`` or ``delete_user_sessions`` with a filter; blank criteria count as absent."""
        filter = UserSessionsFilter(subject_id=subject_id, session_id=session_id)
        name = "delete_user_sessions" if delete else "get_user_sessions"
        function = getattr(self.store, name)
        op = f"{name}({describe(filter)})"
        subject, sid = _criterion(subject_id), _criterion(session_id)
        if subject is None and sid is None:
            self._refused(op, "the filter has no non-blank criterion", function, filter)
            return
        if subject is not None:
            self.known_subjects.add(subject)
        expected = self._matching(subject, sid)
        result = self._call(op, function, filter)
        if not delete:
            self._check_many(op, result, expected)
            return
        self._count(op, result, [s.key for s in expected], "the keys of the matching sessions")
        for session in expected:
            del self.model[session.key]

    @rule(
        operation=st.sampled_from(["get_user_session", "update_user_session", "delete_user_session"]),
        key=strategies.blank_texts(),
    )
    def blank_key_is_refused(self, operation: str, key: str) -> None:
        function = getattr(self.store, operation)
        if operation == "update_user_session":
            now = self.clock.now
            update = UserSessionUpdate(subject_id="someone", created=now, renewed=now, ticket="")
            self._refused(f"{operation}({key!r}, {describe(update)})", "the key is blank", function, key, update)
        else:
            self._refused(f"{operation}({key!r})", "the key is blank", function, key)

    # -- time and IUserSessionStoreCleanup -----------------------------------

    @rule(step=_CLOCK_STEPS)
    def advance_clock(self, step: timedelta) -> None:
        self.clock.advance(step)

    def _future_expiries(self) -> list[datetime]:
        now = self.clock.now
        return sorted({s.expires for s in self.model.values() if s.expires is not None and s.expires >= now})

    @precondition(lambda self: self.cleanup is not None)
    @rule(move=st.sampled_from(("no", "to", "past", "all")), pick=st.integers(min_value=0, max_value=63))
    def delete_expired_sessions(self, move: str, pick: int) -> None:
        """Cleanup, after moving the clock: "to" exactly a session's ``expires`` (the strict ``<``
        boundary), 1 µs "past" it, past the last expiry of "all" sessions (many batches), or "no"."""
        expiries = self._future_expiries()
        if move != "no" and expiries:
            target = expiries[-1 if move == "all" else pick % len(expiries)]
            self.clock.advance(target + timedelta(microseconds=0 if move == "to" else 1) - self.clock.now)
        now = self.clock.now
        op = f"delete_expired_sessions() at now={now.isoformat()}"
        expired = [k for k, s in self.model.items() if s.expires is not None and s.expires < now]
        result = self._call(op, self.cleanup.delete_expired_sessions)
        self._count(op, result, expired, "the keys of the sessions with expires < now")
        for key in expired:
            del self.model[key]

    # -- the invariant -------------------------------------------------------

    @invariant()
    def store_content_equals_model(self) -> None:
        """Every key and every subject id ever used reads back exactly as the model says."""
        for key in sorted(self.known_keys):
            op = f"get_user_session({key!r}) [invariant check after the last step]"
            self._check_one(op, self._call(op, self.store.get_user_session, key), self.model.get(key))
        for subject_id in sorted(self.known_subjects):
            filter = UserSessionsFilter(subject_id=subject_id)
            op = f"get_user_sessions({describe(filter)}) [invariant check after the last step]"
            result = self._call(op, self.store.get_user_sessions, filter)
            self._check_many(op, result, self._matching(subject_id, None))
