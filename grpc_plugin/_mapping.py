"""Exact mapping between protobuf messages of `broker.bridge.v1` and `broker_plugins` entities.

Enum numbers this client does not know (a newer bridge) map to the entity enum's `UNKNOWN`
instead of failing the reply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

import attrs
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from broker_plugins import (
    Balance,
    BrokerInternalError,
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
    TickSchedule,
    TimeInForce,
)
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, trading_pb2

__all__ = [
    "EXACT",
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
    trading_pb2.ORDER_TYPE_STOP: OrderType.STOP,
    trading_pb2.ORDER_TYPE_STOP_LIMIT: OrderType.STOP_LIMIT,
    trading_pb2.ORDER_TYPE_BEST_LIMIT: OrderType.BEST_LIMIT,
    trading_pb2.ORDER_TYPE_CONDITIONAL_LIMIT: OrderType.CONDITIONAL_LIMIT,
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


EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
"""A context in which scaling a wire mantissa is always exact, whatever the caller's thread context."""


class _Decimals(dict[tuple[int, int], Decimal]):
    """(mantissa, exponent) -> Decimal, each built on first use.

    Prices and sizes on a tick grid repeat constantly, and a hit is one dict lookup; bounded, since a
    long-running feed wanders.
    """

    __slots__ = ()

    def __missing__(self, key: tuple[int, int]) -> Decimal:
        if len(self) >= 100_000:
            self.clear()
        value = self[key] = Decimal(key[0]).scaleb(key[1], EXACT)
        return value


_DECIMALS = _Decimals()


def decimal_from(message: common_pb2.Decimal) -> Decimal:
    """The exact value of a wire `Decimal`."""
    return _DECIMALS[message.mantissa, message.exponent]


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


class _Seconds(dict[int, datetime]):
    """Whole seconds since the epoch -> UTC datetime; quotes of one second share it."""

    __slots__ = ()

    def __missing__(self, seconds: int) -> datetime:
        if len(self) >= 4096:
            self.clear()
        value = self[seconds] = _EPOCH + timedelta(seconds=seconds)
        return value


class _Microseconds(dict[int, timedelta]):
    """Microseconds -> timedelta; ticks fall on a coarse grid, so few distinct ones occur."""

    __slots__ = ()

    def __missing__(self, microseconds: int) -> timedelta:
        if len(self) >= 100_000:
            self.clear()
        value = self[microseconds] = timedelta(microseconds=microseconds)
        return value


_SECONDS = _Seconds()
_MICROSECONDS = _Microseconds()


