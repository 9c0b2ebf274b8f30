"""A memory gateway that breaks the market-calendar clause."""

from __future__ import annotations

from datetime import date, time

from memory_broker import MemoryBrokerGateway

from broker_plugins import MarketCalendar, SessionKind, TradingSession

__all__ = ["MadeUpCalendarGateway"]


class MadeUpCalendarGateway(MemoryBrokerGateway):
    """MC-1: answers from a calendar it made up, of another exchange, without asking the backend."""

    async def _get_market_calendar(
        self, exchange: str, start: date | None, end: date | None
    ) -> MarketCalendar:
        return MarketCalendar(
            exchange="XNYS",
            time_zone="America/New_York",
            sessions=(TradingSession("regular", SessionKind.REGULAR, time(9, 30), time(16)),),
        )
