"""``UserSessionStoreContract``: the Duende-derived conformance list as plain pytest tests.

For people who prefer example-based tests to the property-based machine:
subclass it in a test module, supply :meth:`~UserSessionStoreContract.make_store`,
and pytest collects every ``test_*`` method below against your store::

    class TestMyStore(UserSessionStoreContract):
        def make_store(self, clock):
            return MyStore(clock=clock)

A store with partitions (Duende's ``ApplicationName``) can also subclass
:class:`PartitionedStoreContract` and supply ``make_partition_store``.

The expectations are litesessions' semantics (the README's numbered rules).
Two class attributes relax them for stores that follow another Duende store:
``on_duplicate = "ignore"`` (a duplicate create silently keeps the stored
session) and ``unique_session_id = False``.  A store whose methods return
``None`` where ours return a ``bool`` or a count is accepted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest

from litesessions.errors import InvalidFilterError
from litesessions.models import UserSession, UserSessionsFilter, UserSessionUpdate

__all__ = ["ContractClock", "PartitionedStoreContract", "UserSessionStoreContract"]

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


class ContractClock:
    """A fake clock: returns ``now`` until :meth:`advance` moves it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self.now += delta


def _session(key: str, subject_id: str = "sub", session_id: str | None = None, **more: Any) -> UserSession:
    fields: dict[str, Any] = {
        "created": T0,
        "renewed": T0 + timedelta(seconds=1),
        "expires": T0 + timedelta(hours=1),
        "ticket": f"ticket of {key}",
    }
    fields.update(more)
    return UserSession(key=key, subject_id=subject_id, session_id=session_id, **fields)


def _same(actual: object, expected: object) -> None:
    # Duende's stores return nothing: a store returning None is accepted.
    if actual is not None:
        assert actual == expected, f"expected {expected!r}, got {actual!r}"


def _keys(sessions: list[UserSession]) -> set[str]:
    return {s.key for s in sessions}


