"""Domain entities: frozen, slotted attrs classes with exact numbers and UTC timestamps.

`OrderRequest` is what a caller builds, so it validates everything at construction and raises
`InvalidRequestError` saying what was wrong. The other entities are what a broker reports; gateways
build them from already-checked replies, and they stay plain so that mapping 100,000 candles is cheap.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import attrs

from broker_plugins._checks import check_positive, check_symbol
from broker_plugins._enums import Interval, OrderStatus, OrderType, Side, TimeInForce
from broker_plugins._errors import InvalidRequestError
from broker_plugins._market_rules import TickRounding, TickSchedule

__all__ = [
    "Balance",
    "Candle",
    "Instrument",
    "Number",
    "Order",
    "OrderRequest",
    "OrderUpdate",
    "Position",
    "Quote",
]

_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

Number = Decimal | int | str | float
"""What callers may give for a price or quantity; stored as an exact `Decimal`."""
_E = TypeVar("_E", Side, OrderType, TimeInForce)


def _known_member(enum_type: type[_E], field: str, value: object) -> _E:
    try:
        member = enum_type(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type if m.name != "UNKNOWN")
        raise InvalidRequestError(f"{field} must be one of {allowed}; got {value!r}") from None
    if member.name == "UNKNOWN":
        raise InvalidRequestError(f"{field} must be a known value, got {value!r}")
    return member


def _to_side(value: object) -> Side:
    return _known_member(Side, "side", value)


def _to_order_type(value: object) -> OrderType:
    return _known_member(OrderType, "order_type", value)


def _to_time_in_force(value: object) -> TimeInForce:
    return _known_member(TimeInForce, "time_in_force", value)


def _to_quantity(value: object) -> Decimal:
    return check_positive(value, "quantity")


def _to_price(value: object) -> Decimal | None:
    return None if value is None else check_positive(value, "price")


def _check_client_order_id(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, str) or _CLIENT_ORDER_ID.fullmatch(value) is None:
        raise InvalidRequestError(f"client_order_id must be 1-64 letters, digits or . _ : -; got {value!r}")


def new_client_order_id() -> str:
    """A fresh, unique idempotency key for an order."""
    return uuid.uuid4().hex


def _to_stop_price(value: object) -> Decimal | None:
    return None if value is None else check_positive(value, "stop_price")


def _default_order_type(request: OrderRequest) -> OrderType:
    if request.stop_price is not None:
        return OrderType.STOP if request.price is None else OrderType.STOP_LIMIT
    return OrderType.MARKET if request.price is None else OrderType.LIMIT


@attrs.frozen
class OrderRequest:
    """An order to place. Validated at construction; `client_order_id` is its idempotency key.

    `order_type` defaults to LIMIT when a price is given and MARKET otherwise (STOP_LIMIT and STOP
    when a `stop_price` is given too); stop orders need a gateway with `Capability.STOP_ORDERS`.
    Numbers may be given as `Decimal`, `int`, `str` or `float` and are stored as exact `Decimal`.
    """

    symbol: str = attrs.field(converter=check_symbol)
    side: Side = attrs.field(converter=_to_side)
    quantity: Decimal = attrs.field(converter=_to_quantity)
    price: Decimal | None = attrs.field(
        default=None,
        converter=_to_price,
        kw_only=True,
    )
    stop_price: Decimal | None = attrs.field(
        default=None,
        converter=_to_stop_price,
        kw_only=True,
    )
    order_type: OrderType = attrs.field(
        default=attrs.Factory(_default_order_type, takes_self=True),
        converter=_to_order_type,
        kw_only=True,
    )
    time_in_force: TimeInForce = attrs.field(
        default=TimeInForce.DAY,
        converter=_to_time_in_force,
        kw_only=True,
    )
    client_order_id: str = attrs.field(
        factory=new_client_order_id, validator=_check_client_order_id, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        kind = self.order_type
        if (
            kind in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.CONDITIONAL_LIMIT)
            and self.price is None
        ):
            raise InvalidRequestError(f"a {kind.value.replace('_', '-')} order needs a price")
        if kind in (OrderType.MARKET, OrderType.STOP, OrderType.BEST_LIMIT) and self.price is not None:
            raise InvalidRequestError(f"a {kind} order takes no price, got {self.price}")
        if kind.is_stop and self.stop_price is None:
            raise InvalidRequestError(f"a {kind.value.replace('_', '-')} order needs a stop_price")
        if not kind.is_stop and self.stop_price is not None:
            raise InvalidRequestError(f"a {kind} order takes no stop_price, got {self.stop_price}")
        if kind is OrderType.CONDITIONAL_LIMIT and self.time_in_force is not TimeInForce.DAY:
            raise InvalidRequestError(
                f"a conditional-limit order works for the day only: time_in_force must be day, not "
                f"{self.time_in_force}"
            )

    @classmethod
    def market(
        cls,
        symbol: str,
        side: Side | str,
        quantity: Number,
        *,
        time_in_force: TimeInForce | str = TimeInForce.DAY,
        client_order_id: str | None = None,
    ) -> OrderRequest:
        """A market order."""
        return cls(
            symbol,
            side,
            quantity,
            order_type=OrderType.MARKET,
            time_in_force=time_in_force,
            client_order_id=new_client_order_id() if client_order_id is None else client_order_id,
        )

    @classmethod
    def stop(
        cls,
        symbol: str,
        side: Side | str,
        quantity: Number,
        stop_price: Number,
        *,
        limit_price: Number | None = None,
        time_in_force: TimeInForce | str = TimeInForce.DAY,
        client_order_id: str | None = None,
    ) -> OrderRequest:
        """A stop order at `stop_price`: a market order once triggered, or a limit order at
        `limit_price` when one is given (STOP_LIMIT)."""
        return cls(
            symbol,
            side,
            quantity,
            price=limit_price,
            stop_price=stop_price,
            order_type=OrderType.STOP if limit_price is None else OrderType.STOP_LIMIT,
            time_in_force=time_in_force,
            client_order_id=new_client_order_id() if client_order_id is None else client_order_id,
        )

    @classmethod
    def limit(
        cls,
        symbol: str,
        side: Side | str,
        quantity: Number,
        price: Number,
        *,
        time_in_force: TimeInForce | str = TimeInForce.DAY,
        client_order_id: str | None = None,
    ) -> OrderRequest:
        """A limit order at `price`."""
        return cls(
            symbol,
            side,
            quantity,
            price=price,
            order_type=OrderType.LIMIT,
            time_in_force=time_in_force,
            client_order_id=new_client_order_id() if client_order_id is None else client_order_id,
        )


def _flat_schedule(instrument: Instrument) -> TickSchedule | None:
    tick = instrument.tick_size
    return TickSchedule.flat(tick) if isinstance(tick, Decimal) and tick > 0 else None


@attrs.frozen
class Instrument:
    """A tradable instrument and its trading rules.

    `tick_schedule` holds the valid prices by price band; without one (a broker that reports a
    single tick) it is one band of `tick_size`, and None only when no positive tick is known.
    With a schedule, `tick_size` is the tick at the instrument's reference price: what a client
    that ignores the schedule uses.
    """

    symbol: str
    name: str
    exchange: str
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    tick_schedule: TickSchedule | None = attrs.field(
        default=attrs.Factory(_flat_schedule, takes_self=True), kw_only=True
    )

    def tick_at(self, price: Number) -> Decimal:
        """The tick that applies at `price`."""
        return self._schedule().tick_at(_price(price))

    def is_on_tick(self, price: Number) -> bool:
        """True when `price` is a valid price of this instrument."""
        return self._schedule().is_on_tick(_price(price))

    def round_price(self, price: Number, rounding: TickRounding | str = TickRounding.NEAREST) -> Decimal:
        """`price` moved to a valid price of this instrument (see `TickSchedule.round_price`)."""
        return self._schedule().round_price(_price(price), rounding)

    def _schedule(self) -> TickSchedule:
        if self.tick_schedule is None:
            raise InvalidRequestError(f"instrument {self.symbol!r} reports no tick size")
        return self.tick_schedule


def _price(value: Number) -> Decimal:
    return check_positive(value, "price")


@attrs.frozen
class Candle:
    """One OHLCV bar; `start` is the UTC time the bar opens."""

    symbol: str
    interval: Interval
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@attrs.frozen(kw_only=True)
class Quote:
    """Top of book and last trade of one instrument at `time` (UTC)."""

    symbol: str
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal
    last: Decimal | None
    time: datetime
    upper_limit: Decimal | None = None
    """Today's highest allowed price (KRX: previous close + 30%), where the broker reports it."""
    lower_limit: Decimal | None = None
    """Today's lowest allowed price (KRX: previous close - 30%), where the broker reports it."""


