"""``SessionCleanup`` on a daemon thread: start/stop, jitter, on_deleted, errors, and correctness under load."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from litesessions import (
    ConfigurationError,
    SessionCleanup,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
)
from litesessions import cleanup as cleanup_module
from tests.conftest import T0, FakeClock, make_update

FULL = bool(os.environ.get("LITESESSIONS_FULL"))


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds (a hang, not a benchmark)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def expired(n: int, prefix: str = "old") -> list[UserSession]:
    return [
        UserSession(
            key=f"{prefix}-{i}",
            subject_id=f"sub-{i % 7}",
            session_id=f"{prefix}-sid-{i}",
            created=T0 - timedelta(hours=2),
            renewed=T0 - timedelta(hours=2),
            expires=T0 - timedelta(minutes=1 + i % 50),
            ticket=f"ticket-{prefix}-{i}",
        )
        for i in range(n)
    ]


def live(n: int, prefix: str = "live") -> list[UserSession]:
    return [
        UserSession(
            key=f"{prefix}-{i}",
            subject_id=f"sub-{i % 7}",
            session_id=None if i % 3 == 0 else f"{prefix}-sid-{i}",
            created=T0,
            renewed=T0,
            expires=None if i % 5 == 0 else T0 + timedelta(hours=1),
            ticket=f"ticket-{prefix}-{i}",
        )
        for i in range(n)
    ]


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[SqliteUserSessionStore]:
    with SqliteUserSessionStore(db_path, clock=clock) as s:
        yield s


def all_keys(store: SqliteUserSessionStore) -> set[str]:
    rows = store._connection().execute("SELECT key FROM litesessions_sessions").fetchall()
    return {str(r[0]) for r in rows}


def test_background_run_deletes_expired_and_keeps_the_rest(store: SqliteUserSessionStore) -> None:
    store.create_user_sessions(expired(250) + live(40))
    cleanup = SessionCleanup(store, batch_size=30)
    with cleanup.start(interval=0.05, jitter=0):
        wait_for(lambda: cleanup.runs >= 1)
        assert cleanup.running
    assert not cleanup.running
    assert all_keys(store) == {s.key for s in live(40)}
    assert cleanup.failures == 0


def test_context_manager_starts_and_stops_the_thread(store: SqliteUserSessionStore) -> None:
    cleanup = SessionCleanup(store)
    assert not cleanup.running
    with cleanup as entered:
        assert entered is cleanup
        assert cleanup.running
    assert not cleanup.running


def test_on_deleted_gets_every_removed_session_after_its_batch_committed(
    store: SqliteUserSessionStore, db_path: Path, clock: FakeClock
) -> None:
    old = expired(95)
    store.create_user_sessions(old + live(10))
    batches: list[list[UserSession]] = []
    visible_elsewhere: list[int] = []
    # A second store is another connection: it only sees what was committed.
    with SqliteUserSessionStore(db_path, clock=clock) as other:

        def on_deleted(sessions: list[UserSession]) -> None:
            batches.append(sessions)
            visible_elsewhere.extend(1 for s in sessions if other.get_user_session(s.key) is not None)

        cleanup = SessionCleanup(store, batch_size=20, on_deleted=on_deleted)
        with cleanup.start(interval=10, jitter=0):
            wait_for(lambda: cleanup.runs >= 1)
    assert [len(b) for b in batches] == [20, 20, 20, 20, 15]
    delivered = sorted((s for b in batches for s in b), key=lambda s: s.key)
    assert delivered == sorted(old, key=lambda s: s.key)  # all seven fields, tickets included
    assert visible_elsewhere == []


def test_synchronous_run_also_calls_on_deleted(store: SqliteUserSessionStore) -> None:
    store.create_user_sessions(expired(7))
    got: list[str] = []
    cleanup = SessionCleanup(store, batch_size=3, on_deleted=lambda ss: got.extend(s.key for s in ss))
    assert cleanup.delete_expired_sessions() == 7
    assert sorted(got) == sorted(s.key for s in expired(7))


def test_a_failing_run_is_logged_and_the_next_run_still_happens(
    store: SqliteUserSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.create_user_sessions(expired(12))
    calls = {"n": 0}

    def flaky_clock() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("clock source unavailable")
        return T0

    cleanup = SessionCleanup(store, clock=flaky_clock)
    with caplog.at_level(logging.DEBUG, logger="litesessions.cleanup"), cleanup.start(interval=0.02, jitter=0):
        wait_for(lambda: cleanup.runs >= 2)
    assert cleanup.failures == 1
    assert all_keys(store) == set()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "cleanup failed" in errors[0].getMessage()


def test_a_failing_callback_is_logged_and_cleanup_goes_on(
    store: SqliteUserSessionStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.create_user_sessions(expired(50))

    def broken(sessions: list[UserSession]) -> None:
        raise RuntimeError("notification endpoint down")

    cleanup = SessionCleanup(store, batch_size=10, on_deleted=broken)
    with caplog.at_level(logging.ERROR, logger="litesessions.cleanup"):
        assert cleanup.delete_expired_sessions() == 50
    assert all_keys(store) == set()
    assert sum("on_deleted callback failed" in r.getMessage() for r in caplog.records) == 5


def test_a_bad_clock_is_a_failed_run_not_a_dead_thread(store: SqliteUserSessionStore) -> None:
    cleanup = SessionCleanup(store, clock=lambda: "not a datetime")  # type: ignore[arg-type, return-value]
    with cleanup.start(interval=0.01, jitter=0):
        wait_for(lambda: cleanup.runs >= 3)
        assert cleanup.running
    assert cleanup.failures == cleanup.runs >= 3


def test_stop_during_a_long_run_ends_after_the_current_batch(store: SqliteUserSessionStore) -> None:
    store.create_user_sessions(expired(3000))
    first_batch = threading.Event()
    release = threading.Event()
    batches: list[int] = []

    def on_deleted(sessions: list[UserSession]) -> None:
        batches.append(len(sessions))
        first_batch.set()
        release.wait(5)

    cleanup = SessionCleanup(store, batch_size=10, on_deleted=on_deleted)
    cleanup.start(interval=3600, jitter=0)
    assert first_batch.wait(10)
    stopper = threading.Thread(target=cleanup.stop, kwargs={"timeout": 5.0})
    stopper.start()
    wait_for(lambda: cleanup._thread is None)  # stop() has signalled
    release.set()
    stopper.join(10)
    assert not cleanup.running
    assert batches == [10]
    assert len(all_keys(store)) == 3000 - 10


def test_stop_is_prompt_while_waiting_for_the_next_run(store: SqliteUserSessionStore) -> None:
    cleanup = SessionCleanup(store).start(interval=3600, jitter=3600)
    cleanup.stop(timeout=1.0)  # an Event wakes the thread: it must be gone within that second
    assert not cleanup.running
    cleanup.stop()  # idempotent


def test_first_delay_is_drawn_between_zero_and_jitter(
    store: SqliteUserSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[tuple[float, float]] = []

    def fake_uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return 3600.0

    monkeypatch.setattr(cleanup_module.random, "uniform", fake_uniform)
    cleanup = SessionCleanup(store)
    cleanup.start(interval=120, jitter=30).stop()
    cleanup.start(interval=120).stop()
    assert draws == [(0.0, 30.0), (0.0, 120.0)]


def test_start_twice_raises_and_restart_after_stop_works(store: SqliteUserSessionStore) -> None:
    store.create_user_sessions(expired(3))
    cleanup = SessionCleanup(store)
    cleanup.start(interval=3600, jitter=3600)
    with pytest.raises(RuntimeError, match="already running"):
        cleanup.start()
    cleanup.stop()
    with cleanup.start(interval=3600, jitter=0):
        wait_for(lambda: cleanup.runs >= 1)
    assert all_keys(store) == set()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"interval": 0}, ConfigurationError),
        ({"interval": -1}, ConfigurationError),
        ({"interval": float("nan")}, ConfigurationError),
        ({"interval": float("inf")}, ConfigurationError),
        ({"interval": 1e12}, ConfigurationError),
        ({"interval": "60"}, TypeError),
        ({"interval": True}, TypeError),
        ({"interval": 60, "jitter": -0.5}, ConfigurationError),
        ({"interval": 60, "jitter": float("nan")}, ConfigurationError),
        ({"interval": 60, "jitter": "1"}, TypeError),
    ],
)
def test_bad_start_arguments_are_refused_and_nothing_starts(
    store: SqliteUserSessionStore, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    cleanup = SessionCleanup(store)
    with pytest.raises(error):
        cleanup.start(**kwargs)
    assert not cleanup.running


def test_on_deleted_must_be_callable(store: SqliteUserSessionStore) -> None:
    with pytest.raises(TypeError, match="on_deleted"):
        SessionCleanup(store, on_deleted="print")  # type: ignore[arg-type]


def test_closing_the_store_ends_the_thread(db_path: Path, clock: FakeClock) -> None:
    store = SqliteUserSessionStore(db_path, clock=clock)
    cleanup = SessionCleanup(store).start(interval=0.01, jitter=0)
    wait_for(lambda: cleanup.runs >= 1)
    store.close()
    wait_for(lambda: not cleanup.running)
    cleanup.stop()


@pytest.mark.slow
def test_background_cleanup_under_update_load_removes_every_expired_and_keeps_every_live(
    db_path: Path, clock: FakeClock
) -> None:
    # Done-when size: 200,000 + 200,000 (tools/cleanup_load.py measures the latencies at that size).
    n = 200_000 if FULL else 20_000
    with SqliteUserSessionStore(db_path, clock=clock) as store:
        store.create_user_sessions(expired(n))
        alive = live(n)
        store.create_user_sessions(alive)
        latest = {s.key: s for s in alive}
        stop = threading.Event()
        errors: list[BaseException] = []

        def updater() -> None:
            i = 0
            try:
                while not stop.is_set():
                    session = alive[(i * 7919) % n]
                    update = make_update(
                        subject_id=session.subject_id,
                        session_id=session.session_id,
                        renewed=T0 + timedelta(seconds=i),
                        ticket=f"renewed-{i}",
                    )
                    assert store.update_user_session(session.key, update)
                    latest[session.key] = session.with_update(update)
                    i += 1
            except BaseException as e:
                errors.append(e)

        worker = threading.Thread(target=updater)
        worker.start()
        cleanup = SessionCleanup(store)
        try:
            with cleanup.start(interval=3600, jitter=0):
                wait_for(lambda: cleanup.runs >= 1, timeout=600)
        finally:
            stop.set()
            worker.join()
        assert errors == []
        assert cleanup.failures == 0
        remaining = store._connection().execute("SELECT count(*) FROM litesessions_sessions").fetchall()[0][0]
        assert remaining == n
        for key, expected in latest.items():
            assert store.get_user_session(key) == expected
        assert store.get_user_sessions(UserSessionsFilter(subject_id="sub-0"))  # the indexes still answer


@pytest.mark.parametrize(
    ("timeout", "error"), [(float("nan"), ConfigurationError), (-1, ConfigurationError), ("1", TypeError)]
)
def test_bad_stop_timeout_is_refused_and_stops_nothing(
    store: SqliteUserSessionStore, timeout: Any, error: type[Exception]
) -> None:
    cleanup = SessionCleanup(store).start(interval=3600, jitter=3600)
    with pytest.raises(error):
        cleanup.stop(timeout)
    assert cleanup.running
    cleanup.stop()
    assert not cleanup.running


def test_readme_reliability_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Reliability", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block, "README reliability example", "exec"), namespace)
    assert namespace["ended"] == [("alice", "sid-7")]
