"""Domain values to protobuf messages (the servicers' outbound half)."""

from __future__ import annotations

from decimal import Decimal

from google.protobuf.timestamp_pb2 import Timestamp

from grpc_plugin.bridge._accounting import BalanceView
from grpc_plugin.bridge._candles import Interval
from grpc_plugin.bridge._instruments import InstrumentSpec
from grpc_plugin.bridge._market import MarketQuote
from grpc_plugin.bridge._orders import (
    Holding,
    OrderEvent,
    OrderStatus,
    OrderType,
    OrderUpdateRecord,
    PaperOrder,
    Side,
    TimeInForce,
)
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, trading_pb2

__all__ = [
    "INTERVALS",
    "ORDER_TYPES",
    "SIDES",
    "TIMES_IN_FORCE",
    "balance_message",
    "decimal_message",
    "instrument_message",
    "order_message",
    "position_message",
    "quote_message",
    "timestamp",
    "update_message",
]

_SINT64_MAX = (1 << 63) - 1

INTERVALS: dict[Interval, market_data_pb2.Interval.ValueType] = {
    Interval.ONE_MINUTE: market_data_pb2.INTERVAL_ONE_MINUTE,
    Interval.FIVE_MINUTES: market_data_pb2.INTERVAL_FIVE_MINUTES,
    Interval.FIFTEEN_MINUTES: market_data_pb2.INTERVAL_FIFTEEN_MINUTES,
    Interval.ONE_HOUR: market_data_pb2.INTERVAL_ONE_HOUR,
    Interval.ONE_DAY: market_data_pb2.INTERVAL_ONE_DAY,
}
SIDES: dict[Side, trading_pb2.Side.ValueType] = {
    Side.BUY: trading_pb2.SIDE_BUY,
    Side.SELL: trading_pb2.SIDE_SELL,
}
ORDER_TYPES: dict[OrderType, trading_pb2.OrderType.ValueType] = {
    OrderType.MARKET: trading_pb2.ORDER_TYPE_MARKET,
    OrderType.LIMIT: trading_pb2.ORDER_TYPE_LIMIT,
    OrderType.STOP: trading_pb2.ORDER_TYPE_STOP,
    OrderType.STOP_LIMIT: trading_pb2.ORDER_TYPE_STOP_LIMIT,
    OrderType.BEST_LIMIT: trading_pb2.ORDER_TYPE_BEST_LIMIT,
    OrderType.CONDITIONAL_LIMIT: trading_pb2.ORDER_TYPE_CONDITIONAL_LIMIT,
}
TIMES_IN_FORCE: dict[TimeInForce, trading_pb2.TimeInForce.ValueType] = {
    TimeInForce.DAY: trading_pb2.TIME_IN_FORCE_DAY,
    TimeInForce.GTC: trading_pb2.TIME_IN_FORCE_GTC,
    TimeInForce.IOC: trading_pb2.TIME_IN_FORCE_IOC,
    TimeInForce.FOK: trading_pb2.TIME_IN_FORCE_FOK,
}
_STATUSES: dict[OrderStatus, trading_pb2.OrderStatus.ValueType] = {
    OrderStatus.PENDING_NEW: trading_pb2.ORDER_STATUS_PENDING_NEW,
    OrderStatus.NEW: trading_pb2.ORDER_STATUS_NEW,
    OrderStatus.PARTIALLY_FILLED: trading_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    OrderStatus.FILLED: trading_pb2.ORDER_STATUS_FILLED,
    OrderStatus.CANCELED: trading_pb2.ORDER_STATUS_CANCELED,
    OrderStatus.REJECTED: trading_pb2.ORDER_STATUS_REJECTED,
    OrderStatus.EXPIRED: trading_pb2.ORDER_STATUS_EXPIRED,
}
_EVENTS: dict[OrderEvent, trading_pb2.OrderEvent.ValueType] = {
    OrderEvent.ACCEPTED: trading_pb2.ORDER_EVENT_ACCEPTED,
    OrderEvent.REJECTED: trading_pb2.ORDER_EVENT_REJECTED,
    OrderEvent.FILL: trading_pb2.ORDER_EVENT_FILL,
    OrderEvent.MODIFIED: trading_pb2.ORDER_EVENT_MODIFIED,
    OrderEvent.CANCELED: trading_pb2.ORDER_EVENT_CANCELED,
    OrderEvent.EXPIRED: trading_pb2.ORDER_EVENT_EXPIRED,
    OrderEvent.TRIGGERED: trading_pb2.ORDER_EVENT_TRIGGERED,
}


