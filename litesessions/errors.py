"""The exception hierarchy of litesessions.

Every error the public API raises on purpose is a :class:`LitesessionsError`
(or a plain :class:`TypeError` for an argument of the wrong type).  Errors
that describe bad input also subclass :class:`ValueError`, so callers can
catch either.  Raw ``apsw`` exceptions never escape: they are translated in
one place (``litesessions._sqlite.translate``) and chained with ``from``.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DatabaseCorruptError",
    "DuplicateSessionError",
    "InvalidFilterError",
    "InvalidPageTokenError",
    "InvalidSessionError",
    "LitesessionsError",
    "NotADatabaseError",
    "ReadOnlyDatabaseError",
    "SchemaVersionError",
    "StorageError",
    "StoreBusyError",
    "StoreClosedError",
    "StoreOpenError",
]


class LitesessionsError(Exception):
    """Base class of every error litesessions raises on purpose."""


class DuplicateSessionError(LitesessionsError):
    """A session with this key, or with this session id, already exists in the partition."""


class InvalidSessionError(LitesessionsError, ValueError):
    """A session field, or a key argument, breaks the field rules."""


class InvalidFilterError(LitesessionsError, ValueError):
    """A filter is malformed, or has neither a subject id nor a session id."""


class InvalidPageTokenError(LitesessionsError, ValueError):
    """A page token is malformed, or belongs to a query with other criteria."""


class ConfigurationError(LitesessionsError, ValueError):
    """A constructor option is out of range (durability, busy_timeout, batch_size, clock...)."""


class SchemaVersionError(LitesessionsError):
    """The file was written by a newer litesessions schema than this version knows."""


class StoreClosedError(LitesessionsError):
    """The store was closed; open a new one."""


class StoreBusyError(LitesessionsError):
    """Another connection held the database lock for longer than ``busy_timeout``."""


class StorageError(LitesessionsError):
    """SQLite reported an error (I/O error, disk full, ...) that has no more specific class."""


class StoreOpenError(LitesessionsError):
    """The store's file cannot be opened (missing directory, a directory, no permission...)."""


class NotADatabaseError(StoreOpenError):
    """The file exists but is not a SQLite database."""


class DatabaseCorruptError(StoreOpenError):
    """The file is a SQLite database, but damaged (truncated, overwritten...)."""


class ReadOnlyDatabaseError(StoreOpenError):
    """The file (or its directory) is not writable, so sessions cannot be stored in it."""
