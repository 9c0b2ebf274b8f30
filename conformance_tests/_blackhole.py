"""BH-1 to BH-3 (optional capability): a peer that goes silent without closing is noticed in time,
by the mechanism the gateway declares.

All three need `BreakMode.BLACKHOLE` from the harness and `HALF_OPEN_DETECTION` from the gateway,
with the harness's `half_open_bound`. BH-1: noticed with no call made. BH-2: a call waiting for its
reply on the silent link fails as unavailable, not at its deadline. BH-3: on a quiet link the backend
hears the gateway's probes at least once per `half_open_bound` (harness protocol 2, `backend_heard`):
the detection comes from probing, not from luck.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from broker_plugins import BrokerUnavailableError, Capability, ConnectionState, IBrokerGateway
from conformance_tests._backdoor import member
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import BreakMode, ConformanceHarness
from conformance_tests._outage import FAIL_FAST, RECOVERY, broken
from conformance_tests._support import (
    CALL_BOUND,
    bounded,
    eventually,
    expect,
    open_gateway,
    outcome_of,
    violated,
)

__all__ = ["BlackholeClauses"]

_SLACK = 0.5
"""Seconds allowed on top of the harness's half_open_bound, for scheduling on a busy machine."""
_QUIET = 1.5
"""How many half_open_bounds BH-3 watches a quiet link for."""


def _bound(harness: ConformanceHarness, gateway: IBrokerGateway, clause_id: str) -> float:
    """The declared detection bound, or a skip when half-open detection is not on offer."""
    __tracebackhide__ = True
    if BreakMode.BLACKHOLE not in harness.break_modes:
        pytest.skip("the harness offers no BreakMode.BLACKHOLE, so half-open detection cannot be shown")
    if Capability.HALF_OPEN_DETECTION not in gateway.capabilities:
        pytest.skip("the gateway does not declare Capability.HALF_OPEN_DETECTION")
    bound = harness.half_open_bound
    expect(bound is not None, clause_id, "the harness offers BLACKHOLE but declares no half_open_bound")
    assert bound is not None
    return bound


class BlackholeClauses(SuiteBase):
    """BH-1 to BH-3."""

    @clause("BH-1")
    async def test_bh1_a_silent_peer_is_detected_in_time(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """BH-1: with the connection black-holed and no call made, the state leaves CONNECTED
        within the harness's half_open_bound plus 0.5 s."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "BH-1") as gateway:
            bound = _bound(harness, gateway, "BH-1")
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

    @clause("BH-2")
    async def test_bh2_a_call_on_a_silent_link_fails_as_unavailable(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """BH-2: a get_instrument sent just after the link went silent fails with
        BrokerUnavailableError within half_open_bound + 2 s (+0.5 s), not at its deadline."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "BH-2") as gateway:
            bound = _bound(harness, gateway, "BH-2")
            await bounded("BH-2", gateway.get_instrument(harness.symbol), CALL_BOUND, "get_instrument")
            limit = bound + FAIL_FAST + _SLACK
            async with broken(harness, BreakMode.BLACKHOLE):
                started = time.monotonic()
                outcome = await outcome_of(gateway.get_instrument(harness.symbol), limit)
                elapsed = time.monotonic() - started
            back = await eventually(lambda: gateway.state is ConnectionState.CONNECTED, RECOVERY)
        expect(
            outcome.finished,
            "BH-2",
            f"a call sent on a black-holed link was still waiting {limit:g} s later; once the silence is "
            f"noticed (within {bound:g} s) it must fail as unavailable",
        )
        expect(
            isinstance(outcome.error, BrokerUnavailableError),
            "BH-2",
            f"a call sent on a black-holed link ended after {elapsed:.2f} s with "
            f"{outcome.error or outcome.value!r}; expected BrokerUnavailableError once the silence is "
            "noticed (a BrokerTimeoutError means it ran into its deadline instead)",
        )
        expect(back, "BH-2", f"not CONNECTED {RECOVERY:g} s after the black hole ended")

    @clause("BH-3")
    async def test_bh3_a_quiet_link_is_probed_at_the_declared_rate(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """BH-3: while a connected gateway makes no call, the backend hears from it (its probes) at
        least once per half_open_bound, for one and a half bounds."""
        harness = started_broker_harness
        heard = member(harness, "backend_heard", "to see the gateway's probes arrive")
        async with open_gateway(harness, GENEROUS, "BH-3") as gateway:
            bound = _bound(harness, gateway, "BH-3")
            await bounded("BH-3", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            gaps = await self._quiet_gaps(harness, heard, bound)
            if max(gaps) > bound:
                gaps = await self._quiet_gaps(harness, heard, bound)  # confirmed before it is reported
        longest = max(gaps)
        if longest > bound:
            violated(
                "BH-3",
                f"on a quiet link the backend heard nothing from the gateway for {longest:.3f} s (twice in a "
                f"row); the declared half_open_bound is {bound:g} s, so a probe must arrive at least that "
                "often for a silent peer to be noticed in time",
            )

    async def _quiet_gaps(self, harness: ConformanceHarness, heard: object, bound: float) -> list[float]:
        assert callable(heard)
        harness.reset_backend_records()
        start = time.monotonic()
        await asyncio.sleep(_QUIET * bound)  # the observation itself: nothing is waited for
        end = time.monotonic()
        times = sorted(moment for moment in heard() if start <= moment <= end)
        marks = [start, *times, end]
        return [later - earlier for earlier, later in itertools.pairwise(marks)]
