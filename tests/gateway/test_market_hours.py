"""MarketHours on its own: which calendars it asks for, what it caches, and what "unknown" means."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from broker_plugins import (
    BrokerInternalError,
    BrokerUnavailableError,
    Instrument,
    InvalidRequestError,
    MarketCalendar,
    NotFoundError,
    SessionKind,
    TradingSession,
)
from grpc_plugin._calendar import calendar_from
from grpc_plugin._staleness import MarketHours
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from tests.core.test_calendar import KRX, NASDAQ

_MONDAY_NOON_SEOUL = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)  # 12:00 KST, 22:00 ET on Sunday


def _instrument(symbol: str, exchange: str) -> Instrument:
    return Instrument(symbol, symbol, exchange, "USD", tick_size=1, lot_size=1)  # type: ignore[arg-type]


class _Bridge:
    """What MarketHours asks, answered from plain data, counting the requests."""

    def __init__(self, calendars: dict[str, MarketCalendar | Exception]) -> None:
        self.calendars = calendars
        self.listed = [_instrument("005930", "KRX"), _instrument("AAPL", "NASDAQ"), _instrument("X", "LSE")]
        self.asked: list[str] = []

    async def list_instruments(self) -> list[Instrument]:
        self.asked.append("list")
        return self.listed

    async def calendar(self, exchange: str) -> MarketCalendar:
        self.asked.append(exchange)
        found = self.calendars.get(exchange, NotFoundError(exchange))
        if isinstance(found, Exception):
            raise found
        return found


def _hours(bridge: _Bridge, now: datetime = _MONDAY_NOON_SEOUL) -> MarketHours:
    return MarketHours(bridge.list_instruments, bridge.calendar, lambda: now)


async def test_open_if_any_market_of_the_symbols_is_open_and_calendars_are_cached() -> None:
    bridge = _Bridge({"KRX": KRX, "NASDAQ": NASDAQ})
    hours = _hours(bridge)
    assert await hours.state(["005930", "AAPL"]) == (True, None)
    market_open, next_open = await hours.state(["AAPL"])
    assert market_open is False
    assert next_open == datetime(2026, 3, 2, 4, 0, tzinfo=NASDAQ.zone)  # Monday's pre-market
    assert bridge.asked == ["list", "KRX", "NASDAQ"]  # nothing asked twice


async def test_unknown_symbols_exchanges_and_failures_mean_no_calendar() -> None:
    bridge = _Bridge({"KRX": KRX, "NASDAQ": BrokerUnavailableError("down")})
    hours = _hours(bridge)
    assert await hours.state(["NOPE"]) == (None, None)  # not listed
    assert await hours.state(["X"]) == (None, None)  # LSE: the bridge has no calendar for it
    assert await hours.state(["AAPL"]) == (None, None)  # unreachable for now...
    bridge.calendars["NASDAQ"] = NASDAQ
    assert (await hours.state(["AAPL"]))[0] is False  # ...asked again next time
    assert await hours.state(["X"]) == (None, None)
    assert bridge.asked.count("LSE") == 1  # "none for this exchange" is remembered


async def test_a_bridge_without_calendars_is_never_asked_again() -> None:
    bridge = _Bridge({"KRX": InvalidRequestError("reports no market calendars")})
    hours = _hours(bridge)
    assert await hours.state(["005930"]) == (None, None)
    assert await hours.state(["005930"]) == (None, None)
    assert bridge.asked == ["list", "KRX"]


async def test_a_calendar_is_fetched_again_once_its_holidays_run_out() -> None:
    short = MarketCalendar(
        exchange="KRX",
        time_zone="Asia/Seoul",
        sessions=(TradingSession("regular", SessionKind.REGULAR, time(9), time(15, 30)),),
        covers_start=date(2026, 1, 1),
        covers_end=date(2026, 3, 2),
    )
    bridge = _Bridge({"KRX": short})
    hours = _hours(bridge)
    await hours.state(["005930"])
    await hours.state(["005930"])
    assert bridge.asked.count("KRX") == 2  # covers only up to today: asked for a fresh one
    assert hours.now() == _MONDAY_NOON_SEOUL


def test_a_session_the_bridge_sends_backwards_is_a_broker_internal_error() -> None:
    reply = cal.GetMarketCalendarResponse(exchange="KRX", time_zone="Asia/Seoul")
    reply.sessions.add(name="regular", open_second=54_000, close_second=32_400)
    with pytest.raises(BrokerInternalError, match="runs from second 54000 to 32400"):
        calendar_from(reply, target="bridge:1")
    reply.sessions[0].close_second = 86_400
    assert calendar_from(reply, target="bridge:1").sessions[0].close is None  # to midnight
