"""GetMarketCalendar on the wire, and the simulated holiday rules for any year."""

from __future__ import annotations

from datetime import date

import grpc
import pytest

from grpc_plugin.bridge._calendars import CALENDARS
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from tests.bridge.conftest import CALL_TIMEOUT, Client, rpc_error


def _day(year: int, month: int, day: int) -> cal.CalendarDate:
    return cal.CalendarDate(year=year, month=month, day=day)


async def test_the_calendar_on_the_wire(client: Client) -> None:
    request = cal.GetMarketCalendarRequest(exchange="NASDAQ", start=_day(2027, 1, 1), end=_day(2027, 12, 31))
    reply = await client.market.GetMarketCalendar(request, timeout=CALL_TIMEOUT)
    assert reply.time_zone == "America/New_York"
    assert list(reply.trading_weekdays) == [1, 2, 3, 4, 5]
    assert [(s.open_second, s.close_second) for s in reply.sessions] == [
        (4 * 3600, 9 * 3600 + 1800),
        (9 * 3600 + 1800, 16 * 3600),
        (16 * 3600, 20 * 3600),
    ]
    assert [s.kind for s in reply.sessions] == [
        cal.SESSION_KIND_PRE_MARKET,
        cal.SESSION_KIND_REGULAR,
        cal.SESSION_KIND_POST_MARKET,
    ]
    days = [date(h.date.year, h.date.month, h.date.day) for h in reply.holidays]
    assert days == sorted(days)
    assert date(2027, 3, 26) in days  # Good Friday 2027 (Easter is 28 March)
    assert date(2027, 6, 18) in days  # Juneteenth on a Saturday, observed on the Friday
    assert date(2027, 12, 24) in days  # Christmas on a Saturday, observed on the Friday
    assert (reply.covers_start, reply.covers_end) == (request.start, request.end)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (cal.GetMarketCalendarRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (cal.GetMarketCalendarRequest(exchange="no spaces"), grpc.StatusCode.INVALID_ARGUMENT),
        (cal.GetMarketCalendarRequest(exchange="LSE"), grpc.StatusCode.NOT_FOUND),
        (
            cal.GetMarketCalendarRequest(exchange="KRX", start=_day(2026, 2, 30)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            cal.GetMarketCalendarRequest(exchange="KRX", start=_day(2026, 2, 1), end=_day(2026, 1, 31)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
async def test_bad_calendar_requests(
    client: Client, request_: cal.GetMarketCalendarRequest, code: grpc.StatusCode
) -> None:
    error = await rpc_error(client.market.GetMarketCalendar(request_, timeout=CALL_TIMEOUT))
    assert error.code() == code, error.details()


def test_holiday_rules() -> None:
    krx = dict(CALENDARS["KRX"].holidays(date(2022, 1, 1), date(2022, 12, 31)))
    assert date(2022, 1, 1) not in krx  # a Saturday: nothing to close
    assert krx[date(2022, 10, 3)] == "National Foundation Day"
    nasdaq = dict(CALENDARS["NASDAQ"].holidays(date(2021, 12, 31), date(2022, 12, 31)))
    # New Year's Day 2022 was a Saturday: NYSE does not close on Friday 31 December 2021.
    assert date(2021, 12, 31) not in nasdaq
    assert nasdaq[date(2022, 1, 17)] == "Martin Luther King Jr. Day"
    assert nasdaq[date(2022, 4, 15)] == "Good Friday"
    assert nasdaq[date(2022, 5, 30)] == "Memorial Day"
    assert nasdaq[date(2022, 11, 24)] == "Thanksgiving Day"
    assert nasdaq[date(2022, 12, 26)] == "Christmas Day"  # a Sunday, observed on the Monday
    assert len([d for d in nasdaq if d.year == 2022]) == 9  # no New Year holiday that year


async def test_instruments_name_the_exchanges_that_have_calendars(client: Client) -> None:
    listing = await client.market.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT)
    assert {i.exchange for i in listing.instruments} == set(CALENDARS)
