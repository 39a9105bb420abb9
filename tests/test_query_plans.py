"""``EXPLAIN QUERY PLAN`` of every statement the store and cleanup run: an index search, never a table scan."""

from __future__ import annotations

import pytest

from litesessions import SqliteUserSessionStore
from litesessions import store as store_module
from litesessions.cleanup import DELETE_EXPIRED_BATCH

STATEMENTS = {
    "get": (store_module.GET, ("p", "k")),
    "key exists": (store_module.KEY_EXISTS, ("p", "k")),
    "update": (store_module.UPDATE, ("s", "sid", 1, 2, 3, "t", "p", "k")),
    "delete": (store_module.DELETE, ("p", "k")),
    "cleanup batch": (DELETE_EXPIRED_BATCH, (10, 100)),
    **{
        f"select by {criteria}": (store_module.SELECT_FILTERED[criteria], ("p", "x", "y")[: 1 + sum(criteria)])
        for criteria in store_module.SELECT_FILTERED
    },
    **{
        f"delete by {criteria}": (store_module.DELETE_FILTERED[criteria], ("p", "x", "y")[: 1 + sum(criteria)])
        for criteria in store_module.DELETE_FILTERED
    },
}


def plan(store: SqliteUserSessionStore, sql: str, params: tuple[object, ...]) -> list[str]:
    rows = store._connection().execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return [str(row[3]) for row in rows]


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_every_statement_searches_an_index(sqlite_store: SqliteUserSessionStore, name: str) -> None:
    sql, params = STATEMENTS[name]
    details = plan(sqlite_store, sql, params)
    print(name, details)
    assert details, "no plan"
    assert any(("USING" in d and "INDEX" in d) or "INTEGER PRIMARY KEY" in d for d in details), details
    assert not any(d.startswith("SCAN") for d in details), details


def test_expected_indexes_are_used(sqlite_store: SqliteUserSessionStore) -> None:
    uses = {name: " ".join(plan(sqlite_store, *STATEMENTS[name])) for name in STATEMENTS}
    assert "litesessions_sessions_key" in uses["get"]
    assert "litesessions_sessions_key" in uses["update"]
    assert "litesessions_sessions_session_id" in uses["select by (False, True)"]
    assert "litesessions_sessions_subject" in uses["select by (True, False)"]
    assert "litesessions_sessions_expires" in uses["cleanup batch"]
