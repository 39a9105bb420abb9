"""The conformance harness ``litesessions.testing``: it passes on the real stores and checks its options."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import Phase, settings

from litesessions import (
    DuplicateSessionError,
    InMemoryUserSessionStore,
    SessionCleanup,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from litesessions.models import check_key
from litesessions.testing import (
    PROFILES,
    HarnessClock,
    UserSessionStoreMachine,
    check_store,
    harness_settings,
)

FULL = bool(os.environ.get("LITESESSIONS_FULL"))
Clock = Callable[[], datetime]


def fresh_files(directory: Path) -> Callable[[Clock], SqliteUserSessionStore]:
    """make_store for check_store: a store on a new file for every test case."""
    counter = itertools.count()

    def make_store(clock: Clock) -> SqliteUserSessionStore:
        return SqliteUserSessionStore(directory / f"store-{next(counter)}.db", clock=clock)

    return make_store


def quick(**overrides: Any) -> settings:
    """Fewer examples, for tests of a passing store (not about finding bugs)."""
    return harness_settings(**{"max_examples": 30, "stateful_step_count": 30, **overrides})


def search_only(**overrides: Any) -> settings:
    """Default settings without shrinking, for tests that only need the harness to fail."""
    return harness_settings(**{"phases": [Phase.generate], **overrides})


# -- check_store passes on the real stores ------------------------------------


def test_check_store_passes_on_the_sqlite_store(tmp_path: Path) -> None:
    make_store = fresh_files(tmp_path)
    check_store(make_store, make_cleanup=lambda store, clock: SessionCleanup(store))
    assert len(list(tmp_path.glob("store-*.db"))) >= 100  # one file per test case, default settings ran


def test_check_store_passes_on_the_sqlite_store_with_small_cleanup_batches(tmp_path: Path) -> None:
    check_store(fresh_files(tmp_path), make_cleanup=lambda store, clock: SessionCleanup(store, batch_size=2))


def test_check_store_passes_on_the_memory_store() -> None:
    check_store(lambda clock: InMemoryUserSessionStore(clock=clock))


# -- a comparison machine: SQLite and memory side by side ----------------------


class _Disagreement(AssertionError):
    pass


def _normalised(value: object) -> object:
    if isinstance(value, list):
        return sorted(value, key=lambda s: s.key)
    return value


class TwinStore:
    """Runs every call on a SQLite store and an in-memory store, and fails as soon as they disagree.

    Both must return equal results (lists compared regardless of order) or
    raise the same exception class; then the SQLite result is returned, or
    its exception raised.
    """

    def __init__(self, sqlite: SqliteUserSessionStore, memory: InMemoryUserSessionStore) -> None:
        self.sqlite, self.memory = sqlite, memory
        self.cleanup = SessionCleanup(sqlite, batch_size=3)
        self.calls = 0

    def _both(self, name: str, *args: Any) -> Any:
        self.calls += 1
        outcomes = []
        for function in (
            getattr(self.cleanup if name == "delete_expired_sessions" else self.sqlite, name),
            getattr(self.memory, name),
        ):
            try:
                outcomes.append(("returned", _normalised(function(*args))))
            except Exception as e:
                outcomes.append(("raised", e))
        (kind_a, a), (kind_b, b) = outcomes
        same = kind_a == kind_b and (type(a) is type(b) if kind_a == "raised" else a == b)
        if not same:
            raise _Disagreement(f"{name}{args!r}: SQLite {kind_a} {a!r}, in-memory {kind_b} {b!r}")
        if kind_a == "raised":
            raise a
        return a

    def get_user_session(self, key: str) -> UserSession | None:
        return self._both("get_user_session", key)  # type: ignore[no-any-return]

    def create_user_session(self, session: UserSession) -> None:
        self._both("create_user_session", session)

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        return self._both("update_user_session", key, update)  # type: ignore[no-any-return]

    def delete_user_session(self, key: str) -> bool:
        return self._both("delete_user_session", key)  # type: ignore[no-any-return]

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        return self._both("get_user_sessions", filter)  # type: ignore[no-any-return]

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        return self._both("delete_user_sessions", filter)  # type: ignore[no-any-return]

    def delete_expired_sessions(self) -> int:
        return self._both("delete_expired_sessions")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.sqlite.close()


_twin_counter = itertools.count()
_twin_dir: list[Path] = []


class SqliteAgainstMemory(UserSessionStoreMachine):
    """The harness's machine on a TwinStore: the model, SQLite and memory must all agree at every step."""

    def make_store(self, clock: Clock) -> TwinStore:
        path = _twin_dir[0] / f"twin-{next(_twin_counter)}.db"
        return TwinStore(SqliteUserSessionStore(path, clock=clock), InMemoryUserSessionStore(clock=clock))


