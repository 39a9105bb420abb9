"""Files litesessions must refuse: each raises a specific error that says what to do, and changes nothing.

"Changes nothing" is checked twice: the file's bytes are identical, and the
directory holds exactly the files it held before (no -wal, -shm or journal
left behind, no file created at a missing path).

Read-only cases and root: the tests may run as root, for whom permission
bits do not apply (chmod 0444 leaves the file writable for root).  So when
running as root, each read-only case runs in a forked child that first
drops to uid/gid 65534 ("nobody") and then opens the store, in a directory
under /tmp that nobody may enter; as any other user, the case runs
in-process.  Either way SQLite's own read-only detection is what is tested.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw
import pytest

from litesessions import (
    DatabaseCorruptError,
    LitesessionsError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    SqliteUserSessionStore,
    StoreOpenError,
)
from litesessions.schema import META_TABLE, SCHEMA_VERSION
from tests.conftest import make_session

NOBODY = 65534


def snapshot(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` with the hash of its bytes."""
    return {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(directory))
        if (directory / name).is_file()
    } | {name + "/": "dir" for name in os.listdir(directory) if (directory / name).is_dir()}


def litesessions_file(path: Path, sessions: int = 400) -> None:
    with SqliteUserSessionStore(path) as store:
        store.create_user_sessions(make_session(ticket="t" * 300) for _ in range(sessions))
    assert not os.path.exists(f"{path}-wal")


def refused(path: Path, error: type[LitesessionsError], *hints: str) -> LitesessionsError:
    """Open ``path``: it must raise exactly ``error`` with the path and the hints in its message, changing nothing."""
    before = snapshot(path.parent)
    with pytest.raises(LitesessionsError) as info:
        SqliteUserSessionStore(path)
    assert type(info.value) is error, repr(info.value)
    message = str(info.value)
    assert str(path.parent) in message
    for hint in hints:
        assert hint in message, message
    assert snapshot(path.parent) == before
    return info.value


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.db"
    litesessions_file(path)
    return path


@pytest.mark.parametrize("fraction", [0.9, 0.5, 0.1])
def test_truncated_file(tmp_path: Path, good_file: Path, fraction: float) -> None:
    path = tmp_path / "truncated.db"
    shutil.copy(good_file, path)
    os.truncate(path, int(os.path.getsize(path) * fraction))
    refused(path, DatabaseCorruptError, "damaged", "restore it from a backup", "left untouched")


@pytest.mark.parametrize("size", [20, 99, 100, 1000])
def test_file_truncated_inside_its_header(tmp_path: Path, good_file: Path, size: int) -> None:
    path = tmp_path / "stub.db"
    shutil.copy(good_file, path)
    os.truncate(path, size)
    refused(path, DatabaseCorruptError, "damaged")


@pytest.mark.parametrize("size", [1, 100, 4096, 100_000])
def test_random_bytes(tmp_path: Path, size: int) -> None:
    path = tmp_path / "random.db"
    path.write_bytes(b"\x01" + os.urandom(size - 1))  # never the SQLite magic header
    refused(path, NotADatabaseError, "not a SQLite database", "check the path", "left untouched")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the sessions you are looking for\n" * 200)
    refused(path, NotADatabaseError, "not a SQLite database")


def test_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.mkdir()
    refused(path, StoreOpenError, "is a directory", "give the path of a database file")


def test_path_in_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "sessions.db"
    before = snapshot(tmp_path)
    with pytest.raises(StoreOpenError) as info:
        SqliteUserSessionStore(path)
    assert type(info.value) is StoreOpenError
    assert "does not exist; create it first" in str(info.value)
    assert snapshot(tmp_path) == before  # the directory was not created


