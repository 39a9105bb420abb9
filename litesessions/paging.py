"""Keyset paging of a partition's sessions (IdentityServer's ``QuerySessionsAsync``, which Duende BFF lacks).

Sessions are ordered by ``key`` within the partition, which is exactly the
unique ``(partition_key, key)`` index: a page is one index range scan starting
at the boundary key of the previous page, so page 1,000 costs what page 1
costs (no ``OFFSET``, which would step over every earlier row).

A page token is opaque to callers: URL-safe base64 (no padding) of a small
JSON object holding the direction (``"n"`` next / ``"p"`` previous), the
boundary key (exclusive; ``null`` for "from the start" / "from the end") and
the query's criteria, so a token cannot be replayed against another query.
A token that does not decode, or belongs to other criteria, raises
:class:`~litesessions.errors.InvalidPageTokenError` (never silently page 1).

Walks are stable under concurrent writes: each page starts strictly after
(or before) a key, so a session that exists for the whole walk is seen
exactly once; sessions created or deleted during the walk may or may not be.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

import apsw
import attrs

from litesessions import schema
from litesessions.errors import ConfigurationError, InvalidPageTokenError
from litesessions.models import UserSession, UserSessionsFilter, session_from_row

__all__ = ["MAX_PAGE_SIZE", "SessionPage", "decode_token", "encode_token", "query_page"]

MAX_PAGE_SIZE: Final = 1000
_TOKEN_VERSION: Final = 1

_T: Final = schema.TABLE
_COLUMNS: Final = "key, subject_id, session_id, created, renewed, expires, ticket"

# Index and WHERE clause, by (has subject id, has session id).  Without a
# criterion the (partition_key, key) index both selects and orders.  With a
# subject id, the subject index finds that subject's sessions, which are then
# sorted by key (a user has few); a session id matches at most one row.
# INDEXED BY because, without ANALYZE statistics, SQLite prefers walking the
# key index (to avoid the sort) and filtering every row of the partition.
_CRITERIA: Final = {
    (False, False): f"{_T} INDEXED BY {_T}_key WHERE partition_key = ?",
    (True, False): f"{_T} INDEXED BY {_T}_subject WHERE partition_key = ? AND subject_id = ?",
    (False, True): f"{_T} INDEXED BY {_T}_session_id WHERE partition_key = ? AND session_id = ?",
    (True, True): f"{_T} INDEXED BY {_T}_session_id WHERE partition_key = ? AND session_id = ? AND subject_id = ?",
}
# Statements indexed by (criteria, direction, has boundary); parameters are the
# criteria, then the boundary key if any, then the row limit.
PAGE_QUERIES: Final = {
    (criteria, direction, bounded): (
        f"SELECT {_COLUMNS} FROM {where}"
        + ((" AND key > ?" if direction == "n" else " AND key < ?") if bounded else "")
        + (" ORDER BY key ASC LIMIT ?" if direction == "n" else " ORDER BY key DESC LIMIT ?")
    )
    for criteria, where in _CRITERIA.items()
    for direction in ("n", "p")
    for bounded in (False, True)
}
# "Is there anything beyond this key?", for the side a page did not look past.
EXISTS_AFTER: Final = {c: f"SELECT 1 FROM {w} AND key > ? LIMIT 1" for c, w in _CRITERIA.items()}
EXISTS_BEFORE: Final = {c: f"SELECT 1 FROM {w} AND key < ? LIMIT 1" for c, w in _CRITERIA.items()}


@attrs.frozen(kw_only=True)
class SessionPage:
    """One page of sessions, in ascending key order.

    ``next_token`` / ``previous_token``: pass one as ``page_token`` to get the
    following / preceding page; ``None`` when there is nothing that way.
    """

    sessions: tuple[UserSession, ...]
    next_token: str | None
    previous_token: str | None


@attrs.frozen
class _Token:
    direction: str  # "n": the page after `boundary`; "p": the page before it
    boundary: str | None  # exclusive; None: from the start ("n") or the end ("p")
    criteria: tuple[str | None, str | None]


def encode_token(direction: str, boundary: str | None, criteria: tuple[str | None, str | None]) -> str:
    """Return the opaque token for the page after (``"n"``) or before (``"p"``) ``boundary``."""
    payload = {"v": _TOKEN_VERSION, "d": direction, "k": boundary, "q": list(criteria)}
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> _Token:
    """Decode a token made by :func:`encode_token`; :class:`InvalidPageTokenError` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):  # also UnicodeDecodeError, JSONDecodeError
        raise InvalidPageTokenError("page_token is malformed; pass a token from a SessionPage unchanged") from None
    if not (
        isinstance(payload, dict)
        and payload.keys() == {"v", "d", "k", "q"}
        and payload["v"] == _TOKEN_VERSION
        and payload["d"] in ("n", "p")
        and (payload["k"] is None or isinstance(payload["k"], str))
        and isinstance(payload["q"], list)
        and len(payload["q"]) == 2
        and all(c is None or isinstance(c, str) for c in payload["q"])
    ):
        raise InvalidPageTokenError("page_token is malformed; pass a token from a SessionPage unchanged")
    return _Token(payload["d"], payload["k"], (payload["q"][0], payload["q"][1]))


