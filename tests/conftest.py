"""Shared fixtures: a store on a temp file, an in-memory store, a movable clock, session factories."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from litesessions import InMemoryUserSessionStore, SqliteUserSessionStore, UserSession, UserSessionUpdate
from litesessions.testing.contract import ContractClock

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


class FakeClock(ContractClock):
    """A clock that only moves when told to: ``advance(minutes=5)`` or ``advance(timedelta(...))``."""

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> None:
        super().advance(delta if delta is not None else timedelta(**kwargs))


def litesessions_command() -> list[str]:
    """The installed ``litesessions`` console script, as a command list for ``subprocess``."""
    script = Path(sys.executable).with_name("litesessions")
    if script.exists():
        return [str(script)]
    found = shutil.which("litesessions")
    assert found, "the litesessions console script is not installed"
    return [found]


def run_litesessions(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``litesessions`` command; a ``LITESESSIONS_DB`` set by whoever runs the tests is dropped."""
    environment = {k: v for k, v in os.environ.items() if k != "LITESESSIONS_DB"}
    environment.update(env or {})
    return subprocess.run(
        [*litesessions_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=environment,
        **kwargs,
    )


_counter = itertools.count()


def make_session(**overrides: Any) -> UserSession:
    """A valid session with unique key and session id; fields overridable."""
    n = next(_counter)
    fields: dict[str, Any] = {
        "key": f"key-{n}",
        "subject_id": "subject-1",
        "session_id": f"sid-{n}",
        "created": T0,
        "renewed": T0,
        "expires": T0 + timedelta(hours=1),
        "ticket": f"ticket-{n}",
    }
    fields.update(overrides)
    return UserSession(**fields)


def make_update(**overrides: Any) -> UserSessionUpdate:
    fields: dict[str, Any] = {
        "subject_id": "subject-2",
        "session_id": None,
        "created": T0 + timedelta(minutes=1),
        "renewed": T0 + timedelta(minutes=2),
        "expires": T0 + timedelta(hours=2),
        "ticket": "updated-ticket",
    }
    fields.update(overrides)
    return UserSessionUpdate(**fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def sqlite_store(db_path: Path, clock: FakeClock) -> Iterator[SqliteUserSessionStore]:
    with SqliteUserSessionStore(db_path, clock=clock) as store:
        yield store


@pytest.fixture
def memory_store(clock: FakeClock) -> InMemoryUserSessionStore:
    return InMemoryUserSessionStore(clock=clock)


@pytest.fixture(params=["sqlite", "memory"])
def any_store(request: pytest.FixtureRequest, db_path: Path, clock: FakeClock) -> Iterator[Any]:
    """Each test using this runs against both implementations."""
    if request.param == "sqlite":
        with SqliteUserSessionStore(db_path, clock=clock) as store:
            yield store
    else:
        yield InMemoryUserSessionStore(clock=clock)


def cleanup_for(store: Any) -> Callable[[], int]:
    """The cleanup entry point of either implementation."""
    from litesessions import SessionCleanup

    if isinstance(store, SqliteUserSessionStore):
        return SessionCleanup(store).delete_expired_sessions
    return store.delete_expired_sessions  # type: ignore[no-any-return]
