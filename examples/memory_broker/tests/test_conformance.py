"""The broker-plugins conformance suite, run on the memory gateway."""

import pytest
from memory_broker.harness import MemoryBrokerHarness

from conformance_tests import BrokerConformanceSuite


@pytest.fixture
def broker_harness() -> MemoryBrokerHarness:
    return MemoryBrokerHarness()


class TestMemoryBroker(BrokerConformanceSuite):
    pass