@attrs.frozen(kw_only=True)
class Order:
    """An order as the broker knows it."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal
    average_fill_price: Decimal | None
    created_at: datetime
    updated_at: datetime
    reject_reason: str = ""
    stop_price: Decimal | None = None
    """The stop price of a STOP or STOP_LIMIT order."""
    stop_triggered: bool = False
    """True once a stop order's stop price was reached and it works as a market or limit order."""

    @property
    def remaining_quantity(self) -> Decimal:
        """Quantity still to fill (zero once the order is no longer open)."""
        return self.quantity - self.filled_quantity if self.status.is_open else Decimal(0)


@attrs.frozen(kw_only=True)
class OrderUpdate:
    """A change to an order: `sequence` grows by account, so a gap is visible."""

    order: Order
    sequence: int
    time: datetime
    fill_quantity: Decimal = Decimal(0)
    fill_price: Decimal | None = None


@attrs.frozen(kw_only=True)
class Position:
    """Holdings of one instrument; `quantity` is negative for a short position."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    market_price: Decimal | None = None

    @property
    def unrealized_pnl(self) -> Decimal | None:
        """Profit or loss at `market_price`, when the broker reported one."""
        if self.market_price is None:
            return None
        return (self.market_price - self.average_price) * self.quantity


@attrs.frozen(kw_only=True)
class Balance:
    """Cash of the account in one currency."""

    currency: str
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
