"""The ``litesessions`` command line, run as installed (a subprocess) against real files."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import apsw
import pytest

from litesessions import SqliteUserSessionStore, UserSession
from litesessions.serialization import encode_session
from tests.conftest import litesessions_command, run_litesessions

PAST = datetime(2000, 1, 1, tzinfo=timezone.utc)  # expired for the CLI, which runs on the real clock
FUTURE = datetime(2999, 1, 1, tzinfo=timezone.utc)
COMMANDS = ["demo", "stats", "list", "show", "revoke", "cleanup", "check", "backup", "vacuum", "export", "import"]


run = run_litesessions


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the run failed with exit 1 and exactly one stderr line (no traceback); return it."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("litesessions: error: ")
    return result.stderr


def make(key: str, **overrides: Any) -> UserSession:
    fields: dict[str, Any] = {
        "key": key,
        "subject_id": "alice",
        "session_id": f"sid-{key}",
        "created": datetime(2026, 1, 1, 12, tzinfo=timezone.utc),
        "renewed": datetime(2026, 1, 1, 13, tzinfo=timezone.utc),
        "expires": FUTURE,
        "ticket": f"SECRET-TICKET-{key}",
    }
    fields.update(overrides)
    return UserSession(**fields)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A file with 5 sessions in the default partition (2 expired, 1 never expiring) and 2 in "other"."""
    path = tmp_path / "sessions.db"
    with SqliteUserSessionStore(path) as store:
        store.create_user_sessions(
            [
                make("k1"),
                make("k2", expires=PAST),
                make("k3", subject_id="bob", expires=None),
                make("k4", subject_id="bob", expires=PAST, session_id=None),
                make("k5", subject_id="carol"),
            ]
        )
    with SqliteUserSessionStore(path, partition_key="other") as store:
        store.create_user_sessions([make("k1", subject_id="dave"), make("o2", subject_id="dave", expires=PAST)])
    return path


def stored_keys(path: Path, partition: str = "") -> list[str]:
    connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        query = "SELECT key FROM litesessions_sessions WHERE partition_key = ? ORDER BY key"
        return [str(r[0]) for r in connection.execute(query, (partition,))]
    finally:
        connection.close()


# -- help and usage --------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: litesessions {command}")
    assert "--db" in result.stdout


def test_top_level_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"    {command}" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert "required: COMMAND" in result.stderr


# -- choosing the database -----------------------------------------------------------


def test_db_before_or_after_the_command_or_from_the_environment(db: Path) -> None:
    after = run("list", "--db", str(db), "--json")
    before = run("--db", str(db), "list", "--json")
    from_env = run("list", "--json", env={"LITESESSIONS_DB": str(db)})
    assert after.returncode == before.returncode == from_env.returncode == 0
    assert json.loads(after.stdout) == json.loads(before.stdout) == json.loads(from_env.stdout)
    assert len(json.loads(after.stdout)) == 5


def test_db_option_wins_over_the_environment(db: Path, tmp_path: Path) -> None:
    result = run("list", "--db", str(db), env={"LITESESSIONS_DB": str(tmp_path / "nope.db")})
    assert result.returncode == 0, result.stderr


