"""``SessionCleanup``: deletes expired sessions of a SQLite store in bounded batches, on demand or in the background."""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Final

import apsw

from litesessions import _sqlite, schema
from litesessions.errors import ConfigurationError, StoreClosedError
from litesessions.models import UserSession, read_clock, session_from_row, to_micros
from litesessions.store import SqliteUserSessionStore

__all__ = ["SessionCleanup"]

_T: Final = schema.TABLE

# The batch is picked through the expiry index (oldest first) and deleted by
# rowid, as diskcache's Cache._select_delete does: each batch is one short
# transaction, so writers wait at most one batch for the lock.
DELETE_EXPIRED_BATCH: Final = (
    f"DELETE FROM {_T} WHERE id IN (SELECT id FROM {_T} WHERE expires < ? ORDER BY expires LIMIT ?)"
)
# The same, handing back what it removed (for ``on_deleted``); only used when
# a callback is set, so a plain cleanup never reads the tickets.
DELETE_EXPIRED_BATCH_RETURNING: Final = (
    DELETE_EXPIRED_BATCH + " RETURNING key, subject_id, session_id, created, renewed, expires, ticket"
)

# Counts and durations only: tickets hold tokens and must never reach a log.
logger: Final = logging.getLogger("litesessions.cleanup")

DEFAULT_INTERVAL: Final = 600.0
# Rest between two batches of a background run (see start()).
DEFAULT_PAUSE: Final = 0.01
MAX_INTERVAL: Final = 366 * 24 * 3600.0

OnDeleted = Callable[[list[UserSession]], object]

