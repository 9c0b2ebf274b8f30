"""GetMarketCalendar replies to `MarketCalendar`, and what a bridge without the RPC means.

A bridge older than GetMarketCalendar answers UNIMPLEMENTED: the gateway then says, with
`InvalidRequestError`, that this bridge reports no calendars (as for a gateway without the
`MARKET_CALENDAR` capability); quote staleness then stops asking and treats markets as open.
"""

from __future__ import annotations

from datetime import date, time

from broker_plugins import BrokerInternalError, MarketCalendar, SessionKind, TradingSession
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2

__all__ = ["calendar_from", "date_to"]

_KINDS = {
    calendar_pb2.SESSION_KIND_PRE_MARKET: SessionKind.PRE_MARKET,
    calendar_pb2.SESSION_KIND_REGULAR: SessionKind.REGULAR,
    calendar_pb2.SESSION_KIND_POST_MARKET: SessionKind.POST_MARKET,
}
_DAY = 86_400
_MONDAY_TO_FRIDAY = (1, 2, 3, 4, 5)


def date_to(day: date) -> calendar_pb2.CalendarDate:
    """A date as the contract's `CalendarDate`."""
    return calendar_pb2.CalendarDate(year=day.year, month=day.month, day=day.day)


def _date_from(message: calendar_pb2.CalendarDate) -> date:
    return date(message.year, message.month, message.day)


def _time_from(second: int) -> time:
    hours, rest = divmod(second, 3600)
    return time(hours, *divmod(rest, 60))


def _session_from(message: calendar_pb2.TradingSession) -> TradingSession:
    if not message.open_second < message.close_second <= _DAY:
        raise ValueError(
            f"session {message.name!r} runs from second {message.open_second} to {message.close_second}"
        )
    close = None if message.close_second == _DAY else _time_from(message.close_second)
    kind = _KINDS.get(message.kind, SessionKind.UNKNOWN)
    return TradingSession(message.name, kind, _time_from(message.open_second), close)


def calendar_from(reply: calendar_pb2.GetMarketCalendarResponse, *, target: str) -> MarketCalendar:
    """The calendar a bridge reported; `BrokerInternalError` when the reply breaks the contract."""
    try:
        return MarketCalendar(
            exchange=reply.exchange,
            time_zone=reply.time_zone,
            sessions=tuple(_session_from(s) for s in reply.sessions),
            holidays=frozenset(_date_from(h.date) for h in reply.holidays),
            trading_weekdays=frozenset(reply.trading_weekdays or _MONDAY_TO_FRIDAY),
            covers_start=_date_from(reply.covers_start) if reply.HasField("covers_start") else None,
            covers_end=_date_from(reply.covers_end) if reply.HasField("covers_end") else None,
        )
    except (ValueError, TypeError) as exc:  # InvalidRequestError is a ValueError too
        raise BrokerInternalError(
            f"GetMarketCalendar on {target}: the bridge sent an invalid calendar: {exc}"
        ) from None
