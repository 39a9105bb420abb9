"""How fast can raw SQLite take a bulk import of sessions at all?  The floor under ``create_user_sessions``.

Raw apsw, no litesessions code on the timed path: one ``BEGIN IMMEDIATE``, one
``executemany`` of the store's ``INSERT`` (rows as ready-made tuples: random
128-bit hex keys and session ids, 10 sessions per subject, a ``--ticket``-char
ticket), ``COMMIT`` (which runs SQLite's autocheckpoint: copying the WAL into
the file and syncing it), then a TRUNCATE checkpoint for what is left.  Variants:

* ``schema``: the store's own schema (table and four indexes), WAL mode,
  ``synchronous=NORMAL``, the store's 48 MiB import cache: what
  ``create_user_sessions`` runs;
* ``table only``: the same table with no index at all: the cost of writing the
  rows alone, which no index strategy can beat;
* ``rebuild``: the store's schema, but the indexes dropped before the insert
  and created again after it, in the same transaction (sorted index builds
  instead of random inserts);

each at the page sizes given (``--page-sizes``; the store's files use SQLite's
default, 4096).  Every variant starts from a fresh file.

    .venv/bin/python tools/import_floor.py                   # 1,000,000 sessions
    .venv/bin/python tools/import_floor.py --sessions 100000 --page-sizes 4096

Not imported by the package; a developer tool.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator

import apsw

from litesessions import SqliteUserSessionStore, _sqlite, store
from litesessions.schema import INDEXES, MIGRATIONS

VARIANTS = ("schema", "table only", "rebuild")
CREATE_INDEX = tuple(s for s in MIGRATIONS[0] if s.startswith("CREATE") and " INDEX " in s)


def rows(n: int, ticket: str, seed: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(seed)
    for i in range(n):
        expires = 1_780_000_000_000_000 + (i * 2_654_435_761) % 28_800_000_000
        yield (
            "p",
            f"{rng.getrandbits(128):032x}",
            f"subject-{i // 10:07d}",
            f"{rng.getrandbits(128):032x}",
            expires - 28_800_000_000,
            expires - 28_800_000_000,
            expires,
            ticket,
        )


def run(path: str, variant: str, page_size: int, n: int, ticket: str) -> str:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    if page_size != 4096:
        first = apsw.Connection(path)
        first.execute(f"PRAGMA page_size={page_size}")
        first.execute("PRAGMA journal_mode=WAL").fetchall()
        first.close()
    SqliteUserSessionStore(path, partition_key="p").close()  # the schema, in WAL mode
    connection = _sqlite.connect(path, 5000)
    _sqlite.configure(connection, "normal")
    connection.execute(f"PRAGMA cache_size=-{store.IMPORT_CACHE_KIB}").fetchall()
    if variant == "table only":
        for name in INDEXES:
            connection.execute(f"DROP INDEX {name}")
    data = rows(n, ticket, seed=1)
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    if variant == "rebuild":
        for name in INDEXES:
            connection.execute(f"DROP INDEX {name}")
    connection.executemany(store.INSERT, data)
    inserted = time.perf_counter()
    if variant == "rebuild":
        for statement in CREATE_INDEX:
            connection.execute(statement)
    indexed = time.perf_counter()
    connection.execute("COMMIT")
    committed = time.perf_counter()
    wal_mb = os.path.getsize(path + "-wal") / 1e6
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    checkpointed = time.perf_counter()
    connection.close()
    size = os.path.getsize(path)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    total = checkpointed - started
    return (
        f"| {variant} | {page_size} | {inserted - started:.1f} s | {indexed - inserted:.1f} s | "
        f"{committed - indexed:.1f} s | {checkpointed - committed:.1f} s | {wal_mb:,.0f} MB | "
        f"{size / n:,.0f} B | {n / total:,.0f}/s |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--ticket", type=int, default=2048, help="ticket length in characters")
    parser.add_argument("--page-sizes", default="4096,16384", help="comma-separated page sizes")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--dir", default=None, help="directory for the files (default: a new temp dir)")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",")]
    if any(v not in VARIANTS for v in variants):
        parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
    directory = args.dir or tempfile.mkdtemp(prefix="import_floor_")
    os.makedirs(directory, exist_ok=True)
    ticket = "".join(
        random.Random(0).choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(args.ticket)
    )
    print(
        f"raw apsw bulk import of {args.sessions:,} sessions ({args.ticket}-char ticket), SQLite "
        f"{apsw.sqlite_lib_version()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print("| variant | page size | insert | index build | commit | checkpoint | WAL | file per session | sessions/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for page_size in (int(p) for p in args.page_sizes.split(",")):
        for variant in variants:
            print(run(os.path.join(directory, "import.db"), variant, page_size, args.sessions, ticket), flush=True)
    if args.dir is None:
        os.rmdir(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