# Background threads do not survive fork(): a child must not believe one runs.
_RUNNING: weakref.WeakSet[SessionCleanup] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for cleanup in list(_RUNNING):
        cleanup._forget_thread()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _seconds(value: object, name: str, *, low: float, allow_low: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds > MAX_INTERVAL or seconds < low or (seconds == low and not allow_low):
        bound = f">= {low:g}" if allow_low else f"> {low:g}"
        raise ConfigurationError(f"{name} must be {bound} and at most {MAX_INTERVAL:g} seconds, got {value!r}")
    return seconds


class SessionCleanup:
    """Implements :class:`~litesessions.UserSessionStoreCleanup` for a :class:`SqliteUserSessionStore`.

    ``batch_size``: at most this many sessions are deleted per transaction.
    ``clock``: "now" for expiry; by default the store's clock.
    ``on_deleted``: called with the list of sessions each batch removed (from
    every partition of the file), after that batch committed, on the thread
    running the cleanup; an exception it raises is logged and does not stop
    the cleanup (the sessions are already gone).  Use it to send back-channel
    logout notifications or revoke refresh tokens.

    Run :meth:`delete_expired_sessions` yourself, or :meth:`start` a daemon
    thread that runs it every ``interval`` seconds until :meth:`stop`; as a
    context manager, the thread runs for the duration of the ``with`` block.
    Logging goes to the ``litesessions.cleanup`` logger: counts and durations
    at DEBUG, failed runs at ERROR with their traceback; never a ticket.
    """

    def __init__(
        self,
        store: SqliteUserSessionStore,
        *,
        batch_size: int = 100,
        clock: Callable[[], datetime] | None = None,
        on_deleted: OnDeleted | None = None,
    ) -> None:
        if not isinstance(store, SqliteUserSessionStore):
            raise TypeError(f"store must be a SqliteUserSessionStore, got {type(store).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if not 1 <= batch_size <= 1_000_000:
            raise ConfigurationError(f"batch_size must be between 1 and 1000000, got {batch_size}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a zero-argument callable returning an aware datetime, got {clock!r}")
        if on_deleted is not None and not callable(on_deleted):
            raise TypeError(f"on_deleted must be a callable taking a list of UserSession, got {on_deleted!r}")
        self.store = store
        self.batch_size = batch_size
        self._clock = clock
        self._on_deleted = on_deleted
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runs = 0
        self._failures = 0

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock that decides what has expired (the store's unless one was given)."""
        return self._clock or self.store.clock

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def runs(self) -> int:
        """How many background runs have finished (successfully or not)."""
        return self._runs

    @property
    def failures(self) -> int:
        """How many background runs ended with an error (each was logged)."""
        return self._failures

    # -- one run -------------------------------------------------------------

    def delete_expired_sessions(self) -> int:
        """Delete every session with ``expires < now``, in every partition of the file; return how many.

        "Now" is read once, at the start.  Sessions that never expire
        (``expires is None``) are never deleted.  Each batch of at most
        ``batch_size`` rows is its own ``BEGIN IMMEDIATE`` transaction, and no
        lock is held between batches; the loop ends on the first short batch
        (in the background thread, also after the batch during which
        :meth:`stop` was called).  ``on_deleted``
        (if set) gets each batch's sessions after that batch committed.
        Raises ``StoreClosedError`` if the store is closed, ``StoreBusyError``
        if a batch could not get the write lock within the busy timeout
        (batches committed before it stay deleted), ``ConfigurationError`` if
        the clock returns something other than an aware datetime.
        """
        return self._delete_expired(None, 0.0)

    def _delete_expired(self, stop: threading.Event | None, pause: float) -> int:
        now = to_micros(read_clock(self.clock))
        batch_size = self.batch_size
        total = 0
        while True:
            deleted, sessions = self._delete_batch(now, batch_size)
            total += deleted
            if sessions:
                self._notify(sessions)
            if deleted < batch_size:
                return total
            if stop is not None and stop.wait(pause):
                return total

    def _delete_batch(self, now: int, batch_size: int) -> tuple[int, list[UserSession]]:
        """One batch, in one ``BEGIN IMMEDIATE`` transaction: (rows deleted, their sessions if wanted)."""
        store = self.store
        sessions: list[UserSession] = []
        try:
            connection = store._connection()
            connection.execute("BEGIN IMMEDIATE")
            try:
                if self._on_deleted is None:
                    connection.execute(DELETE_EXPIRED_BATCH, (now, batch_size))
                    deleted = connection.changes()
                else:
                    # RETURNING makes every change in the first step; reading all rows finishes the statement.
                    sessions = [
                        session_from_row(*row)
                        for row in connection.execute(DELETE_EXPIRED_BATCH_RETURNING, (now, batch_size))
                    ]
                    deleted = len(sessions)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except apsw.Error as e:
            raise _sqlite.translate(e, store.path) from e
        return deleted, sessions

    def _notify(self, sessions: list[UserSession]) -> None:
        callback = self._on_deleted
        if callback is None:
            return
        try:
            callback(sessions)
        except Exception:
            # The batch is committed: failing the cleanup would not bring the sessions back.
            logger.exception("on_deleted callback failed for a batch of %d deleted sessions", len(sessions))

    # -- background ----------------------------------------------------------

    def start(
        self, interval: float = DEFAULT_INTERVAL, jitter: float | None = None, pause: float = DEFAULT_PAUSE
    ) -> SessionCleanup:
        """Run :meth:`delete_expired_sessions` every ``interval`` seconds on a daemon thread; return ``self``.

        The first run happens after a random delay between 0 and ``jitter``
        seconds (default: ``interval``), as IdentityServer's token cleanup
        does, so processes started together do not clean up in lockstep; each
        later run starts ``interval`` seconds after the previous one ended.
        Between two batches of a run the thread rests ``pause`` seconds, so
        the application's writers get the lock, and checkpoints keep the WAL
        small (cleanup writes pages much faster than requests do).
        A failing run is logged (ERROR, with traceback) and the next run still
        happens; the thread ends by itself only when the store is closed.
        Raises ``TypeError``/``ConfigurationError`` for bad arguments (interval
        must be > 0, jitter and pause >= 0, all finite and at most a year),
        ``RuntimeError`` if already running.
        """
        seconds = _seconds(interval, "interval", low=0.0, allow_low=False)
        first = seconds if jitter is None else _seconds(jitter, "jitter", low=0.0, allow_low=True)
        rest = _seconds(pause, "pause", low=0.0, allow_low=True)
        with self._state_lock:
            if self.running:
                raise RuntimeError("this SessionCleanup is already running; call stop() first")
            self._stop = threading.Event()
            thread = threading.Thread(
                target=self._run_forever,
                args=(seconds, random.uniform(0.0, first), rest, self._stop),
                name="litesessions-cleanup",
                daemon=True,
            )
            self._thread = thread
            _RUNNING.add(self)
            thread.start()
        logger.debug("cleanup started: every %.3f s, first run in at most %.3f s", seconds, first)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread and wait (at most ``timeout`` seconds) for it to end. Idempotent.

        A run in progress stops after its current batch (one short
        transaction), so this normally returns within milliseconds.
        Raises ``TypeError``/``ConfigurationError`` (stopping nothing) for a
        timeout that is not a finite number of seconds >= 0.
        """
        wait = _seconds(timeout, "timeout", low=0.0, allow_low=True)
        with self._state_lock:
            self._stop.set()
            thread = self._thread
            self._thread = None
            _RUNNING.discard(self)
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _forget_thread(self) -> None:
        # In a forked child: the thread is gone, and the lock may have been held by it.
        self._state_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()

    def _run_forever(self, interval: float, first_delay: float, pause: float, stop: threading.Event) -> None:
        delay = first_delay
        while not stop.wait(delay):
            started = time.monotonic()
            try:
                deleted = self._delete_expired(stop, pause)
            except StoreClosedError:
                logger.debug("cleanup stopped: the store was closed")
                return
            except Exception:
                self._failures += 1
                logger.exception("expired-session cleanup failed; next run in %.3f s", interval)
            else:
                logger.debug("cleanup deleted %d expired sessions in %.3f s", deleted, time.monotonic() - started)
            self._runs += 1
            delay = interval

    def __enter__(self) -> SessionCleanup:
        """Start the background thread with the default interval, unless :meth:`start` already did."""
        if not self.running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
