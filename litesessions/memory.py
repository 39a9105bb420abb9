"""``InMemoryUserSessionStore``: the reference implementation of the contract, in a dict."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from litesessions.errors import DuplicateSessionError
from litesessions.models import (
    UserSession,
    UserSessionsFilter,
    UserSessionUpdate,
    check_clock,
    check_key,
    read_clock,
)

__all__ = ["InMemoryUserSessionStore"]


def _copy(session: UserSession) -> UserSession:
    return session.with_update(session.to_update())


class InMemoryUserSessionStore:
    """The reference store: the same semantics as :class:`SqliteUserSessionStore`, kept in memory.

    It implements both :class:`~litesessions.UserSessionStore` and
    :class:`~litesessions.UserSessionStoreCleanup`.  Thread-safe (one lock
    around every method); every result is a new object.  There are no
    partitions: each instance is one partition.
    """

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.clock: Callable[[], datetime] = check_clock(clock)
        self._lock = threading.Lock()
        self._sessions: dict[str, UserSession] = {}
        self._by_session_id: dict[str, str] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def get_user_session(self, key: str) -> UserSession | None:
        """Return a copy of the session under ``key`` (expired or not), or ``None``."""
        check_key(key)
        with self._lock:
            session = self._sessions.get(key)
        return None if session is None else _copy(session)

    def create_user_session(self, session: UserSession) -> None:
        """Store a new session; :class:`DuplicateSessionError` if its key or session id is taken."""
        if not isinstance(session, UserSession):
            raise TypeError(f"session must be a UserSession, got {type(session).__name__}")
        with self._lock:
            if session.key in self._sessions:
                raise DuplicateSessionError("a session with this key already exists in this partition")
            if session.session_id is not None and session.session_id in self._by_session_id:
                raise DuplicateSessionError("another session in this partition already has this session_id")
            self._sessions[session.key] = session
            if session.session_id is not None:
                self._by_session_id[session.session_id] = session.key

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        """Replace every field but the key; ``False`` (creating nothing) if ``key`` is unknown."""
        check_key(key)
        if not isinstance(update, UserSessionUpdate):
            raise TypeError(f"update must be a UserSessionUpdate, got {type(update).__name__}")
        with self._lock:
            old = self._sessions.get(key)
            if old is None:
                return False
            sid = update.session_id
            if sid is not None and self._by_session_id.get(sid, key) != key:
                raise DuplicateSessionError(
                    "another session in this partition already has this session_id; nothing was changed"
                )
            if old.session_id is not None:
                del self._by_session_id[old.session_id]
            if sid is not None:
                self._by_session_id[sid] = key
            self._sessions[key] = old.with_update(update)
            return True

    def delete_user_session(self, key: str) -> bool:
        """Delete the session under ``key``; ``False`` if there was none."""
        check_key(key)
        with self._lock:
            return self._remove(key)

    def _remove(self, key: str) -> bool:
        session = self._sessions.pop(key, None)
        if session is None:
            return False
        if session.session_id is not None:
            del self._by_session_id[session.session_id]
        return True

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        """Return copies of every session matching all criteria; :class:`InvalidFilterError` if none."""
        if not isinstance(filter, UserSessionsFilter):
            raise TypeError(f"filter must be a UserSessionsFilter, got {type(filter).__name__}")
        with self._lock:
            return [_copy(s) for s in self._matching(filter)]

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        """Delete every session matching all criteria of ``filter``; return how many."""
        if not isinstance(filter, UserSessionsFilter):
            raise TypeError(f"filter must be a UserSessionsFilter, got {type(filter).__name__}")
        with self._lock:
            doomed = [s.key for s in self._matching(filter)]
            for key in doomed:
                self._remove(key)
            return len(doomed)

    def _matching(self, filter: UserSessionsFilter) -> list[UserSession]:
        subject_id, session_id = filter.criteria()
        if session_id is not None:  # unique: one dictionary lookup
            key = self._by_session_id.get(session_id)
            found = [] if key is None else [self._sessions[key]]
            return [s for s in found if subject_id is None or s.subject_id == subject_id]
        return [s for s in self._sessions.values() if s.subject_id == subject_id]

    def delete_expired_sessions(self) -> int:
        """Delete every session with ``expires`` strictly before the clock's now; return how many."""
        now = read_clock(self.clock)
        with self._lock:
            doomed = [k for k, s in self._sessions.items() if s.expires is not None and s.expires < now]
            for key in doomed:
                self._remove(key)
            return len(doomed)
