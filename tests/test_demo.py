"""``litesessions demo``: the README's main-job command, run as installed."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

from litesessions import SqliteUserSessionStore, UserSessionsFilter
from litesessions.demo import PARTITION, SESSIONS_PER_SUBJECT, SUBJECTS, run_demo
from tests.conftest import litesessions_command


def test_demo_runs_as_installed_and_reports_each_step(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [*litesessions_command(), "demo", "--db", str(db)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"created {len(SUBJECTS) * SESSIONS_PER_SUBJECT} sessions" in out
    assert f"by subject 'alice' -> {SESSIONS_PER_SUBJECT} sessions" in out
    assert "by session id -> 1 session" in out
    assert f"revoked {SESSIONS_PER_SUBJECT} sessions" in out
    match = re.search(r"(\d+) sessions remain", out)
    assert match
    with SqliteUserSessionStore(db, partition_key=PARTITION) as store:
        stored = sum(len(store.get_user_sessions(UserSessionsFilter(subject_id=s))) for s in SUBJECTS)
    assert stored == int(match.group(1))

    again = subprocess.run(
        [*litesessions_command(), "demo", "--db", str(db)], capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    assert f"removed {stored} sessions left by an earlier demo run" in again.stdout


def test_demo_counts_add_up(tmp_path: Path) -> None:
    out = io.StringIO()
    counts = run_demo(str(tmp_path / "d.db"), out=out)
    assert counts["created"] == len(SUBJECTS) * SESSIONS_PER_SUBJECT
    assert counts["revoked"] == SESSIONS_PER_SUBJECT
    assert 0 < counts["expired"] < counts["created"]
    assert counts["left"] == counts["created"] - counts["revoked"] - counts["expired"]


def test_demo_cleanup_never_touches_unexpired_sessions_of_other_partitions(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from litesessions import UserSession

    db = tmp_path / "app.db"
    now = datetime.now(timezone.utc)
    with SqliteUserSessionStore(db, partition_key="real-app") as app:
        app.create_user_session(
            UserSession(
                key="k", subject_id="s", created=now, renewed=now, expires=now + timedelta(minutes=30), ticket=""
            )
        )
    run_demo(str(db), out=io.StringIO())
    with SqliteUserSessionStore(db, partition_key="real-app") as app:
        assert app.get_user_session("k") is not None


def test_cli_without_a_command_prints_usage_and_fails() -> None:
    result = subprocess.run(litesessions_command(), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "usage: litesessions" in result.stderr
