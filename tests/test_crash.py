"""SIGKILL a writer process at random points: no acknowledged session is lost, and the file stays intact.

The writer prints each key only after the call that stored it returned; the
test kills it after a random delay, reopens the file and checks that every
printed key is there with its exact content and that ``PRAGMA
integrity_check`` says ok.  Twenty rounds on the same file (cumulative), for
each durability level.  A process crash loses nothing with either level:
SQLite's WAL is in the OS page cache once the commit returned, and the
kernel writes it out even though the process is gone.  (What power loss can
undo with ``durability="normal"`` is documented in the README; a test cannot
cut the power.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import apsw
import pytest

from litesessions import SqliteUserSessionStore

FULL = bool(os.environ.get("LITESESSIONS_FULL"))
ROUNDS = 100 if FULL else 20

WRITER = r"""
import sys
from datetime import datetime, timedelta, timezone
from litesessions import SqliteUserSessionStore, UserSession

path, durability, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

def session(n):
    return UserSession(
        key=f"{prefix}-{n}", subject_id=f"subject-{n % 11}", session_id=f"{prefix}-sid-{n}",
        created=t0, renewed=t0 + timedelta(seconds=n), expires=t0 + timedelta(days=1, microseconds=n),
        ticket=f"ticket {prefix}-{n} " + "z" * (n % 3000),
    )

store = SqliteUserSessionStore(path, durability=durability)
print("ready", flush=True)
n = 0
while True:
    if n % 97 == 0:
        # now and then a bulk insert, so the WAL grows and checkpoints run while we are killed
        batch = [session(n + i) for i in range(60)]
        store.create_user_sessions(batch)
        print("\n".join(s.key for s in batch), flush=True)
        n += 60
    else:
        store.create_user_session(session(n))
        print(session(n).key, flush=True)
        n += 1
"""


def expected_ticket(key: str) -> str:
    n = int(key.rsplit("-", 1)[1])
    return f"ticket {key} " + "z" * (n % 3000)


def run_and_kill(path: Path, durability: str, prefix: str, rng: random.Random) -> list[str]:
    """Start a writer, SIGKILL it after a random delay; return the keys it acknowledged."""
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), durability, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []))
    reader.start()
    time.sleep(rng.uniform(0.02, 0.4))
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    reader.join(30)
    assert process.returncode == -signal.SIGKILL
    # Only whole lines are acknowledgements: the last one may have been cut mid-write.
    return [line[:-1] for line in lines if line.endswith("\n")]


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sigkill_during_creates_loses_no_acknowledged_session(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "crash.db"
    rng = random.Random(durability)
    acknowledged: list[str] = []
    for round_ in range(ROUNDS):
        acknowledged += run_and_kill(path, durability, f"r{round_}", rng)
        connection = apsw.Connection(str(path))
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            connection.close()
    assert len(acknowledged) > ROUNDS  # the writers did get work done before each kill
    with SqliteUserSessionStore(path) as store:
        missing = [key for key in acknowledged if store.get_user_session(key) is None]
        assert missing == []
        for key in acknowledged:
            session = store.get_user_session(key)
            assert session is not None and session.ticket == expected_ticket(key)
