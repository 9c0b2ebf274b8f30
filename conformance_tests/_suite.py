"""`BrokerConformanceSuite`: every clause, for an implementer to subclass once."""

from __future__ import annotations

from typing import Any

from conformance_tests._blackhole import BlackholeClauses
from conformance_tests._interface import InterfaceClauses
from conformance_tests._lifecycle import LifecycleClauses
from conformance_tests._limits import RateLimitClauses
from conformance_tests._outage_clauses import OutageClauses
from conformance_tests._reconnect import ReconnectClauses

__all__ = ["BrokerConformanceSuite"]


class BrokerConformanceSuite(
    InterfaceClauses,
    LifecycleClauses,
    RateLimitClauses,
    ReconnectClauses,
    OutageClauses,
    BlackholeClauses,
):
    """The conformance suite: subclass it in a test module that defines a `broker_harness` fixture.

    ```python
    import pytest
    from conformance_tests import BrokerConformanceSuite
    from my_broker.harness import MyHarness

    @pytest.fixture
    def broker_harness():
        return MyHarness()

    class TestMyBroker(BrokerConformanceSuite):
        pass
    ```

    This class is not collected on its own; every subclass is, whatever its name. Each test checks
    one clause, and each failure message begins with that clause's id:

    - IF-1 interface, IF-2 capabilities type, IF-3 capabilities consistent with the harness
    - LC-1 idempotent connect/disconnect, LC-2 `async with`, LC-3 state listeners, LC-4 nothing left
      running after disconnect, LC-5 no file descriptors left open
    - RL-1 sequential, RL-2 50 concurrent callers, RL-3 two windows, RL-4 per category, RL-5 every
      method, RL-6 any window under steady pressure, RL-7 90% utilization, RL-8 cancelled waiters
    - RC-1 fail fast while cut off, RC-2 recover alone, RC-3 states in order, RC-4 quote streams,
      RC-5 an order caught in an outage exists once, RC-6 ten outages leak nothing
    - BH-1 a silent peer is detected in time (optional: BLACKHOLE and HALF_OPEN_DETECTION)
    """

    __test__ = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True