def test_no_database_given(tmp_path: Path) -> None:
    line = one_error_line(run("stats", cwd=tmp_path))
    assert "no database given; pass --db PATH or set LITESESSIONS_DB" in line


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["list"],
        ["show", "k1"],
        ["revoke", "--key", "k1"],
        ["cleanup"],
        ["check"],
        ["vacuum"],
        ["export"],
        ["backup", "copy.db"],
    ],
)
def test_a_missing_database_is_an_error_and_is_not_created(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "missing.db"
    line = one_error_line(run(*args, "--db", str(missing), cwd=tmp_path))
    assert f"{missing} does not exist" in line
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "app.db"
    connection = apsw.Connection(str(foreign))
    connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    connection.close()
    before = foreign.read_bytes()
    line = one_error_line(run("stats", "--db", str(foreign)))
    assert "holds no litesessions tables" in line
    assert foreign.read_bytes() == before


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    line = one_error_line(run("list", "--db", str(junk)))
    assert "is not a SQLite database" in line


# -- stats ---------------------------------------------------------------------------


def test_stats_json(db: Path) -> None:
    result = run("stats", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["path"] == str(db)
    assert stats["schema_version"] == 1
    assert stats["file_bytes"] > 0 and stats["wal_bytes"] >= 0
    assert (stats["sessions"], stats["expired"]) == (7, 3)
    assert stats["partitions"] == [
        {
            "partition": "",
            "sessions": 5,
            "expired": 2,
            "never_expire": 1,
            "oldest_created": "2026-01-01T12:00:00.000000Z",
            "newest_created": "2026-01-01T12:00:00.000000Z",
        },
        {
            "partition": "other",
            "sessions": 2,
            "expired": 1,
            "never_expire": 0,
            "oldest_created": "2026-01-01T12:00:00.000000Z",
            "newest_created": "2026-01-01T12:00:00.000000Z",
        },
    ]


def test_stats_of_one_partition_and_as_text(db: Path) -> None:
    one = json.loads(run("stats", "--db", str(db), "--json", "--partition", "other").stdout)
    assert [p["partition"] for p in one["partitions"]] == ["other"] and one["sessions"] == 2
    text = run("stats", "--db", str(db))
    assert text.returncode == 0
    assert "schema version  1" in text.stdout
    assert "sessions        7 (3 expired at " in text.stdout
    table = [line.split() for line in text.stdout.splitlines()[5:]]
    assert table[0] == ["PARTITION", "SESSIONS", "EXPIRED", "NEVER", "EXPIRE", "OLDEST", "CREATED", "NEWEST", "CREATED"]
    assert table[1][:4] == ['""', "5", "2", "1"] and table[2][:4] == ['"other"', "2", "1", "0"]
    assert table[1][4:] == ["2026-01-01T12:00:00.000000Z"] * 2


# -- list and show -----------------------------------------------------------------------


def test_list_table_hides_tickets(db: Path) -> None:
    result = run("list", "--db", str(db))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "SUBJECT", "SESSION", "ID", "CREATED", "RENEWED", "EXPIRES"]
    assert [line.split()[0] for line in lines[1:]] == ["k1", "k2", "k3", "k4", "k5"]
    assert "SECRET-TICKET" not in result.stdout
    assert "never" in lines[3] and lines[4].split()[2] == "-"


def test_list_show_tickets(db: Path) -> None:
    table = run("list", "--db", str(db), "--show-tickets")
    assert "SECRET-TICKET-k1" in table.stdout and "TICKET" in table.stdout.splitlines()[0]
    as_json = json.loads(run("list", "--db", str(db), "--json", "--show-tickets").stdout)
    assert [s["ticket"] for s in as_json] == [f"SECRET-TICKET-k{i}" for i in range(1, 6)]


def test_list_json_is_the_session_json_form_without_tickets(db: Path) -> None:
    sessions = json.loads(run("list", "--db", str(db), "--json").stdout)
    expected = json.loads(encode_session(make("k2", expires=PAST)))
    del expected["ticket"]
    assert sessions[1] == expected
    assert all("ticket" not in s for s in sessions)


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (["--subject", "bob"], ["k3", "k4"]),
        (["--session-id", "sid-k5"], ["k5"]),
        (["--subject", "bob", "--session-id", "sid-k5"], []),
        (["--expired"], ["k2", "k4"]),
        (["--expired", "--subject", "bob"], ["k4"]),
        (["--partition", "other"], ["k1", "o2"]),
        (["--partition", "other", "--expired"], ["o2"]),
        (["--partition", "nobody"], []),
    ],
)
def test_list_filters(db: Path, args: list[str], keys: list[str]) -> None:
    result = run("list", "--db", str(db), "--json", *args)
    assert result.returncode == 0, result.stderr
    assert [s["key"] for s in json.loads(result.stdout)] == keys


def test_list_limit_says_when_it_cut_the_list(db: Path) -> None:
    cut = run("list", "--db", str(db), "--json", "--limit", "2")
    assert [s["key"] for s in json.loads(cut.stdout)] == ["k1", "k2"]
    assert cut.stderr == "(showing the first 2 sessions; --limit 0 shows all)\n"
    exact = run("list", "--db", str(db), "--json", "--limit", "5")
    assert len(json.loads(exact.stdout)) == 5 and exact.stderr == ""
    everything = run("list", "--db", str(db), "--json", "--limit", "0")
    assert len(json.loads(everything.stdout)) == 5
    assert one_error_line(run("list", "--db", str(db), "--limit", "-1")).endswith(
        "--limit must be 0 (no limit) or more\n"
    )