def time_from(message: Timestamp) -> datetime:
    """A timezone-aware UTC datetime (microsecond precision)."""
    # Exact (datetime arithmetic is in whole microseconds), and one C-level addition of two cached
    # values instead of building a timedelta from keywords for every message.
    return _SECONDS[message.seconds] + _MICROSECONDS[message.nanos // 1000]


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
    """An `Instrument` from its wire form; without tick_bands (an older bridge) one band of tick_size."""
    instrument = Instrument(
        symbol=message.symbol,
        name=message.name,
        exchange=message.exchange,
        currency=message.currency,
        tick_size=decimal_from(message.tick_size),
        lot_size=decimal_from(message.lot_size),
    )
    if not message.tick_bands:
        return instrument
    try:
        schedule = TickSchedule.from_pairs(
            (decimal_from(band.price_from), decimal_from(band.tick)) for band in message.tick_bands
        )
    except InvalidRequestError as error:
        raise BrokerInternalError(
            f"the bridge sent a malformed tick schedule for {message.symbol!r}: {error}"
        ) from None
    return attrs.evolve(instrument, tick_schedule=schedule)


def _slot_setters(cls: type, names: Sequence[str]) -> tuple[Callable[[object, object], None], ...] | None:
    """The setters of `cls`'s slots `names`, if filling them is all that calling `cls` does.

    That holds for a slotted attrs class whose fields are exactly `names`, with no validator, no
    converter and no pre- or post-init hook; for anything else None, and the class is called.
    """
    if not attrs.has(cls) or hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__"):
        return None
    fields = attrs.fields(cls)
    if tuple(field.name for field in fields) != tuple(names):
        return None
    if any(field.validator is not None or field.converter is not None for field in fields):
        return None
    slots = [cls.__dict__.get(name) for name in names]
    if not all(type(slot).__name__ == "member_descriptor" for slot in slots):
        return None
    return tuple(slot.__set__ for slot in slots)  # type: ignore[union-attr]


_QUOTE_FIELDS = ("symbol", "bid", "bid_size", "ask", "ask_size", "last", "time", "upper_limit", "lower_limit")


def _quote_by_init(  # noqa: PLR0917 - positional, like the fast builder it stands in for
    symbol: str,
    bid: Decimal,
    bid_size: Decimal,
    ask: Decimal,
    ask_size: Decimal,
    last: Decimal | None,
    time: datetime,
    upper_limit: Decimal | None = None,
    lower_limit: Decimal | None = None,
) -> Quote:
    return Quote(
        symbol=symbol,
        bid=bid,
        bid_size=bid_size,
        ask=ask,
        ask_size=ask_size,
        last=last,
        time=time,
        upper_limit=upper_limit,
        lower_limit=lower_limit,
    )


_QuoteBuilder = Callable[
    [str, Decimal, Decimal, Decimal, Decimal, Decimal | None, datetime, Decimal | None, Decimal | None], Quote
]


def _quote_builder() -> _QuoteBuilder:
    setters = _slot_setters(Quote, _QUOTE_FIELDS)
    if setters is None:
        return _quote_by_init
    new = object.__new__
    set_symbol, set_bid, set_bid_size, set_ask, set_ask_size, set_last, set_time, set_upper, set_lower = (
        setters
    )

    # A Quote per streamed quote: filling the slots directly costs a third of the attrs __init__
    # (nine keyword arguments, then nine object.__setattr__ calls), for the very same object.
    def build(  # noqa: PLR0917 - positional: called once per streamed quote
        symbol: str,
        bid: Decimal,
        bid_size: Decimal,
        ask: Decimal,
        ask_size: Decimal,
        last: Decimal | None,
        time: datetime,
        upper_limit: Decimal | None = None,
        lower_limit: Decimal | None = None,
    ) -> Quote:
        quote: Quote = new(Quote)
        set_symbol(quote, symbol)
        set_bid(quote, bid)
        set_bid_size(quote, bid_size)
        set_ask(quote, ask)
        set_ask_size(quote, ask_size)
        set_last(quote, last)
        set_time(quote, time)
        set_upper(quote, upper_limit)
        set_lower(quote, lower_limit)
        return quote

    return build


_build_quote = _quote_builder()


def quote_from(message: market_data_pb2.Quote) -> Quote:
    """A `Quote` from its wire form."""
    # Each field of a protobuf message read once, each Decimal and datetime from a cache: reading a
    # field costs more than building the entity. A set `last` is only asked for (HasField) when its
    # mantissa is zero, since an absent one reads as zero.
    decimals = _DECIMALS
    bid, bid_size, ask, ask_size, last, stamp = (
        message.bid,
        message.bid_size,
        message.ask,
        message.ask_size,
        message.last,
        message.time,
    )
    last_mantissa = last.mantissa
    # A price limit is never zero, so a zero mantissa is an absent one (an older bridge, no limit).
    upper, lower = message.upper_limit, message.lower_limit
    upper_mantissa, lower_mantissa = upper.mantissa, lower.mantissa
    return _build_quote(
        message.symbol,
        decimals[bid.mantissa, bid.exponent],
        decimals[bid_size.mantissa, bid_size.exponent],
        decimals[ask.mantissa, ask.exponent],
        decimals[ask_size.mantissa, ask_size.exponent],
        decimals[last_mantissa, last.exponent] if last_mantissa or message.HasField("last") else None,
        _SECONDS[stamp.seconds] + _MICROSECONDS[stamp.nanos // 1000],
        decimals[upper_mantissa, upper.exponent] if upper_mantissa else None,
        decimals[lower_mantissa, lower.exponent] if lower_mantissa else None,
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
        stop_price=_optional_decimal(message, "stop_price"),
        stop_triggered=message.stop_triggered,
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
    if request.stop_price is not None:
        message.stop_price.CopyFrom(decimal_to(request.stop_price, field="stop_price"))
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