def _criteria(subject_id: object, session_id: object) -> tuple[str | None, str | None]:
    # UserSessionsFilter validates the types; blank counts as absent, as in filters.
    query = UserSessionsFilter(subject_id=subject_id, session_id=session_id)  # type: ignore[arg-type]
    subject = query.subject_id if query.subject_id and query.subject_id.strip() else None
    session = query.session_id if query.session_id and query.session_id.strip() else None
    return subject, session


def check_page_args(
    subject_id: object, session_id: object, page_size: object, page_token: object
) -> tuple[tuple[str | None, str | None], int, _Token]:
    """Validate the arguments of a page query; return (criteria, page size, token).

    Raises ``TypeError`` for wrong types, ``InvalidFilterError`` for a bad
    criterion, ``ConfigurationError`` for a page size outside 1..1000,
    ``InvalidPageTokenError`` for a bad token.
    """
    criteria = _criteria(subject_id, session_id)
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be an int, got {type(page_size).__name__}")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ConfigurationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if page_token is None:
        return criteria, page_size, _Token("n", None, criteria)
    if not isinstance(page_token, str):
        raise TypeError(f"page_token must be None or a str, got {type(page_token).__name__}")
    token = decode_token(page_token)
    if token.criteria != criteria:
        raise InvalidPageTokenError(
            "page_token belongs to a query with other subject_id / session_id; "
            "pass the same criteria as for the page that gave it"
        )
    return criteria, page_size, token


def query_page(
    connection: apsw.Connection,
    partition_key: str,
    criteria: tuple[str | None, str | None],
    page_size: int,
    token: _Token,
) -> SessionPage:
    """Read one page; raises ``apsw.Error`` (the store translates it).

    The page and the probe for the other side run in one read transaction
    (unless the caller already has one open), so they see one snapshot.
    """
    shape = (criteria[0] is not None, criteria[1] is not None)
    # Parameter order follows _CRITERIA: session id before subject id when both are given.
    values: list[Any] = [partition_key, *(c for c in (criteria[1], criteria[0]) if c is not None)]
    forward = token.direction == "n"
    params = [*values]
    if token.boundary is not None:
        params.append(token.boundary)
    params.append(page_size + 1)  # one more row says whether there is a further page
    own_transaction = not connection.in_transaction
    if own_transaction:
        connection.execute("BEGIN")
    try:
        rows: list[Any] = connection.execute(
            PAGE_QUERIES[shape, token.direction, token.boundary is not None], params
        ).fetchall()
        more = len(rows) > page_size
        rows = rows[:page_size]
        if not forward:
            rows.reverse()
        if not rows:
            # Nothing that way (e.g. everything past the boundary was deleted):
            # offer the whole walk again from the other end.
            back = EXISTS_BEFORE if forward else EXISTS_AFTER
            other = token.boundary is not None and connection.execute(back[shape], [*values, token.boundary]).fetchone()
            page = SessionPage(
                sessions=(),
                next_token=None if forward or not other else encode_token("n", None, criteria),
                previous_token=None if not forward or not other else encode_token("p", None, criteria),
            )
            return page
        first: str = rows[0][0]
        last: str = rows[-1][0]
        if forward:
            has_next = more
            has_previous = token.boundary is not None and bool(
                connection.execute(EXISTS_BEFORE[shape], [*values, first]).fetchone()
            )
        else:
            has_previous = more
            has_next = token.boundary is not None and bool(
                connection.execute(EXISTS_AFTER[shape], [*values, last]).fetchone()
            )
    finally:
        if own_transaction and connection.in_transaction:
            connection.execute("COMMIT")
    return SessionPage(
        sessions=tuple(session_from_row(*row) for row in rows),
        next_token=encode_token("n", last, criteria) if has_next else None,
        previous_token=encode_token("p", first, criteria) if has_previous else None,
    )