def test_list_of_nothing_says_so(db: Path) -> None:
    result = run("list", "--db", str(db), "--subject", "nobody")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "no sessions\n"


def test_show(db: Path) -> None:
    result = run("show", "k2", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "key         k2",
        "subject id  alice",
        "session id  sid-k2",
        "created     2026-01-01T12:00:00.000000Z",
        "renewed     2026-01-01T13:00:00.000000Z",
        "expires     2000-01-01T00:00:00.000000Z (expired)",
        "ticket      <16 characters; --show-tickets prints it>",
    ]
    shown = run("show", "k2", "--db", str(db), "--show-tickets")
    assert "ticket      SECRET-TICKET-k2" in shown.stdout


def test_show_json_round_trips_to_the_stored_session(db: Path) -> None:
    result = run("show", "k3", "--db", str(db), "--json", "--show-tickets")
    from litesessions.serialization import session_from_dict

    assert session_from_dict(json.loads(result.stdout)) == make("k3", subject_id="bob", expires=None)
    hidden = json.loads(run("show", "k3", "--db", str(db), "--json").stdout)
    assert "ticket" not in hidden


def test_show_of_a_missing_key_and_of_a_key_starting_with_a_dash(db: Path) -> None:
    line = one_error_line(run("show", "nope", "--db", str(db)))
    assert "no session with key 'nope' in partition ''" in line
    with SqliteUserSessionStore(db) as store:
        store.create_user_session(make("-dash"))
    assert run("show", "--db", str(db), "--", "-dash").stdout.startswith("key         -dash")
    assert run("show", "k1", "--db", str(db), "--partition", "other").stdout.splitlines()[1] == "subject id  dave"


# -- revoke ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "count", "left"),
    [
        (["--key", "k1"], 1, ["k2", "k3", "k4", "k5"]),
        (["--key", "nope"], 0, ["k1", "k2", "k3", "k4", "k5"]),
        (["--subject", "bob"], 2, ["k1", "k2", "k5"]),
        (["--session-id", "sid-k5"], 1, ["k1", "k2", "k3", "k4"]),
        (["--subject", "bob", "--session-id", "sid-k3"], 1, ["k1", "k2", "k4", "k5"]),
    ],
)
def test_revoke_prints_the_count_and_dry_run_changes_nothing(
    db: Path, args: list[str], count: int, left: list[str]
) -> None:
    noun = "session" if count == 1 else "sessions"
    dry = run("revoke", "--db", str(db), *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == f"would revoke {count} {noun} (dry run: nothing was removed)\n"
    assert stored_keys(db) == ["k1", "k2", "k3", "k4", "k5"]
    real = run("revoke", "--db", str(db), *args)
    assert real.returncode == 0, real.stderr
    assert real.stdout == f"revoked {count} {noun}\n"
    assert stored_keys(db) == left
    assert stored_keys(db, "other") == ["k1", "o2"]


def test_revoke_in_another_partition(db: Path) -> None:
    assert run("revoke", "--db", str(db), "--partition", "other", "--subject", "dave").stdout == "revoked 2 sessions\n"
    assert stored_keys(db, "other") == [] and len(stored_keys(db)) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "revoke needs --key K, --subject S or --session-id SID"),
        (["--key", "k1", "--subject", "bob"], "--key cannot be combined"),
        (["--subject", "  "], "needs a subject_id or a session_id"),
    ],
)
def test_revoke_refuses_unclear_requests(db: Path, args: list[str], message: str) -> None:
    assert message in one_error_line(run("revoke", "--db", str(db), *args))
    assert stored_keys(db) == ["k1", "k2", "k3", "k4", "k5"]


# -- cleanup -----------------------------------------------------------------------------


def test_cleanup_deletes_expired_sessions_of_every_partition_and_prints_a_summary(db: Path) -> None:
    result = run("cleanup", "--db", str(db), "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cleanup: deleted 3 expired sessions in ")
    assert result.stdout.endswith(" s (batches of 2)\n")
    assert result.stderr == ""  # no progress display without a terminal
    assert stored_keys(db) == ["k1", "k3", "k5"] and stored_keys(db, "other") == ["k1"]
    again = run("cleanup", "--db", str(db))
    assert again.stdout.startswith("cleanup: deleted 0 expired sessions")