def decimal_message(value: Decimal) -> common_pb2.Decimal:
    """An exact `Decimal` message; trailing zeros are dropped if the mantissa would overflow."""
    if not value.is_finite():
        raise ValueError(f"cannot send the non-finite number {value}")
    sign, digits, exponent = value.as_tuple()
    mantissa = int("".join(map(str, digits)))
    if mantissa > _SINT64_MAX:
        # Only values the bridge computed itself get here; normalizing keeps them exact.
        sign, digits, exponent = value.normalize().as_tuple()
        mantissa = int("".join(map(str, digits)))
        if mantissa > _SINT64_MAX:
            raise ValueError(f"{value} has more significant digits than a Decimal message holds")
    return common_pb2.Decimal(mantissa=-mantissa if sign else mantissa, exponent=int(exponent))


def timestamp(ns: int) -> Timestamp:
    """A Timestamp from nanoseconds since the Unix epoch."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return Timestamp(seconds=seconds, nanos=nanos)


def instrument_message(spec: InstrumentSpec) -> market_data_pb2.Instrument:
    """The Instrument message of `spec`."""
    return market_data_pb2.Instrument(
        symbol=spec.symbol,
        name=spec.name,
        exchange=spec.exchange,
        currency=spec.currency,
        tick_size=decimal_message(spec.tick_size),
        lot_size=decimal_message(spec.lot_size),
        tick_bands=[
            market_data_pb2.TickBand(
                price_from=decimal_message(spec.price(start)), tick=decimal_message(spec.price(tick))
            )
            for start, tick in spec.bands
        ],
    )


def quote_message(quote: MarketQuote, price_exponent: int) -> market_data_pb2.Quote:
    """The Quote message of `quote`; prices share the instrument's exponent, sizes are shares."""
    exponent = price_exponent
    message = market_data_pb2.Quote(
        symbol=quote.symbol,
        bid=common_pb2.Decimal(mantissa=quote.bid, exponent=exponent),
        bid_size=common_pb2.Decimal(mantissa=quote.bid_size),
        ask=common_pb2.Decimal(mantissa=quote.ask, exponent=exponent),
        ask_size=common_pb2.Decimal(mantissa=quote.ask_size),
        last=common_pb2.Decimal(mantissa=quote.last, exponent=exponent),
        time=timestamp(quote.time_ns),
    )
    if quote.upper_limit:
        message.upper_limit.CopyFrom(common_pb2.Decimal(mantissa=quote.upper_limit, exponent=exponent))
        message.lower_limit.CopyFrom(common_pb2.Decimal(mantissa=quote.lower_limit, exponent=exponent))
    return message


def order_message(order: PaperOrder) -> trading_pb2.Order:
    """The Order message of `order`."""
    message = trading_pb2.Order(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=SIDES[order.side],
        order_type=ORDER_TYPES[order.order_type],
        quantity=decimal_message(order.quantity),
        time_in_force=TIMES_IN_FORCE[order.time_in_force],
        status=_STATUSES[order.status],
        filled_quantity=decimal_message(order.filled_quantity),
        reject_reason=order.reject_reason,
        create_time=timestamp(order.create_ns),
        update_time=timestamp(order.update_ns),
        stop_triggered=order.stop_triggered,
    )
    if order.stop_price is not None:
        message.stop_price.CopyFrom(decimal_message(order.stop_price))
    if order.limit_price is not None:
        message.limit_price.CopyFrom(decimal_message(order.limit_price))
    if order.average_fill_price is not None:
        message.average_fill_price.CopyFrom(decimal_message(order.average_fill_price))
    return message


def update_message(update: OrderUpdateRecord) -> trading_pb2.OrderUpdate:
    """The OrderUpdate message of `update`."""
    message = trading_pb2.OrderUpdate(
        sequence=update.sequence,
        event=_EVENTS[update.event],
        order=order_message(update.order),
        time=timestamp(update.time_ns),
    )
    if update.fill_quantity is not None and update.fill_price is not None:
        message.fill_quantity.CopyFrom(decimal_message(update.fill_quantity))
        message.fill_price.CopyFrom(decimal_message(update.fill_price))
    return message


def position_message(spec: InstrumentSpec, holding: Holding, market_price: Decimal) -> trading_pb2.Position:
    """The Position message of one holding."""
    return trading_pb2.Position(
        symbol=spec.symbol,
        quantity=decimal_message(holding.quantity),
        average_price=decimal_message(holding.average_price(spec.price_exponent)),
        market_price=decimal_message(market_price),
        currency=spec.currency,
    )


def balance_message(balance: BalanceView) -> trading_pb2.Balance:
    """The Balance message of one currency."""
    return trading_pb2.Balance(
        currency=balance.currency,
        cash=decimal_message(balance.cash),
        buying_power=decimal_message(balance.buying_power),
        equity=decimal_message(balance.equity),
    )
