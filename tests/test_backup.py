"""``litesessions backup``: a consistent online copy while another process keeps writing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import apsw
import pytest

from litesessions import SqliteUserSessionStore, StoreOpenError, UserSession, admin
from tests.conftest import litesessions_command

FULL = bool(os.environ.get("LITESESSIONS_FULL"))


def keys(path: Path) -> set[str]:
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {str(r[0]) for r in connection.execute("SELECT key FROM litesessions_sessions")}
    finally:
        connection.close()


WRITER = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime, timedelta, timezone
    from litesessions import SqliteUserSessionStore, UserSession

    db, stop = sys.argv[1], sys.argv[2]
    now = datetime.now(timezone.utc)
    with SqliteUserSessionStore(db) as store:
        n = 0
        while not os.path.exists(stop):
            store.create_user_session(UserSession(
                key=f"live-{n:08d}", subject_id=f"s{n % 50}", session_id=f"live-sid-{n}",
                created=now, renewed=now, expires=now + timedelta(hours=1), ticket="w" * 1000,
            ))
            n += 1
    """
)


def prefill(db: Path, count: int) -> None:
    now = time.time()
    from datetime import datetime, timedelta, timezone

    t = datetime.fromtimestamp(now, timezone.utc)
    with SqliteUserSessionStore(db) as store:
        store.create_user_sessions(
            UserSession(
                key=f"pre-{i:08d}",
                subject_id=f"s{i % 50}",
                session_id=f"pre-sid-{i}",
                created=t,
                renewed=t,
                expires=t + timedelta(hours=1),
                ticket="p" * 2000,
            )
            for i in range(count)
        )


@pytest.mark.slow
def test_backup_while_another_process_writes_is_complete_and_passes_check(tmp_path: Path) -> None:
    db, dest, stop = tmp_path / "live.db", tmp_path / "copy.db", tmp_path / "stop"
    prefill(db, 200_000 if FULL else 20_000)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(stop)])
    try:
        deadline = time.monotonic() + 60
        while not any(k.startswith("live-") for k in keys(db)):
            assert writer.poll() is None, "the writer died"
            assert time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.05)
        committed_before = keys(db)  # every session committed before the backup starts
        backup = subprocess.run(
            [*litesessions_command(), "backup", str(dest), "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        committed_after = keys(db)
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert backup.returncode == 0, backup.stderr
    assert backup.stdout.startswith(f"backed up {db} to {dest}: ")
    assert len(committed_after) > len(committed_before), "the writer did not write while the backup ran"
    # the copy is one complete file: no WAL or temporary file beside it (readers below may add a -shm)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("copy", ".copy"))) == ["copy.db"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600

    check = subprocess.run(
        [*litesessions_command(), "check", "--db", str(dest)], capture_output=True, text=True, timeout=300, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "FAIL" not in check.stdout

    copied = keys(dest)
    assert committed_before <= copied, f"{len(committed_before - copied)} committed sessions missing from the copy"
    assert copied <= keys(db), "the copy holds sessions that were never committed"


def test_backup_holds_exactly_the_snapshot_and_opens_as_a_store(tmp_path: Path) -> None:
    db, dest = tmp_path / "s.db", tmp_path / "b.db"
    prefill(db, 10)
    with SqliteUserSessionStore(db) as store:
        result = admin.backup(store, str(dest))
        store.delete_user_session("pre-00000003")
    assert result.path == str(dest) and result.pages > 0 and result.bytes == dest.stat().st_size
    with SqliteUserSessionStore(dest) as copy:
        assert copy.get_user_session("pre-00000003") is not None
    assert len(keys(dest)) == 10 and len(keys(db)) == 9


def test_backup_refuses_an_existing_destination(tmp_path: Path) -> None:
    db, dest = tmp_path / "s.db", tmp_path / "b.db"
    prefill(db, 1)
    dest.write_text("precious")
    result = subprocess.run(
        [*litesessions_command(), "backup", str(dest), "--db", str(db)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr == f"litesessions: error: {dest} already exists; remove it or choose another destination\n"
    assert dest.read_text() == "precious"


def test_backup_into_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    prefill(db, 1)
    with SqliteUserSessionStore(db) as store, pytest.raises(StoreOpenError, match="does not exist"):
        admin.backup(store, str(tmp_path / "no" / "b.db"))
    result = subprocess.run(
        [*litesessions_command(), "backup", str(tmp_path / "no" / "b.db"), "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "does not exist" in result.stderr


def test_backup_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [*litesessions_command(), "backup", str(tmp_path / "b.db"), "--db", str(tmp_path / "missing.db")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "missing.db does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []
