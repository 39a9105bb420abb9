"""Random values of every type into every public method: each call works or raises ``TypeError`` / a
``LitesessionsError``, never anything else, and a call that raises leaves the stored data unchanged.

The public methods are found by introspection (every public callable of the
class), so a method added later is fuzzed too.  Stored data is compared
through a separate raw connection: every row of every litesessions table.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litesessions import (
    InMemoryUserSessionStore,
    LitesessionsError,
    SessionCleanup,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from tests.conftest import T0, FakeClock

FULL = bool(os.environ.get("LITESESSIONS_FULL"))
EXAMPLES = 1000 if FULL else 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


class StrSubclass(str):
    pass


class DatetimeSubclass(datetime):
    pass


def _fixed_offsets() -> st.SearchStrategy[timezone]:
    return st.builds(
        timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
    )


TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(exclude_categories=()), max_size=6),  # lone surrogates included
    st.sampled_from(["", " ", "\t\n", "\x00", "k", "key-1", "'; DROP TABLE litesessions_sessions; --", "%", "\ud800"]),
    st.builds(StrSubclass, st.text(max_size=5)),
)
DATETIMES = st.one_of(
    st.datetimes(),  # naive
    st.datetimes(timezones=_fixed_offsets()),
    st.sampled_from(
        [
            datetime.min.replace(tzinfo=timezone(timedelta(hours=23))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-23))),
            datetime.min.replace(tzinfo=timezone.utc),
            datetime.max.replace(tzinfo=timezone.utc),
            DatetimeSubclass(2026, 1, 1, tzinfo=timezone.utc),
        ]
    ),
)
NUMBERS = st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1, 10**30, float("nan"), float("inf"), -0.0, 1e-300, 1e300])
SCALARS = st.one_of(
    NUMBERS,
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    TEXT,
    st.binary(max_size=8),
    DATETIMES,
    st.timedeltas(),
    st.sampled_from([object(), Path("x"), b"key", bytearray(b"k"), int, len, print, lambda: None, lambda *a: a]),
)


def valid_sessions() -> st.SearchStrategy[UserSession]:
    return st.builds(
        UserSession,
        key=st.sampled_from(["key-1", "key-2", "key-3", "Key-1"]),
        subject_id=st.sampled_from(["alice", "bob"]),
        session_id=st.sampled_from([None, "sid-1", "sid-2", "sid-3"]),
        created=st.just(T0),
        renewed=st.just(T0),
        expires=st.sampled_from([None, T0 - timedelta(hours=1), T0 + timedelta(hours=1)]),
        ticket=st.sampled_from(["", "ticket", "x" * 1000]),
    )


def valid_updates() -> st.SearchStrategy[UserSessionUpdate]:
    return valid_sessions().map(lambda s: s.to_update())


def valid_filters() -> st.SearchStrategy[UserSessionsFilter]:
    return st.builds(
        UserSessionsFilter,
        subject_id=st.sampled_from([None, "", "alice", "bob"]),
        session_id=st.sampled_from([None, " ", "sid-1", "sid-2"]),
    )


ANYTHING: st.SearchStrategy[Any] = st.recursive(
    st.one_of(SCALARS, valid_sessions(), valid_updates(), valid_filters()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner), st.dictionaries(TEXT, inner, max_size=2)),
    max_leaves=5,
)


def arguments(function: Callable[..., Any]) -> st.SearchStrategy[tuple[list[Any], dict[str, Any]]]:
    """Random arguments for ``function``: mostly its own parameters (by position or name), sometimes too many/few."""
    params = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    keyword = [p for p in params if p.kind == p.KEYWORD_ONLY]

    @st.composite
    def draw(draw: st.DrawFn) -> tuple[list[Any], dict[str, Any]]:
        args = [draw(ANYTHING) for _ in positional]
        kwargs = {p.name: draw(ANYTHING) for p in keyword if draw(st.booleans())}
        shape = draw(st.integers(0, 9))
        if shape == 0:
            args.append(draw(ANYTHING))  # one too many
        elif shape == 1 and args:
            args.pop()  # one too few
        elif shape == 2:
            kwargs[draw(st.sampled_from(["bogus", "key", "session"]))] = draw(ANYTHING)
        return args, kwargs

    return draw()


def public_methods(cls: type) -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.isfunction(member) and name != "close"
    )


def rows(path: Path) -> list[tuple[Any, ...]]:
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = [
            str(r[0])
            for r in connection.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'litesessions%' ORDER BY name"
            )
        ]
        return [(t, *row) for t in tables for row in connection.execute(f'SELECT * FROM "{t}" ORDER BY 1')]
    finally:
        connection.close()


def seed(store: Any) -> None:
    for key, sid, expires in [("key-1", "sid-1", T0 - timedelta(hours=1)), ("key-2", None, None)]:
        store.create_user_session(
            UserSession(
                key=key, subject_id="alice", session_id=sid, created=T0, renewed=T0, expires=expires, ticket="t"
            )
        )


def call(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> BaseException | None:
    """Call; return the exception it raised, failing the test on any type but TypeError / LitesessionsError."""
    try:
        result = function(*args, **kwargs)
        if inspect.isgenerator(result) or hasattr(result, "__enter__"):
            with result:  # transaction(): enter and leave it, committing nothing
                pass
    except (TypeError, LitesessionsError) as e:
        return e
    except BaseException as e:
        pytest.fail(f"{getattr(function, '__name__', function)}(*{args!r}, **{kwargs!r}) raised {e!r}")
    return None


@pytest.fixture
def fuzz_store(tmp_path: Path) -> Iterator[SqliteUserSessionStore]:
    with SqliteUserSessionStore(tmp_path / "fuzz.db", clock=FakeClock()) as store:
        seed(store)
        yield store


@pytest.mark.slow
@pytest.mark.parametrize("method", public_methods(SqliteUserSessionStore))
def test_sqlite_store_methods(fuzz_store: SqliteUserSessionStore, method: str) -> None:
    path = Path(fuzz_store.path)
    function = getattr(fuzz_store, method)

    @FUZZ
    @given(arguments(function))
    def fuzz(drawn: tuple[list[Any], dict[str, Any]]) -> None:
        before = rows(path)
        if call(function, *drawn) is not None:
            assert rows(path) == before

    fuzz()
    assert not fuzz_store._connection().in_transaction  # nothing left half-open


@pytest.mark.slow
@pytest.mark.parametrize("method", public_methods(InMemoryUserSessionStore))
def test_memory_store_methods(method: str) -> None:
    store = InMemoryUserSessionStore(clock=FakeClock())
    seed(store)
    function = getattr(store, method)

    def content() -> list[UserSession]:
        return sorted(store.get_user_sessions(UserSessionsFilter(subject_id="alice")), key=lambda s: s.key)

    @FUZZ
    @given(arguments(function))
    def fuzz(drawn: tuple[list[Any], dict[str, Any]]) -> None:
        before = content()
        if call(function, *drawn) is not None:
            assert content() == before

    fuzz()


@pytest.mark.slow
@pytest.mark.parametrize("model", [UserSession, UserSessionUpdate, UserSessionsFilter])
def test_model_constructors(model: type) -> None:
    names = [f.name for f in model.__attrs_attrs__]  # type: ignore[attr-defined]

    @FUZZ
    @given(st.dictionaries(st.sampled_from([*names, "bogus"]), ANYTHING, max_size=len(names) + 1))
    def fuzz(kwargs: dict[str, Any]) -> None:
        call(model, [], kwargs)

    fuzz()


@pytest.mark.slow
def test_store_constructor(tmp_path: Path) -> None:
    counter = iter(range(10**9))

    def fresh_path() -> Path:
        return tmp_path / f"c{next(counter)}.db"

    @FUZZ
    @given(
        st.one_of(SCALARS.filter(lambda v: not isinstance(v, (str, os.PathLike))), st.builds(fresh_path)),
        st.dictionaries(st.sampled_from(["partition_key", "clock", "durability", "busy_timeout", "bogus"]), ANYTHING),
    )
    def fuzz(path: Any, kwargs: dict[str, Any]) -> None:
        try:
            store = SqliteUserSessionStore(path, **kwargs)
        except (TypeError, LitesessionsError):
            return
        except BaseException as e:
            pytest.fail(f"SqliteUserSessionStore({path!r}, **{kwargs!r}) raised {e!r}")
        store.close()

    fuzz()


@pytest.mark.slow
def test_cleanup_constructor(fuzz_store: SqliteUserSessionStore) -> None:
    @FUZZ
    @given(st.dictionaries(st.sampled_from(["batch_size", "clock", "on_deleted", "bogus"]), ANYTHING))
    def fuzz(kwargs: dict[str, Any]) -> None:
        call(SessionCleanup, [fuzz_store], kwargs)

    fuzz()


@pytest.mark.slow
@pytest.mark.parametrize("method", public_methods(SessionCleanup))
def test_cleanup_methods(fuzz_store: SqliteUserSessionStore, method: str) -> None:
    path = Path(fuzz_store.path)
    cleanup = SessionCleanup(fuzz_store, batch_size=3)
    function = getattr(cleanup, method)

    @FUZZ
    @given(arguments(function))
    def fuzz(drawn: tuple[list[Any], dict[str, Any]]) -> None:
        if method == "stop":
            cleanup.start(interval=3600, jitter=3600)  # so that stop() has a thread to join
        before = rows(path)
        try:
            if call(function, *drawn) is not None:
                assert rows(path) == before
        finally:
            cleanup.stop()
        assert not cleanup.running

    fuzz()
    assert threading.active_count() < 20  # no cleanup thread was left behind
