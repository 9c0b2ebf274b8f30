"""A reusable pytest suite that proves a gateway plugin rate-limits and reconnects correctly.

An implementer subclasses `BrokerConformanceSuite` in one test module and defines a `broker_harness`
fixture returning a `ConformanceHarness`; or, when their plugin ships a harness through the
`provide_conformance_harness` hook, runs `pytest --pyargs conformance_tests --broker-gateway NAME`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conformance_tests._harness import (
    HARNESS_V2_MEMBERS,
    HARNESS_VERSION,
    BackendConnection,
    BackendRequest,
    BreakMode,
    ConformanceHarness,
    Failure,
    ServedValue,
)
from conformance_tests._proxy import FaultProxy

if TYPE_CHECKING:
    from conformance_tests._suite import BrokerConformanceSuite

__all__ = [
    "HARNESS_V2_MEMBERS",
    "HARNESS_VERSION",
    "BackendConnection",
    "BackendRequest",
    "BreakMode",
    "BrokerConformanceSuite",
    "ConformanceHarness",
    "Failure",
    "FaultProxy",
    "ServedValue",
]


def __getattr__(name: str) -> object:
    # The suite imports pytest-asyncio; this package is also imported for its pytest11 entry point
    # in every pytest run of an environment, where pytest-asyncio may be missing. So it loads late.
    if name == "BrokerConformanceSuite":
        from conformance_tests._suite import BrokerConformanceSuite  # noqa: PLC0415

        return BrokerConformanceSuite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
