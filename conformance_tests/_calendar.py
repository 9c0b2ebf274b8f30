"""MC clauses: a gateway that declares `MARKET_CALENDAR` reports the calendar it was asked for."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from broker_plugins import Capability, MarketCalendar
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import ConformanceHarness
from conformance_tests._support import CALL_BOUND, bounded, expect, open_gateway

__all__ = ["CalendarClauses"]


class CalendarClauses(SuiteBase):
    """MC-1."""

    @clause("MC-1")
    async def test_mc1_the_calendar_is_the_exchanges_and_comes_from_the_backend(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """MC-1: with `MARKET_CALENDAR`, `get_market_calendar` of the harness instrument's exchange
        returns a `MarketCalendar` of that exchange, with sessions and a zone it can judge an
        instant by, each call one request at the backend (a `market_data` permit)."""
        harness = started_broker_harness
        async with open_gateway(harness, GENEROUS, "MC-1") as gateway:
            if Capability.MARKET_CALENDAR not in gateway.capabilities:
                pytest.skip("the gateway does not declare Capability.MARKET_CALENDAR")
            instrument = await bounded(
                "MC-1", gateway.get_instrument(harness.symbol), CALL_BOUND, "get_instrument"
            )
            harness.reset_backend_records()
            calendars = [
                await bounded(
                    "MC-1",
                    gateway.get_market_calendar(instrument.exchange),
                    CALL_BOUND,
                    "get_market_calendar",
                )
                for _ in range(2)
            ]
            received = [r for r in harness.backend_requests() if r.method == "get_market_calendar"]
        for calendar in calendars:
            expect(
                isinstance(calendar, MarketCalendar),
                "MC-1",
                f"get_market_calendar returned a {type(calendar).__name__}, not a MarketCalendar",
            )
            expect(
                calendar.exchange == instrument.exchange,
                "MC-1",
                f"asked for {instrument.exchange!r}, got the calendar of {calendar.exchange!r}",
            )
            calendar.is_open(datetime.now(timezone.utc))  # a zone and sessions it can use
        expect(
            len(received) == 2 and all(r.category == "market_data" for r in received),
            "MC-1",
            f"2 calls of get_market_calendar reached the backend as "
            f"{[(r.method, r.category) for r in received]}; each must be one market_data request",
        )
