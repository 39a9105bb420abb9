"""The -wal file stays bounded under a stream of writes with readers that overlap without a pause.

Documented bound (README, "Reliability"): with readers that finish within
about a second, the -wal file stays under 64 MiB.  Without the checkpoint
policy of ``litesessions._sqlite.Checkpointer`` the same workload grows it
without limit (the control test below shows it passing the bound).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

from litesessions import SqliteUserSessionStore, UserSessionsFilter, _sqlite
from tests.conftest import make_session

FULL = bool(os.environ.get("LITESESSIONS_FULL"))
WRITES = 200_000 if FULL else 50_000
WAL_BOUND = 64 * 1024 * 1024


def wal_size(path: Path) -> int:
    try:
        return os.path.getsize(f"{path}-wal")
    except FileNotFoundError:
        return 0


def write_with_overlapping_readers(path: Path, writes: int) -> tuple[int, list[BaseException]]:
    """Create ``writes`` sessions while readers keep snapshots open; return the largest -wal seen, and errors."""
    stop = threading.Event()
    errors: list[BaseException] = []
    largest = 0
    with SqliteUserSessionStore(path) as store:

        def snapshot_reader(offset: float, hold: float) -> None:
            # A reader that holds its snapshot for `hold` seconds; three of them, staggered,
            # so at every moment some snapshot is open (what starves PASSIVE checkpoints).
            connection = apsw.Connection(str(path))
            connection.set_busy_timeout(5000)
            try:
                time.sleep(offset)
                while not stop.is_set():
                    connection.execute("BEGIN")
                    connection.execute("SELECT count(*) FROM litesessions_sessions WHERE key = 'k-1'").fetchall()
                    time.sleep(hold)
                    connection.execute("COMMIT")
            except BaseException as e:
                errors.append(e)
            finally:
                connection.close()

        def store_reader() -> None:
            try:
                while not stop.is_set():
                    store.get_user_sessions(UserSessionsFilter(subject_id="subject-1"))
                    time.sleep(0.001)
            except BaseException as e:
                errors.append(e)

        readers = [threading.Thread(target=snapshot_reader, args=(i * 0.01 / 3, 0.01)) for i in range(3)]
        readers.append(threading.Thread(target=store_reader))
        for reader in readers:
            reader.start()
        try:
            for i in range(writes):
                store.create_user_session(make_session(key=f"w-{i}", subject_id=f"subject-{i % 1000}"))
                largest = max(largest, wal_size(path))
        finally:
            stop.set()
            for reader in readers:
                reader.join()
    return largest, errors


@pytest.mark.slow
def test_wal_stays_under_the_documented_bound(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    largest, errors = write_with_overlapping_readers(path, WRITES)
    print(f"largest -wal: {largest / 1e6:.1f} MB over {WRITES} writes")
    assert errors == []
    assert largest > _sqlite.AUTOCHECKPOINT_PAGES * 4096  # the workload did push the WAL past the threshold
    assert largest < WAL_BOUND
    assert wal_size(path) == 0  # closed: the last connection checkpointed and removed it


@pytest.mark.slow
def test_without_the_checkpoint_policy_the_same_workload_passes_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Control: SQLite's own autocheckpoint (PASSIVE only) is starved by the readers.
    original = _sqlite.configure

    def sqlite_default(connection: apsw.Connection, durability: str, checkpointer: Any = None) -> None:
        original(connection, durability, None)

    monkeypatch.setattr(_sqlite, "configure", sqlite_default)
    largest, errors = write_with_overlapping_readers(tmp_path / "control.db", 8_000)
    print(f"largest -wal without the policy: {largest / 1e6:.1f} MB")
    assert errors == []
    assert largest > WAL_BOUND


def test_journal_size_limit_is_set_on_every_connection(tmp_path: Path) -> None:
    with SqliteUserSessionStore(tmp_path / "limit.db") as store:
        limits: list[int] = []

        def read_limit() -> None:
            limits.append(store._connection().execute("PRAGMA journal_size_limit").fetchall()[0][0])

        read_limit()
        worker = threading.Thread(target=read_limit)
        worker.start()
        worker.join()
        assert limits == [_sqlite.JOURNAL_SIZE_LIMIT] * 2
