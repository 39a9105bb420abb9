"""Measure the admin operations at scale: export/import peak RSS and time, and page 1 vs page N latency.

Usage::

    .venv/bin/python tools/admin_scale.py [--sessions 1000000] [--ticket-size 256] [--dir /tmp/x] [--keep]

Steps (each reported with its real figures):

1. build a store with ``--sessions`` sessions in one partition (1,000 subjects);
2. ``litesessions export`` it (the installed console script, in a child
   process) to a JSON-lines file, and ``litesessions import`` that file into
   an empty database; the peak RSS of each child comes from ``os.wait4``
   (``ru_maxrss``), the time from the wall clock;
3. compare both files row by row (streaming) to confirm the round trip is exact;
4. time ``query_user_sessions`` for page 1 and page 1,000 (page size 25,
   reached by following ``next_token``) and the last page, interleaved, many
   times each, and print the median and 95th percentile; for contrast, the
   same pages fetched with ``LIMIT/OFFSET``;
5. print ``EXPLAIN QUERY PLAN`` of the page statement.

The package never imports this file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import apsw

from litesessions import SqliteUserSessionStore, UserSession, paging

COLUMNS = "partition_key, key, subject_id, session_id, created, renewed, expires, ticket"


def script() -> str:
    found = Path(sys.executable).with_name("litesessions")
    if found.exists():
        return str(found)
    which = shutil.which("litesessions")
    if not which:
        sys.exit("the litesessions console script is not installed (pip install -e .)")
    return which


def build(path: Path, count: int, ticket_size: int) -> float:
    started = time.perf_counter()
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ticket = "t" * ticket_size

    def sessions() -> Iterator[UserSession]:
        for i in range(count):
            created = t0 + timedelta(seconds=i, microseconds=i % 1_000_000)
            yield UserSession(
                key=f"{(i * 2654435761) % (1 << 32):08x}-{i:07d}",  # scattered, like random cookie keys
                subject_id=f"subject-{i % 1000}",
                session_id=f"sid-{i}",
                created=created,
                renewed=created,
                expires=None if i % 7 == 0 else created + timedelta(hours=8),
                ticket=ticket,
            )

    with SqliteUserSessionStore(path) as store:
        store.create_user_sessions(sessions())
    return time.perf_counter() - started


# The measured command runs as the child of a small launcher process: Linux
# carries ru_maxrss across fork and exec, so a direct child of this (large)
# process would report this process's own peak.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def run_measured(argv: list[str], stdin: Path | None = None, stdout: Path | None = None) -> tuple[float, float]:
    """Run a command to completion; return (seconds, its peak RSS in MB)."""
    with (
        open(stdin, "rb") if stdin else open(os.devnull, "rb") as fin,
        open(stdout, "wb") if stdout else open(os.devnull, "wb") as fout,
        tempfile.NamedTemporaryFile("r", suffix=".rss") as report,
    ):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", LAUNCHER, report.name, *argv],
            stdin=fin,
            stdout=fout,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        elapsed = time.perf_counter() - started
        code, kib = report.read().split()
    if int(code) != 0:
        sys.exit(f"{' '.join(argv)} exited with {code}")
    return elapsed, int(kib) / 1024  # KiB on Linux


def same_content(a: Path, b: Path) -> int:
    """Compare every column of every row of two files, streaming; return the row count."""
    ca = apsw.Connection(str(a), flags=apsw.SQLITE_OPEN_READONLY)
    cb = apsw.Connection(str(b), flags=apsw.SQLITE_OPEN_READONLY)
    query = f"SELECT {COLUMNS} FROM litesessions_sessions ORDER BY partition_key, key"
    n = 0
    for ra, rb in zip(ca.execute(query), cb.execute(query), strict=True):
        if ra != rb:
            sys.exit(f"row {n} differs: {ra[:3]} != {rb[:3]}")
        n += 1
    ca.close()
    cb.close()
    return n


def time_pages(path: Path, page_size: int, target_page: int, rounds: int) -> None:
    with SqliteUserSessionStore(path) as store:
        # Follow next_token to the target page (this walk is part of what is measured too).
        started = time.perf_counter()
        token: str | None = None
        tokens = {1: None}
        for number in range(2, target_page + 1):
            page = store.query_user_sessions(page_size=page_size, page_token=token)
            token = page.next_token
            tokens[number] = token
        walk = time.perf_counter() - started
        last = store.query_user_sessions(page_size=page_size, page_token=paging.encode_token("p", None, (None, None)))
        print(f"walk from page 1 to page {target_page:,} ({target_page - 1:,} queries): {walk:.2f} s")

        connection = store._connection()
        count = int(connection.execute("SELECT count(*) FROM litesessions_sessions").fetchall()[0][0])
        offset_sql = (
            "SELECT key, subject_id, session_id, created, renewed, expires, ticket FROM litesessions_sessions"
            " WHERE partition_key = '' ORDER BY key LIMIT ? OFFSET ?"
        )
        cases = {
            "page 1": lambda: store.query_user_sessions(page_size=page_size),
            f"page {target_page:,}": lambda: store.query_user_sessions(
                page_size=page_size, page_token=tokens[target_page]
            ),
            "last page (previous_token from the end)": lambda: store.query_user_sessions(
                page_size=page_size, page_token=paging.encode_token("p", None, (None, None))
            ),
            "OFFSET page 1 (contrast)": lambda: connection.execute(offset_sql, (page_size, 0)).fetchall(),
            f"OFFSET page {target_page:,} (contrast)": lambda: connection.execute(
                offset_sql, (page_size, (target_page - 1) * page_size)
            ).fetchall(),
            "OFFSET last page (contrast)": lambda: connection.execute(
                offset_sql, (page_size, count - page_size)
            ).fetchall(),
        }
        # sanity: keyset page N equals OFFSET page N
        keyset = [
            s.key for s in store.query_user_sessions(page_size=page_size, page_token=tokens[target_page]).sessions
        ]
        offset = [r[0] for r in connection.execute(offset_sql, (page_size, (target_page - 1) * page_size))]
        assert keyset == offset, "keyset page differs from OFFSET page"
        assert [s.key for s in last.sessions] == [
            r[0] for r in connection.execute(offset_sql, (page_size, count - page_size))
        ]
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):  # interleaved, so machine noise hits every case alike
            for name, call in cases.items():
                if "OFFSET" in name and "page 1 " not in name and len(samples[name]) >= 20:
                    continue  # the slow contrast cases need fewer samples
                t = time.perf_counter()
                call()
                samples[name].append(time.perf_counter() - t)
        print(f"{'query (page size ' + str(page_size) + ')':<45} {'median':>10} {'p95':>10}  samples")
        for name, values in samples.items():
            values.sort()
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(f"{name:<45} {statistics.median(values) * 1e6:>8.0f}us {p95 * 1e6:>8.0f}us  {len(values)}")
        sql = paging.PAGE_QUERIES[(False, False), "n", True]
        plan = [str(r[3]) for r in connection.execute("EXPLAIN QUERY PLAN " + sql, ("", "k", 26))]
        print(f"EXPLAIN QUERY PLAN {sql}\n  -> {plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--ticket-size", type=int, default=256)
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--target-page", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a new temp directory)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="litesessions-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    source, target, dump = work / "source.db", work / "target.db", work / "sessions.jsonl"
    for p in (source, target, dump):
        for suffix in ("", "-wal", "-shm"):
            Path(str(p) + suffix).unlink(missing_ok=True)
    command = script()
    print(f"litesessions admin scale run: {args.sessions:,} sessions, tickets of {args.ticket_size} chars, in {work}")
    print(f"python {sys.version.split()[0]}, SQLite {apsw.sqlite_lib_version()}, apsw {apsw.apsw_version()}")

    print(f"build: {build(source, args.sessions, args.ticket_size):.1f} s, {source.stat().st_size / 1e6:,.0f} MB")

    seconds, rss = run_measured([command, "export", "--db", str(source)], stdout=dump)
    print(f"export: {seconds:.1f} s, peak RSS {rss:.1f} MB, {dump.stat().st_size / 1e6:,.0f} MB of JSON lines")
    seconds, rss = run_measured([command, "import", str(dump), "--db", str(target)])
    print(f"import: {seconds:.1f} s, peak RSS {rss:.1f} MB, {target.stat().st_size / 1e6:,.0f} MB database")
    lines = sum(1 for _ in dump.open("rb"))
    rows = same_content(source, target)
    print(f"round trip: {lines:,} lines, {rows:,} rows identical in every column")
    _, baseline_rss = run_measured([sys.executable, "-c", "import litesessions.cli"])
    print(f"(baseline: a python process importing litesessions.cli peaks at {baseline_rss:.1f} MB)")

    time_pages(source, args.page_size, args.target_page, args.rounds)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
