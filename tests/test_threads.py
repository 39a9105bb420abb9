"""One store object shared by 8 threads: mixed operations, zero exceptions, exact final content.

Uses the workload of ``test_processes.py``: each thread owns its keys,
subjects and session ids, checks every read against its own model, and the
union of the models must be the file's final content.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from litesessions import SessionCleanup, SqliteUserSessionStore, StoreClosedError
from tests.conftest import T0, FakeClock, make_session
from tests.test_processes import OPS, run_workload, stored_rows


@pytest.mark.slow
def test_eight_threads_share_one_store_zero_exceptions_exact_final_content(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    outcomes: list[dict[str, Any]] = []
    barrier = threading.Barrier(8)
    seen: list[object] = []
    with SqliteUserSessionStore(path) as store:

        def work(worker: int) -> None:
            barrier.wait(30)
            outcomes.append(run_workload(store, worker, OPS, 2000 + worker))
            seen.append(store._connection())  # kept referenced, so ids stay distinct

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(c) for c in seen}) == 8  # one connection per thread
    assert len(outcomes) == 8
    for outcome in outcomes:
        assert outcome["exceptions"] == [], outcome["exceptions"][:3]
        assert outcome["mismatches"] == [], outcome["mismatches"][:3]
    assert stored_rows(path) == sorted(tuple(row) for o in outcomes for row in o["rows"])


def test_threads_with_background_cleanup_and_transactions(tmp_path: Path) -> None:
    # Grouped transactions of one thread never mix with another thread's writes.
    clock = FakeClock()
    errors: list[BaseException] = []
    with SqliteUserSessionStore(tmp_path / "tx.db", clock=clock) as store:

        def grouped(worker: int) -> None:
            try:
                for i in range(50):
                    try:
                        with store.transaction():
                            store.create_user_session(make_session(key=f"t{worker}-{i}-a", subject_id=f"s{worker}"))
                            store.create_user_session(make_session(key=f"t{worker}-{i}-b", subject_id=f"s{worker}"))
                            if i % 5 == 0:
                                raise KeyError("roll this pair back")
                    except KeyError:
                        pass
            except BaseException as e:
                errors.append(e)

        old = [make_session(key=f"old-{i}", expires=T0.replace(year=2025)) for i in range(300)]
        store.create_user_sessions(old)
        cleanup = SessionCleanup(store, batch_size=7)
        with cleanup.start(interval=0.01, jitter=0, pause=0):
            threads = [threading.Thread(target=grouped, args=(w,)) for w in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            while cleanup.runs < 1:
                time.sleep(0.01)
        assert errors == []
        assert cleanup.failures == 0
        keys = {str(r[0]) for r in store._connection().execute("SELECT key FROM litesessions_sessions")}
        expected = {f"t{w}-{i}-{x}" for w in range(4) for i in range(50) if i % 5 for x in "ab"}
        assert keys - {s.key for s in old} == expected
        assert keys & {s.key for s in old} == set()  # the first background run removed them all


def test_close_while_threads_use_the_store_raises_store_closed_only(tmp_path: Path) -> None:
    store = SqliteUserSessionStore(tmp_path / "closing.db")
    started = threading.Barrier(5)
    unexpected: list[BaseException] = []

    def hammer(worker: int) -> None:
        started.wait(10)
        i = 0
        while True:
            try:
                store.create_user_session(make_session(key=f"c{worker}-{i}"))
                store.get_user_session(f"c{worker}-{i}")
            except StoreClosedError:
                return
            except BaseException as e:
                unexpected.append(e)
                return
            i += 1

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    started.wait(10)
    store.close()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert unexpected == []
