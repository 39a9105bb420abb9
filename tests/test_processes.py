"""Several processes on one file: mixed operations, default busy_timeout, zero exceptions, exact final content.

Each worker owns its keys, subjects and session ids, so its own log of
acknowledged operations (kept as a model dict) determines exactly its part of
the final content; every read it makes is also checked against that model as
it goes.  ``run_workload`` is shared with ``test_threads.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from litesessions import SqliteUserSessionStore, UserSession, UserSessionsFilter, UserSessionUpdate
from tests.conftest import T0

FULL = bool(os.environ.get("LITESESSIONS_FULL"))
OPS = 20_000 if FULL else 2_000

Row = tuple[str, str, str | None, str, str, str | None, str]


def as_row(session: UserSession) -> Row:
    return (
        session.key,
        session.subject_id,
        session.session_id,
        session.created.isoformat(),
        session.renewed.isoformat(),
        None if session.expires is None else session.expires.isoformat(),
        session.ticket,
    )


def run_workload(store: Any, worker: int, ops: int, seed: int) -> dict[str, Any]:
    """Run ``ops`` random operations as worker ``worker``; return its model, exceptions and mismatches."""
    rng = random.Random(seed)
    model: dict[str, UserSession] = {}
    exceptions: list[str] = []
    mismatches: list[str] = []
    counter = 0
    subjects = [f"w{worker}-sub{i}" for i in range(5)]

    def new_sid() -> str | None:
        nonlocal counter
        counter += 1
        return None if rng.random() < 0.25 else f"w{worker}-sid{counter}"

    def times() -> dict[str, Any]:
        created = T0 + timedelta(seconds=rng.randrange(10**6), microseconds=rng.randrange(10**6))
        return {
            "created": created,
            "renewed": created + timedelta(seconds=rng.randrange(3600)),
            "expires": None if rng.random() < 0.2 else created + timedelta(hours=rng.randrange(1, 48)),
        }

    def check(what: str, got: object, expected: object) -> None:
        if got != expected:
            mismatches.append(f"{what}: got {got!r}, expected {expected!r}")

    for step in range(ops):
        choice = rng.random()
        try:
            if choice < 0.30 or not model:
                counter += 1
                session = UserSession(
                    key=f"w{worker}-k{counter}",
                    subject_id=rng.choice(subjects),
                    session_id=new_sid(),
                    ticket=f"ticket w{worker} #{step} " + "x" * rng.randrange(200),
                    **times(),
                )
                store.create_user_session(session)
                model[session.key] = session
            elif choice < 0.50:
                key = rng.choice([*model, f"w{worker}-missing"])
                check(f"get {key}", store.get_user_session(key), model.get(key))
            elif choice < 0.70:
                key = rng.choice([*model, f"w{worker}-missing"])
                update = UserSessionUpdate(
                    subject_id=rng.choice(subjects), session_id=new_sid(), ticket=f"renewed #{step}", **times()
                )
                found = store.update_user_session(key, update)
                check(f"update {key}", found, key in model)
                if key in model:
                    model[key] = model[key].with_update(update)
            elif choice < 0.80:
                key = rng.choice([*model, f"w{worker}-missing"])
                check(f"delete {key}", store.delete_user_session(key), key in model)
                model.pop(key, None)
            elif choice < 0.92:
                subject = rng.choice(subjects)
                got = sorted(store.get_user_sessions(UserSessionsFilter(subject_id=subject)), key=lambda s: s.key)
                expected = sorted((s for s in model.values() if s.subject_id == subject), key=lambda s: s.key)
                check(f"get_user_sessions {subject}", got, expected)
            elif choice < 0.96:
                sids = [s.session_id for s in model.values() if s.session_id is not None]
                if sids:
                    sid = rng.choice(sids)
                    check(f"delete sid {sid}", store.delete_user_sessions(UserSessionsFilter(session_id=sid)), 1)
                    model = {k: s for k, s in model.items() if s.session_id != sid}
            else:
                subject = rng.choice(subjects)
                expected_count = sum(1 for s in model.values() if s.subject_id == subject)
                deleted = store.delete_user_sessions(UserSessionsFilter(subject_id=subject))
                check(f"delete subject {subject}", deleted, expected_count)
                model = {k: s for k, s in model.items() if s.subject_id != subject}
        except Exception:
            exceptions.append(traceback.format_exc())
    return {
        "worker": worker,
        "rows": sorted(as_row(s) for s in model.values()),
        "exceptions": exceptions,
        "mismatches": mismatches,
    }


def stored_rows(path: Path | str) -> list[Row]:
    """Every session in the file (default partition), read through a fresh store."""
    with SqliteUserSessionStore(path) as store:
        keys = [str(r[0]) for r in store._connection().execute("SELECT key FROM litesessions_sessions").fetchall()]
        rows = []
        for key in keys:
            session = store.get_user_session(key)
            assert session is not None
            rows.append(as_row(session))
    return sorted(rows)


def _process_main(path: str, worker: int, ops: int, seed: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        store = SqliteUserSessionStore(path)  # busy_timeout at its default
        result = run_workload(store, worker, ops, seed)
        store.close()
    except BaseException:
        result = {"worker": worker, "rows": [], "exceptions": [traceback.format_exc()], "mismatches": []}
    results.put(result)


@pytest.mark.slow
def test_four_processes_mixed_operations_zero_exceptions_exact_final_content(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SqliteUserSessionStore(path).close()  # the file and schema exist before the workers race
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    workers = [ctx.Process(target=_process_main, args=(path, w, OPS, 1000 + w, barrier, results)) for w in range(4)]
    for p in workers:
        p.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    outcomes.sort(key=lambda r: r["worker"])
    for outcome in outcomes:
        assert outcome["exceptions"] == [], outcome["exceptions"][:3]
        assert outcome["mismatches"] == [], outcome["mismatches"][:3]
    expected = sorted(tuple(row) for outcome in outcomes for row in outcome["rows"])
    assert all(outcome["rows"] for outcome in outcomes)  # every worker left sessions behind
    assert stored_rows(path) == expected


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Creation and migration race: each migration step is BEGIN IMMEDIATE and re-reads the version.
    path = str(tmp_path / "new.db")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    workers = [ctx.Process(target=_process_main, args=(path, w, 50, w, barrier, results)) for w in range(4)]
    for p in workers:
        p.start()
    outcomes = [results.get(timeout=300) for _ in workers]
    for p in workers:
        p.join(60)
    for outcome in outcomes:
        assert outcome["exceptions"] == [], outcome["exceptions"][:3]
        assert outcome["mismatches"] == [], outcome["mismatches"][:3]
    assert stored_rows(path) == sorted(tuple(row) for outcome in outcomes for row in outcome["rows"])
