"""Background cleanup under load: how long do updates and cleanup batches hold each other up?

Fills a fresh file with ``--expired`` expired and ``--live`` live sessions
(each set in one transaction, via ``create_user_sessions``), then runs the
background :class:`SessionCleanup` (default batch size unless ``--batch-size``)
while another thread keeps calling ``update_user_session`` on live sessions.
Reports the latency of every update and the duration of every cleanup batch
transaction (from ``BEGIN IMMEDIATE``, including its wait for the lock, to
``COMMIT`` returning, which includes any checkpoint that commit ran after
releasing the lock), then checks that every expired session is gone and every live
one holds its latest update.

The tool keeps its own bookkeeping out of the measurement: the live sessions are
remembered as tuples of strings and the latest update of each as an int, which
CPython's garbage collector does not track. With 200,000 ``UserSession``
objects held in a list instead, each full (generation 2) collection paused
every thread for 80 to 100 ms, and those pauses were the only updates over
50 ms. Collections are timed through ``gc.callbacks`` and reported, and every
update or batch over 20 ms that overlapped a collection is listed.

    .venv/bin/python tools/cleanup_load.py                      # 200,000 + 200,000
    .venv/bin/python tools/cleanup_load.py --expired 20000 --live 20000

Not imported by the package; a developer tool.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from litesessions import SessionCleanup, SqliteUserSessionStore, UserSession, UserSessionUpdate
from litesessions.models import UserSession as _UserSession

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
CREATED = T0 - timedelta(hours=1)


class TimedCleanup(SessionCleanup):
    """Records how long each batch transaction took (seconds)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batch_seconds: list[float] = []
        self.slow: list[tuple[float, float]] = []  # (start, end) of every batch over 20 ms

    def _delete_batch(self, now: int, batch_size: int) -> tuple[int, list[_UserSession]]:
        started = time.perf_counter()
        result = super()._delete_batch(now, batch_size)
        ended = time.perf_counter()
        self.batch_seconds.append(ended - started)
        if ended - started > 0.020:
            self.slow.append((started, ended))
        return result


def sessions(prefix: str, n: int, expires: datetime | None, ticket: str) -> Iterator[UserSession]:
    for i in range(n):
        yield UserSession(
            key=f"{prefix}-{i:07d}",
            subject_id=f"user-{i % 5000}",
            session_id=f"{prefix}-sid-{i}",
            created=CREATED,
            renewed=CREATED,
            expires=expires,
            ticket=ticket,
        )


def update_for(subject_id: str, session_id: str, i: int, ticket: str) -> UserSessionUpdate:
    """The i-th update the updater thread sends (rebuilt from i for the final check)."""
    return UserSessionUpdate(
        subject_id=subject_id,
        session_id=session_id,
        created=CREATED,
        renewed=T0 + timedelta(microseconds=i),
        expires=T0 + timedelta(hours=8, microseconds=i),
        ticket=ticket,
    )