class UserSessionStoreContract:
    """Conformance tests for any ``UserSessionStore``; subclass and implement :meth:`make_store`."""

    on_duplicate: ClassVar[str] = "raise"
    unique_session_id: ClassVar[bool] = True

    def make_store(self, clock: Callable[[], datetime]) -> Any:
        """Return a new, empty store that uses ``clock`` for "now"."""
        raise NotImplementedError("subclasses of UserSessionStoreContract implement make_store(clock)")

    def make_cleanup(self, store: Any, clock: Callable[[], datetime]) -> Any:
        """Return the object whose ``delete_expired_sessions()`` cleans ``store`` (default: the store)."""
        return store

    @pytest.fixture
    def clock(self) -> ContractClock:
        return ContractClock()

    @pytest.fixture
    def store(self, clock: ContractClock) -> Iterator[Any]:
        store = self.make_store(clock)
        yield store
        close = getattr(store, "close", None)
        if callable(close):
            close()

    @pytest.fixture
    def six(self, store: Any) -> list[UserSession]:
        """Six sessions over three subjects: a has 3, b has 2, c has 1."""
        sessions = [
            _session("k1", "a", "s1"),
            _session("k2", "a", "s2"),
            _session("k3", "a", "s3"),
            _session("k4", "b", "s4"),
            _session("k5", "b", "s5"),
            _session("k6", "c", "s6"),
        ]
        for s in sessions:
            store.create_user_session(s)
        return sessions

    # -- create / get ----------------------------------------------------------

    def test_create_then_count_is_one(self, store: Any) -> None:
        store.create_user_session(_session("k", "sub", "sid"))
        assert len(store.get_user_sessions(UserSessionsFilter(subject_id="sub"))) == 1

    def test_get_round_trips_every_field(self, store: Any) -> None:
        original = _session(
            "key-\u00e9\u4e2d",
            "subject \u2603",
            "sid-\U0001f600",
            created=datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            renewed=T0 + timedelta(microseconds=1),
            expires=T0 + timedelta(days=3650, microseconds=7),
            ticket="t" * 100_000 + "\u00fc",
        )
        store.create_user_session(original)
        got = store.get_user_session(original.key)
        assert got == original
        assert got is not original
        for name in ("created", "renewed", "expires"):
            value = getattr(got, name)
            assert value.utcoffset() == timedelta(0), f"{name} must come back in UTC"

    def test_never_expiring_session_round_trips(self, store: Any) -> None:
        original = _session("k", expires=None)
        store.create_user_session(original)
        assert store.get_user_session("k") == original

    def test_unknown_key_gives_none(self, store: Any) -> None:
        assert store.get_user_session("no such key") is None

    def test_keys_are_case_sensitive(self, store: Any) -> None:
        store.create_user_session(_session("Key"))
        assert store.get_user_session("key") is None

    def test_duplicate_key_is_refused_and_stored_session_unchanged(self, store: Any) -> None:
        first = _session("k", "sub", "sid-1")
        store.create_user_session(first)
        duplicate = _session("k", "other", "sid-2", ticket="other ticket")
        if self.on_duplicate == "raise":
            with pytest.raises(Exception):  # noqa: B017 - any exception is what the contract asks
                store.create_user_session(duplicate)
        else:
            store.create_user_session(duplicate)
        assert store.get_user_session("k") == first
        assert store.get_user_sessions(UserSessionsFilter(session_id="sid-2")) == []

    def test_duplicate_session_id_is_refused(self, store: Any) -> None:
        if not self.unique_session_id:
            return
        first = _session("k1", "sub", "sid")
        store.create_user_session(first)
        with pytest.raises(Exception):  # noqa: B017
            store.create_user_session(_session("k2", "sub", "sid"))
        assert store.get_user_session("k2") is None
        assert store.get_user_sessions(UserSessionsFilter(session_id="sid")) == [first]

    def test_many_sessions_without_session_id(self, store: Any) -> None:
        for i in range(3):
            store.create_user_session(_session(f"k{i}", "sub", None))
        assert len(store.get_user_sessions(UserSessionsFilter(subject_id="sub"))) == 3

    # -- update ------------------------------------------------------------------

    def test_update_changes_fields_but_not_the_key(self, store: Any) -> None:
        store.create_user_session(_session("k", "sub", "sid"))
        update = UserSessionUpdate(
            subject_id="sub-2",
            session_id="sid-2",
            created=T0 + timedelta(minutes=1),
            renewed=T0 + timedelta(minutes=2),
            expires=None,
            ticket="new ticket",
        )
        _same(store.update_user_session("k", update), True)
        got = store.get_user_session("k")
        assert got is not None
        assert got.key == "k"
        assert got.to_update() == update
        assert store.get_user_sessions(UserSessionsFilter(subject_id="sub")) == []
        assert store.get_user_sessions(UserSessionsFilter(session_id="sid")) == []
        assert _keys(store.get_user_sessions(UserSessionsFilter(subject_id="sub-2", session_id="sid-2"))) == {"k"}

    def test_update_of_unknown_key_creates_nothing(self, store: Any) -> None:
        update = _session("x", "sub", "sid").to_update()
        _same(store.update_user_session("unknown", update), False)
        assert store.get_user_session("unknown") is None
        assert store.get_user_sessions(UserSessionsFilter(subject_id="sub")) == []

    def test_update_into_a_taken_session_id_is_refused(self, store: Any) -> None:
        if not self.unique_session_id:
            return
        one, two = _session("k1", "sub", "sid-1"), _session("k2", "sub", "sid-2")
        store.create_user_session(one)
        store.create_user_session(two)
        with pytest.raises(Exception):  # noqa: B017
            store.update_user_session("k2", _session("k2", "sub", "sid-1", ticket="changed").to_update())
        assert store.get_user_session("k2") == two
        assert store.get_user_session("k1") == one

    def test_update_keeping_its_own_session_id(self, store: Any) -> None:
        store.create_user_session(_session("k", "sub", "sid"))
        _same(store.update_user_session("k", _session("k", "sub", "sid", ticket="v2").to_update()), True)
        got = store.get_user_session("k")
        assert got is not None and got.ticket == "v2"

    # -- delete ------------------------------------------------------------------

    def test_delete(self, store: Any) -> None:
        store.create_user_session(_session("k"))
        _same(store.delete_user_session("k"), True)
        assert store.get_user_session("k") is None

    def test_delete_of_unknown_key(self, store: Any) -> None:
        store.create_user_session(_session("k"))
        _same(store.delete_user_session("unknown"), False)
        assert store.get_user_session("k") is not None

    def test_two_concurrent_deletes_of_one_key_both_succeed(self, store: Any) -> None:
        store.create_user_session(_session("k"))
        barrier = threading.Barrier(2)
        results: list[object] = []
        errors: list[BaseException] = []

        def delete() -> None:
            barrier.wait()
            try:
                results.append(store.delete_user_session("k"))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=delete) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        if None not in results:
            assert sorted(results, key=bool) == [False, True]
        assert store.get_user_session("k") is None

    # -- filters -----------------------------------------------------------------

    def test_filter_by_subject(self, store: Any, six: list[UserSession]) -> None:
        assert _keys(store.get_user_sessions(UserSessionsFilter(subject_id="a"))) == {"k1", "k2", "k3"}

    def test_filter_by_session_id(self, store: Any, six: list[UserSession]) -> None:
        assert _keys(store.get_user_sessions(UserSessionsFilter(session_id="s4"))) == {"k4"}

    def test_filter_by_both(self, store: Any, six: list[UserSession]) -> None:
        assert _keys(store.get_user_sessions(UserSessionsFilter(subject_id="b", session_id="s5"))) == {"k5"}

    def test_filter_results_equal_what_was_stored(self, store: Any, six: list[UserSession]) -> None:
        got = store.get_user_sessions(UserSessionsFilter(subject_id="a"))
        assert sorted(got, key=lambda s: s.key) == six[:3]

    @pytest.mark.parametrize(
        ("subject_id", "session_id"),
        [("nobody", None), (None, "no-sid"), ("a", "s4"), ("b", "s1"), ("A", None), (None, "S1"), ("nobody", "s1")],
    )
    def test_filter_unknown_values_and_mismatched_pairs_find_nothing(
        self, store: Any, six: list[UserSession], subject_id: str | None, session_id: str | None
    ) -> None:
        assert store.get_user_sessions(UserSessionsFilter(subject_id=subject_id, session_id=session_id)) == []

    def test_blank_criterion_counts_as_absent(self, store: Any, six: list[UserSession]) -> None:
        assert _keys(store.get_user_sessions(UserSessionsFilter(subject_id="a", session_id=" \t"))) == {
            "k1",
            "k2",
            "k3",
        }
        assert _keys(store.get_user_sessions(UserSessionsFilter(subject_id="", session_id="s6"))) == {"k6"}

    @pytest.mark.parametrize(("subject_id", "session_id"), [(None, None), ("", None), (" ", "\t\n"), (None, "")])
    def test_filter_without_criteria_is_refused(
        self, store: Any, six: list[UserSession], subject_id: str | None, session_id: str | None
    ) -> None:
        empty = UserSessionsFilter(subject_id=subject_id, session_id=session_id)
        with pytest.raises(InvalidFilterError):
            store.get_user_sessions(empty)
        with pytest.raises(InvalidFilterError):
            store.delete_user_sessions(empty)
        assert len(store.get_user_sessions(UserSessionsFilter(subject_id="a"))) == 3

    def test_session_without_session_id_never_matches_a_session_id_criterion(self, store: Any) -> None:
        store.create_user_session(_session("k", "sub", None))
        assert store.get_user_sessions(UserSessionsFilter(subject_id="sub", session_id="None")) == []
        assert _keys(store.get_user_sessions(UserSessionsFilter(subject_id="sub"))) == {"k"}

    def test_delete_by_subject(self, store: Any, six: list[UserSession]) -> None:
        _same(store.delete_user_sessions(UserSessionsFilter(subject_id="a")), 3)
        assert store.get_user_sessions(UserSessionsFilter(subject_id="a")) == []
        assert len(store.get_user_sessions(UserSessionsFilter(subject_id="b"))) == 2

    def test_delete_by_session_id(self, store: Any, six: list[UserSession]) -> None:
        _same(store.delete_user_sessions(UserSessionsFilter(session_id="s4")), 1)
        assert store.get_user_session("k4") is None
        assert store.get_user_session("k5") is not None

    def test_delete_by_both(self, store: Any, six: list[UserSession]) -> None:
        _same(store.delete_user_sessions(UserSessionsFilter(subject_id="b", session_id="s5")), 1)
        assert store.get_user_session("k5") is None
        assert store.get_user_session("k4") is not None

    @pytest.mark.parametrize(
        ("subject_id", "session_id"), [("nobody", None), (None, "no-sid"), ("a", "s4"), ("b", "s1")]
    )
    def test_delete_with_unknown_values_and_mismatched_pairs_deletes_nothing(
        self, store: Any, six: list[UserSession], subject_id: str | None, session_id: str | None
    ) -> None:
        _same(store.delete_user_sessions(UserSessionsFilter(subject_id=subject_id, session_id=session_id)), 0)
        for s in six:
            assert store.get_user_session(s.key) == s

    # -- expiry ------------------------------------------------------------------

    def test_get_returns_expired_sessions(self, store: Any, clock: ContractClock) -> None:
        store.create_user_session(_session("k", "sub", expires=T0 - timedelta(days=1)))
        assert store.get_user_session("k") is not None
        assert len(store.get_user_sessions(UserSessionsFilter(subject_id="sub"))) == 1

    def test_cleanup_after_the_clock_passes_expiry_leaves_none_expired(self, store: Any, clock: ContractClock) -> None:
        cleanup = self.make_cleanup(store, clock)
        store.create_user_session(_session("short", expires=T0 + timedelta(minutes=5)))
        store.create_user_session(_session("long", expires=T0 + timedelta(hours=5)))
        store.create_user_session(_session("never", expires=None))
        _same(cleanup.delete_expired_sessions(), 0)
        clock.advance(timedelta(minutes=10))
        _same(cleanup.delete_expired_sessions(), 1)
        assert store.get_user_session("short") is None
        assert store.get_user_session("long") is not None
        clock.advance(timedelta(days=10_000))
        _same(cleanup.delete_expired_sessions(), 1)
        assert store.get_user_session("long") is None
        assert store.get_user_session("never") is not None

    def test_cleanup_is_strict(self, store: Any, clock: ContractClock) -> None:
        cleanup = self.make_cleanup(store, clock)
        store.create_user_session(_session("k", expires=T0 + timedelta(minutes=5)))
        clock.advance(timedelta(minutes=5))
        _same(cleanup.delete_expired_sessions(), 0)
        assert store.get_user_session("k") is not None
        clock.advance(timedelta(microseconds=1))
        _same(cleanup.delete_expired_sessions(), 1)
        assert store.get_user_session("k") is None

    def test_cleanup_of_many_sessions_removes_all(self, store: Any, clock: ContractClock) -> None:
        cleanup = self.make_cleanup(store, clock)
        for i in range(250):
            store.create_user_session(_session(f"k{i}", expires=T0 + timedelta(seconds=i)))
        clock.advance(timedelta(hours=1))
        _same(cleanup.delete_expired_sessions(), 250)
        assert store.get_user_sessions(UserSessionsFilter(subject_id="sub")) == []


