"""A store used in a parent, then in a forked child, then in the parent again: all work and see each other's writes."""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import apsw
import pytest

from litesessions import SessionCleanup, SqliteUserSessionStore, StoreBusyError
from tests.conftest import T0, FakeClock, make_session


def in_child(body: Callable[[], None]) -> None:
    """Run ``body`` in a forked child; fail here with the child's traceback if it raised."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(read_end)
        code = 0
        try:
            body()
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
            code = 1
        finally:
            os.close(write_end)
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report


def integrity(path: Path) -> str:
    connection = apsw.Connection(str(path))
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchall()[0][0])
    finally:
        connection.close()


def test_parent_then_child_then_parent_see_each_others_writes(db_path: Path) -> None:
    store = SqliteUserSessionStore(db_path)
    first = make_session(key="from-parent-1")
    store.create_user_session(first)
    parent_connection = store._connection()

    def child() -> None:
        assert store.get_user_session("from-parent-1") == first
        assert store._connection() is not parent_connection  # a fresh connection, never the parent's
        store.create_user_session(make_session(key="from-child", session_id="sid-from-child"))
        assert store.update_user_session("from-parent-1", make_session(session_id=None).to_update())
        store.close()

    in_child(child)
    assert store._connection() is parent_connection  # the parent keeps its own
    assert store.get_user_session("from-child") is not None
    updated = store.get_user_session("from-parent-1")
    assert updated is not None and updated != first
    store.create_user_session(make_session(key="from-parent-2"))

    def second_child() -> None:
        assert store.get_user_session("from-parent-2") is not None
        assert store.delete_user_session("from-child")
        # no close(): the child just exits, as a worker process might

    in_child(second_child)
    assert store.get_user_session("from-child") is None
    store.create_user_session(make_session(key="from-parent-3"))
    store.close()
    with SqliteUserSessionStore(db_path) as again:
        keys = {"from-parent-1", "from-parent-2", "from-parent-3"}
        assert {k for k in keys if again.get_user_session(k) is not None} == keys
    assert integrity(db_path) == "ok"


def test_fork_during_a_parent_threads_write_transaction_costs_the_child_its_writes_never_the_data(
    db_path: Path,
) -> None:
    # SQLite keeps its lock bookkeeping per process, per file; a child inherits
    # the parent's, including a write lock another thread held at fork() time.
    # The child's own connection then cannot get that lock: its writes fail
    # with StoreBusyError after busy_timeout (the documented limitation), its
    # reads work, and the parent's transaction commits intact.
    store = SqliteUserSessionStore(db_path, busy_timeout=0.3)
    store.create_user_session(make_session(key="before"))
    in_transaction = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with store.transaction():
            store.create_user_session(make_session(key="in-parent-transaction"))
            in_transaction.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert in_transaction.wait(10)

    def child() -> None:
        assert store.get_user_session("before") is not None
        assert store.get_user_session("in-parent-transaction") is None  # not committed
        with pytest.raises(StoreBusyError):
            store.create_user_session(make_session(key="from-child", session_id="sid-from-child"))

    try:
        in_child(child)
    finally:
        release.set()
        holder.join()
    assert store.get_user_session("in-parent-transaction") is not None
    assert store.get_user_session("from-child") is None
    store.create_user_session(make_session(key="after", session_id="sid-after"))
    store.close()
    assert integrity(db_path) == "ok"


def test_background_cleanup_does_not_survive_fork_and_can_be_restarted_in_the_child(
    db_path: Path, clock: FakeClock
) -> None:
    store = SqliteUserSessionStore(db_path, clock=clock)
    cleanup = SessionCleanup(store).start(interval=3600, jitter=3600)
    store.create_user_session(make_session(key="expired", expires=T0.replace(year=2025)))

    def child() -> None:
        assert not cleanup.running  # threads do not cross fork()
        cleanup.start(interval=3600, jitter=0)
        while cleanup.runs < 1:
            threading.Event().wait(0.01)
        cleanup.stop()
        assert cleanup.failures == 0
        assert store.get_user_session("expired") is None

    in_child(child)
    assert cleanup.running  # the parent's thread is untouched
    cleanup.stop()
    assert store.get_user_session("expired") is None  # the child's deletion is visible here
    store.close()


def test_child_checkpoints_a_large_wal_while_the_parent_keeps_writing(db_path: Path) -> None:
    store = SqliteUserSessionStore(db_path)
    # Enough data that the WAL passes the PASSIVE and RESTART thresholds in both processes.
    store.create_user_sessions(make_session(ticket="x" * 4000) for _ in range(1500))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for i in range(300):
                store.create_user_sessions(
                    make_session(key=f"child-{i}-{j}", session_id=f"child-sid-{i}-{j}", ticket="y" * 4000)
                    for j in range(5)
                )
            store.close()
            code = 0
        finally:
            os.write(write_end, b"done")
            os._exit(code)
    os.close(write_end)
    for i in range(300):
        store.create_user_sessions(
            make_session(key=f"parent-{i}-{j}", session_id=f"parent-sid-{i}-{j}", ticket="z" * 4000) for j in range(5)
        )
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"done"
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    count = store._connection().execute("SELECT count(*) FROM litesessions_sessions").fetchall()[0][0]
    assert count == 1500 + 2 * 300 * 5
    store.close()
    assert integrity(db_path) == "ok"
