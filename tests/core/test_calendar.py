"""MarketCalendar at its boundaries: the open and close instants, holidays, weekends, DST."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from broker_plugins import InvalidRequestError, MarketCalendar, SessionKind, StaleStream, TradingSession
from broker_plugins._staleness import StaleReports

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")

KRX = MarketCalendar(
    exchange="KRX",
    time_zone="Asia/Seoul",
    sessions=(
        TradingSession("pre-hours closing price", SessionKind.PRE_MARKET, time(8, 30), time(8, 40)),
        TradingSession("regular", SessionKind.REGULAR, time(9, 0), time(15, 30)),
        TradingSession("after-hours closing price", SessionKind.POST_MARKET, time(15, 40), time(16, 0)),
        TradingSession("after-hours single price", SessionKind.POST_MARKET, time(16, 0), time(18, 0)),
    ),
    holidays=frozenset({date(2026, 5, 5)}),  # Children's Day, a Tuesday
)
NASDAQ = MarketCalendar(
    exchange="NASDAQ",
    time_zone="America/New_York",
    sessions=(
        TradingSession("pre-market", SessionKind.PRE_MARKET, time(4, 0), time(9, 30)),
        TradingSession("regular", SessionKind.REGULAR, time(9, 30), time(16, 0)),
        TradingSession("post-market", SessionKind.POST_MARKET, time(16, 0), time(20, 0)),
    ),
    holidays=frozenset({date(2026, 7, 3)}),  # Independence Day observed, a Friday
)


def seoul(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=SEOUL)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


def test_krx_regular_session_opens_at_nine_and_is_closed_at_half_past_three() -> None:
    monday = (2026, 3, 2)
    assert KRX.session_at(seoul(*monday, 9, 0)) == KRX.sessions[1]
    assert KRX.session_at(seoul(*monday, 8, 59, 59)) is None  # between pre-hours and regular
    assert KRX.session_at(seoul(*monday, 15, 29, 59)).name == "regular"  # type: ignore[union-attr]
    assert KRX.session_at(seoul(*monday, 15, 30)) is None  # the close is not in the session
    assert KRX.is_open(seoul(*monday, 8, 30))
    assert not KRX.is_open(seoul(*monday, 8, 40))
    assert KRX.session_at(seoul(*monday, 16, 0)).name == "after-hours single price"  # type: ignore[union-attr]
    assert not KRX.is_open(seoul(*monday, 18, 0))


def test_an_instant_in_any_zone_is_judged_on_the_exchange_clock() -> None:
    # 00:00 UTC is 09:00 in Seoul (no DST there)
    assert KRX.session_at(datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)) == KRX.sessions[1]
    assert not KRX.is_open(datetime(2026, 3, 2, 6, 30, tzinfo=timezone.utc))  # 15:30 KST


def test_holidays_and_weekends_are_closed_and_next_open_skips_them() -> None:
    assert not KRX.is_open(seoul(2026, 5, 5, 10, 0))  # the holiday
    assert not KRX.is_open(seoul(2026, 3, 7, 10, 0))  # a Saturday
    assert not KRX.is_trading_day(date(2026, 3, 8))
    # Monday 4 May after the last session: Tuesday is the holiday, Wednesday opens pre-hours.
    assert KRX.next_open(seoul(2026, 5, 4, 18, 0)) == seoul(2026, 5, 6, 8, 30)
    # Friday evening: the next opening is Monday's pre-hours session.
    assert KRX.next_open(seoul(2026, 3, 6, 20, 0)) == seoul(2026, 3, 9, 8, 30)
    assert NASDAQ.next_open(new_york(2026, 7, 2, 20, 0)) == new_york(2026, 7, 6, 4, 0)


def test_next_open_is_strictly_after() -> None:
    at_open = seoul(2026, 3, 2, 9, 0)
    assert KRX.next_open(at_open) == seoul(2026, 3, 2, 15, 40)
    assert KRX.next_open(at_open - timedelta(microseconds=1)) == at_open
    assert KRX.next_open(seoul(2026, 3, 2, 15, 30)) == seoul(2026, 3, 2, 15, 40)


def test_nasdaq_follows_daylight_saving_time() -> None:
    # 2026-03-08: New York moves from EST (UTC-5) to EDT (UTC-4); the open stays 09:30 local.
    friday_open = NASDAQ.next_open(new_york(2026, 3, 6, 9, 0))
    monday_open = NASDAQ.next_open(new_york(2026, 3, 9, 9, 0))
    assert friday_open.astimezone(timezone.utc) == datetime(2026, 3, 6, 14, 30, tzinfo=timezone.utc)
    assert monday_open.astimezone(timezone.utc) == datetime(2026, 3, 9, 13, 30, tzinfo=timezone.utc)
    assert NASDAQ.session_at(datetime(2026, 3, 9, 13, 30, tzinfo=timezone.utc)).name == "regular"  # type: ignore[union-attr]
    assert NASDAQ.session_at(datetime(2026, 3, 6, 13, 30, tzinfo=timezone.utc)).name == "pre-market"  # type: ignore[union-attr]
    # 2026-11-01 back to EST: on Monday 2 November 16:00 local is 21:00 UTC
    assert not NASDAQ.is_open(datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc))  # 20:00 EST, closed
    assert NASDAQ.is_open(datetime(2026, 11, 3, 0, 59, tzinfo=timezone.utc))  # 19:59 EST, post-market
    # Sunday 1 November (the change itself): closed all day, opens Monday 04:00 EST = 09:00 UTC
    assert NASDAQ.next_open(datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc)) == new_york(2026, 11, 2, 4, 0)
    assert new_york(2026, 11, 2, 4, 0).astimezone(timezone.utc).hour == 9


def test_a_session_to_midnight_and_sessions_of_a_day() -> None:
    late = MarketCalendar(
        exchange="LATE",
        time_zone="UTC",
        sessions=(TradingSession("evening", SessionKind.REGULAR, time(22, 0)),),
        trading_weekdays=frozenset({1, 2, 3, 4, 5, 6, 7}),
    )
    assert late.is_open(datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone.utc))
    assert not late.is_open(datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc))
    [(session, opens, closes)] = late.sessions_on(date(2026, 3, 1))
    assert (session.name, closes - opens) == ("evening", timedelta(hours=2))
    assert KRX.sessions_on(date(2026, 5, 5)) == []
    assert [s.name for s, _, _ in NASDAQ.sessions_on(date(2026, 3, 9))] == [
        "pre-market",
        "regular",
        "post-market",
    ]


def test_a_calendar_refuses_what_cannot_be_a_calendar() -> None:
    regular = TradingSession("regular", SessionKind.REGULAR, time(9), time(15))
    with pytest.raises(InvalidRequestError, match=r"closes .* before it opens"):
        TradingSession("bad", SessionKind.REGULAR, time(10), time(9))
    with pytest.raises(InvalidRequestError, match="at least one session"):
        MarketCalendar(exchange="X", time_zone="UTC", sessions=())
    with pytest.raises(InvalidRequestError, match="not overlap"):
        MarketCalendar(exchange="X", time_zone="UTC", sessions=(regular, regular))
    late = TradingSession("late", SessionKind.REGULAR, time(20))
    with pytest.raises(InvalidRequestError, match="not overlap"):
        MarketCalendar(exchange="X", time_zone="UTC", sessions=(late, regular))
    with pytest.raises(InvalidRequestError, match="unknown time zone"):
        MarketCalendar(exchange="X", time_zone="Mars/Olympus", sessions=(regular,))
    with pytest.raises(InvalidRequestError, match="ISO weekdays"):
        MarketCalendar(exchange="X", time_zone="UTC", sessions=(regular,), trading_weekdays=frozenset({0}))
    with pytest.raises(InvalidRequestError, match="has no timezone"):
        KRX.is_open(datetime(2026, 3, 2, 10, 0))
    with pytest.raises(InvalidRequestError, match="must be a datetime"):
        KRX.next_open("tomorrow")  # type: ignore[arg-type]
    assert str(SessionKind.REGULAR) == "regular"


def test_a_stale_listener_that_raises_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reports = StaleReports()
    heard: list[StaleStream] = []

    def broken(event: StaleStream) -> None:
        raise RuntimeError("host bug")

    reports.add(broken)
    remove = reports.add(heard.append)
    event = StaleStream(
        stream="quotes", symbols=("AAPL",), silent_for=1.0, time=new_york(2026, 3, 2, 10, 0), market_open=True
    )
    reports.report(event)
    assert heard == [event]
    assert (reports.last, reports.count) == (event, 1)
    assert "stale stream listener" in caplog.text
    remove()
    remove()  # twice is harmless
    reports.report(event)
    assert heard == [event]
