"""Quote staleness per subscription, against the reference bridge with its streams stalled (faults):
reported and reopened while the market is open, quiet while it is closed, generous without a calendar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import grpc
import pytest

from broker_plugins import BrokerConnectionManager, RateLimiter, StaleStream
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin._staleness import MarketHours
from grpc_plugin.bridge import BridgeConfig, BridgeServer
from grpc_plugin.bridge._gate import Context
from grpc_plugin.bridge._market_service import MarketDataServicer
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from tests.bridge.conftest import LOOPBACK
from tests.gateway.conftest import MakeGateway
from tests.support.streams import aclose
from tests.support.waiting import until

_AFTER = 0.3


def _all_day(holidays: list[datetime] | None = None) -> cal.GetMarketCalendarResponse:
    reply = cal.GetMarketCalendarResponse(
        exchange="NASDAQ",
        time_zone="UTC",
        sessions=[
            cal.TradingSession(
                name="all day", kind=cal.SESSION_KIND_REGULAR, open_second=0, close_second=86_400
            )
        ],
        trading_weekdays=[1, 2, 3, 4, 5, 6, 7],
    )
    for day in holidays or []:
        reply.holidays.add(date=cal.CalendarDate(year=day.year, month=day.month, day=day.day))
    if holidays:
        first, last = min(holidays), max(holidays)
        reply.covers_start.CopyFrom(cal.CalendarDate(year=first.year, month=first.month, day=first.day))
        reply.covers_end.CopyFrom(cal.CalendarDate(year=last.year, month=last.month, day=last.day))
    return reply


class _AlwaysOpen(MarketDataServicer):
    async def GetMarketCalendar(
        self, request: cal.GetMarketCalendarRequest, context: Context
    ) -> cal.GetMarketCalendarResponse:
        async with self._gate.unary("GetMarketCalendar", request, context):
            return _all_day()


class _ClosedThisWeek(MarketDataServicer):
    async def GetMarketCalendar(
        self, request: cal.GetMarketCalendarRequest, context: Context
    ) -> cal.GetMarketCalendarResponse:
        async with self._gate.unary("GetMarketCalendar", request, context):
            today = datetime.now(timezone.utc)
            return _all_day([today + timedelta(days=n) for n in range(-2, 6)])


class _Older(MarketDataServicer):
    async def GetMarketCalendar(
        self, request: cal.GetMarketCalendarRequest, context: Context
    ) -> cal.GetMarketCalendarResponse:
        async with self._gate.unary("GetMarketCalendar", request, context):  # recorded, then refused
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        raise AssertionError("abort raises")


def _bridge_with(servicer: type[MarketDataServicer]) -> BridgeServer:
    server_type: type[BridgeServer] = type(
        f"Bridge{servicer.__name__}", (BridgeServer,), {"market_data_servicer": servicer}
    )
    return server_type(BridgeConfig(host=LOOPBACK, budget=(), tick_rate=50.0))


@pytest.fixture
async def bridges() -> AsyncIterator[list[BridgeServer]]:
    started: list[BridgeServer] = []
    yield started
    for bridge in started:
        await bridge.stop(grace=0)


async def _started(bridges: list[BridgeServer], servicer: type[MarketDataServicer]) -> BridgeServer:
    bridge = _bridge_with(servicer)
    await bridge.start()
    bridges.append(bridge)
    return bridge


def _methods(bridge: BridgeServer, name: str) -> int:
    return sum(1 for r in bridge.requests if r.method == name)


async def test_a_mute_stream_in_an_open_market_is_reported_and_reopened(
    bridges: list[BridgeServer], gateways: MakeGateway
) -> None:
    bridge = await _started(bridges, _AlwaysOpen)
    manager = BrokerConnectionManager(check_interval=60)
    gateway = gateways(bridge.address, quote_stale_after=_AFTER)
    events: list[StaleStream] = []
    gateway.add_stale_listener(events.append)
    manager.add("main", gateway)
    async with manager:
        await manager.wait_connected(10)
        limiter = gateway.rate_limiter
        assert isinstance(limiter, RateLimiter)
        quotes = gateway.stream_quotes(["AAPL"])
        assert (await anext(quotes)).symbol == "AAPL"
        bridge.faults.stall_streams()
        reading = asyncio.ensure_future(anext(quotes))
        await until(lambda: len(events) >= 1 and _methods(bridge, "StreamQuotes") >= 2, within=20)
        [first, *_] = events
        assert (first.stream, first.symbols, first.market_open) == ("quotes", ("AAPL",), True)
        assert first.silent_for >= _AFTER
        assert gateway.last_stale_stream == events[-1]
        assert manager.status("main").stale_stream == events[-1]
        bridge.faults.release_streams()
        assert (await asyncio.wait_for(reading, 20)).symbol == "AAPL"  # the reopened stream delivers
        await aclose(quotes)
        # One ListInstruments and one GetMarketCalendar, cached for every later judgement.
        assert _methods(bridge, "ListInstruments") == _methods(bridge, "GetMarketCalendar") == 1
        permits = limiter.stats().category("market_data").permits_granted
        assert permits == len([r for r in bridge.requests if r.method != "Check"])  # a permit per opening


async def test_a_mute_stream_while_the_market_is_closed_is_quiet(
    bridges: list[BridgeServer], gateways: MakeGateway
) -> None:
    bridge = await _started(bridges, _ClosedThisWeek)
    async with gateways(bridge.address, quote_stale_after=_AFTER) as gateway:
        events: list[StaleStream] = []
        gateway.add_stale_listener(events.append)
        quotes = gateway.stream_quotes(["AAPL"])
        await anext(quotes)
        bridge.faults.stall_streams()
        reading = asyncio.ensure_future(anext(quotes))
        await until(lambda: _methods(bridge, "GetMarketCalendar") == 1, within=20)  # judged once
        await asyncio.sleep(5 * _AFTER)  # several thresholds more: still quiet
        assert events == []
        assert _methods(bridge, "StreamQuotes") == 1
        bridge.faults.release_streams()
        await asyncio.wait_for(reading, 20)
        await aclose(quotes)


async def test_without_a_calendar_the_market_counts_as_open_with_a_longer_threshold(
    bridges: list[BridgeServer], gateways: MakeGateway
) -> None:
    bridge = await _started(bridges, _Older)
    async with gateways(bridge.address, quote_stale_after=_AFTER) as gateway:
        events: list[StaleStream] = []
        gateway.add_stale_listener(events.append)
        quotes = gateway.stream_quotes(["AAPL"])
        await anext(quotes)
        bridge.faults.stall_streams()
        reading = asyncio.ensure_future(anext(quotes))
        await until(lambda: len(events) >= 2, within=30)
        assert events[0].market_open is None
        assert events[0].silent_for >= 5 * _AFTER  # UNCALENDARED_FACTOR
        assert _methods(bridge, "GetMarketCalendar") == 1  # UNIMPLEMENTED once: never asked again
        bridge.faults.release_streams()
        await asyncio.wait_for(reading, 20)
        await aclose(quotes)


async def test_staleness_can_be_switched_off(bridges: list[BridgeServer]) -> None:
    bridge = await _started(bridges, _AlwaysOpen)
    gateway = GrpcBrokerGateway(target=bridge.address, quote_stale_after=None, health_check_interval=None)
    async with gateway:
        quotes = gateway.stream_quotes(["AAPL"])
        await anext(quotes)
        await aclose(quotes)
    assert gateway.last_stale_stream is None
    assert _methods(bridge, "GetMarketCalendar") == 0


async def test_the_reference_bridges_calendars_at_the_session_boundaries(
    bridges: list[BridgeServer], gateways: MakeGateway
) -> None:
    bridge = BridgeServer(BridgeConfig(host=LOOPBACK, budget=()))
    await bridge.start()
    bridges.append(bridge)
    seoul = ZoneInfo("Asia/Seoul")
    new_york = ZoneInfo("America/New_York")
    async with gateways(bridge.address) as gateway:

        async def judged(at: datetime, symbols: list[str]) -> tuple[bool | None, datetime | None]:
            hours = MarketHours(
                gateway.list_instruments,
                gateway.get_market_calendar,
                lambda: at,
            )
            return await hours.state(symbols)

        # KRX, Thursday 2 July 2026: the regular session opens at 09:00 and is closed at 15:30 sharp.
        assert await judged(datetime(2026, 7, 2, 9, 0, tzinfo=seoul), ["005930"]) == (True, None)
        closed, opens = await judged(datetime(2026, 7, 2, 15, 30, tzinfo=seoul), ["005930"])
        assert (closed, opens) == (False, datetime(2026, 7, 2, 15, 40, tzinfo=seoul))
        # After the last session, the next is the following day's pre-hours.
        assert (await judged(datetime(2026, 7, 2, 18, 0, tzinfo=seoul), ["005930"]))[1] == datetime(
            2026, 7, 3, 8, 30, tzinfo=seoul
        )
        # NASDAQ on its holiday (3 July observed), with KRX closed too at that hour: quiet until Monday.
        holiday_noon = datetime(2026, 7, 3, 12, 0, tzinfo=new_york)  # 01:00 Saturday in Seoul
        closed, opens = await judged(holiday_noon, ["AAPL", "005930"])
        assert closed is False
        assert opens == datetime(2026, 7, 6, 8, 30, tzinfo=seoul)  # KRX opens first, Monday
        # Post-market runs to 20:00 New York time, across the DST change in November too.
        assert (await judged(datetime(2026, 11, 2, 19, 59, tzinfo=new_york), ["AAPL"]))[0] is True
        assert (await judged(datetime(2026, 11, 2, 20, 0, tzinfo=new_york), ["AAPL"]))[0] is False
