"""The Duende-derived conformance list against both implementations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from litesessions import InMemoryUserSessionStore, SessionCleanup, SqliteUserSessionStore
from litesessions.testing.contract import PartitionedStoreContract, UserSessionStoreContract


class TestInMemoryStore(UserSessionStoreContract):
    def make_store(self, clock: Callable[[], datetime]) -> Any:
        return InMemoryUserSessionStore(clock=clock)


class TestSqliteStore(UserSessionStoreContract, PartitionedStoreContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> Iterator[None]:
        self.path = tmp_path / "sessions.db"
        self.opened: list[SqliteUserSessionStore] = []
        yield
        for store in self.opened:
            store.close()

    def make_store(self, clock: Callable[[], datetime]) -> Any:
        return self.make_partition_store(clock, "")

    def make_partition_store(self, clock: Callable[[], datetime], partition_key: str) -> Any:
        store = SqliteUserSessionStore(self.path, partition_key=partition_key, clock=clock)
        self.opened.append(store)
        return store

    def make_cleanup(self, store: Any, clock: Callable[[], datetime]) -> Any:
        # A small batch size, so the tests also cross batch boundaries.
        return SessionCleanup(store, batch_size=7)
