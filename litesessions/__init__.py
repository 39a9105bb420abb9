"""litesessions: server-side user sessions for a backend-for-frontend, in one SQLite file.

The store contract is Duende BFF's ``IUserSessionStore`` / ``IUserSessionStoreCleanup``
in snake_case; see :mod:`litesessions.protocols` for the mapping.
"""

from litesessions.cleanup import SessionCleanup
from litesessions.errors import (
    ConfigurationError,
    DatabaseCorruptError,
    DuplicateSessionError,
    InvalidFilterError,
    InvalidPageTokenError,
    InvalidSessionError,
    LitesessionsError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    StorageError,
    StoreBusyError,
    StoreClosedError,
    StoreOpenError,
)
from litesessions.memory import InMemoryUserSessionStore
from litesessions.models import UserSession, UserSessionsFilter, UserSessionUpdate
from litesessions.paging import SessionPage
from litesessions.protocols import UserSessionStore, UserSessionStoreCleanup
from litesessions.store import SqliteUserSessionStore

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DatabaseCorruptError",
    "DuplicateSessionError",
    "InMemoryUserSessionStore",
    "InvalidFilterError",
    "InvalidPageTokenError",
    "InvalidSessionError",
    "LitesessionsError",
    "NotADatabaseError",
    "ReadOnlyDatabaseError",
    "SchemaVersionError",
    "SessionCleanup",
    "SessionPage",
    "SqliteUserSessionStore",
    "StorageError",
    "StoreBusyError",
    "StoreClosedError",
    "StoreOpenError",
    "UserSession",
    "UserSessionStore",
    "UserSessionStoreCleanup",
    "UserSessionUpdate",
    "UserSessionsFilter",
    "__version__",
]
