"""The simulated exchanges' calendars: KRX and NASDAQ sessions, and holidays made by fixed rules.

Deterministic for any year: KRX closes on its solar holidays (New Year's Day, Independence
Movement Day, Workers' Day, Children's Day, Memorial Day, Liberation Day, National Foundation Day,
Hangul Day, Christmas) and on December 31st; the lunar holidays (Seollal, Chuseok, Buddha's
Birthday) and substitute days are left out, so this is a simulation, not a reference. NASDAQ closes
on the NYSE rule set (New Year's Day, Martin Luther King Jr. Day, Washington's Birthday, Good
Friday, Memorial Day, Juneteenth, Independence Day, Labor Day, Thanksgiving, Christmas), a
Saturday holiday observed on the Friday before and a Sunday one on the Monday after.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, time, timedelta

import attrs

from grpc_plugin.bridge._errors import InvalidArgumentError, NotFoundError
from grpc_plugin.bridge._parse import shown
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2

__all__ = ["CALENDARS", "ExchangeCalendar", "SessionSpec", "calendar_response"]


@attrs.frozen
class SessionSpec:
    """One session of every trading day, local wall-clock time."""

    name: str
    kind: calendar_pb2.SessionKind.ValueType
    open: time
    close: time


_PRE = calendar_pb2.SESSION_KIND_PRE_MARKET
_REGULAR = calendar_pb2.SESSION_KIND_REGULAR
_POST = calendar_pb2.SESSION_KIND_POST_MARKET


@attrs.frozen
class ExchangeCalendar:
    """An exchange's zone, sessions and holiday rule."""

    exchange: str
    time_zone: str
    sessions: tuple[SessionSpec, ...]
    holidays_of_year: Callable[[int], dict[date, str]]

    def holidays(self, start: date, end: date) -> Iterator[tuple[date, str]]:
        """The holidays from `start` to `end`, both inclusive, ascending."""
        for year in range(start.year, end.year + 1):
            for day, name in sorted(self.holidays_of_year(year).items()):
                if start <= day <= end:
                    yield day, name


def _krx_holidays(year: int) -> dict[date, str]:
    fixed = {
        (1, 1): "New Year's Day",
        (3, 1): "Independence Movement Day",
        (5, 1): "Workers' Day",
        (5, 5): "Children's Day",
        (6, 6): "Memorial Day",
        (8, 15): "Liberation Day",
        (10, 3): "National Foundation Day",
        (10, 9): "Hangul Day",
        (12, 25): "Christmas Day",
        (12, 31): "Year-end closing",
    }
    holidays = {date(year, month, day): name for (month, day), name in fixed.items()}
    return {day: name for day, name in holidays.items() if day.weekday() < 5}


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _easter(year: int) -> date:
    # The anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def _nasdaq_holidays(year: int) -> dict[date, str]:
    holidays = {
        _observed(date(year, 1, 1)): "New Year's Day",
        _nth_weekday(year, 1, 0, 3): "Martin Luther King Jr. Day",
        _nth_weekday(year, 2, 0, 3): "Washington's Birthday",
        _easter(year) - timedelta(days=2): "Good Friday",
        _last_weekday(year, 5, 0): "Memorial Day",
        _observed(date(year, 6, 19)): "Juneteenth",
        _observed(date(year, 7, 4)): "Independence Day",
        _nth_weekday(year, 9, 0, 1): "Labor Day",
        _nth_weekday(year, 11, 3, 4): "Thanksgiving Day",
        _observed(date(year, 12, 25)): "Christmas Day",
    }
    # A New Year's Day on a Saturday is not observed on the Friday before (NYSE rule).
    return {day: name for day, name in holidays.items() if day.year == year}


CALENDARS: dict[str, ExchangeCalendar] = {
    "KRX": ExchangeCalendar(
        "KRX",
        "Asia/Seoul",
        (
            SessionSpec("pre-hours closing price", _PRE, time(8, 30), time(8, 40)),
            SessionSpec("regular", _REGULAR, time(9, 0), time(15, 30)),
            SessionSpec("after-hours closing price", _POST, time(15, 40), time(16, 0)),
            SessionSpec("after-hours single price", _POST, time(16, 0), time(18, 0)),
        ),
        _krx_holidays,
    ),
    "NASDAQ": ExchangeCalendar(
        "NASDAQ",
        "America/New_York",
        (
            SessionSpec("pre-market", _PRE, time(4, 0), time(9, 30)),
            SessionSpec("regular", _REGULAR, time(9, 30), time(16, 0)),
            SessionSpec("post-market", _POST, time(16, 0), time(20, 0)),
        ),
        _nasdaq_holidays,
    ),
}
"""The calendar of each exchange the simulated market lists."""


_EXCHANGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,15}")
_MAX_SPAN_DAYS = 3_660


def _date_of(message: calendar_pb2.CalendarDate, field: str) -> date:
    try:
        return date(message.year, message.month, message.day)
    except ValueError:
        shown = f"{message.year:04d}-{message.month:02d}-{message.day:02d}"
        raise InvalidArgumentError(f"{field} {shown} is not a valid date") from None


def _date_message(day: date) -> calendar_pb2.CalendarDate:
    return calendar_pb2.CalendarDate(year=day.year, month=day.month, day=day.day)


def _second(at: time) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


def calendar_response(
    request: calendar_pb2.GetMarketCalendarRequest, today: date
) -> calendar_pb2.GetMarketCalendarResponse:
    """The answer to GetMarketCalendar, holidays from the request's range (defaults around `today`)."""
    if _EXCHANGE.fullmatch(request.exchange) is None:
        raise InvalidArgumentError(
            f"exchange must be 1-16 of A-Z a-z 0-9 . _ -; got {shown(request.exchange)}"
        )
    calendar = CALENDARS.get(request.exchange)
    if calendar is None:
        raise NotFoundError(f"no calendar for exchange {request.exchange!r}")
    start = _date_of(request.start, "start") if request.HasField("start") else date(today.year, 1, 1)
    end = _date_of(request.end, "end") if request.HasField("end") else date(start.year + 1, 12, 31)
    if end < start or (end - start).days > _MAX_SPAN_DAYS:
        raise InvalidArgumentError(f"end must be from start to {_MAX_SPAN_DAYS} days after it")
    return calendar_pb2.GetMarketCalendarResponse(
        exchange=calendar.exchange,
        time_zone=calendar.time_zone,
        sessions=[
            calendar_pb2.TradingSession(
                name=s.name, kind=s.kind, open_second=_second(s.open), close_second=_second(s.close)
            )
            for s in calendar.sessions
        ],
        trading_weekdays=[1, 2, 3, 4, 5],
        holidays=[
            calendar_pb2.Holiday(date=_date_message(day), name=name)
            for day, name in calendar.holidays(start, end)
        ],
        covers_start=_date_message(start),
        covers_end=_date_message(end),
    )
