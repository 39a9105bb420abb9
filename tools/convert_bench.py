"""Row <-> model conversion in the hot path: hand-written code against cattrs.

The issue asks to measure whether cattrs or hand-written conversion is
faster where every read and write pays for it.  This times, interleaved and
repeated (minimum per variant, so other load on the machine matters less):

* read: a stored row -> ``UserSession``: ``session_from_row`` (what the store
  uses), the previous hand-written version (epoch + timedelta), and a cattrs
  ``Converter`` structuring the same row (as a dict) with an int -> datetime hook;
* write: ``UserSession`` -> the INSERT parameter tuple: the store's
  ``session_params`` against cattrs ``unstructure`` with a datetime -> int hook.

Usage: ``python tools/convert_bench.py [--number N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import cattrs

from litesessions.models import UserSession, from_micros, session_from_row, to_micros
from litesessions.store import session_params

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FIELDS = ("key", "subject_id", "session_id", "created", "renewed", "expires", "ticket")


def previous_session_from_row(
    key: str, subject_id: str, session_id: str | None, created: int, renewed: int, expires: int | None, ticket: str
) -> UserSession:
    """The hand-written version before this issue (epoch + timedelta(microseconds=...))."""
    obj = object.__new__(UserSession)
    s = object.__setattr__
    s(obj, "key", key)
    s(obj, "subject_id", subject_id)
    s(obj, "session_id", session_id)
    s(obj, "created", EPOCH + timedelta(microseconds=created))
    s(obj, "renewed", EPOCH + timedelta(microseconds=renewed))
    s(obj, "expires", None if expires is None else EPOCH + timedelta(microseconds=expires))
    s(obj, "ticket", ticket)
    return obj


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(datetime, lambda v, _: from_micros(v))
    converter.register_unstructure_hook(datetime, to_micros)
    return converter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing (default 20000)")
    parser.add_argument("--repeat", type=int, default=15, help="interleaved timings per variant (default 15)")
    args = parser.parse_args(argv)

    created = to_micros(datetime(2026, 1, 1, 12, tzinfo=timezone.utc))
    row: tuple[Any, ...] = (
        "3f9a" * 8,
        "subject-0000042",
        "a1b2" * 8,
        created,
        created + 61_000_123,
        created + 8 * 3600 * 1_000_000,
        "t" * 2048,
    )
    as_dict = dict(zip(FIELDS, row, strict=True))
    converter = make_converter()
    structure = converter.structure
    unstructure = converter.unstructure
    session = session_from_row(*row)
    if not (session == previous_session_from_row(*row) == structure(as_dict, UserSession)):
        raise AssertionError("the variants disagree")

    def cattrs_params(s: UserSession) -> tuple[Any, ...]:
        d = unstructure(s)
        return ("", *(d[f] for f in FIELDS))

    if cattrs_params(session) != session_params("", session):
        raise AssertionError("the write variants disagree")

    variants: dict[str, Callable[[], object]] = {
        "read: session_from_row (store)": lambda: session_from_row(*row),
        "read: previous hand-written (timedelta)": lambda: previous_session_from_row(*row),
        "read: cattrs structure (dict)": lambda: structure(as_dict, UserSession),
        "write: session_params (store)": lambda: session_params("", session),
        "write: cattrs unstructure": lambda: cattrs_params(session),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.repeat):
        for name, fn in variants.items():
            best[name] = min(best[name], timeit.timeit(fn, number=args.number) / args.number)
    print(f"min over {args.repeat} interleaved timings of {args.number:,} calls (Python {sys.version.split()[0]}):")
    for name, seconds in best.items():
        print(f"  {name:42s} {seconds * 1e9:7.0f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
