"""Measure the conformance harness: how long ``check_store`` takes to pass, and to find each planted bug.

Usage::

    .venv/bin/python tools/harness_timing.py            # everything, default settings
    .venv/bin/python tools/harness_timing.py --repeat 3  # each broken store 3 times (min/median/max)
    .venv/bin/python tools/harness_timing.py --only "cleanup with <="
    .venv/bin/python tools/harness_timing.py --no-shrink --skip-pass  # time to detect, without shrinking
    .venv/bin/python tools/harness_timing.py --dir /dev/shm           # SQLite files on a RAM disk

Runs with ``check_store``'s default settings except ``database=None``, so no
example saved by an earlier run can make a search look faster than it is.
The broken stores are the ones of ``tests/test_broken_stores.py``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import Phase

from litesessions import InMemoryUserSessionStore, SessionCleanup, SqliteUserSessionStore
from litesessions.testing import check_store, harness_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_broken_stores import BROKEN, path_factory


def _time_pass(label: str, chosen: Any, make_store: Any, make_cleanup: Any = None) -> float:
    start = time.perf_counter()
    check_store(make_store, make_cleanup=make_cleanup, settings=chosen)
    elapsed = time.perf_counter() - start
    print(f"check_store passes on {label}: {elapsed:.2f} s", flush=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per broken store")
    parser.add_argument("--only", action="append", help="only these broken stores (by name)")
    parser.add_argument("--skip-pass", action="store_true", help="do not time the passing runs")
    parser.add_argument("--dir", help="directory for the SQLite files (default: a new temporary directory)")
    parser.add_argument("--steps", type=int, help="override stateful_step_count (to compare settings)")
    parser.add_argument("--no-shrink", action="store_true", help="search only: time until the bug is detected")
    parser.add_argument("--examples", type=int, help="override max_examples (to compare settings)")
    args = parser.parse_args()
    overrides: dict[str, Any] = {"database": None}
    if args.steps:
        overrides["stateful_step_count"] = args.steps
    if args.examples:
        overrides["max_examples"] = args.examples
    if args.no_shrink:
        overrides["phases"] = [Phase.explicit, Phase.reuse, Phase.generate]
    chosen = harness_settings(**overrides)
    directory = tempfile.mkdtemp(prefix="harness-timing-", dir=args.dir)
    new_path = path_factory(directory)
    counter = itertools.count()

    print(f"load average at start {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    if not args.skip_pass:

        def sqlite_store(clock: Any) -> SqliteUserSessionStore:
            return SqliteUserSessionStore(os.path.join(directory, f"pass-{next(counter)}.db"), clock=clock)

        def memory_store(clock: Any) -> InMemoryUserSessionStore:
            return InMemoryUserSessionStore(clock=clock)

        _time_pass("SqliteUserSessionStore + SessionCleanup", chosen, sqlite_store, lambda s, c: SessionCleanup(s))
        _time_pass("InMemoryUserSessionStore", chosen, memory_store)

    failures = 0
    names = args.only or list(BROKEN)
    print(f"\n{'broken store':<45} {'min':>7} {'median':>7} {'max':>7}  (seconds to fail, {args.repeat} run(s))")
    for name in names:
        times = []
        for _ in range(args.repeat):
            make_store, make_cleanup = BROKEN[name](new_path)
            start = time.perf_counter()
            try:
                check_store(make_store, make_cleanup=make_cleanup, settings=chosen)
            except AssertionError:
                times.append(time.perf_counter() - start)
            else:
                failures += 1
                print(f"{name}: NOT FOUND in {time.perf_counter() - start:.2f} s", flush=True)
        if times:
            print(
                f"{name:<45} {min(times):7.2f} {statistics.median(times):7.2f} {max(times):7.2f}",
                flush=True,
            )
    print(f"\n{datetime.now().isoformat(timespec='seconds')}: {len(names) - failures}/{len(names)} bugs found")
    print(f"files in {directory}; load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
