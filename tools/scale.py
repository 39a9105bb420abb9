"""Fill a file to a million sessions; report import rate, latencies, file size, peak RSS and open time.

Each phase runs in a fresh process of its own, so its peak RSS
(``resource.getrusage``) is its own and the open time is that of a process
that never touched the file:

1. ``fill``: creates the file and imports every session through one
   ``create_user_sessions`` call fed by a generator (nothing is kept in
   memory), then closes the store (which checkpoints the WAL into the file);
2. ``open``: opens the existing file (``SqliteUserSessionStore(path)``) and
   closes it, several times; the time of each open is reported;
3. ``serve``: opens the file and measures the latency of single calls: get
   by key (random existing sessions), renew (update), create, get by subject.

The same runs at a small baseline size (10,000 by default), so the latencies
at a million can be compared with it.  Sessions are derived from their index
(key and session id are hashes of it), so no phase needs a list of keys.

Usage::

    python tools/scale.py                      # 1,000,000 sessions, baseline 10,000
    python tools/scale.py --sessions 20000 --samples 2000 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
LIFETIME_US = 8 * 3600 * 1_000_000
PER_SUBJECT = 10
PARTITION = "scale"


def key_of(i: int, kind: str = "key") -> str:
    return hashlib.blake2b(f"{kind}-{i}".encode(), digest_size=16).hexdigest()


def created_of(i: int) -> int:
    """Session i's creation time in microseconds: within the lifetime before T0."""
    from litesessions.models import to_micros

    return to_micros(T0) - (i * 2_654_435_761) % LIFETIME_US


def subject_of(i: int) -> str:
    return f"subject-{i // PER_SUBJECT:07d}"


def peak_rss_mb() -> float:
    # Linux reports KiB, macOS bytes.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6

    return {
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": ordered[-1] * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
    }


def phase_fill(path: str, count: int, ticket_size: int) -> dict[str, Any]:
    from litesessions import SqliteUserSessionStore
    from litesessions.models import session_from_row, to_micros

    ticket = "t" * ticket_size
    now = to_micros(T0)

    def sessions() -> Iterator[Any]:
        for i in range(count):
            created = created_of(i)
            renewed = created + (i * 40_503) % (now - created + 1)
            yield session_from_row(
                key_of(i), subject_of(i), key_of(i, "sid"), created, renewed, renewed + LIFETIME_US, ticket
            )

    # The sessions are built unvalidated (as read back from a file): the
    # import's own cost is what is measured, not the models' validation.
    start = time.perf_counter()
    store = SqliteUserSessionStore(path, partition_key=PARTITION)
    opened = time.perf_counter()
    stored = store.create_user_sessions(sessions())
    imported = time.perf_counter()
    store.close()
    closed = time.perf_counter()
    if stored != count:
        raise AssertionError(f"stored {stored} of {count}")
    return {
        "sessions": count,
        "import_s": imported - opened,
        "import_per_s": count / (imported - opened),
        "close_s": closed - imported,
        "total_s": closed - start,
        "file_bytes": os.path.getsize(path),
        "bytes_per_session": os.path.getsize(path) / count,
        "peak_rss_mb": peak_rss_mb(),
    }


def phase_open(path: str, times: int) -> dict[str, Any]:
    from litesessions import SqliteUserSessionStore

    opens = []
    for _ in range(times):
        start = time.perf_counter()
        store = SqliteUserSessionStore(path, partition_key=PARTITION)
        opens.append(time.perf_counter() - start)
        store.close()
    return {
        "first_open_ms": opens[0] * 1e3,
        "median_open_ms": statistics.median(opens) * 1e3,
        "max_open_ms": max(opens) * 1e3,
        "peak_rss_mb": peak_rss_mb(),
    }