SqliteAgainstMemory.TestCase.settings = harness_settings(max_examples=300 if FULL else 60)


@pytest.fixture
def twin_dir(tmp_path: Path) -> Iterator[Path]:
    _twin_dir[:] = [tmp_path]
    yield tmp_path
    _twin_dir.clear()


@pytest.mark.slow
def test_sqlite_and_memory_agree_step_by_step(twin_dir: Path) -> None:
    SqliteAgainstMemory.TestCase("runTest").runTest()
    assert list(twin_dir.glob("twin-*.db"))


def test_the_twin_store_reports_a_disagreement(tmp_path: Path) -> None:
    clock = HarnessClock()
    twin = TwinStore(SqliteUserSessionStore(tmp_path / "t.db", clock=clock), InMemoryUserSessionStore(clock=clock))
    session = UserSession(key="k", subject_id="s", created=clock(), renewed=clock(), ticket="")
    twin.memory.create_user_session(session)  # only one side has it
    with pytest.raises(_Disagreement, match="get_user_session"):
        twin.get_user_session("k")
    twin.close()


# -- the machine, subclassed directly -------------------------------------------


class MemoryMachine(UserSessionStoreMachine):
    def make_store(self, clock: Clock) -> InMemoryUserSessionStore:
        return InMemoryUserSessionStore(clock=clock)


MemoryMachine.TestCase.settings = quick()
TestMemoryMachine = MemoryMachine.TestCase  # collected by pytest as a unittest TestCase


def test_the_base_machine_needs_make_store() -> None:
    with pytest.raises(NotImplementedError, match="make_store"):
        UserSessionStoreMachine()


# -- the options -------------------------------------------------------------


class IgnoresDuplicates(InMemoryUserSessionStore):
    """Like Duende's EF Core store: a duplicate create is logged and ignored."""

    def create_user_session(self, session: UserSession) -> None:
        try:
            super().create_user_session(session)
        except DuplicateSessionError:
            pass


class NoSessionIdIndex:
    """Like Duende's in-memory store: session ids need not be unique (a dict of sessions, nothing more)."""

    def __init__(self, clock: Clock) -> None:
        self.sessions: dict[str, UserSession] = {}

    def get_user_session(self, key: str) -> UserSession | None:
        return self.sessions.get(check_key(key))

    def create_user_session(self, session: UserSession) -> None:
        if session.key in self.sessions:
            raise DuplicateSessionError("key taken")
        self.sessions[session.key] = session

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        old = self.sessions.get(check_key(key))
        if old is not None:
            self.sessions[key] = old.with_update(update)
        return old is not None

    def delete_user_session(self, key: str) -> bool:
        return self.sessions.pop(check_key(key), None) is not None

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        filter.criteria()  # raises for a filter without criteria, even when there are no sessions
        return [s for s in self.sessions.values() if filter.matches(s)]

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        doomed = self.get_user_sessions(filter)
        for session in doomed:
            del self.sessions[session.key]
        return len(doomed)


def test_on_duplicate_ignore_accepts_a_store_that_ignores_duplicates() -> None:
    check_store(lambda clock: IgnoresDuplicates(clock=clock), on_duplicate="ignore", settings=quick())


def test_on_duplicate_raise_rejects_a_store_that_ignores_duplicates() -> None:
    with pytest.raises(AssertionError, match="expected: an exception"):
        check_store(lambda clock: IgnoresDuplicates(clock=clock), settings=search_only())


def test_on_duplicate_ignore_rejects_a_store_that_raises() -> None:
    with pytest.raises(AssertionError, match="on_duplicate='ignore'"):
        check_store(lambda clock: InMemoryUserSessionStore(clock=clock), on_duplicate="ignore", settings=search_only())


def test_unique_session_id_false_accepts_shared_session_ids() -> None:
    check_store(lambda clock: NoSessionIdIndex(clock=clock), unique_session_id=False, settings=quick())


def test_unique_session_id_true_rejects_shared_session_ids() -> None:
    with pytest.raises(AssertionError, match="holds session_id"):
        check_store(lambda clock: NoSessionIdIndex(clock=clock), settings=search_only())


def test_unique_session_id_false_rejects_a_store_that_enforces_them() -> None:
    with pytest.raises(AssertionError, match="raised DuplicateSessionError"):
        check_store(
            lambda clock: InMemoryUserSessionStore(clock=clock), unique_session_id=False, settings=search_only()
        )


