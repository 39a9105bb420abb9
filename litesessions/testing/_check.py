"""``check_store``: one call that runs :class:`UserSessionStoreMachine` against a store, and its settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from hypothesis import HealthCheck, Phase, settings
from hypothesis import settings as Settings
from hypothesis.errors import Flaky, HypothesisException
from hypothesis.stateful import run_state_machine_as_test

from litesessions.testing.machine import ON_DUPLICATE, UserSessionStoreMachine

__all__ = ["PROFILES", "check_store", "harness_settings"]

# deadline: SQLite commit (fsync) times are noisy, and one step reads the whole
# store, so per-example deadlines would only produce flaky failures.
# too_slow / data_too_large: a store on a file is legitimately slower than
# Hypothesis expects of a pure function; large_base_example: the machine's
# shortest run already draws a few sessions.  The explain phase is left out:
# on a state machine it costs several times the search and the shrink together.
_COMMON: Final[dict[str, Any]] = {
    "deadline": None,
    # One bug, shrunk once: reporting every distinct failure would shrink each of them.
    "report_multiple_bugs": False,
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}

PROFILES: Final[dict[str, dict[str, Any]]] = {
    # What check_store uses when given no settings: 100 runs of up to 50 steps.
    "default": {"max_examples": 100, "stateful_step_count": 50},
    # For CI: the same amount of work, but derandomized (the same runs every
    # time, so CI is never flaky), no example database, and a reproduction blob.
    "ci": {"max_examples": 100, "stateful_step_count": 50, "derandomize": True, "database": None, "print_blob": True},
    # Before a release or after changing a store: thousands of longer runs.
    "thorough": {"max_examples": 3000, "stateful_step_count": 100},
}


def harness_settings(profile: str = "default", **overrides: Any) -> Settings:
    """Return Hypothesis ``settings`` for :func:`check_store`: a named profile plus ``overrides``.

    Profiles (see :data:`PROFILES`): ``"default"`` (what ``check_store`` uses
    without ``settings=``), ``"ci"`` (derandomized, no example database) and
    ``"thorough"`` (3000 runs of up to 100 steps).  Every profile disables the
    deadline, the ``too_slow`` health check and the (slow) explain phase, and
    reports one bug at a time.  Settings not named here come from the
    currently loaded Hypothesis profile.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    return settings(**{**_COMMON, **PROFILES[profile], **overrides})


def check_store(
    make_store: Callable[[Callable[[], datetime]], Any],
    *,
    make_cleanup: Callable[[Any, Callable[[], datetime]], Any] | None = None,
    unique_session_id: bool = True,
    on_duplicate: str = "raise",
    settings: Settings | None = None,
) -> None:
    """Check a store against the contract with random sequences of operations; return ``None`` if it conforms.

    ``make_store(clock)`` must return a fresh, empty store that reads "now"
    from ``clock`` (a zero-argument callable returning an aware UTC
    ``datetime``); it is called once per generated test case, and the store's
    ``close()``, if it has one, is called at the end of each.
    ``make_cleanup(store, clock)`` returns the object whose
    ``delete_expired_sessions()`` is checked; without it the store itself is
    used if it has that method, otherwise cleanup is not checked.
    ``on_duplicate``: ``"raise"`` (a duplicate create must raise, changing
    nothing) or ``"ignore"`` (it must not raise, and change nothing).
    ``unique_session_id``: whether a session id held by another session makes
    a create (or an update) a duplicate.  ``settings``: Hypothesis settings,
    by default ``harness_settings("default")``.

    Raises ``AssertionError`` at the first departure from the contract: its
    message names the operation, its arguments, the expected and the actual
    result, and ends with Hypothesis' shrunk step-by-step reproduction.
    Raises ``TypeError`` / ``ValueError`` for bad arguments.
    """
    if not callable(make_store):
        raise TypeError(f"make_store must be a callable taking the clock, got {make_store!r}")
    if make_cleanup is not None and not callable(make_cleanup):
        raise TypeError(f"make_cleanup must be None or a callable taking (store, clock), got {make_cleanup!r}")
    if not isinstance(unique_session_id, bool):
        raise TypeError(f"unique_session_id must be a bool, got {type(unique_session_id).__name__}")
    if on_duplicate not in ON_DUPLICATE:
        raise ValueError(f"on_duplicate must be 'raise' or 'ignore', got {on_duplicate!r}")

    def _make_store(self: UserSessionStoreMachine, clock: Callable[[], datetime]) -> Any:
        return make_store(clock)

    members: dict[str, Any] = {
        "unique_session_id": unique_session_id,
        "on_duplicate": on_duplicate,
        "make_store": _make_store,
    }
    if make_cleanup is not None:

        def _make_cleanup(self: UserSessionStoreMachine, store: Any, clock: Callable[[], datetime]) -> Any:
            return make_cleanup(store, clock)

        members["make_cleanup"] = _make_cleanup
    # The class name is what Hypothesis' example database keys on (it cannot
    # read the source of a class made here), so name it after the factory.
    name = getattr(make_store, "__qualname__", type(make_store).__name__)
    machine = type(f"CheckStore[{name}]", (UserSessionStoreMachine,), members)
    try:
        run_state_machine_as_test(machine, settings=settings if settings is not None else harness_settings())
    except Flaky as e:
        raise AssertionError(
            "\n".join(
                [
                    "the store gave different results when the same steps were replayed: make_store must "
                    "return a fresh, empty store every time, and the store must not depend on anything else "
                    "(the real clock, leftovers of another test case)",
                    "",
                    *getattr(e, "__notes__", []),
                ]
            )
        ) from e
    except HypothesisException:
        raise  # the harness's own configuration problems (health checks, bad settings) stay as they are
    except Exception as e:
        raise AssertionError(_report(e)) from e


def _report(error: BaseException) -> str:
    """The message of ``error`` followed by its notes (Hypothesis' reproduction), for each error of a group."""
    if isinstance(error, BaseExceptionGroup):
        parts = [f"{error.message}", ""]
        for number, inner in enumerate(error.exceptions, 1):
            parts += [f"--- failure {number} of {len(error.exceptions)} ---", _report(inner)]
        return "\n".join([*parts, *getattr(error, "__notes__", [])])
    message = str(error) if isinstance(error, AssertionError) else f"{type(error).__name__}: {error}"
    return "\n".join([message, "", *getattr(error, "__notes__", [])])
