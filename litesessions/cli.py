"""The ``litesessions`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from litesessions.errors import LitesessionsError

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from litesessions.demo import run_demo

    run_demo(args.db, out=sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``litesessions`` command."""
    parser = argparse.ArgumentParser(
        prog="litesessions",
        description="Server-side user sessions in one SQLite file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="create, renew, look up, revoke and expire sessions, and report what happened",
        description="Run a short tour of the store against a database file and print a report.",
    )
    demo.add_argument("--db", default="./sessions.db", help="database file (default: ./sessions.db)")
    demo.set_defaults(func=_cmd_demo)
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
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("litesessions: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
