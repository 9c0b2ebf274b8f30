"""BK-MD-4: a market calendar, where the bridge offers one, is one a client can use."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
import pytest

from conformance_tests.bridge._check import Check
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md

_NO_SUCH_EXCHANGE = "BKKITNOSUCHX"  # well-formed, and no market is called that
_DAY = 86_400


def _day(value: cal.CalendarDate) -> date | None:
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        return None


def _sessions_problem(reply: cal.GetMarketCalendarResponse) -> str:
    if not reply.sessions:
        return "no sessions"
    previous_close = 0
    for session in reply.sessions:
        if not previous_close <= session.open_second < session.close_second <= _DAY:
            return f"session {session.name!r} from second {session.open_second} to {session.close_second}"
        previous_close = session.close_second
    if any(not 1 <= weekday <= 7 for weekday in reply.trading_weekdays):
        return f"trading weekdays {list(reply.trading_weekdays)}"
    return ""


def _holidays_problem(reply: cal.GetMarketCalendarResponse) -> str:
    start, end = _day(reply.covers_start), _day(reply.covers_end)
    if start is None or end is None or end < start:
        return "no valid covered range (covers_start to covers_end)"
    days = [_day(holiday.date) for holiday in reply.holidays]
    valid = [day for day in days if day is not None and start <= day <= end]
    if len(valid) != len(days):
        return "a holiday that is not a valid date within the covered range"
    return "" if valid == sorted(valid) else "holidays not ascending"


def _problem(reply: cal.GetMarketCalendarResponse, exchange: str) -> str:
    """What is wrong with a calendar reply ("" if nothing)."""
    try:
        ZoneInfo(reply.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"time zone {reply.time_zone!r} is not an IANA zone"
    if reply.exchange != exchange:
        return f"the calendar of {reply.exchange!r}"
    return _sessions_problem(reply) or _holidays_problem(reply)


def test_bk_md4_a_market_calendar_is_valid_and_an_unknown_exchange_not_found(
    check: Check, instrument: md.Instrument
) -> None:
    market = check.wire.main.market
    request = cal.GetMarketCalendarRequest(exchange=instrument.exchange)
    sent = f"GetMarketCalendar(exchange={instrument.exchange!r})"
    outcome = check.expect(
        check.call(market.GetMarketCalendar, request),
        (grpc.StatusCode.OK, grpc.StatusCode.UNIMPLEMENTED),
        sent,
    )
    if outcome.code is grpc.StatusCode.UNIMPLEMENTED:
        pytest.skip(
            "[BK-MD-4] the bridge does not offer GetMarketCalendar (an optional RPC): nothing to check"
        )
    problem = _problem(outcome.reply, instrument.exchange)
    if problem:
        check.fail(sent, problem)
    sent = f"GetMarketCalendar(exchange={_NO_SUCH_EXCHANGE!r})"
    check.expect(
        check.call(market.GetMarketCalendar, cal.GetMarketCalendarRequest(exchange=_NO_SUCH_EXCHANGE)),
        grpc.StatusCode.NOT_FOUND,
        sent,
        rule=1,
    )