def test_cleanup_refuses_a_bad_batch_size(db: Path) -> None:
    assert "batch_size must be between 1 and" in one_error_line(run("cleanup", "--db", str(db), "--batch-size", "0"))
    assert run("cleanup", "--db", str(db), "--batch-size", "x").returncode == 2
    assert "--watch needs a positive number" in one_error_line(run("cleanup", "--db", str(db), "--watch", "0"))
    assert len(stored_keys(db)) == 5


def test_cleanup_watch_repeats_until_interrupted(db: Path) -> None:
    process = subprocess.Popen(
        [*litesessions_command(), "cleanup", "--db", str(db), "--watch", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    second = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert first.endswith(" cleanup: deleted 3 expired sessions\n")
    assert second.endswith(" cleanup: deleted 0 expired sessions\n")
    assert "cleanup: stopped after " in rest and "deleted 3 expired sessions in all" in rest
    assert "Traceback" not in err


# -- check and vacuum ----------------------------------------------------------------------


def test_check_of_a_good_file(db: Path) -> None:
    result = run("check", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok    integrity       ok",
        "ok    schema version  1",
        "ok    indexes         all 4 present",
        "ok    journal mode    wal",
    ]
    as_json = json.loads(run("check", "--db", str(db), "--json").stdout)
    assert as_json["ok"] is True and len(as_json["checks"]) == 4


def test_check_fails_on_a_missing_index(db: Path) -> None:
    connection = apsw.Connection(str(db))
    connection.execute("DROP INDEX litesessions_sessions_subject")
    connection.close()
    result = run("check", "--db", str(db))
    assert result.returncode == 1
    assert "FAIL  indexes         missing: litesessions_sessions_subject" in result.stdout
    assert result.stderr == f"litesessions: error: {db} failed the check\n"
    assert json.loads(run("check", "--db", str(db), "--json").stdout)["ok"] is False


def test_check_fails_on_a_newer_schema_version(db: Path) -> None:
    connection = apsw.Connection(str(db))
    connection.execute("UPDATE litesessions_meta SET value = 99 WHERE name = 'schema_version'")
    connection.close()
    result = run("check", "--db", str(db))
    assert result.returncode == 1
    assert "FAIL  schema version  99, this litesessions knows 1" in result.stdout


def test_check_fails_on_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with SqliteUserSessionStore(path) as store:
        store.create_user_sessions(make(f"key-{i:05d}", ticket="t" * 500) for i in range(2000))
    with path.open("r+b") as f:  # overwrite pages in the middle of the file
        f.seek(path.stat().st_size // 2)
        f.write(os.urandom(8192))
    result = run("check", "--db", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "FAIL  integrity" in result.stdout


def test_check_of_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"x" * 4096)
    result = run("check", "--db", str(junk))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "FAIL  integrity" in result.stdout and "not a SQLite database" in result.stdout


def test_vacuum_reclaims_space(db: Path) -> None:
    with SqliteUserSessionStore(db, partition_key="bulk") as store:
        store.create_user_sessions(make(f"bulk-{i}", ticket="b" * 4000) for i in range(500))
        store.delete_user_sessions(__import__("litesessions").UserSessionsFilter(subject_id="alice"))
    result = run("vacuum", "--db", str(db))
    assert result.returncode == 0, result.stderr
    before, after = (int(n.replace(",", "")) for n in result.stdout.split(": ")[1].split(" bytes")[0].split(" -> "))
    assert after < before
    assert run("check", "--db", str(db)).returncode == 0
    assert stored_keys(db) == ["k1", "k2", "k3", "k4", "k5"]


# -- streams and terminals ---------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    with SqliteUserSessionStore(path) as store:
        store.create_user_sessions(make(f"key-{i:05d}", ticket="t" * 1000) for i in range(5000))
    process = subprocess.Popen(
        [*litesessions_command(), "export", "--db", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    err = process.stderr.read().decode()
    process.wait(timeout=60)
    assert process.returncode == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def run_with_terminal_stderr(args: list[str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); return (exit code, stdout, what the terminal saw)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*litesessions_command(), *args], stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL
    )
    os.close(follower)
    seen: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer of the terminal has gone
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    out, _ = process.communicate(timeout=120)
    reader.join(timeout=30)
    os.close(leader)
    return process.returncode, out.decode(), b"".join(seen).decode()


@pytest.mark.slow
def test_progress_shows_on_a_terminal_only(tmp_path: Path) -> None:
    dump, path = tmp_path / "many.jsonl", tmp_path / "many.db"
    dump.write_text("".join(encode_session(make(f"key-{i:06d}", session_id=None)) + "\n" for i in range(25_000)))
    code, out, terminal = run_with_terminal_stderr(["import", str(dump), "--db", str(path)])
    assert code == 0, terminal
    assert "import: 10,000 lines read (" in terminal and "%)" in terminal
    assert out == f"imported 25,000 sessions from {dump} into partition ''\n"

    code, out, terminal = run_with_terminal_stderr(["export", "--db", str(path)])
    assert code == 0
    assert "export: 10,000 of 25,000 sessions" in terminal
    assert len(out.splitlines()) == 25_000

    piped = run("import", str(dump), "--db", str(tmp_path / "piped.db"))
    assert piped.returncode == 0 and piped.stderr == ""
    exported = run("export", "--db", str(path))
    assert exported.stderr == "exported 25,000 sessions from partition ''\n"

    # cleanup on a terminal counts what is left from a second connection while it deletes
    with SqliteUserSessionStore(path, partition_key="old") as store:
        store.create_user_sessions(make(f"old-{i:06d}", session_id=None, expires=PAST) for i in range(25_000))
    code, out, terminal = run_with_terminal_stderr(["cleanup", "--db", str(path), "--batch-size", "50"])
    assert code == 0, terminal
    assert out.startswith("cleanup: deleted 25,000 expired sessions in ")
    assert "Traceback" not in terminal


def test_demo_still_works_beside_the_admin_commands(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    demo = run("demo", "--db", str(path))
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith(f"litesessions demo: {path} (partition 'litesessions-demo')")
    stats = json.loads(run("stats", "--db", str(path), "--json").stdout)
    assert [p["partition"] for p in stats["partitions"]] == ["litesessions-demo"]
    assert run("check", "--db", str(path)).returncode == 0


def test_timestamps_in_listings_are_utc(db: Path) -> None:
    with SqliteUserSessionStore(db, partition_key="tz") as store:
        store.create_user_session(
            make("tz", created=datetime(2026, 6, 1, 2, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))))
        )
    shown = json.loads(run("show", "tz", "--db", str(db), "--partition", "tz", "--json").stdout)
    assert shown["created"] == "2026-06-01T00:00:00.000005Z"


def test_the_readme_transcript_runs_as_shown(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    transcript = section.split("```text\n", 1)[1].split("```", 1)[0]
    steps = [s for s in transcript.split("$ ")[1:] if s.strip()]
    assert len(steps) >= 12
    bin_dir = str(Path(litesessions_command()[0]).parent)
    env = {**os.environ, "LITESESSIONS_DB": "sessions.db", "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    assert run("demo", "--db", str(tmp_path / "sessions.db")).returncode == 0
    for step in steps:
        command, _, shown = step.partition("\n")
        if command.startswith("litesessions show"):
            listing = run("list", "--db", str(tmp_path / "sessions.db"), "--partition", "litesessions-demo", "--json")
            carol = next(s["key"] for s in json.loads(listing.stdout) if s["subject_id"] == "carol")
            command = command.rsplit(" ", 1)[0] + " " + carol
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        expected_code = int(shown.split("(exit ")[1].split(")")[0]) if "(exit " in shown else 0
        assert result.returncode == expected_code, (command, result.stderr)
        shown_lines = [line for line in shown.strip().splitlines() if not line.startswith("(exit ")]
        seen_lines = (result.stdout + result.stderr).strip().splitlines()
        # keys, timestamps and paths differ from run to run; the shape and the first words do not
        assert len(seen_lines) == len(shown_lines), (command, seen_lines, shown_lines)
        assert [line[:8] for line in seen_lines[:1]] == [line[:8] for line in shown_lines[:1]], command


def test_admin_listing_statements_search_the_index_of_their_criterion(db: Path) -> None:
    from litesessions import admin

    connection = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        for (subject, session, _), sql in admin.LIST_QUERIES.items():
            plan = [str(r[3]) for r in connection.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?"))]
            index = "session_id" if session else "subject" if subject else "key"
            assert plan[0].startswith(f"SEARCH litesessions_sessions USING INDEX litesessions_sessions_{index} "), plan
        plan = [str(r[3]) for r in connection.execute("EXPLAIN QUERY PLAN " + admin.EXPORT_SUBJECT, ["p", "s"])]
        assert plan[0].startswith("SEARCH litesessions_sessions USING INDEX litesessions_sessions_subject "), plan
    finally:
        connection.close()