class PartitionedStoreContract:
    """Partition tests, for stores that keep several partitions in one storage (Duende's ``ApplicationName``)."""

    def make_partition_store(self, clock: Callable[[], datetime], partition_key: str) -> Any:
        """Return a store over the SAME storage as every other call in this test, scoped to ``partition_key``."""
        raise NotImplementedError("subclasses implement make_partition_store(clock, partition_key)")

    def make_cleanup(self, store: Any, clock: Callable[[], datetime]) -> Any:
        """Return the object whose ``delete_expired_sessions()`` cleans ``store`` (default: the store)."""
        return store

    def _pair(self, clock: ContractClock) -> tuple[Any, Any]:
        return self.make_partition_store(clock, "app-1"), self.make_partition_store(clock, "app-2")

    def test_same_key_and_session_id_in_two_partitions_are_two_sessions(self) -> None:
        one, two = self._pair(ContractClock())
        s1 = _session("k", "sub", "sid", ticket="one")
        s2 = _session("k", "sub", "sid", ticket="two")
        one.create_user_session(s1)
        two.create_user_session(s2)
        assert one.get_user_session("k") == s1
        assert two.get_user_session("k") == s2
        assert one.get_user_sessions(UserSessionsFilter(subject_id="sub")) == [s1]
        _same(two.delete_user_sessions(UserSessionsFilter(session_id="sid")), 1)
        assert one.get_user_session("k") == s1
        _same(two.update_user_session("k", s1.to_update()), False)
        assert two.get_user_session("k") is None

    def test_cleanup_from_another_partitions_store_removes_the_expired_session(self) -> None:
        clock = ContractClock()
        one, two = self._pair(clock)
        one.create_user_session(_session("k", "sub", "sid", expires=T0 + timedelta(minutes=1)))
        clock.advance(timedelta(minutes=2))
        _same(self.make_cleanup(two, clock).delete_expired_sessions(), 1)
        assert one.get_user_session("k") is None
