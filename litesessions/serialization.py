"""The JSON form of a session, defined once (used by ``export``/``import`` and ``list --json``).

One session is one JSON object with exactly these members::

    {"key": "3f9a...", "subject_id": "alice", "session_id": "sid-1" | null,
     "created": "2026-01-01T12:00:00.000000Z", "renewed": "...", "expires": "..." | null,
     "ticket": "..."}

Timestamps are ISO-8601 in UTC with six fractional digits and a ``Z`` suffix,
so a round trip is exact to the microsecond.  On input any ISO-8601 timestamp
*with* an offset is accepted (and normalised to UTC by the model); a naive one
is refused.  Unknown members are refused, so a typo does not silently drop a
field.

The mapping lives in a private :class:`cattrs.Converter` (never hooks on
cattrs' global converter, which belongs to the application).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Final

import cattrs
import cattrs.v
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from litesessions.errors import InvalidSessionError
from litesessions.models import UserSession

__all__ = ["decode_session", "encode_session", "format_time", "session_from_dict", "session_to_dict"]


def format_time(value: datetime) -> str:
    """Return an aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, always six fractional digits)."""
    utc = value.astimezone(timezone.utc)
    # strftime's %Y does not zero-pad years below 1000 on every platform; isoformat does.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_time(value: object, _: type[Any]) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 timestamp string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset; write it in UTC with a 'Z' suffix")
    return parsed


def _strict_str(value: object, _: type[Any]) -> str:
    # cattrs' default str hook calls str() on anything: 42 would become "42".
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_unstructure_hook(datetime, format_time)
    converter.register_structure_hook(datetime, _parse_time)
    converter.register_structure_hook(str, _strict_str)
    converter.register_unstructure_hook(UserSession, make_dict_unstructure_fn(UserSession, converter))
    converter.register_structure_hook(
        UserSession, make_dict_structure_fn(UserSession, converter, _cattrs_forbid_extra_keys=True)
    )
    return converter


_CONVERTER: Final = _make_converter()


def session_to_dict(session: UserSession) -> dict[str, Any]:
    """Return the JSON form of ``session`` as a dict of JSON-ready values (ticket included)."""
    result: dict[str, Any] = _CONVERTER.unstructure(session, UserSession)
    return result


def session_from_dict(data: object) -> UserSession:
    """Build a :class:`UserSession` from its JSON form (a dict).

    Raises :class:`InvalidSessionError` with one readable line saying what is
    wrong (a missing or unknown member, a value of the wrong type, a timestamp
    without offset, a field that breaks the field rules).
    """
    if not isinstance(data, dict):
        raise InvalidSessionError(f"a session must be a JSON object, got {_json_type(data)}")
    try:
        session: UserSession = _CONVERTER.structure(data, UserSession)
    except InvalidSessionError:
        raise
    except cattrs.BaseValidationError as e:
        messages = cattrs.transform_error(e, path="", format_exception=_describe)
        raise InvalidSessionError("; ".join(_member_first(m) for m in messages)) from None
    except (ValueError, TypeError, KeyError) as e:
        raise InvalidSessionError(str(e)) from None
    return session


def encode_session(session: UserSession) -> str:
    """Return ``session`` as one line of compact, ASCII-only JSON (no newline)."""
    return json.dumps(session_to_dict(session), separators=(",", ":"))


def decode_session(line: str | bytes) -> UserSession:
    """Parse one line of JSON into a :class:`UserSession`; :class:`InvalidSessionError` if it is not one."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise InvalidSessionError(f"not valid JSON ({e})") from None
    return session_from_dict(data)


def _describe(exc: BaseException, type_: type[Any] | None) -> str:
    # Our hooks and the model's validators raise ValueErrors that already say
    # what is wrong; cattrs' default formatter would replace them with
    # "invalid value".
    if isinstance(exc, ValueError) and exc.args:
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _member_first(message: str) -> str:
    # cattrs writes "what @ .member"; "member: what" reads better in one error line.
    what, _, where = message.rpartition(" @ ")
    member = where.lstrip(".$")
    return f"{member}: {what}" if what and member else (what or message)


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
