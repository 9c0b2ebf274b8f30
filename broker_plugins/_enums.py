"""Enumerations of the trading domain and of the connection lifecycle.

Enums a broker reports (`Side`, `OrderType`, `OrderStatus`, `TimeInForce`) have an `UNKNOWN` member:
a gateway maps a value that a newer server sends, and this client does not know, to it instead of
failing the whole reply. Requests never accept `UNKNOWN`.
"""

from __future__ import annotations

import enum
from datetime import timedelta

__all__ = [
    "Capability",
    "ConnectionState",
    "Interval",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
]


class _StrEnum(str, enum.Enum):
    # enum.StrEnum arrived in 3.11; this keeps str() and f-strings equal to the value on 3.10 too.
    def __str__(self) -> str:
        return str(self.value)


class Side(_StrEnum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"
    UNKNOWN = "unknown"


class OrderType(_StrEnum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"
    UNKNOWN = "unknown"


class TimeInForce(_StrEnum):
    """How long an order works before the broker expires it."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    UNKNOWN = "unknown"


class OrderStatus(_StrEnum):
    """Where an order is in its life."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_open(self) -> bool:
        """True while the order can still fill, be cancelled or be modified."""
        return self in _OPEN_STATUSES


_OPEN_STATUSES = frozenset({OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})


class Interval(_StrEnum):
    """Candle length; the value is the spelling hosts and configs use (`Interval("5m")`)."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"

    @property
    def duration(self) -> timedelta:
        """The time one candle spans."""
        return _DURATIONS[self]


_DURATIONS = {
    Interval.M1: timedelta(minutes=1),
    Interval.M5: timedelta(minutes=5),
    Interval.M15: timedelta(minutes=15),
    Interval.H1: timedelta(hours=1),
    Interval.D1: timedelta(days=1),
}


class ConnectionState(_StrEnum):
    """The lifecycle of a gateway's connection.

    `DISCONNECTED` before `connect()`, `CONNECTING` during the first attempt, `CONNECTED` while calls
    can succeed, `RECONNECTING` after a failure while the gateway retries on its own, and `CLOSED`
    after `disconnect()` (a closed gateway may be connected again).
    """

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class Capability(_StrEnum):
    """Optional features a gateway may declare in `capabilities`.

    Rate limiting and reconnecting are not capabilities: every gateway must do both.
    """

    QUOTE_STREAM = "quote_stream"
    """`stream_quotes` works."""
    ORDER_UPDATE_STREAM = "order_update_stream"
    """`stream_order_updates` works."""
    MODIFY_ORDER = "modify_order"
    """`modify_order` works (otherwise it raises `InvalidRequestError`)."""
    STREAM_RESUME = "stream_resume"
    """Open streams keep yielding after a reconnect, without the caller re-subscribing."""
    HALF_OPEN_DETECTION = "half_open_detection"
    """A peer that goes silent without closing the connection is detected within a declared bound."""
    MARKET_CALENDAR = "market_calendar"
    """`get_market_calendar` works: the broker reports each exchange's sessions and holidays."""
