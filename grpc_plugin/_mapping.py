"""Exact mapping between protobuf messages of `broker.bridge.v1` and `broker_plugins` entities.

Enum numbers this client does not know (a newer bridge) map to the entity enum's `UNKNOWN`
instead of failing the reply.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from broker_plugins import (
    Balance,
    Instrument,
    Interval,
    InvalidRequestError,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Quote,
    Side,
    TimeInForce,
)
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, trading_pb2

__all__ = [
    "balance_from",
    "decimal_from",
    "decimal_to",
    "instrument_from",
    "interval_to",
    "order_from",
    "order_request_to",
    "order_update_from",
    "position_from",
    "quote_from",
    "time_from",
    "time_to",
]

_INT64 = 2**63

_SIDES = {trading_pb2.SIDE_BUY: Side.BUY, trading_pb2.SIDE_SELL: Side.SELL}
_ORDER_TYPES = {
    trading_pb2.ORDER_TYPE_MARKET: OrderType.MARKET,
    trading_pb2.ORDER_TYPE_LIMIT: OrderType.LIMIT,
}
_TIMES_IN_FORCE = {
    trading_pb2.TIME_IN_FORCE_DAY: TimeInForce.DAY,
    trading_pb2.TIME_IN_FORCE_GTC: TimeInForce.GTC,
    trading_pb2.TIME_IN_FORCE_IOC: TimeInForce.IOC,
    trading_pb2.TIME_IN_FORCE_FOK: TimeInForce.FOK,
}
_STATUSES = {
    trading_pb2.ORDER_STATUS_PENDING_NEW: OrderStatus.PENDING_NEW,
    trading_pb2.ORDER_STATUS_NEW: OrderStatus.NEW,
    trading_pb2.ORDER_STATUS_PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    trading_pb2.ORDER_STATUS_FILLED: OrderStatus.FILLED,
    trading_pb2.ORDER_STATUS_CANCELED: OrderStatus.CANCELLED,
    trading_pb2.ORDER_STATUS_REJECTED: OrderStatus.REJECTED,
    trading_pb2.ORDER_STATUS_EXPIRED: OrderStatus.EXPIRED,
}
_INTERVALS = {
    Interval.M1: market_data_pb2.INTERVAL_ONE_MINUTE,
    Interval.M5: market_data_pb2.INTERVAL_FIVE_MINUTES,
    Interval.M15: market_data_pb2.INTERVAL_FIFTEEN_MINUTES,
    Interval.H1: market_data_pb2.INTERVAL_ONE_HOUR,
    Interval.D1: market_data_pb2.INTERVAL_ONE_DAY,
}
_SIDES_OUT = {domain: wire for wire, domain in _SIDES.items()}
_ORDER_TYPES_OUT = {domain: wire for wire, domain in _ORDER_TYPES.items()}
_TIMES_IN_FORCE_OUT = {domain: wire for wire, domain in _TIMES_IN_FORCE.items()}


_DECIMALS: dict[tuple[int, int], Decimal] = {}


def decimal_from(message: common_pb2.Decimal) -> Decimal:
    """The exact value of a wire `Decimal`.

    Prices and sizes on a tick grid repeat constantly, and a cache hit costs a fifth of building
    the Decimal; the cache is bounded, since a long-running feed wanders.
    """
    key = (message.mantissa, message.exponent)
    value = _DECIMALS.get(key)
    if value is None:
        if len(_DECIMALS) >= 100_000:
            _DECIMALS.clear()
        value = _DECIMALS[key] = Decimal(key[0]).scaleb(key[1])
    return value


def decimal_to(value: Decimal, *, field: str = "value") -> common_pb2.Decimal:
    """A wire `Decimal` holding `value` exactly; `InvalidRequestError` if it cannot fit."""
    if not value.is_finite():
        raise InvalidRequestError(f"{field} must be finite, got {value}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values have an int exponent
    mantissa = int("".join(map(str, digits)) or "0")
    while mantissa >= _INT64 and mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    if mantissa >= _INT64:
        raise InvalidRequestError(f"{field} {value} has more digits than the bridge carries (19)")
    return common_pb2.Decimal(mantissa=-mantissa if sign else mantissa, exponent=exponent)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def time_from(message: Timestamp) -> datetime:
    """A timezone-aware UTC datetime (microsecond precision)."""
    # Exact, and twice as fast as fromtimestamp(...).replace(microsecond=...) on an aware datetime.
    return _EPOCH + timedelta(seconds=message.seconds, microseconds=message.nanos // 1000)


def time_to(value: datetime) -> Timestamp:
    """A wire timestamp; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(f"datetime {value.isoformat()} has no timezone; give an aware (UTC) time")
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(timezone.utc))
    return stamp


