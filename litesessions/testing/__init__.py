"""litesessions.testing: a conformance kit for any implementation of the session-store contract.

Needs Hypothesis (``pip install 'litesessions[testing]'``); importing
``litesessions`` itself never imports it.

* :func:`check_store`: one call that runs random sequences of every
  operation against your store and a model of the contract, and raises
  ``AssertionError`` with a minimal failing example on the first difference;
* :class:`UserSessionStoreMachine`: the Hypothesis state machine behind it,
  to subclass (override ``make_store``) and run as ``MyMachine.TestCase``;
* :mod:`litesessions.testing.strategies`: strategies for the models;
* :func:`harness_settings`: the ``"default"``, ``"ci"`` and ``"thorough"`` profiles;
* :class:`UserSessionStoreContract` (and ``PartitionedStoreContract``): the
  example-based conformance list as pytest tests to subclass (imported on
  first use, since it needs pytest).
"""

from typing import Any

from litesessions.testing import strategies
from litesessions.testing._check import PROFILES, check_store, harness_settings
from litesessions.testing.machine import DEFAULT_START, HarnessClock, UserSessionStoreMachine, describe

__all__ = [
    "DEFAULT_START",
    "PROFILES",
    "HarnessClock",
    "PartitionedStoreContract",
    "UserSessionStoreContract",
    "UserSessionStoreMachine",
    "check_store",
    "describe",
    "harness_settings",
    "strategies",
]

_CONTRACT_NAMES = ("ContractClock", "PartitionedStoreContract", "UserSessionStoreContract")


def __getattr__(name: str) -> Any:
    # The example-based contract needs pytest; import it only when asked for,
    # so that check_store works with Hypothesis alone.
    if name in _CONTRACT_NAMES:
        from litesessions.testing import contract

        return getattr(contract, name)
    raise AttributeError(f"module 'litesessions.testing' has no attribute {name!r}")