class GcTimer:
    """Times every garbage collection through ``gc.callbacks``: (start, end, generation)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float, int]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.events.append((self._started, time.perf_counter(), info["generation"]))

    def overlapping(self, start: float, end: float) -> list[str]:
        return [f"gen{g} {ms(e - s)}" for s, e, g in self.events if s < end and e > start]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)
    if not values:
        return f"{name}: none"
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    over = sum(1 for v in values if v >= 0.050)
    return (
        f"{name}: n={len(values)} median={ms(statistics.median(values))} p99={ms(p99)} "
        f"max={ms(values[-1])} (>= 50 ms: {over})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--expired", type=int, default=200_000)
    parser.add_argument("--live", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: SessionCleanup's default")
    parser.add_argument("--ticket-bytes", type=int, default=1024)
    parser.add_argument("--durability", choices=["normal", "full"], default="normal")
    parser.add_argument("--db", default=None, help="database file (default: a new temp file)")
    parser.add_argument(
        "--hold-models",
        action="store_true",
        help="also keep a UserSession per live session and every update sent alive, as an app "
        "with a large, growing heap would (shows what full garbage collections cost)",
    )
    args = parser.parse_args(argv)

    directory = None
    if args.db is None:
        directory = tempfile.mkdtemp(prefix="cleanup_load_")
        path = os.path.join(directory, "sessions.db")
    else:
        path = args.db
    ticket = "t" * args.ticket_bytes
    print(
        f"file: {path}  expired={args.expired} live={args.live} ticket={args.ticket_bytes} B "
        f"durability={args.durability} cpus={os.cpu_count()} load average at start={os.getloadavg()[0]:.2f}"
    )

    with SqliteUserSessionStore(path, clock=lambda: T0, durability=args.durability) as store:
        started = time.perf_counter()
        store.create_user_sessions(sessions("old", args.expired, T0 - timedelta(minutes=1), ticket))
        store.create_user_sessions(sessions("live", args.live, T0 + timedelta(hours=8), ticket))
        # (key, subject id, session id) of every live session: tuples of str, untracked by the gc.
        alive = [(f"live-{i:07d}", f"user-{i % 5000}", f"live-sid-{i}") for i in range(args.live)]
        ballast: list[object] = list(sessions("live", args.live, None, ticket)) if args.hold_models else []
        # The bulk load leaves a WAL as large as the file; copy it back now, so the
        # measurement below sees a settled file, as after sessions accumulate over time.
        store._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        print(f"populated in {time.perf_counter() - started:.1f} s; file {os.path.getsize(path) / 1e6:.0f} MB")

        latencies: list[float] = []
        slow: list[tuple[float, float]] = []  # (start, end) of every update over 20 ms
        latest: dict[str, int] = {}  # key -> i of its latest update
        stop = threading.Event()
        failures: list[BaseException] = []

        def updater() -> None:
            i = 0
            try:
                while not stop.is_set():
                    key, subject_id, session_id = alive[(i * 7919) % len(alive)]
                    update = update_for(subject_id, session_id, i, ticket)
                    t = time.perf_counter()
                    found = store.update_user_session(key, update)
                    end = time.perf_counter()
                    latencies.append(end - t)
                    if end - t > 0.020:
                        slow.append((t, end))
                    if not found:
                        raise AssertionError(f"live session {key} vanished")
                    latest[key] = i
                    if args.hold_models:
                        ballast.append(update)
                    i += 1
            except BaseException as e:
                failures.append(e)

        gc_timer = GcTimer()
        gc.callbacks.append(gc_timer)
        kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
        cleanup = TimedCleanup(store, **kwargs)
        worker = threading.Thread(target=updater, name="updater")
        worker.start()
        time.sleep(0.2)  # the updater is running before cleanup starts
        started = time.perf_counter()
        cleanup.start(interval=3600, jitter=0)
        while cleanup.runs < 1:
            time.sleep(0.01)
        cleanup_seconds = time.perf_counter() - started
        cleanup.stop()
        time.sleep(0.2)
        stop.set()
        worker.join()

        gc.callbacks.remove(gc_timer)

        print(f"load average at end: {os.getloadavg()[0]:.2f} (other processes share these CPUs)")
        print(
            f"cleanup (batch_size={cleanup.batch_size}): {len(cleanup.batch_seconds)} batches in "
            f"{cleanup_seconds:.1f} s, failures={cleanup.failures}"
        )
        print(summary("  batch transaction", cleanup.batch_seconds))
        print(summary("  update_user_session latency", latencies))
        connection = store._connection()
        expired_left = connection.execute(
            "SELECT count(*) FROM litesessions_sessions WHERE key LIKE 'old-%'"
        ).fetchall()[0][0]
        live_left = connection.execute("SELECT count(*) FROM litesessions_sessions WHERE key LIKE 'live-%'").fetchall()[
            0
        ][0]
        pauses = sorted(e - s for s, e, _ in gc_timer.events)
        full = sum(1 for _, _, g in gc_timer.events if g == 2)
        print(
            f"  garbage collections during the run: {len(pauses)} ({full} full), "
            f"longest {ms(pauses[-1]) if pauses else 'none'}"
        )
        for what, one, spans in (("updates", "update", slow), ("batches", "batch", cleanup.slow)):
            during_gc = [(end - start, gc_timer.overlapping(start, end)) for start, end in spans]
            during_gc = [(seconds, overlap) for seconds, overlap in during_gc if overlap]
            print(f"  {what} over 20 ms: {len(spans)}, of which during a garbage collection: {len(during_gc)}")
            for seconds, overlap in during_gc[:10]:
                print(f"    {one} of {ms(seconds)} during {', '.join(overlap)}")
        by_key = {key: (subject_id, session_id) for key, subject_id, session_id in alive}
        wrong = 0
        for key, i in latest.items():
            got = store.get_user_session(key)
            wrong += got is None or got.to_update() != update_for(*by_key[key], i, ticket)
        print(
            f"check: expired left={expired_left} live left={live_left}/{args.live} "
            f"updated sessions checked={len(latest)} wrong={wrong} updater errors={failures!r}"
        )
        ok = expired_left == 0 and live_left == args.live and wrong == 0 and not failures
    if directory is not None:
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)
    print("RESULT:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
