"""The suite on a harness found by gateway name: `pytest --pyargs conformance_tests --broker-gateway NAME`.

Collected without `--broker-gateway`, every test here skips and says how to run it.
"""

from __future__ import annotations

import pytest

from broker_plugins import BrokerRegistry
from conformance_tests._suite import BrokerConformanceSuite
from conformance_tests.plugin import OPTION


@pytest.fixture
def broker_harness(request: pytest.FixtureRequest) -> object:
    """The harness the plugin of `--broker-gateway NAME` provides (checked at startup)."""
    name = request.config.getoption(OPTION, default=None)
    if name is None:
        pytest.skip("run with --broker-gateway NAME to check the gateway NAME against the suite")
    return BrokerRegistry().conformance_harness(name)


class TestGatewayConformance(BrokerConformanceSuite):
    """Every clause, on the harness of the gateway named by `--broker-gateway`."""