def test_newer_schema_version(tmp_path: Path, good_file: Path) -> None:
    path = tmp_path / "future.db"
    shutil.copy(good_file, path)
    connection = apsw.Connection(str(path))
    connection.execute(f"UPDATE {META_TABLE} SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION + 1,))
    connection.close()
    assert not os.path.exists(f"{path}-wal")
    error = refused(path, SchemaVersionError, "upgrade litesessions", "left untouched")
    assert f"version {SCHEMA_VERSION + 1}" in str(error)


def test_a_refused_file_can_still_be_opened_by_sqlite_afterwards(tmp_path: Path, good_file: Path) -> None:
    # Nothing of ours lingers (no lock held, no connection left open) after a refusal.
    path = tmp_path / "future.db"
    shutil.copy(good_file, path)
    connection = apsw.Connection(str(path))
    connection.execute(f"UPDATE {META_TABLE} SET value = 99 WHERE name = 'schema_version'")
    with pytest.raises(SchemaVersionError):
        SqliteUserSessionStore(path)
    connection.execute(f"UPDATE {META_TABLE} SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION,))
    connection.close()
    with SqliteUserSessionStore(path) as store:
        store.create_user_session(make_session())


# -- read-only cases ---------------------------------------------------------


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory under /tmp that an unprivileged uid may enter (pytest's tmp_path is 0700 for root)."""
    directory = Path(tempfile.mkdtemp(prefix="litesessions-ro-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def unprivileged(body: Callable[[], object]) -> object:
    """Run ``body`` as a user for whom permission bits apply; return its result or re-raise its exception."""
    if os.geteuid() != 0:
        return body()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                outcome: tuple[str, object] = ("ok", body())
            except LitesessionsError as e:
                outcome = ("raised", e)
            except BaseException:
                outcome = ("crashed", traceback.format_exc())
            os.write(write_end, pickle.dumps(outcome))
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "crashed":
        raise AssertionError(f"the unprivileged child crashed:\n{value}")
    if kind == "raised":
        assert isinstance(value, BaseException)
        raise value
    return value


def open_and_write(path: Path) -> str:
    with SqliteUserSessionStore(path) as store:
        store.create_user_session(make_session())
    return "stored"


def test_read_only_file(world_dir: Path) -> None:
    path = world_dir / "readonly.db"
    litesessions_file(path)
    path.chmod(0o444)
    world_dir.chmod(0o777)  # the directory is writable: only the file is read-only
    before = snapshot(world_dir)
    with pytest.raises(ReadOnlyDatabaseError) as info:
        unprivileged(lambda: open_and_write(path))
    message = str(info.value)
    assert str(path) in message and "read-only" in message and "fix its permissions" in message
    assert snapshot(world_dir) == before


def test_read_only_directory_with_a_writable_file(world_dir: Path) -> None:
    # The file may be written, but SQLite cannot create the -wal and -shm files next to it.
    path = world_dir / "sessions.db"
    litesessions_file(path)
    os.chmod(path, 0o666)
    world_dir.chmod(0o555)
    before = snapshot(world_dir)
    try:
        with pytest.raises(ReadOnlyDatabaseError) as info:
            unprivileged(lambda: open_and_write(path))
    finally:
        world_dir.chmod(0o755)
    message = str(info.value)
    assert str(path) in message and "is not writable" in message and "make the directory writable" in message
    assert snapshot(world_dir) == before


def test_new_file_in_a_read_only_directory(world_dir: Path) -> None:
    world_dir.chmod(0o555)
    try:
        with pytest.raises(ReadOnlyDatabaseError):
            unprivileged(lambda: open_and_write(world_dir / "new.db"))
    finally:
        world_dir.chmod(0o755)
    assert os.listdir(world_dir) == []


def test_the_unprivileged_helper_really_cannot_write_a_0444_file(world_dir: Path) -> None:
    # Guards the tests above: if the child kept root's powers, they would prove nothing.
    path = world_dir / "plain.txt"
    path.write_text("x")
    path.chmod(0o444)

    def append() -> str:
        try:
            with open(path, "a") as f:
                f.write("y")
        except PermissionError:
            return "refused"
        return "written"

    assert unprivileged(append) == "refused"
    assert path.read_text() == "x"


def test_an_ordinary_writable_file_works_for_the_unprivileged_user(world_dir: Path) -> None:
    # ...and the helper does not fail everything: a writable file and directory work.
    world_dir.chmod(0o777)
    assert unprivileged(lambda: open_and_write(world_dir / "fine.db")) == "stored"


def test_a_fifo(tmp_path: Path) -> None:
    path = tmp_path / "pipe.db"
    os.mkfifo(path)
    refused(path, StoreOpenError, "not a regular file")
