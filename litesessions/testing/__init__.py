"""litesessions.testing: a conformance kit for any implementation of the session-store contract.

Needs Hypothesis (``pip install 'litesessions[testing]'``); importing
``litesessions`` itself never imports it.

* :func:`check_store`: one call that runs random sequences of every
  operation against your store and a model of the contract, and raises
  ``AssertionError`` with a minimal failing example on the first difference;
* :class:`UserSessionStoreMachine`: the Hypothesis state machine behind it,
  to subclass (override ``make_store``) and run as ``MyMachine.TestCase``;
* :mod:`litesessions.testing.strategies`: strategies for the models;
* :func:`harness_settings`: the ``"default"``, ``"ci"`` and ``"thorough"`` profiles.
"""

from litesessions.testing import strategies
from litesessions.testing._check import PROFILES, check_store, harness_settings
from litesessions.testing.machine import DEFAULT_START, HarnessClock, UserSessionStoreMachine, describe

__all__ = [
    "DEFAULT_START",
    "PROFILES",
    "HarnessClock",
    "UserSessionStoreMachine",
    "check_store",
    "describe",
    "harness_settings",
    "strategies",
]
