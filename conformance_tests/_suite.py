"""`BrokerConformanceSuite`: every clause, for an implementer to subclass once."""

from __future__ import annotations

from typing import Any

from conformance_tests._blackhole import BlackholeClauses
from conformance_tests._calendar import CalendarClauses
from conformance_tests._connections import ConnectionClauses
from conformance_tests._health import HealthClauses
from conformance_tests._interface import InterfaceClauses
from conformance_tests._lifecycle import LifecycleClauses
from conformance_tests._limits import RateLimitClauses
from conformance_tests._orders import OrderClauses
from conformance_tests._outage_clauses import OutageClauses
from conformance_tests._pacing import PacingClauses
from conformance_tests._paths import PathClauses
from conformance_tests._reconnect import ReconnectClauses
from conformance_tests._stream_content import StreamContentClauses

__all__ = ["BrokerConformanceSuite"]


# pytest collects the methods of a class's bases in reverse MRO order: the base listed last runs
# first. So the groups are listed last to first, and the clauses run in the README table's order.
class BrokerConformanceSuite(
    CalendarClauses,
    BlackholeClauses,
    HealthClauses,
    OrderClauses,
    StreamContentClauses,
    PacingClauses,
    OutageClauses,
    ReconnectClauses,
    PathClauses,
    RateLimitClauses,
    ConnectionClauses,
    LifecycleClauses,
    InterfaceClauses,
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
    one clause, and each failure message begins with that clause's id. The clauses, in the order
    they run (the README's section "Testing your own gateway plugin" says what each must hold):

    - IF-1 to IF-3: the interface and the declared capabilities
    - LC-1 to LC-11: connecting, disconnecting, state changes and listeners, nothing left behind,
      connections counted at the backend
    - RL-1 to RL-15: rate limits, on the healthy path and off it (reconnects, outages, retries,
      paging, stream re-openings, a shared budget)
    - RC-1 to RC-10: outages: failing fast, recovering, orders caught in one, leaks, reconnect pacing
      and jitter, what streams yield after one
    - OR-1 to OR-3: orders: rejections, lost replies, a backend that does not de-duplicate
    - HC-1, HC-2, DV-1: health checks, and values equal to what the backend served
    - BH-1 to BH-3: half-open (black-holed) connections, by the mechanism the gateway declares
    - MC-1: market calendars, for a gateway that declares `MARKET_CALENDAR`
    """

    __test__ = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True
