"""GetMarketCalendar through the grpc gateway: the reference bridge's KRX and NASDAQ calendars, and
an older bridge that lacks the RPC."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import grpc
import pytest
from memory_broker import MemoryBrokerGateway

from broker_plugins import (
    BrokerInternalError,
    Capability,
    InvalidRequestError,
    NotFoundError,
    RateLimiter,
    SessionKind,
)
from grpc_plugin.bridge import BridgeConfig, BridgeServer
from grpc_plugin.bridge._gate import Context
from grpc_plugin.bridge._market_service import MarketDataServicer
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2
from tests.bridge.conftest import LOOPBACK, StartBridge
from tests.gateway.conftest import MakeGateway


@pytest.fixture
async def bridge(start_bridge: StartBridge) -> BridgeServer:
    return await start_bridge(budget=())


class _OlderMarketData(MarketDataServicer):
    """A MarketDataService from before GetMarketCalendar: gRPC's own answer for a method it lacks."""

    async def GetMarketCalendar(
        self, request: calendar_pb2.GetMarketCalendarRequest, context: Context
    ) -> calendar_pb2.GetMarketCalendarResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        raise AssertionError("abort returns by raising")


class _OlderBridge(BridgeServer):
    market_data_servicer = _OlderMarketData


class _BadCalendar(MarketDataServicer):
    async def GetMarketCalendar(
        self, request: calendar_pb2.GetMarketCalendarRequest, context: Context
    ) -> calendar_pb2.GetMarketCalendarResponse:
        reply = await super().GetMarketCalendar(request, context)
        reply.time_zone = "Nowhere/Atlantis"
        return reply


class _BadCalendarBridge(BridgeServer):
    market_data_servicer = _BadCalendar


async def test_the_bridge_reports_krx_and_nasdaq_sessions_and_holidays(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address) as gateway:
        assert Capability.MARKET_CALENDAR in gateway.capabilities
        limiter = gateway.rate_limiter
        assert isinstance(limiter, RateLimiter)
        bridge.clear_requests()
        krx = await gateway.get_market_calendar("KRX", start=date(2026, 1, 1), end=date(2026, 12, 31))
        nasdaq = await gateway.get_market_calendar("NASDAQ", start=date(2026, 1, 1), end=date(2026, 12, 31))
        default = await gateway.get_market_calendar("KRX")
        assert [r.method for r in bridge.requests] == ["GetMarketCalendar"] * 3
        assert limiter.stats().category("market_data").permits_granted == 3
    assert krx.time_zone == "Asia/Seoul"
    assert [(s.name, s.kind, s.open, s.close) for s in krx.sessions] == [
        ("pre-hours closing price", SessionKind.PRE_MARKET, time(8, 30), time(8, 40)),
        ("regular", SessionKind.REGULAR, time(9, 0), time(15, 30)),
        ("after-hours closing price", SessionKind.POST_MARKET, time(15, 40), time(16, 0)),
        ("after-hours single price", SessionKind.POST_MARKET, time(16, 0), time(18, 0)),
    ]
    assert date(2026, 5, 5) in krx.holidays  # Children's Day
    assert date(2026, 12, 31) in krx.holidays  # year-end closing
    assert (krx.covers_start, krx.covers_end) == (date(2026, 1, 1), date(2026, 12, 31))
    assert nasdaq.time_zone == "America/New_York"
    assert [(s.open, s.close) for s in nasdaq.sessions] == [
        (time(4, 0), time(9, 30)),
        (time(9, 30), time(16, 0)),
        (time(16, 0), time(20, 0)),
    ]
    assert {date(2026, 4, 3), date(2026, 7, 3), date(2026, 11, 26), date(2026, 12, 25)} <= nasdaq.holidays
    assert len(nasdaq.holidays) == 10
    assert not nasdaq.is_open(datetime(2026, 7, 3, 15, 0, tzinfo=timezone.utc))  # observed 4 July
    assert nasdaq.is_open(datetime(2026, 7, 2, 15, 0, tzinfo=timezone.utc))
    assert krx.is_open(datetime(2026, 7, 2, 9, 0, tzinfo=ZoneInfo("Asia/Seoul")))
    assert default.covers_start is not None
    assert default.covers_start.month == 1
    assert default.covers_end is not None
    assert default.covers_end.year == default.covers_start.year + 1


async def test_calendar_requests_are_checked_and_unknown_exchanges_are_not_found(
    bridge: BridgeServer, gateways: MakeGateway
) -> None:
    async with gateways(bridge.address) as gateway:
        bridge.clear_requests()
        with pytest.raises(InvalidRequestError, match="exchange must be"):
            await gateway.get_market_calendar("")
        with pytest.raises(InvalidRequestError, match="must be a date"):
            await gateway.get_market_calendar("KRX", start=datetime(2026, 1, 1, tzinfo=timezone.utc))
        with pytest.raises(InvalidRequestError, match="must not be before start"):
            await gateway.get_market_calendar("KRX", start=date(2026, 2, 1), end=date(2026, 1, 1))
        assert bridge.requests == []  # refused before anything was sent
        with pytest.raises(NotFoundError, match="no calendar for exchange 'LSE'"):
            await gateway.get_market_calendar("LSE")
        with pytest.raises(InvalidRequestError, match="3660 days after it"):
            await gateway.get_market_calendar("KRX", start=date(2000, 1, 1), end=date(2030, 1, 1))


async def test_an_older_bridge_without_the_rpc_is_a_clear_refusal(
    gateways: MakeGateway,
) -> None:
    older = _OlderBridge(BridgeConfig(host=LOOPBACK, budget=()))
    await older.start()
    try:
        async with gateways(older.address) as gateway:
            with pytest.raises(InvalidRequestError, match=r"reports no market calendars .*older"):
                await gateway.get_market_calendar("KRX")
            assert (await gateway.get_quote("AAPL")).symbol == "AAPL"  # the rest works on
    finally:
        await older.stop(grace=0)


async def test_a_calendar_that_breaks_the_contract_is_a_broker_internal_error(
    gateways: MakeGateway,
) -> None:
    broken = _BadCalendarBridge(BridgeConfig(host=LOOPBACK, budget=()))
    await broken.start()
    try:
        async with gateways(broken.address) as gateway:
            with pytest.raises(BrokerInternalError, match="invalid calendar: unknown time zone"):
                await gateway.get_market_calendar("NASDAQ")
    finally:
        await broken.stop(grace=0)


async def test_a_gateway_without_the_capability_refuses(gateways: MakeGateway) -> None:
    class _NoCalendars(MemoryBrokerGateway):
        CAPABILITIES = MemoryBrokerGateway.CAPABILITIES - {Capability.MARKET_CALENDAR}

    gateway = _NoCalendars()
    assert Capability.MARKET_CALENDAR not in gateway.capabilities
    with pytest.raises(InvalidRequestError, match="does not report market calendars"):
        await gateway.get_market_calendar("MEM")
