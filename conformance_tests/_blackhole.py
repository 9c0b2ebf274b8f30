"""BH-1 (optional capability): a peer that goes silent without closing is noticed in time."""

from __future__ import annotations

import time

import pytest

from broker_plugins import Capability, ConnectionState
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._outage import broken
from conformance_tests._support import CALL_BOUND, bounded, eventually, expect, open_gateway

__all__ = ["BlackholeClauses"]

_SLACK = 0.5
"""Seconds allowed on top of the harness's half_open_bound, for scheduling on a busy machine."""


class BlackholeClauses(SuiteBase):
    """BH-1."""

    @clause("BH-1")
    async def test_bh1_a_silent_peer_is_detected_in_time(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """BH-1: with the connection black-holed and no call made, the state leaves CONNECTED
        within the harness's half_open_bound plus 0.5 s."""
        harness = started_broker_harness
        if BreakMode.BLACKHOLE not in harness.break_modes:
            pytest.skip("the harness offers no BreakMode.BLACKHOLE, so half-open detection cannot be shown")
        bound = harness.half_open_bound
        async with open_gateway(harness, GENEROUS, "BH-1") as gateway:
            if Capability.HALF_OPEN_DETECTION not in gateway.capabilities:
                pytest.skip("the gateway does not declare Capability.HALF_OPEN_DETECTION")
            expect(bound is not None, "BH-1", "the harness offers BLACKHOLE but declares no half_open_bound")
            assert bound is not None
            await bounded("BH-1", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            async with broken(harness, BreakMode.BLACKHOLE):
                started = time.monotonic()
                detected = await eventually(
                    lambda: gateway.state is not ConnectionState.CONNECTED, bound + _SLACK
                )
                elapsed = time.monotonic() - started
            expect(
                detected,
                "BH-1",
                f"a black-holed connection was still CONNECTED after {elapsed:.2f} s; the declared bound is "
                f"{bound:g} s (+{_SLACK:g} s slack)",
            )
