"""Benchmark litesessions against raw apsw, stdlib sqlite3, diskcache and the in-memory store.

One process, one run: every contender gets the same sessions and the same
operations, at each population size, and the contenders take turns (A B C D E,
then B C D E A, ...) batch by batch, round after round, so a noisy, shared
machine slows all of them alike.  Reported figures are medians over the rounds.

Contenders:

* ``raw apsw``: the floor.  The same file layout (the store creates the schema
  from ``litesessions.schema.MIGRATIONS``), the same pragmas (the same
  ``litesessions._sqlite`` functions configure its connection), the same SQL
  constants from ``litesessions.store`` and ``litesessions.cleanup`` (for a
  renewal, ``RENEW``: what the store runs when only renewed, expires and the
  ticket change), and
  ``BEGIN IMMEDIATE`` / ``COMMIT`` around each write, as the store does, and
  the store's checkpoint policy (``litesessions._sqlite.Checkpointer``).  It
  gets its parameters as ready-made tuples and returns raw rows.
* ``litesessions``: ``SqliteUserSessionStore``, given ``UserSession`` objects,
  returning ``UserSession`` objects (conversion and validation included).
* ``sqlite3``: the stdlib module running the same SQL with the same pragmas,
  parameters and rows as raw tuples, like raw apsw (the floor through sqlite3).
* ``sqlite3 store``: what a hand-rolled store on sqlite3 costs: the same SQL,
  taking and returning ``UserSession`` objects through the store's own
  argument checks and conversion functions (the store's call path, with apsw
  swapped for the stdlib module).
* ``diskcache``: ``diskcache.Cache`` holding the same sessions by key (a tuple
  value, ``add`` to create, ``set`` to renew, ``expire()`` to clean up), with
  eviction, size limit and culling on set off (its fastest setting).  It has no subject index, so
  by-subject rows are n/a.
* ``in-memory``: ``InMemoryUserSessionStore``, the ceiling of a Python store.
  Its by-subject operations and cleanup scan every session, so at large sizes
  they run on a few subjects only (per-operation figures stay comparable).

The four SQL contenders share one database file (the store creates it, with
the population, through ``create_user_sessions``), so the OS page cache
favours none of them; each creates and deletes sessions in a partition of its
own (so all four write to equally small index ranges: their write rates are
higher than writes spread over a large partition would be, alike for all
four).  diskcache and the in-memory store hold their own copy.

Cleanup: every round adds expired sessions (untimed) and times their removal:
``SessionCleanup`` in bounded batches (``batch_size=100``) against one unbounded
raw ``DELETE ... WHERE expires < ?`` in raw apsw; sqlite3 runs the store's
bounded-batch statement in the same loop; diskcache its own ``expire()``.

Usage::

    python tools/bench.py                 # 10,000 and 1,000,000 sessions
    python tools/bench.py --quick         # CI smoke run, under a minute
    python tools/bench.py --json out.json --plot docs/bench.png
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from itertools import starmap as _starmap
from typing import Any

import apsw

import litesessions
from litesessions import (
    InMemoryUserSessionStore,
    SessionCleanup,
    SqliteUserSessionStore,
    UserSessionsFilter,
    UserSessionStore,
    _sqlite,
    cleanup,
    store,
)
from litesessions.models import UserSession, UserSessionUpdate, check_key, session_from_row, to_micros

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
LIFETIME = timedelta(hours=8)
PARTITION = "bench"
PER_SUBJECT = 10
CLEANUP_BATCH = 100  # SessionCleanup's default
BIG_CLEANUP_BATCH = 1000
# Pragmas the store sets (through litesessions._sqlite) that stdlib sqlite3 must mirror.
MIRRORED_PRAGMAS = (
    "synchronous",
    "journal_size_limit",
    "cache_size",
    "mmap_size",
    "temp_store",
    "wal_autocheckpoint",
    "secure_delete",  # on by default in some builds of the system SQLite that stdlib sqlite3 uses
)

OPS = ("create", "get", "update", "delete", "get_by_subject", "delete_by_subject", "cleanup", "cleanup_big")
CLEANUPS = ("cleanup", "cleanup_big")
CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
WRITES = ("create", "update", "delete", "delete_by_subject", *CLEANUPS)
READS_PER_WRITE = 4
# diskcache expires by the wall clock, not by T0: one day more, so that no live
# session (some expire moments after T0) expires while the benchmark runs.
DISKCACHE_MARGIN_S = 86_400.0
OP_LABELS = {
    "create": "create",
    "get": "get by key",
    "update": "renew (update)",
    "delete": "delete",
    "get_by_subject": f"get by subject ({PER_SUBJECT})",
    "delete_by_subject": f"delete by subject ({PER_SUBJECT})",
    "cleanup": f"cleanup, batches of {CLEANUP_BATCH} (rows/s)",
    "cleanup_big": f"cleanup, batches of {BIG_CLEANUP_BATCH} (rows/s)",
}
BASELINE = "raw apsw"
# The cleanup reference: every expired row in one unbounded statement.
RAW_DELETE_EXPIRED = f"DELETE FROM {litesessions.schema.TABLE} WHERE expires < ?"


def hexkey(rng: random.Random) -> str:
    """A random 128-bit key as 32 hex digits (the shape of Duende's session keys)."""
    return f"{rng.getrandbits(128):032x}"


def make_ticket(rng: random.Random, size: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(size))


class Row:
    """One session in every shape the contenders take (built before any timing)."""

    __slots__ = ("expire_in", "key", "params", "session", "sid", "subject", "value")

    def __init__(self, key: str, subject: str, sid: str, created: datetime, expires: datetime, ticket: str) -> None:
        self.key = key
        self.subject = subject
        self.sid = sid
        c, e = to_micros(created), to_micros(expires)
        self.params = (PARTITION, key, subject, sid, c, c, e, ticket)
        self.session = UserSession(
            key=key,
            subject_id=subject,
            session_id=sid,
            created=created,
            renewed=created,
            expires=expires,
            ticket=ticket,
        )
        self.value = (subject, sid, c, c, e, ticket)
        # diskcache wants seconds from now; the cleanup "now" below is the real time.time().
        self.expire_in = (expires - T0).total_seconds() + DISKCACHE_MARGIN_S


class Renewal:
    """One sliding renewal of an existing session, in every shape."""

    __slots__ = ("expire_in", "key", "params", "update", "value")

    def __init__(self, key: str, subject: str, sid: str, created: int, ticket: str, minutes: int) -> None:
        renewed = T0 + timedelta(minutes=minutes)
        expires = renewed + LIFETIME
        c, r, e = created, to_micros(renewed), to_micros(expires)
        self.key = key
        # In the order of store.RENEW, the statement the store runs for a sliding renewal.
        self.params = (r, e, ticket, PARTITION, key, subject, sid, c)
        self.update = UserSessionUpdate(
            subject_id=subject,
            session_id=sid,
            created=session_from_row("k", "s", None, c, c, None, "").created,
            renewed=renewed,
            expires=expires,
            ticket=ticket,
        )
        self.value = (subject, sid, c, r, e, ticket)
        self.expire_in = (expires - T0).total_seconds() + DISKCACHE_MARGIN_S


class Population:
    """The stored sessions of one size: key i belongs to subject i // PER_SUBJECT."""

    def __init__(self, size: int, ticket: str, seed: int) -> None:
        rng = random.Random(seed)
        self.size = size
        self.ticket = ticket
        self.keys = [hexkey(rng) for _ in range(size)]
        self.sids = [hexkey(rng) for _ in range(size)]
        self.rng = rng

    @staticmethod
    def subject(i: int) -> str:
        return f"subject-{i // PER_SUBJECT:07d}"

    @staticmethod
    def times(i: int) -> tuple[int, int, int]:
        """Session i's (created, renewed, expires) in microseconds: distinct, realistic, none expired at T0.

        Created within the last lifetime before T0, renewed since, expiring
        one lifetime after its renewal (sliding expiration).
        """
        now, lifetime = to_micros(T0), to_micros(T0 + LIFETIME) - to_micros(T0)
        created = now - (i * 2_654_435_761) % lifetime
        renewed = created + (i * 40_503) % (now - created + 1)
        return created, renewed, renewed + lifetime

    def sessions(self) -> Iterator[UserSession]:
        for i, (key, sid) in enumerate(zip(self.keys, self.sids, strict=True)):
            yield session_from_row(key, self.subject(i), sid, *self.times(i), self.ticket)


class Round:
    """The inputs of one round, identical for every contender."""

    def __init__(
        self, pop: Population, number: int, batch: int, expired: int, scan_cap: int, names: Sequence[str]
    ) -> None:
        rng = pop.rng
        ticket = pop.ticket
        new_expires = T0 + LIFETIME
        self.created = [
            Row(hexkey(rng), f"new-{number}-{i // PER_SUBJECT}", hexkey(rng), T0, new_expires, ticket)
            for i in range(batch)
        ]
        half = batch // 2
        self.deleted = [row.key for row in self.created[:half]]
        self.deleted_subjects = sorted({row.subject for row in self.created[half:]})
        # Reads are much faster than writes: more of them, so a batch is not over in a few ms.
        picks = [rng.randrange(pop.size) for _ in range(READS_PER_WRITE * batch)]
        self.get_keys = [pop.keys[i] for i in picks]
        renew = [rng.randrange(pop.size) for _ in range(batch)]
        # The same sessions for every contender, each to new values of its own: had they all
        # written the same values, only the first to renew would move the expiry index entries.
        self.renewals = {
            name: [Renewal(pop.keys[i], pop.subject(i), pop.sids[i], pop.times(i)[0], ticket, minutes) for i in renew]
            for minutes, name in enumerate(names, start=number * len(names) + 1)
        }
        subjects = max(1, READS_PER_WRITE * batch // PER_SUBJECT)
        self.subjects = [pop.subject(rng.randrange(pop.size)) for _ in range(subjects)]
        # Like the sessions and updates, the filters a caller passes are built before timing.
        self.filters = [UserSessionsFilter(subject_id=s) for s in self.subjects]
        self.deleted_filters = [UserSessionsFilter(subject_id=s) for s in self.deleted_subjects]
        self.scan_cap = scan_cap
        self.expired = {
            op: [
                Row(
                    hexkey(rng),
                    f"gone-{op}-{number}-{i // PER_SUBJECT}",
                    hexkey(rng),
                    T0 - 2 * LIFETIME,
                    T0 - timedelta(hours=1, microseconds=i),
                    ticket,
                )
                for i in range(expired)
            ]
            for op in CLEANUPS
        }


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    """Run ``fn`` (which returns how many operations or rows it did); return (seconds, count)."""
    start = time.perf_counter()
    count = fn()
    return time.perf_counter() - start, count


# -- contenders ----------------------------------------------------------------


class Contender:
    name = ""
    by_subject = True
    scans = False  # by-subject operations and cleanup scan everything (capped at large sizes)

    def run(self, op: str, rnd: Round) -> tuple[float, int]:
        return timed(lambda: getattr(self, op)(rnd))

    def add_expired(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def checkpoint(self) -> None:
        """Copy this contender's WAL frames into the shared file (nothing for the others)."""

    def close(self) -> None:
        raise NotImplementedError


class ApiContender(Contender):
    """Calls the ``UserSessionStore`` API: ``store`` holds the population (reads and renewals),
    ``own`` the contender's own sessions (creates and deletes)."""

    store: UserSessionStore
    own: UserSessionStore

    def create(self, rnd: Round) -> int:
        create = self.own.create_user_session
        for row in rnd.created:
            create(row.session)
        return len(rnd.created)

    def get(self, rnd: Round) -> int:
        get = self.store.get_user_session
        for key in rnd.get_keys:
            if get(key) is None:
                raise AssertionError(key)
        return len(rnd.get_keys)

    def update(self, rnd: Round) -> int:
        update = self.store.update_user_session
        renewals = rnd.renewals[self.name]
        for r in renewals:
            update(r.key, r.update)
        return len(renewals)

    def delete(self, rnd: Round) -> int:
        delete = self.own.delete_user_session
        for key in rnd.deleted:
            delete(key)
        return len(rnd.deleted)


class StoreContender(ApiContender):
    name = "litesessions"
    store: SqliteUserSessionStore
    own: SqliteUserSessionStore

    def __init__(self, path: str, partition: str) -> None:
        # Reads and renewals of the stored population; its own sessions in a partition of its own.
        self.store = SqliteUserSessionStore(path, partition_key=PARTITION, clock=lambda: T0)
        self.own = SqliteUserSessionStore(path, partition_key=partition, clock=lambda: T0)
        self.cleaner = SessionCleanup(self.own, batch_size=CLEANUP_BATCH)
        self.big_cleaner = SessionCleanup(self.own, batch_size=BIG_CLEANUP_BATCH)

    def get_by_subject(self, rnd: Round) -> int:
        get = self.store.get_user_sessions
        for f in rnd.filters:
            if len(get(f)) != PER_SUBJECT:
                raise AssertionError(f)
        return len(rnd.filters)

    def delete_by_subject(self, rnd: Round) -> int:
        delete = self.own.delete_user_sessions
        for f in rnd.deleted_filters:
            delete(f)
        return len(rnd.deleted_filters)

    def add_expired(self, rows: list[Row]) -> None:
        self.own.create_user_sessions(row.session for row in rows)

    def cleanup(self, rnd: Round) -> int:
        return self.cleaner.delete_expired_sessions()

    def checkpoint(self) -> None:
        self.store._connection().execute(CHECKPOINT).fetchall()

    def cleanup_big(self, rnd: Round) -> int:
        return self.big_cleaner.delete_expired_sessions()

    def close(self) -> None:
        self.own.close()
        self.store.close()


class SqlContender(Contender):
    """What raw apsw and stdlib sqlite3 do alike: the store's SQL constants, run by hand.

    Subclasses set ``connection`` and ``partition`` and define ``_write_each``
    (one ``BEGIN IMMEDIATE`` ... ``COMMIT`` per statement) and ``cleanup``.
    """

    connection: Any
    partition: str

    def _write_each(self, sql: str, params: Sequence[tuple[Any, ...]]) -> int:
        raise NotImplementedError

    def create(self, rnd: Round) -> int:
        return self._write_each(store.INSERT, [(self.partition, *row.params[1:]) for row in rnd.created])

    def get(self, rnd: Round) -> int:
        execute = self.connection.execute
        sql = store.GET
        for key in rnd.get_keys:
            if execute(sql, (PARTITION, key)).fetchone() is None:
                raise AssertionError(key)
        return len(rnd.get_keys)

    def update(self, rnd: Round) -> int:
        return self._write_each(store.RENEW, [r.params for r in rnd.renewals[self.name]])

    def delete(self, rnd: Round) -> int:
        return self._write_each(store.DELETE, [(self.partition, key) for key in rnd.deleted])

    def get_by_subject(self, rnd: Round) -> int:
        execute = self.connection.execute
        sql = store.SELECT_FILTERED[True, False]
        for subject in rnd.subjects:
            if len(execute(sql, (PARTITION, subject)).fetchall()) != PER_SUBJECT:
                raise AssertionError(subject)
        return len(rnd.subjects)

    def delete_by_subject(self, rnd: Round) -> int:
        sql = store.DELETE_FILTERED[True, False]
        return self._write_each(sql, [(self.partition, s) for s in rnd.deleted_subjects])

    def checkpoint(self) -> None:
        self.connection.execute(CHECKPOINT).fetchall()

    def add_expired(self, rows: list[Row]) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.executemany(store.INSERT, [(self.partition, *row.params[1:]) for row in rows])
        self.connection.execute("COMMIT")


class RawApswContender(SqlContender):
    name = "raw apsw"

    def __init__(self, path: str, partition: str) -> None:
        self.partition = partition  # its own sessions' partition (the stored population is in PARTITION)
        connection = _sqlite.connect(path, 5000)
        _sqlite.set_wal(connection, path)
        # The store's checkpoint policy too (its WAL hook).
        self.checkpointer = _sqlite.Checkpointer(path, 5000)
        _sqlite.configure(connection, "normal", self.checkpointer)
        self.connection = connection
        self.cutoff = to_micros(T0)

    def _write_each(self, sql: str, params: Sequence[tuple[Any, ...]]) -> int:
        execute = self.connection.execute
        changes = self.connection.changes
        for p in params:
            execute("BEGIN IMMEDIATE")
            execute(sql, p)
            changes()
            execute("COMMIT")
        return len(params)

    def cleanup(self, rnd: Round) -> int:
        # The reference: one unbounded DELETE over the same rows, one transaction.
        execute = self.connection.execute
        execute("BEGIN IMMEDIATE")
        execute(RAW_DELETE_EXPIRED, (self.cutoff,))
        deleted = self.connection.changes()
        execute("COMMIT")
        return deleted

    cleanup_big = cleanup

    def close(self) -> None:
        self.checkpointer.close()
        self.connection.close()


def store_pragmas(path: str) -> dict[str, Any]:
    """The values the store's connection setup gives ``MIRRORED_PRAGMAS`` (read back, not assumed)."""
    connection = _sqlite.connect(path, 5000)
    try:
        _sqlite.configure(connection, "normal")
        return {name: connection.execute(f"PRAGMA {name}").fetchall()[0][0] for name in MIRRORED_PRAGMAS}
    finally:
        connection.close()


class Sqlite3Contender(SqlContender):
    name = "sqlite3"

    def __init__(self, path: str, pragmas: dict[str, Any], partition: str) -> None:
        self.partition = partition  # its own sessions' partition (the stored population is in PARTITION)
        connection = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
        for name, value in pragmas.items():
            connection.execute(f"PRAGMA {name}={value}").fetchall()
        self.connection = connection
        self.cutoff = to_micros(T0)

    def _write_each(self, sql: str, params: Sequence[tuple[Any, ...]]) -> int:
        execute = self.connection.execute
        for p in params:
            execute("BEGIN IMMEDIATE")
            execute(sql, p).rowcount  # noqa: B018 - what the store learns from changes()
            execute("COMMIT")
        return len(params)

    def cleanup(self, rnd: Round) -> int:
        # A hand-rolled store running SessionCleanup's bounded-batch statement in the same loop.
        execute = self.connection.execute
        total = 0
        while True:
            execute("BEGIN IMMEDIATE")
            deleted = execute(cleanup.DELETE_EXPIRED_BATCH, (self.cutoff, CLEANUP_BATCH)).rowcount
            execute("COMMIT")
            total += deleted
            if deleted < CLEANUP_BATCH:
                return total

    def close(self) -> None:
        self.connection.close()


class Sqlite3StoreContender(Sqlite3Contender):
    """A hand-rolled store on stdlib sqlite3: the whole call path of ``SqliteUserSessionStore``
    (argument checks, the store's own conversion functions, the same SQL in the same
    transactions, the full ``UPDATE`` when ``RENEW`` matches nothing), with apsw swapped for
    the stdlib module.  Only the store's error translation is left out (in its favour)."""

    name = "sqlite3 store"

    def create(self, rnd: Round) -> int:
        execute, partition = self.connection.execute, self.partition
        for row in rnd.created:
            session = row.session
            if not isinstance(session, UserSession):
                raise TypeError(session)
            params = store.session_params(partition, session)
            execute("BEGIN IMMEDIATE")
            execute(store.INSERT, params)
            execute("COMMIT")
        return len(rnd.created)

    def get(self, rnd: Round) -> int:
        execute, sql = self.connection.execute, store.GET
        for key in rnd.get_keys:
            check_key(key)
            row = execute(sql, (PARTITION, key)).fetchone()
            if row is None:
                raise AssertionError(key)
            session_from_row(*row)
        return len(rnd.get_keys)

    def update(self, rnd: Round) -> int:
        execute = self.connection.execute
        renewals = rnd.renewals[self.name]
        for r in renewals:
            key, update = r.key, r.update
            check_key(key)
            if not isinstance(update, UserSessionUpdate):
                raise TypeError(update)
            expires = update.expires
            subject_id, session_id, created = update.subject_id, update.session_id, to_micros(update.created)
            renewed, expires_micros = to_micros(update.renewed), None if expires is None else to_micros(expires)
            execute("BEGIN IMMEDIATE")
            renew = (renewed, expires_micros, update.ticket, PARTITION, key, subject_id, session_id, created)
            if not execute(store.RENEW, renew).rowcount:
                full = (subject_id, session_id, created, renewed, expires_micros, update.ticket, PARTITION, key)
                execute(store.UPDATE, full)
            execute("COMMIT")
        return len(renewals)

    def delete(self, rnd: Round) -> int:
        execute, partition = self.connection.execute, self.partition
        for key in rnd.deleted:
            check_key(key)
            execute("BEGIN IMMEDIATE")
            execute(store.DELETE, (partition, key)).rowcount  # noqa: B018 - what the store learns from changes()
            execute("COMMIT")
        return len(rnd.deleted)

    def get_by_subject(self, rnd: Round) -> int:
        execute = self.connection.execute
        for f in rnd.filters:
            sql, params = store._filter_query(f, PARTITION, store.SELECT_FILTERED)
            if len(list(_starmap(session_from_row, execute(sql, params)))) != PER_SUBJECT:
                raise AssertionError(f)
        return len(rnd.filters)

    def delete_by_subject(self, rnd: Round) -> int:
        execute = self.connection.execute
        for f in rnd.deleted_filters:
            sql, params = store._filter_query(f, self.partition, store.DELETE_FILTERED)
            execute("BEGIN IMMEDIATE")
            execute(sql, params).rowcount  # noqa: B018 - what the store learns from changes()
            execute("COMMIT")
        return len(rnd.deleted_filters)


class DiskcacheContender(Contender):
    name = "diskcache"
    by_subject = False

    def __init__(self, directory: str) -> None:
        import diskcache

        # No eviction, no size limit, no culling on set: its fastest setting, and
        # expired sessions wait for expire() as ours wait for cleanup.
        self.cache = diskcache.Cache(directory, eviction_policy="none", size_limit=2**62, cull_limit=0)

    def fill(self, pop: Population) -> None:
        cache = self.cache
        now = to_micros(T0)
        with cache.transact():
            for i, (key, sid) in enumerate(zip(pop.keys, pop.sids, strict=True)):
                created, renewed, expires = pop.times(i)
                value = (pop.subject(i), sid, created, renewed, expires, pop.ticket)
                cache.set(key, value, expire=(expires - now) / 1e6 + DISKCACHE_MARGIN_S)

    def create(self, rnd: Round) -> int:
        add = self.cache.add
        for row in rnd.created:
            add(row.key, row.value, expire=row.expire_in)
        return len(rnd.created)

    def get(self, rnd: Round) -> int:
        get = self.cache.get
        for key in rnd.get_keys:
            if get(key) is None:
                raise AssertionError(key)
        return len(rnd.get_keys)

    def update(self, rnd: Round) -> int:
        set_ = self.cache.set
        renewals = rnd.renewals[self.name]
        for r in renewals:
            set_(r.key, r.value, expire=r.expire_in)
        return len(renewals)

    def delete(self, rnd: Round) -> int:
        delete = self.cache.delete
        for key in rnd.deleted:
            delete(key)
        # Its by-subject rows are n/a: drop the rest of the round's sessions untimed.
        return len(rnd.deleted)

    def tidy(self, rnd: Round) -> None:
        delete = self.cache.delete
        half = len(rnd.created) // 2
        for row in rnd.created[half:]:
            delete(row.key)

    def add_expired(self, rows: list[Row]) -> None:
        cache = self.cache
        with cache.transact():
            for row in rows:
                cache.set(row.key, row.value, expire=-3600.0)

    def cleanup(self, rnd: Round) -> int:
        return int(self.cache.expire())

    def close(self) -> None:
        self.cache.close()


class MemoryContender(ApiContender):
    name = "in-memory"
    scans = True
    store: InMemoryUserSessionStore

    def __init__(self, pop: Population) -> None:
        self.store = self.own = InMemoryUserSessionStore(clock=lambda: T0)
        create = self.store.create_user_session
        for session in pop.sessions():
            create(session)

    def get_by_subject(self, rnd: Round) -> int:
        get = self.store.get_user_sessions
        filters = rnd.filters[: rnd.scan_cap]
        for f in filters:
            if len(get(f)) != PER_SUBJECT:
                raise AssertionError(f)
        return len(filters)

    def delete_by_subject(self, rnd: Round) -> int:
        # Every subject must go (the population must stay the same): time only the first few.
        delete = self.store.delete_user_sessions
        filters = rnd.deleted_filters
        start = time.perf_counter()
        for f in filters[: rnd.scan_cap]:
            delete(f)
        self.elapsed = time.perf_counter() - start
        for f in filters[rnd.scan_cap :]:
            delete(f)
        return min(len(filters), rnd.scan_cap)

    def run(self, op: str, rnd: Round) -> tuple[float, int]:
        if op == "delete_by_subject":
            count = self.delete_by_subject(rnd)
            return self.elapsed, count
        return super().run(op, rnd)

    def add_expired(self, rows: list[Row]) -> None:
        create = self.store.create_user_session
        for row in rows:
            create(row.session)

    def cleanup(self, rnd: Round) -> int:
        return self.store.delete_expired_sessions()

    def close(self) -> None:
        pass


# -- running -------------------------------------------------------------------


def build_template(path: str, pop: Population) -> dict[str, float]:
    """Fill ``path`` with the population through ``create_user_sessions``; return the import figures."""
    with SqliteUserSessionStore(path, partition_key=PARTITION) as s:
        start = time.perf_counter()
        count = s.create_user_sessions(pop.sessions())
        seconds = time.perf_counter() - start
    if count != pop.size:
        raise AssertionError(f"bulk import stored {count} of {pop.size}")
    return {"sessions": count, "seconds": seconds, "sessions_per_s": count / seconds}


def raw_bulk_import(path: str, pop: Population) -> dict[str, float]:
    """The same import in raw apsw (same schema, pragmas and import cache, one executemany); the file is removed."""
    SqliteUserSessionStore(path, partition_key=PARTITION).close()  # the schema, in WAL mode
    connection = _sqlite.connect(path, 5000)
    _sqlite.configure(connection, "normal")
    connection.execute(f"PRAGMA cache_size=-{store.IMPORT_CACHE_KIB}").fetchall()

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, (key, sid) in enumerate(zip(pop.keys, pop.sids, strict=True)):
            yield (PARTITION, key, pop.subject(i), sid, *pop.times(i), pop.ticket)

    start = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(store.INSERT, rows())
    connection.execute("COMMIT")
    seconds = time.perf_counter() - start
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    return {"sessions": pop.size, "seconds": seconds, "sessions_per_s": pop.size / seconds}


def run_size(
    size: int, args: argparse.Namespace, workdir: str, ticket: str, log: Callable[[str], None]
) -> dict[str, Any]:
    pop = Population(size, ticket, seed=size)
    template = os.path.join(workdir, f"template-{size}.db")
    log(f"[{size:,}] bulk import through create_user_sessions ...")
    bulk = build_template(template, pop)
    log(f"[{size:,}] bulk import: {bulk['sessions_per_s']:,.0f} sessions/s ({bulk['seconds']:.1f} s); raw apsw ...")
    bulk_raw = raw_bulk_import(os.path.join(workdir, f"bulk-raw-{size}.db"), pop)
    log(f"[{size:,}] raw apsw executemany: {bulk_raw['sessions_per_s']:,.0f} sessions/s")
    pragmas = store_pragmas(template)

    # The four SQL contenders share one file: the same pages, so the same luck with the
    # OS page cache (with a file per contender, a million sessions each, whichever file
    # the cache happened to hold won).  They read and renew the same stored sessions and
    # create, delete and clean up their own, each in a small partition of its own (so
    # each writes to equally small, equally hot index ranges); a cleanup (file-wide)
    # runs right after its own contender added the expired sessions.
    contenders: list[Contender] = [
        RawApswContender(template, PARTITION + "-raw"),
        StoreContender(template, PARTITION + "-litesessions"),
        Sqlite3Contender(template, pragmas, PARTITION + "-sqlite3"),
        Sqlite3StoreContender(template, pragmas, PARTITION + "-sqlite3-store"),
    ]
    if not args.no_diskcache:
        log(f"[{size:,}] filling diskcache ...")
        dc = DiskcacheContender(os.path.join(workdir, f"diskcache-{size}"))
        dc.fill(pop)
        contenders.append(dc)
    log(f"[{size:,}] filling the in-memory store ...")
    contenders.append(MemoryContender(pop))

    batch = args.batch
    scan_cap = max(1, min(batch // PER_SUBJECT, 2_000_000 // size))
    samples: dict[str, dict[str, list[float]]] = {op: {c.name: [] for c in contenders} for op in OPS}
    rates: dict[str, dict[str, list[float]]] = {op: {c.name: [] for c in contenders} for op in OPS}
    names = [c.name for c in contenders]
    for number in range(args.rounds):
        rnd = Round(pop, number, batch, args.expired, scan_cap, names)
        order = contenders[number % len(contenders) :] + contenders[: number % len(contenders)]
        gc.collect()
        for op in OPS:
            for c in order:
                if op in ("get_by_subject", "delete_by_subject") and not c.by_subject:
                    if op == "delete_by_subject" and isinstance(c, DiskcacheContender):
                        c.tidy(rnd)
                    continue
                if not hasattr(c, op):
                    continue
                if op in CLEANUPS:
                    c.add_expired(rnd.expired[op])
                seconds, count = c.run(op, rnd)
                if op in WRITES:
                    # The four SQL contenders share one WAL: each batch of writes ends by copying
                    # its own frames into the file, timed as part of the batch.  Otherwise whichever
                    # commit crossed the checkpoint threshold paid for everybody's frames.
                    start = time.perf_counter()
                    c.checkpoint()
                    seconds += time.perf_counter() - start
                    # Checkpoints may go on in the background after a batch of writes: let them
                    # finish before the next contender's batch, so they slow only their own side.
                    time.sleep(args.settle)
                if op in CLEANUPS and count != len(rnd.expired[op]):
                    raise AssertionError(f"{c.name} {op} removed {count} of {len(rnd.expired[op])}")
                samples[op][c.name].append(seconds / count)
                rates[op][c.name].append(count / seconds)
        log(f"[{size:,}] round {number + 1}/{args.rounds} done")
    for c in contenders:
        c.close()

    results: dict[str, Any] = {}
    for op in OPS:
        base = samples[op][BASELINE]
        row: dict[str, Any] = {}
        for name in names:
            mine = samples[op][name]
            if not mine:
                row[name] = None
                continue
            ratios = [m / b for m, b in zip(mine, base, strict=True)]
            row[name] = {
                "per_op_us": statistics.median(mine) * 1e6,
                "per_s": statistics.median(rates[op][name]),
                "ratio": statistics.median(ratios),
                "samples_us": [round(x * 1e6, 3) for x in mine],
            }
        store_samples = samples[op]["litesessions"]
        # Paired per round, like the ratio: the store's time over each rival's, median over rounds.
        row["litesessions"]["vs"] = {
            name: statistics.median(m / t for m, t in zip(store_samples, samples[op][name], strict=True))
            for name in names
            if samples[op][name]
        }
        results[op] = row
    return {
        "size": size,
        "bulk_import": bulk,
        "bulk_import_raw_apsw": bulk_raw,
        "contenders": names,
        "ops": results,
        "scan_cap": scan_cap,
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import diskcache

        diskcache_version = diskcache.__version__
    except ImportError:
        diskcache_version = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": apsw.sqlite_lib_version(),
        "apsw": apsw.apsw_version(),
        "stdlib_sqlite3": sqlite3.sqlite_version,
        "diskcache": diskcache_version,
        "litesessions": litesessions.__version__,
        "load_average": os.getloadavg(),
    }


def fmt_rate(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def table(result: dict[str, Any]) -> str:
    """Markdown table: operations (or rows) per second, and per-op time ratio against raw apsw."""
    names = result["contenders"]
    lines = [
        "| operation | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for op in OPS:
        cells = []
        for name in names:
            cell = result["ops"][op][name]
            if cell is None:
                cells.append("n/a")
            else:
                cells.append(f"{fmt_rate(cell['per_s'])}/s x{cell['ratio']:.2f}")
        lines.append(f"| {OP_LABELS[op]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(results: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """The issue's Done-when items that this run measures: (item, holds, figures)."""
    out: list[tuple[str, bool, str]] = []
    limits = {"get": 1.5, "create": 1.15, "update": 1.15, "delete": 1.15, "get_by_subject": 1.5}
    for res in results:
        size = res["size"]
        ops = res["ops"]
        for op, limit in limits.items():
            ratio = ops[op]["litesessions"]["ratio"]
            out.append((f"{size:,}: {op} ratio vs raw apsw <= {limit}", ratio <= limit, f"{ratio:.2f}"))
        for rival in ("diskcache", "sqlite3", "sqlite3 store"):
            if rival not in res["contenders"]:
                continue
            for op in ("create", "get", "update", "delete"):
                vs = ops[op]["litesessions"]["vs"][rival]
                out.append((f"{size:,}: {op} faster than {rival}", vs < 1, f"time ratio {vs:.2f}"))
        for op in CLEANUPS:
            cl = ops[op]
            mine, raw = cl["litesessions"]["per_s"], cl[BASELINE]["per_s"]
            out.append(
                (
                    f"{size:,}: {OP_LABELS[op]} >= 1/2 of the unbounded raw DELETE",
                    cl["litesessions"]["ratio"] <= 2,
                    f"{mine:,.0f} vs {raw:,.0f} rows/s, time ratio {cl['litesessions']['ratio']:.2f}",
                )
            )
        bulk = res["bulk_import"]["sessions_per_s"]
        raw_bulk = res["bulk_import_raw_apsw"]["sessions_per_s"]
        out.append(
            (
                f"{size:,}: bulk import >= 100,000 sessions/s",
                bulk >= 100_000,
                f"{bulk:,.0f}/s (raw apsw executemany: {raw_bulk:,.0f}/s)",
            )
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        for op in ("get", "update"):
            a = small["ops"][op]["litesessions"]["per_op_us"]
            b = large["ops"][op]["litesessions"]["per_op_us"]
            raw_a, raw_b = small["ops"][op][BASELINE]["per_op_us"], large["ops"][op][BASELINE]["per_op_us"]
            out.append(
                (
                    f"{op} latency at {large['size']:,} within 1.3x of {small['size']:,}",
                    b <= 1.3 * a,
                    f"{b:.1f} us vs {a:.1f} us (x{b / a:.2f}; raw apsw: {raw_b:.1f} us vs {raw_a:.1f} us, "
                    f"x{raw_b / raw_a:.2f})",
                )
            )
    return out


def plot(results: list[dict[str, Any]], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot: matplotlib is not installed (pip install matplotlib); no chart drawn", file=sys.stderr)
        return False
    fig, axes = plt.subplots(len(results), 1, figsize=(11, 4.2 * len(results)), squeeze=False)
    for ax, res in zip(axes[:, 0], results, strict=True):
        names = res["contenders"]
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            xs, ys = [], []
            for i, op in enumerate(OPS):
                cell = res["ops"][op][name]
                if cell is not None:
                    xs.append(i + (j - (len(names) - 1) / 2) * width)
                    ys.append(cell["ratio"])
            ax.bar(xs, ys, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(OPS)), [OP_LABELS[op] for op in OPS], rotation=15)
        ax.set_ylabel("time per op / raw apsw (log)")
        ax.set_title(f"{res['size']:,} stored sessions, 2 KiB ticket: lower is faster")
        ax.legend(fontsize=8, ncols=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 10,000 sessions, small batches")
    parser.add_argument("--sizes", type=int, nargs="+", help="stored sessions (default 10000 1000000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per size (default 21; quick 5)")
    parser.add_argument("--batch", type=int, help="operations per contender, op and round (default 500; quick 200)")
    parser.add_argument("--expired", type=int, help="expired sessions per cleanup and round (default 3000; quick 500)")
    parser.add_argument("--ticket-size", type=int, default=2048, help="ticket length in characters (default 2048)")
    parser.add_argument("--no-diskcache", action="store_true", help="leave diskcache out")
    parser.add_argument("--settle", type=float, help="seconds of rest after each batch of writes (default 0.05)")
    parser.add_argument("--dir", help="working directory for the files (default: a temporary one)")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw a bar chart (needs matplotlib)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([10_000] if args.quick else [10_000, 1_000_000])
    args.rounds = args.rounds or (5 if args.quick else 21)
    args.batch = args.batch or (200 if args.quick else 500)
    args.expired = args.expired or (500 if args.quick else 3000)
    args.settle = args.settle if args.settle is not None else (0.02 if args.quick else 0.05)
    if args.batch < 2 * PER_SUBJECT or args.rounds < 1 or args.expired < 1:
        parser.error(f"--batch must be >= {2 * PER_SUBJECT}; --rounds and --expired >= 1")
    if not args.no_diskcache:
        try:
            import diskcache  # noqa: F401
        except ImportError:
            print("diskcache is not installed: leaving it out (pip install diskcache)", file=sys.stderr)
            args.no_diskcache = True

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    info = machine()
    started = time.time()
    ticket = make_ticket(random.Random(0), args.ticket_size)
    print(
        f"litesessions bench: {info['cpu']}, {info['cores']} cores, {info['platform']}, Python {info['python']}, "
        f"SQLite {info['sqlite']} (apsw {info['apsw']}), stdlib sqlite3 and diskcache on SQLite "
        f"{info['stdlib_sqlite3']}, diskcache {info['diskcache']}"
    )
    print(
        f"{args.rounds} interleaved rounds x {args.batch} writes ({READS_PER_WRITE * args.batch} reads), "
        f"{args.ticket_size}-char ticket, {args.expired:,} expired rows per cleanup; "
        f"load average {info['load_average'][0]:.2f} at start"
    )
    print("cells: median operations (cleanup: rows) per second, xmedian per-op time ratio against raw apsw")
    results = []
    workdir = tempfile.mkdtemp(prefix="litesessions-bench-", dir=args.dir)
    try:
        for size in args.sizes:
            res = run_size(size, args, workdir, ticket, log)
            results.append(res)
            print_size(res, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_average_end"] = os.getloadavg()
    elapsed = time.time() - started
    print(f"\nload average {info['load_average_end'][0]:.2f} at end; {elapsed:.0f} s")
    print()
    print("Done-when items measured here:")
    for item, ok, figures in checks(results):
        print(f"  [{'ok' if ok else 'NO'}] {item}: {figures}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": vars(args), "results": results}, f, indent=1)
    if args.plot and plot(results, args.plot):
        print(f"\nchart written to {args.plot}")
    return 0


def print_size(res: dict[str, Any], args: argparse.Namespace) -> None:
    """Print one size's table as soon as it is measured (a long run shows its results as it goes)."""
    print()
    print(
        f"### {res['size']:,} stored sessions (bulk import of them through create_user_sessions: "
        f"{res['bulk_import']['sessions_per_s']:,.0f} sessions/s; raw apsw executemany: "
        f"{res['bulk_import_raw_apsw']['sessions_per_s']:,.0f} sessions/s)"
    )
    print()
    print(table(res))
    if "in-memory" in res["contenders"] and res["scan_cap"] < READS_PER_WRITE * args.batch // PER_SUBJECT:
        print(f"\n(in-memory by-subject ops scan every session: timed on {res['scan_cap']} subjects per round)")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
