"""File modes, SQL metacharacters, and logs: tickets hold tokens and must not leak.

* A new file and its -wal/-shm companions are created 0600, whatever the umask.
* Keys, subject ids, session ids and partition keys made of SQL
  metacharacters and quotes round-trip exactly (all SQL uses bound parameters;
  ``%`` and ``_`` are not wildcards).
* With every logger at DEBUG, exercising everything (including the background
  cleanup, its failures and its callback's failures), no log record, no error
  message and nothing on stdout/stderr contains a ticket.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litesessions import (
    InvalidSessionError,
    LitesessionsError,
    SessionCleanup,
    SqliteUserSessionStore,
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
)
from tests.conftest import T0, FakeClock, make_session

METACHARACTERS = [
    "'",
    '"',
    "''",
    "'; DROP TABLE litesessions_sessions; --",
    '" OR "1"="1',
    "' OR '1'='1",
    "%",
    "_",
    "a%",
    "%_%",
    "\\",
    "\\'",
    "?",
    "?1",
    ":key",
    "@key",
    "$key",
    "*/",
    "/*",
    "--",
    ";",
    "`",
    "[key]",
    "\u2019",  # right single quotation mark
    "k\x00ey",
    "NULL",
    "null",
]


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set a process umask for the test; restore the old one afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o000, 0o002, 0o022, 0o077])
def test_file_wal_and_shm_are_created_0600(tmp_path: Path, umask: Any, mask: int) -> None:
    umask(mask)
    path = tmp_path / "sessions.db"
    with SqliteUserSessionStore(path) as store:
        store.create_user_sessions(make_session(ticket="x" * 2000) for _ in range(1500))
        reader = threading.Thread(target=store.get_user_session, args=("k",))
        reader.start()
        reader.join()
        assert os.path.exists(f"{path}-wal") and os.path.exists(f"{path}-shm")
        assert mode(path) == 0o600
        assert mode(f"{path}-wal") == 0o600
        assert mode(f"{path}-shm") == 0o600


@pytest.mark.parametrize("value", METACHARACTERS)
def test_metacharacter_keys_and_ids_round_trip(tmp_path: Path, value: str) -> None:
    with SqliteUserSessionStore(tmp_path / "meta.db", partition_key=value) as store:
        session = make_session(key=value, subject_id=value, session_id=value, ticket=value)
        store.create_user_session(session)
        other = make_session(key=value + "x", subject_id=value + "x", session_id=value + "x")
        store.create_user_session(other)
        assert store.get_user_session(value) == session
        assert store.get_user_sessions(UserSessionsFilter(subject_id=value)) == [session]
        assert store.get_user_sessions(UserSessionsFilter(session_id=value)) == [session]
        update = UserSessionUpdate(
            subject_id=value, session_id=value, created=T0, renewed=T0, expires=None, ticket=value * 2
        )
        assert store.update_user_session(value, update)
        assert store.get_user_session(value) == session.with_update(update)
        assert store.delete_user_sessions(UserSessionsFilter(subject_id=value, session_id=value)) == 1
        assert store.get_user_session(value) is None
        assert store.get_user_session(value + "x") == other  # the table and its neighbour survived
        assert store.delete_user_session(value + "x")


def test_like_wildcards_match_nothing_but_themselves(sqlite_store: SqliteUserSessionStore) -> None:
    for subject in ["abc", "a%", "a_c", "%"]:
        sqlite_store.create_user_session(make_session(subject_id=subject))
    for subject in ["a%", "a_c", "%", "_"]:
        found = sqlite_store.get_user_sessions(UserSessionsFilter(subject_id=subject))
        assert {s.subject_id for s in found} <= {subject}


@settings(max_examples=100, deadline=None)
@given(
    st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
    st.text(min_size=1, max_size=20).filter(lambda s: s.strip()),
)
def test_any_text_round_trips_as_key_and_subject(key: str, subject: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory, SqliteUserSessionStore(Path(directory) / "any.db") as store:
        session = make_session(key=key, subject_id=subject, session_id=None)
        store.create_user_session(session)
        assert store.get_user_session(key) == session
        assert store.get_user_sessions(UserSessionsFilter(subject_id=subject)) == [session]


SECRET = "SECRET-REFRESH-TOKEN-7f3a9c"


def secret_session(n: int, **overrides: Any) -> UserSession:
    fields: dict[str, Any] = {
        "key": f"sec-{n}",
        "subject_id": f"user-{n % 3}",
        "session_id": f"sec-sid-{n}",
        "ticket": f'{{"refresh_token": "{SECRET}", "n": {n}}}',
    }
    fields.update(overrides)
    return make_session(**fields)


def test_nothing_logs_or_reports_ticket_contents(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    messages: list[str] = []
    clock = FakeClock()

    def expect_error(call: Any, *args: Any) -> None:
        try:
            call(*args)
        except (TypeError, LitesessionsError) as e:
            messages.append(f"{e!r} {e}")
        else:
            raise AssertionError(f"{call} did not raise")

    with caplog.at_level(logging.DEBUG):  # the root logger: every logger, at DEBUG
        logging.getLogger("litesessions").setLevel(logging.DEBUG)
        with SqliteUserSessionStore(tmp_path / "secret.db", clock=clock) as store:
            sessions = [secret_session(i, expires=T0 - timedelta(minutes=i % 5) if i % 2 else None) for i in range(60)]
            store.create_user_sessions(sessions)
            messages.append(repr(sessions[0]) + str(sessions[0]) + repr(sessions[0].to_update()))
            messages.append(repr(store.get_user_session("sec-1")))
            messages.append(repr(store.get_user_sessions(UserSessionsFilter(subject_id="user-1"))))
            store.update_user_session("sec-2", secret_session(2).to_update())
            expect_error(store.create_user_session, secret_session(3))  # duplicate key
            expect_error(store.create_user_sessions, [secret_session(100), secret_session(4)])  # duplicate
            expect_error(store.update_user_session, "sec-5", secret_session(6).to_update())  # duplicate sid
            expect_error(store.create_user_session, {"ticket": SECRET})  # wrong type
            try:
                UserSession(key="k", subject_id="s", created=T0, renewed=T0, ticket=SECRET + "\ud800")
            except InvalidSessionError as e:
                messages.append(str(e))
            try:
                with store.transaction():
                    store.create_user_session(secret_session(200))
                    raise RuntimeError("abort the transaction")
            except RuntimeError:
                pass

            deleted: list[UserSession] = []

            def on_deleted(batch: list[UserSession]) -> None:
                deleted.extend(batch)
                raise ValueError(f"notification failed for {len(batch)} sessions")

            flaky = {"n": 0}

            def flaky_clock() -> Any:
                flaky["n"] += 1
                if flaky["n"] == 1:
                    raise OSError("clock unavailable")
                return T0

            cleanup = SessionCleanup(store, batch_size=4, clock=flaky_clock, on_deleted=on_deleted)
            with cleanup.start(interval=0.01, jitter=0, pause=0):
                deadline = time.monotonic() + 30
                while cleanup.runs < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert cleanup.failures == 1 and deleted  # both failure paths were taken
            assert all(SECRET in s.ticket for s in deleted)  # the callback did get the tickets
            SessionCleanup(store, clock=lambda: "bad").start(interval=0.01, jitter=0).stop()
            store.close()
            expect_error(store.get_user_session, "sec-1")  # closed
    records = caplog.records
    assert any(r.name.startswith("litesessions") and r.levelno == logging.ERROR for r in records)
    assert any(r.name.startswith("litesessions") and r.levelno == logging.DEBUG for r in records)
    logged = caplog.text + "\n".join(
        str(r.exc_info[1]) + repr(r.exc_info[1]) for r in records if r.exc_info and r.exc_info[1]
    )
    assert SECRET not in logged
    assert all(SECRET not in m for m in messages), [m for m in messages if SECRET in m]
    out, err = capsys.readouterr()
    assert SECRET not in out and SECRET not in err
