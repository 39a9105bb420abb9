"""``SessionCleanup``: deletes expired sessions of a SQLite store in bounded batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import apsw

from litesessions import _sqlite, schema
from litesessions.errors import ConfigurationError
from litesessions.models import read_clock, to_micros
from litesessions.store import SqliteUserSessionStore

__all__ = ["SessionCleanup"]

_T: Final = schema.TABLE

# The batch is picked through the expiry index (oldest first) and deleted by
# rowid, as diskcache's Cache._select_delete does: each batch is one short
# transaction, so writers wait at most one batch for the lock.
DELETE_EXPIRED_BATCH: Final = (
    f"DELETE FROM {_T} WHERE id IN (SELECT id FROM {_T} WHERE expires < ? ORDER BY expires LIMIT ?)"
)


class SessionCleanup:
    """Implements :class:`~litesessions.UserSessionStoreCleanup` for a :class:`SqliteUserSessionStore`.

    ``batch_size``: at most this many sessions are deleted per transaction.
    ``clock``: "now" for expiry; by default the store's clock.
    """

    def __init__(
        self,
        store: SqliteUserSessionStore,
        *,
        batch_size: int = 100,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(store, SqliteUserSessionStore):
            raise TypeError(f"store must be a SqliteUserSessionStore, got {type(store).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if not 1 <= batch_size <= 1_000_000:
            raise ConfigurationError(f"batch_size must be between 1 and 1000000, got {batch_size}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a zero-argument callable returning an aware datetime, got {clock!r}")
        self.store = store
        self.batch_size = batch_size
        self._clock = clock

    @property
    def clock(self) -> Callable[[], datetime]:
        """The clock that decides what has expired (the store's unless one was given)."""
        return self._clock or self.store.clock

    def delete_expired_sessions(self) -> int:
        """Delete every session with ``expires < now``, in every partition of the file; return how many.

        "Now" is read once, at the start.  Sessions that never expire
        (``expires is None``) are never deleted.  Each batch of at most
        ``batch_size`` rows is its own ``BEGIN IMMEDIATE`` transaction, and no
        lock is held between batches; the loop ends on the first short batch.
        Raises ``StoreClosedError`` if the store is closed, ``StoreBusyError``
        if a batch could not get the write lock within the busy timeout
        (batches committed before it stay deleted).
        """
        now = to_micros(read_clock(self.clock))
        store = self.store
        batch_size = self.batch_size
        total = 0
        while True:
            try:
                connection = store._connection()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.execute(DELETE_EXPIRED_BATCH, (now, batch_size))
                    deleted = connection.changes()
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            except apsw.Error as e:
                raise _sqlite.translate(e, store.path) from e
            total += deleted
            if deleted < batch_size:
                return total