def phase_serve(path: str, count: int, samples: int, ticket_size: int) -> dict[str, Any]:
    from litesessions import SqliteUserSessionStore, UserSession, UserSessionsFilter, UserSessionUpdate
    from litesessions.models import from_micros

    rng = random.Random(7)
    ticket = "u" * ticket_size
    store = SqliteUserSessionStore(path, partition_key=PARTITION)
    try:
        picks = [rng.randrange(count) for _ in range(samples)]
        get_keys = [key_of(i) for i in picks]
        renew = [
            (
                key_of(i),
                UserSessionUpdate(
                    subject_id=subject_of(i),
                    session_id=key_of(i, "sid"),
                    created=from_micros(created_of(i)),  # a sliding renewal: all but three fields as stored
                    renewed=T0 + timedelta(seconds=n),
                    expires=T0 + timedelta(hours=8, seconds=n),
                    ticket=ticket,
                ),
            )
            for n, i in enumerate(rng.randrange(count) for _ in range(samples))
        ]
        new = [
            UserSession(
                key=key_of(count + n),
                subject_id=f"new-{n // PER_SUBJECT}",
                session_id=key_of(count + n, "sid"),
                created=T0,
                renewed=T0,
                expires=T0 + timedelta(hours=8),
                ticket=ticket,
            )
            for n in range(samples)
        ]
        filters = [UserSessionsFilter(subject_id=subject_of(rng.randrange(count))) for _ in range(samples // 10 or 1)]

        def timed(calls: list[Callable[[], object]]) -> list[float]:
            out = []
            for call in calls:
                start = time.perf_counter()
                call()
                out.append(time.perf_counter() - start)
            return out

        get, update = store.get_user_session, store.update_user_session
        results = {
            "get": percentiles(timed([lambda k=k: get(k) for k in get_keys])),
            "update": percentiles(timed([lambda k=k, u=u: update(k, u) for k, u in renew])),
            "create": percentiles(timed([lambda s=s: store.create_user_session(s) for s in new])),
            "get_by_subject": percentiles(timed([lambda f=f: store.get_user_sessions(f) for f in filters])),
        }
        if any(store.get_user_session(k) is None for k in get_keys[:100]):
            raise AssertionError("a stored session is missing")
        results["peak_rss_mb"] = peak_rss_mb()  # type: ignore[assignment]
        return results
    finally:
        store.close()


def run_phase(*argv: str) -> dict[str, Any]:
    """Run one phase of this script in a fresh interpreter; return its JSON result."""
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"phase {argv[1]} failed:\n{done.stderr}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def measure(size: int, args: argparse.Namespace, workdir: str, log: Callable[[str], None]) -> dict[str, Any]:
    path = os.path.join(workdir, f"scale-{size}.db")
    log(f"[{size:,}] fill ...")
    fill = run_phase("--phase", "fill", "--path", path, "--sessions", str(size), "--ticket-size", str(args.ticket_size))
    log(f"[{size:,}] import {fill['import_per_s']:,.0f} sessions/s; open ...")
    opened = run_phase("--phase", "open", "--path", path, "--opens", str(args.opens))
    log(f"[{size:,}] open {opened['median_open_ms']:.1f} ms; serve ...")
    serve = run_phase(
        "--phase",
        "serve",
        "--path",
        path,
        "--sessions",
        str(size),
        "--samples",
        str(args.samples),
        "--ticket-size",
        str(args.ticket_size),
    )
    os.remove(path)
    return {"size": size, "fill": fill, "open": opened, "serve": serve}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = []
    for res in results:
        fill, opened, serve = res["fill"], res["open"], res["serve"]
        lines.append(f"### {res['size']:,} sessions ({args.ticket_size}-char ticket)")
        lines.append("")
        lines.append(
            f"- bulk import (one create_user_sessions call): {fill['import_per_s']:,.0f} sessions/s "
            f"({fill['import_s']:.1f} s; closing, which checkpoints the WAL: {fill['close_s']:.1f} s)"
        )
        lines.append(f"- file: {fill['file_bytes'] / 1e6:,.0f} MB, {fill['bytes_per_session']:,.0f} bytes per session")
        lines.append(
            f"- open an existing file: first {opened['first_open_ms']:.1f} ms, "
            f"median {opened['median_open_ms']:.1f} ms, max {opened['max_open_ms']:.1f} ms of {args.opens}"
        )
        lines.append(
            f"- peak RSS: import process {fill['peak_rss_mb']:.0f} MB, open {opened['peak_rss_mb']:.0f} MB, "
            f"serving process {serve['peak_rss_mb']:.0f} MB"
        )
        lines.append("")
        lines.append("| call | p50 | p90 | p99 | p99.9 | max |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for op in ("get", "update", "create", "get_by_subject"):
            p = serve[op]  # update: a sliding renewal (renewed, expires and ticket change)
            lines.append(
                f"| {op.replace('_', ' ')} | {p['p50_us']:.0f} us | {p['p90_us']:.0f} us | {p['p99_us']:.0f} us "
                f"| {p['p999_us']:.0f} us | {p['max_us']:,.0f} us |"
            )
        lines.append("")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        lines.append(f"{large['size']:,} against {small['size']:,} (p50):")
        for op in ("get", "update", "create", "get_by_subject"):
            a, b = small["serve"][op]["p50_us"], large["serve"][op]["p50_us"]
            lines.append(f"- {op.replace('_', ' ')}: {b:.1f} us vs {a:.1f} us (x{b / a:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="sessions to fill (default 1000000)")
    parser.add_argument("--baseline", type=int, default=10_000, help="small size to compare with (0: none)")
    parser.add_argument("--samples", type=int, default=20_000, help="calls timed per operation (default 20000)")
    parser.add_argument("--opens", type=int, default=7, help="times the existing file is opened (default 7)")
    parser.add_argument("--ticket-size", type=int, default=2048, help="ticket length in characters (default 2048)")
    parser.add_argument("--dir", help="working directory (default: a temporary one)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--phase", choices=("fill", "open", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase == "fill":
        print(json.dumps(phase_fill(args.path, args.sessions, args.ticket_size)))
        return 0
    if args.phase == "open":
        print(json.dumps(phase_open(args.path, args.opens)))
        return 0
    if args.phase == "serve":
        print(json.dumps(phase_serve(args.path, args.sessions, args.samples, args.ticket_size)))
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    sizes = [s for s in (args.baseline, args.sessions) if s > 0]
    workdir = tempfile.mkdtemp(prefix="litesessions-scale-", dir=args.dir)
    try:
        results = [measure(size, args, workdir, log) for size in sizes]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    import apsw

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    print(
        f"litesessions scale: {cpu}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"SQLite {apsw.sqlite_lib_version()}; load average {os.getloadavg()[0]:.2f}"
    )
    print()
    print(report(results, args))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