def interval_to(interval: Interval) -> market_data_pb2.Interval.ValueType:
    """The wire enum of a candle interval."""
    return _INTERVALS[interval]


def _optional_decimal(message: Message, field: str) -> Decimal | None:
    if message.HasField(field):
        return decimal_from(getattr(message, field))
    return None


def instrument_from(message: market_data_pb2.Instrument) -> Instrument:
    """An `Instrument` from its wire form."""
    return Instrument(
        symbol=message.symbol,
        name=message.name,
        exchange=message.exchange,
        currency=message.currency,
        tick_size=decimal_from(message.tick_size),
        lot_size=decimal_from(message.lot_size),
    )


def quote_from(message: market_data_pb2.Quote) -> Quote:
    """A `Quote` from its wire form."""
    return Quote(
        symbol=message.symbol,
        bid=decimal_from(message.bid),
        bid_size=decimal_from(message.bid_size),
        ask=decimal_from(message.ask),
        ask_size=decimal_from(message.ask_size),
        last=_optional_decimal(message, "last"),
        time=time_from(message.time),
    )


def order_from(message: trading_pb2.Order) -> Order:
    """An `Order` from its wire form; unknown enum numbers become `UNKNOWN`."""
    return Order(
        order_id=message.order_id,
        client_order_id=message.client_order_id,
        symbol=message.symbol,
        side=_SIDES.get(message.side, Side.UNKNOWN),
        order_type=_ORDER_TYPES.get(message.order_type, OrderType.UNKNOWN),
        quantity=decimal_from(message.quantity),
        price=_optional_decimal(message, "limit_price"),
        time_in_force=_TIMES_IN_FORCE.get(message.time_in_force, TimeInForce.UNKNOWN),
        status=_STATUSES.get(message.status, OrderStatus.UNKNOWN),
        filled_quantity=decimal_from(message.filled_quantity),
        average_fill_price=_optional_decimal(message, "average_fill_price"),
        created_at=time_from(message.create_time),
        updated_at=time_from(message.update_time),
        reject_reason=message.reject_reason,
    )


def order_update_from(message: trading_pb2.OrderUpdate) -> OrderUpdate:
    """An `OrderUpdate` from its wire form."""
    return OrderUpdate(
        order=order_from(message.order),
        sequence=message.sequence,
        time=time_from(message.time),
        fill_quantity=_optional_decimal(message, "fill_quantity") or Decimal(0),
        fill_price=_optional_decimal(message, "fill_price"),
    )


def order_request_to(request: OrderRequest) -> trading_pb2.PlaceOrderRequest:
    """The PlaceOrder request for `request`, its client_order_id included."""
    message = trading_pb2.PlaceOrderRequest(
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=_SIDES_OUT[request.side],
        order_type=_ORDER_TYPES_OUT[request.order_type],
        quantity=decimal_to(request.quantity, field="quantity"),
        time_in_force=_TIMES_IN_FORCE_OUT[request.time_in_force],
    )
    if request.price is not None:
        message.limit_price.CopyFrom(decimal_to(request.price, field="price"))
    return message


def position_from(message: trading_pb2.Position) -> Position:
    """A `Position` from its wire form."""
    return Position(
        symbol=message.symbol,
        quantity=decimal_from(message.quantity),
        average_price=decimal_from(message.average_price),
        market_price=_optional_decimal(message, "market_price"),
    )


def balance_from(message: trading_pb2.Balance) -> Balance:
    """A `Balance` from its wire form."""
    return Balance(
        currency=message.currency,
        cash=decimal_from(message.cash),
        buying_power=decimal_from(message.buying_power),
        equity=decimal_from(message.equity),
    )
