"""The ``litesessions`` command line: administer a session file without knowing its schema.

Every command but ``demo`` finds its file through ``--db PATH`` (before or
after the command name) or the ``LITESESSIONS_DB`` environment variable.
Commands that read or change existing sessions refuse a missing file (or one
without litesessions tables) instead of creating an empty one; only
``import`` creates a new file.  Errors print one line on stderr and exit 1
(usage errors exit 2, as with any argparse program); nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import IO, Any, Final

from litesessions import admin
from litesessions.errors import LitesessionsError
from litesessions.models import UserSession, UserSessionsFilter
from litesessions.serialization import format_time, session_to_dict

__all__ = ["build_parser", "main"]

ENV_DB: Final = "LITESESSIONS_DB"


# -- helpers -------------------------------------------------------------------


class CommandError(LitesessionsError):
    """A command cannot run as asked (the message says why); exit code 1."""


def _db(args: argparse.Namespace) -> str:
    path = getattr(args, "db", None) or args.global_db or os.environ.get(ENV_DB)
    if not path:
        raise CommandError(f"no database given; pass --db PATH or set {ENV_DB}")
    return str(path)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _open(args: argparse.Namespace, *, partition: bool = True) -> Any:
    return admin.open_existing(_db(args), partition_key=args.partition if partition else "")


class _Progress:
    """A one-line progress display on stderr, only when stderr is a terminal (never in logs or pipes)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._last = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if force or now - self._last >= 0.2:
            self._last = now
            self.stream.write(f"\r{text}\x1b[K")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _json_session(session: UserSession, show_tickets: bool) -> dict[str, Any]:
    data = session_to_dict(session)
    if not show_tickets:
        del data["ticket"]
    return data


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- commands ------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from litesessions.demo import run_demo

    run_demo(args.db, out=sys.stdout)
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    with _open(args, partition=False) as store:
        result = admin.stats(store, now=_now(), partition_key=args.partition)
    if args.json:
        _print_json(_jsonable(result))
        return 0
    print(f"database        {result['path']}")
    print(f"file size       {result['file_bytes']:,} bytes (WAL {result['wal_bytes']:,} bytes)")
    print(f"schema version  {result['schema_version']}")
    print(f"sessions        {result['sessions']:,} ({result['expired']:,} expired at {format_time(result['now'])})")
    rows = [("PARTITION", "SESSIONS", "EXPIRED", "NEVER EXPIRE", "OLDEST CREATED", "NEWEST CREATED")]
    for p in result["partitions"]:
        rows.append(
            (
                json.dumps(p["partition"]),
                f"{p['sessions']:,}",
                f"{p['expired']:,}",
                f"{p['never_expire']:,}",
                format_time(p["oldest_created"]),
                format_time(p["newest_created"]),
            )
        )
    if len(rows) > 1:
        print()
        _print_table(rows)
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _cmd_list(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise CommandError("--limit must be 0 (no limit) or more")
    limit = None if args.limit == 0 else args.limit
    with _open(args) as store:
        sessions = admin.list_sessions(
            store,
            subject_id=args.subject,
            session_id=args.session_id,
            expired_at=_now() if args.expired else None,
            limit=None if limit is None else limit + 1,  # one more says whether the list was cut
        )
        shown = 0
        more = False
        if args.json:
            sys.stdout.write("[")
            for session in sessions:
                if limit is not None and shown == limit:
                    more = True
                    break
                sys.stdout.write(",\n  " if shown else "\n  ")
                sys.stdout.write(json.dumps(_json_session(session, args.show_tickets)))
                shown += 1
            sys.stdout.write("\n]\n" if shown else "]\n")
        else:
            shown, more = _list_table(sessions, limit, args.show_tickets)
    if more:
        print(f"(showing the first {_plural(shown, 'session')}; --limit 0 shows all)", file=sys.stderr)
    return 0


def _list_table(sessions: Iterator[UserSession], limit: int | None, show_tickets: bool) -> tuple[int, bool]:
    header = ["KEY", "SUBJECT", "SESSION ID", "CREATED", "RENEWED", "EXPIRES"] + (["TICKET"] if show_tickets else [])
    # Widths come from the first chunk of rows, so a long listing streams.
    chunk: list[list[str]] = [header]
    shown = 0
    widths: list[int] | None = None
    for session in sessions:
        if limit is not None and shown == limit:
            _flush_rows(chunk, widths)
            return shown, True
        row = [
            session.key,
            session.subject_id,
            session.session_id or "-",
            format_time(session.created),
            format_time(session.renewed),
            "never" if session.expires is None else format_time(session.expires),
        ] + ([session.ticket] if show_tickets else [])
        chunk.append(row)
        shown += 1
        if len(chunk) >= 1000:
            widths = _flush_rows(chunk, widths)
            chunk = []
    if shown == 0:
        print("no sessions", file=sys.stderr)
        return 0, False
    _flush_rows(chunk, widths)
    return shown, False


def _flush_rows(rows: list[list[str]], widths: list[int] | None) -> list[int]:
    if widths is None:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return widths


def _cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        session = store.get_user_session(args.key)
    if session is None:
        raise CommandError(f"no session with key {args.key!r} in partition {args.partition!r}")
    if args.json:
        _print_json(_json_session(session, args.show_tickets))
        return 0
    expires = "never"
    if session.expires is not None:
        expires = format_time(session.expires) + (" (expired)" if session.expires < _now() else "")
    ticket = session.ticket if args.show_tickets else f"<{len(session.ticket):,} characters; --show-tickets prints it>"
    for name, value in (
        ("key", session.key),
        ("subject id", session.subject_id),
        ("session id", session.session_id or "-"),
        ("created", format_time(session.created)),
        ("renewed", format_time(session.renewed)),
        ("expires", expires),
        ("ticket", ticket),
    ):
        print(f"{name:<11} {value}")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    if args.key is None and args.subject is None and args.session_id is None:
        raise CommandError("revoke needs --key K, --subject S or --session-id SID")
    if args.key is not None and (args.subject is not None or args.session_id is not None):
        raise CommandError("--key cannot be combined with --subject or --session-id")
    with _open(args) as store:
        if args.key is not None:
            if args.dry_run:
                count = int(store.get_user_session(args.key) is not None)
            else:
                count = int(store.delete_user_session(args.key))
        else:
            query = UserSessionsFilter(subject_id=args.subject, session_id=args.session_id)
            if args.dry_run:
                count = len(store.get_user_sessions(query))
            else:
                count = store.delete_user_sessions(query)
    if args.dry_run:
        print(f"would revoke {_plural(count, 'session')} (dry run: nothing was removed)")
    else:
        print(f"revoked {_plural(count, 'session')}")
    return 0


def _cmd_cleanup(args: argparse.Namespace) -> int:
    from litesessions.cleanup import SessionCleanup

    if args.watch is not None and args.watch <= 0:
        raise CommandError("--watch needs a positive number of seconds")
    with _open(args, partition=False) as store:
        cleanup = SessionCleanup(store, batch_size=args.batch_size)
        if args.watch is None:
            started = time.perf_counter()
            deleted = _cleanup_once(store, cleanup)
            print(
                f"cleanup: deleted {_plural(deleted, 'expired session')} in {time.perf_counter() - started:.2f} s "
                f"(batches of {args.batch_size:,})"
            )
            return 0
        total = rounds = 0
        # Ctrl-C is how a watch ends.  It sets a flag instead of raising
        # KeyboardInterrupt, which could land inside a SQLite callback (busy
        # handler, WAL hook) and be swallowed there: the round in progress
        # finishes, then the watch stops.
        interrupted = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
        try:
            while True:
                deleted = _cleanup_once(store, cleanup)
                total += deleted
                rounds += 1
                print(f"{format_time(_now())} cleanup: deleted {_plural(deleted, 'expired session')}", flush=True)
                if interrupted.wait(args.watch):
                    break
        finally:
            signal.signal(signal.SIGINT, previous)
        print(f"cleanup: stopped after {_plural(rounds, 'round')}, deleted {_plural(total, 'expired session')} in all")
    return 0


def _cleanup_once(store: Any, cleanup: Any) -> int:
    progress = _Progress()
    if not progress.enabled:
        return int(cleanup.delete_expired_sessions())
    # SessionCleanup runs its batches in one call; a second connection (in a
    # thread of its own) counts what is left, which never waits on the writer in WAL mode.
    now = _now()
    total = admin.count_expired(store, now)
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.wait(0.5):
                left = admin.count_expired(store, now)
                progress.show(f"cleanup: {max(total - left, 0):,} of {total:,} expired sessions deleted")
        except LitesessionsError:
            pass  # progress is best effort; the cleanup itself reports errors

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return int(cleanup.delete_expired_sessions())
    finally:
        stop.set()
        watcher.join()
        progress.clear()


def _cmd_check(args: argparse.Namespace) -> int:
    items = admin.check(_db(args))
    if args.json:
        _print_json(
            {
                "ok": all(i.ok for i in items),
                "checks": [{"name": i.name, "ok": i.ok, "detail": i.detail} for i in items],
            }
        )
    else:
        for item in items:
            print(f"{'ok' if item.ok else 'FAIL':<5} {item.name:<15} {item.detail}")
    if all(item.ok for item in items):
        return 0
    print(f"litesessions: error: {_db(args)} failed the check", file=sys.stderr)
    return 1


def _cmd_backup(args: argparse.Namespace) -> int:
    with _open(args, partition=False) as store:
        result = admin.backup(store, args.dest)
    print(
        f"backed up {store.path} to {result.path}: {result.pages:,} pages, "
        f"{result.bytes:,} bytes in {result.seconds:.2f} s"
    )
    return 0


def _cmd_vacuum(args: argparse.Namespace) -> int:
    with _open(args, partition=False) as store:
        before, after = admin.vacuum(store)
    print(f"vacuumed {store.path}: {before:,} -> {after:,} bytes (file and WAL)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    progress = _Progress()

    def report(done: int, total: int | None) -> None:
        progress.show(f"export: {done:,}" + (f" of {total:,}" if total is not None else "") + " sessions")

    with _open(args) as store:
        count = admin.export_sessions(
            store, sys.stdout, subject_id=args.subject, progress=report if progress.enabled else None
        )
    sys.stdout.flush()
    progress.clear()
    print(f"exported {_plural(count, 'session')} from partition {args.partition!r}", file=sys.stderr)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from litesessions.store import SqliteUserSessionStore

    progress = _Progress()
    source = "<stdin>" if args.file == "-" else args.file
    stream: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")
    with stream:
        size: int | None = None
        if args.file != "-":
            size = os.fstat(stream.fileno()).st_size or None
        read = 0

        def lines() -> Iterator[bytes]:
            nonlocal read
            for line in stream:
                read += len(line)
                yield line

        def report(number: int) -> None:
            share = f" ({100 * read // size}%)" if size else ""
            progress.show(f"import: {number:,} lines read{share}")

        db = os.path.abspath(_db(args))
        created = not os.path.exists(db)
        try:
            with SqliteUserSessionStore(db, partition_key=args.partition) as store:
                try:
                    result = admin.import_sessions(
                        store,
                        lines(),
                        source=source,
                        on_duplicate=args.on_duplicate,
                        progress=report if progress.enabled else None,
                    )
                finally:
                    progress.clear()
        except BaseException:
            if created:  # a failed import into a new file leaves no empty database behind
                for leftover in (db, db + "-wal", db + "-shm"):
                    with contextlib.suppress(OSError):
                        os.unlink(leftover)
            raise
    skipped = f" ({_plural(result.skipped, 'duplicate')} skipped)" if result.skipped else ""
    print(f"imported {_plural(result.imported, 'session')}{skipped} from {source} into partition {args.partition!r}")
    return 0


# -- parser --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``litesessions`` command."""
    parser = argparse.ArgumentParser(
        prog="litesessions",
        description="Server-side user sessions in one SQLite file.",
        epilog=f"The database is --db PATH (before or after the command) or ${ENV_DB}.",
    )
    parser.add_argument(
        "--db", dest="global_db", metavar="PATH", default=None, help=f"database file (default: ${ENV_DB})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="create, renew, look up, revoke and expire sessions, and report what happened",
        description="Run a short tour of the store against a database file and print a report.",
    )
    demo.add_argument("--db", default="./sessions.db", help="database file (default: ./sessions.db)")
    demo.set_defaults(func=_cmd_demo)

    def command(name: str, help: str, description: str, *, partition: str | None = "scoped") -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=description)
        sub.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help=f"database file (default: ${ENV_DB})")
        if partition == "scoped":
            sub.add_argument("--partition", default="", metavar="P", help="partition key (default: '', the default)")
        elif partition == "filter":
            sub.add_argument("--partition", default=None, metavar="P", help="only this partition (default: all)")
        return sub

    stats = command(
        "stats",
        "sessions per partition, expired counts, sizes, schema version",
        "Count sessions per partition (and how many have expired), show the oldest and newest, "
        "the file and WAL sizes and the schema version.",
        partition="filter",
    )
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=_cmd_stats)

    lister = command(
        "list",
        "list sessions (tickets hidden)",
        "List the partition's sessions in key order, as a table or JSON. Tickets are never printed "
        "unless --show-tickets is given.",
    )
    lister.add_argument("--subject", metavar="S", help="only sessions of this subject id")
    lister.add_argument("--session-id", metavar="SID", help="only the session with this OIDC session id")
    lister.add_argument("--expired", action="store_true", help="only sessions that have expired")
    lister.add_argument("--limit", type=int, default=100, metavar="N", help="at most N sessions (default 100; 0: all)")
    lister.add_argument("--json", action="store_true", help="print a JSON array of sessions")
    lister.add_argument("--show-tickets", action="store_true", help="include the tickets (they hold tokens)")
    lister.set_defaults(func=_cmd_list)

    show = command("show", "show one session", "Show the session stored under KEY (ticket hidden by default).")
    show.add_argument("key", metavar="KEY", help="the session key (write `show -- KEY` if it starts with '-')")
    show.add_argument("--json", action="store_true", help="print the session as JSON")
    show.add_argument("--show-tickets", action="store_true", help="include the ticket (it holds tokens)")
    show.set_defaults(func=_cmd_show)

    revoke = command(
        "revoke",
        "delete sessions by key, subject or session id",
        "Delete one session (--key) or every session of a subject and/or OIDC session id, and print "
        "how many were removed.",
    )
    revoke.add_argument("--key", metavar="K", help="the session with this key")
    revoke.add_argument("--subject", metavar="S", help="every session of this subject id")
    revoke.add_argument("--session-id", metavar="SID", help="the session with this OIDC session id")
    revoke.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    revoke.set_defaults(func=_cmd_revoke)

    cleanup = command(
        "cleanup",
        "delete expired sessions (all partitions)",
        "Delete every expired session of the file, in transactions of at most --batch-size sessions, "
        "and print a summary line. With --watch, repeat every SECONDS until interrupted (Ctrl-C).",
        partition=None,
    )
    cleanup.add_argument("--batch-size", type=int, default=100, metavar="N", help="sessions per transaction (100)")
    cleanup.add_argument("--watch", type=float, default=None, metavar="SECONDS", help="repeat every SECONDS")
    cleanup.set_defaults(func=_cmd_cleanup)

    check = command(
        "check",
        "integrity check, schema version, indexes",
        "Check the file without changing it: SQLite integrity check, schema version, index presence, "
        "journal mode. Exits 1 when something is wrong.",
        partition=None,
    )
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(func=_cmd_check)

    backup = command(
        "backup",
        "consistent copy while the file is in use",
        "Copy the database to DEST through SQLite's online backup API; other processes may keep writing. "
        "The copy holds everything committed before it started. DEST must not exist.",
        partition=None,
    )
    backup.add_argument("dest", metavar="DEST", help="path of the copy (must not exist)")
    backup.set_defaults(func=_cmd_backup)

    vacuum = command(
        "vacuum", "rebuild the file to reclaim free space", "Run VACUUM and truncate the WAL.", partition=None
    )
    vacuum.set_defaults(func=_cmd_vacuum)

    export = command(
        "export",
        "write sessions as JSON lines to stdout",
        "Write the partition's sessions (or one subject's) to stdout, one JSON object per line, "
        "in key order, from one consistent snapshot. Timestamps are ISO-8601 UTC with microseconds.",
    )
    export.add_argument("--subject", metavar="S", help="only sessions of this subject id")
    export.set_defaults(func=_cmd_export)

    importer = command(
        "import",
        "read sessions from JSON lines (all or nothing)",
        "Store the sessions of FILE (JSON lines, as export writes; '-' for stdin) in the partition, "
        "in one transaction: if any line is malformed, its line number is reported and nothing is imported. "
        "Creates the database file if it does not exist.",
    )
    importer.add_argument("file", metavar="FILE", help="JSON lines file, or - for stdin")
    importer.add_argument(
        "--on-duplicate",
        choices=("skip", "fail"),
        default="fail",
        help="a session whose key or session id is taken: fail (import nothing, the default) or skip it",
    )
    importer.set_defaults(func=_cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code. Errors print one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LitesessionsError as e:
        print(f"litesessions: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            # The reader went away (e.g. `| head`): not an error worth a traceback.
            _silence_stdout()
            return 0
        detail = f"{e.strerror}: {e.filename}" if e.strerror and e.filename else str(e)
        print(f"litesessions: error: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("litesessions: interrupted", file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    # Python flushes stdout at exit; to a closed pipe that raises again, so
    # point stdout at /dev/null first (as the Python docs on SIGPIPE advise).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