class NoCleanup:
    """A store without ``delete_expired_sessions``: cleanup is not checked."""

    def __init__(self, clock: Clock) -> None:
        self.inner = InMemoryUserSessionStore(clock=clock)

    def __getattr__(self, name: str) -> Any:
        if name == "delete_expired_sessions":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_a_store_without_cleanup_is_checked_without_it() -> None:
    check_store(NoCleanup, settings=quick())


def test_make_cleanup_is_what_gets_checked() -> None:
    class WrongCount:
        def __init__(self, store: InMemoryUserSessionStore) -> None:
            self.store = store

        def delete_expired_sessions(self) -> int:
            return self.store.delete_expired_sessions() + 1

    with pytest.raises(AssertionError, match="delete_expired_sessions"):
        check_store(
            lambda clock: InMemoryUserSessionStore(clock=clock),
            make_cleanup=lambda store, clock: WrongCount(store),
            settings=search_only(),
        )


def test_every_store_is_closed(tmp_path: Path) -> None:
    opened: list[SqliteUserSessionStore] = []

    def make_store(clock: Clock) -> SqliteUserSessionStore:
        opened.append(SqliteUserSessionStore(tmp_path / f"s{len(opened)}.db", clock=clock))
        return opened[-1]

    check_store(make_store, settings=quick(max_examples=10))
    assert len(opened) >= 10
    assert all(store.closed for store in opened)


def test_the_clock_is_aware_and_moves_forward_only() -> None:
    clock = HarnessClock()
    assert clock().utcoffset() is not None
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-clock().resolution)


def test_a_store_that_is_not_fresh_each_time_is_reported(tmp_path: Path) -> None:
    shared = InMemoryUserSessionStore()

    def make_store(clock: Clock) -> InMemoryUserSessionStore:
        shared.clock = clock
        return shared

    with pytest.raises(AssertionError):
        check_store(make_store, settings=search_only())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"make_store": 42}, TypeError),
        ({"make_cleanup": "no"}, TypeError),
        ({"unique_session_id": "yes"}, TypeError),
        ({"on_duplicate": "overwrite"}, ValueError),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    arguments: dict[str, Any] = {"make_store": lambda clock: InMemoryUserSessionStore(clock=clock), **kwargs}
    with pytest.raises(error):
        check_store(**arguments)


# -- the report ----------------------------------------------------------------


class LosesTickets(InMemoryUserSessionStore):
    def create_user_session(self, session: UserSession) -> None:
        super().create_user_session(attrs.evolve(session, ticket=session.ticket[:3]))


def test_the_report_names_operation_arguments_expected_actual_and_steps() -> None:
    with pytest.raises(AssertionError) as failure:
        check_store(lambda clock: LosesTickets(clock=clock))
    message = str(failure.value)
    assert "get_user_session" in message  # the operation and its argument
    assert "expected:" in message
    assert "ticket: expected" in message  # the field that differs, expected vs actual
    assert "state = CheckStore[" in message  # Hypothesis' shrunk reproduction
    assert "state.create" in message


# -- settings profiles ---------------------------------------------------------


def test_profiles() -> None:
    default = harness_settings()
    assert default.deadline is None
    assert default.max_examples == PROFILES["default"]["max_examples"]
    ci = harness_settings("ci")
    assert ci.derandomize and ci.database is None
    assert harness_settings("thorough").max_examples >= 1000
    assert harness_settings(max_examples=7).max_examples == 7
    with pytest.raises(ValueError, match="profile"):
        harness_settings("fast")


# -- packaging -----------------------------------------------------------------


def test_importing_litesessions_does_not_import_hypothesis() -> None:
    code = "import sys, litesessions, litesessions.cli; print('hypothesis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    code = "import sys, litesessions.testing; print('hypothesis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"  # the check above can tell


def test_the_example_based_contract_is_reexported_without_importing_pytest_early() -> None:
    code = (
        "import sys, litesessions.testing as t; before = 'pytest' in sys.modules; "
        "from litesessions.testing import UserSessionStoreContract; "
        "print(before, UserSessionStoreContract.__module__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "litesessions.testing.contract"]


def _readme_section() -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = text.index("## Testing your own store")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = _readme_section()
    blocks = [b.split("\n", 1)[1] for b in section.split("```python")[1:]]
    blocks = [b[: b.index("```")] for b in blocks]
    assert blocks, "no python code block in the README section"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert tests, "the README example defines no test function"
    for test in tests:
        test()
