"""The store contract, as ``typing.Protocol`` classes mirroring Duende BFF's interfaces.

=====================================  ==========================================
Duende BFF (C#)                        litesessions (Python)
=====================================  ==========================================
``IUserSessionStore``                  :class:`UserSessionStore`
``GetUserSessionAsync(key)``           ``get_user_session(key)``
``CreateUserSessionAsync(session)``    ``create_user_session(session)``
``UpdateUserSessionAsync(key, s)``     ``update_user_session(key, update)``
``DeleteUserSessionAsync(key)``        ``delete_user_session(key)``
``GetUserSessionsAsync(filter)``       ``get_user_sessions(filter)``
``DeleteUserSessionsAsync(filter)``    ``delete_user_sessions(filter)``
``IUserSessionStoreCleanup``           :class:`UserSessionStoreCleanup`
``DeleteExpiredSessionsAsync()``       ``delete_expired_sessions()``
=====================================  ==========================================

Where Duende's methods return ``Task``, ours return what a caller needs to know
(``bool`` for found / not found, ``int`` for counts).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from litesessions.models import UserSession, UserSessionsFilter, UserSessionUpdate

__all__ = ["UserSessionStore", "UserSessionStoreCleanup"]


@runtime_checkable
class UserSessionStore(Protocol):
    """Server-side storage of user sessions (Duende's ``IUserSessionStore``)."""

    def get_user_session(self, key: str) -> UserSession | None:
        """Return the session stored under ``key`` (expired or not), or ``None``."""
        ...

    def create_user_session(self, session: UserSession) -> None:
        """Store a new session; ``DuplicateSessionError`` if its key or session id is taken."""
        ...

    def update_user_session(self, key: str, update: UserSessionUpdate) -> bool:
        """Replace every field but the key of the session under ``key``; ``False`` if there is none."""
        ...

    def delete_user_session(self, key: str) -> bool:
        """Delete the session under ``key``; ``False`` if there was none."""
        ...

    def get_user_sessions(self, filter: UserSessionsFilter) -> list[UserSession]:
        """Return every session matching all criteria of ``filter``."""
        ...

    def delete_user_sessions(self, filter: UserSessionsFilter) -> int:
        """Delete every session matching all criteria of ``filter``; return how many."""
        ...


@runtime_checkable
class UserSessionStoreCleanup(Protocol):
    """Removal of expired sessions (Duende's ``IUserSessionStoreCleanup``)."""

    def delete_expired_sessions(self) -> int:
        """Delete every session whose ``expires`` is before now; return how many."""
        ...
