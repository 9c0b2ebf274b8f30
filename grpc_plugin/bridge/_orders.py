"""Orders, order updates and accounts of the paper broker: plain immutable values.

Every change produces new values (`attrs.evolve`), so an update record keeps the order exactly as
it was at that sequence, and a change can be journalled before it is applied in memory.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

import attrs

__all__ = [
    "Account",
    "Holding",
    "NewOrder",
    "OrderEvent",
    "OrderStatus",
    "OrderType",
    "OrderUpdateRecord",
    "PaperOrder",
    "Side",
    "TimeInForce",
    "differences",
]


class Side(enum.Enum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    BEST_LIMIT = "best_limit"
    CONDITIONAL_LIMIT = "conditional_limit"

    @property
    def is_stop(self) -> bool:
        """True for the orders that wait for their stop price."""
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(enum.Enum):
    """How long an order works."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(enum.Enum):
    """Where an order is in its life."""

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """True while the order works (can fill, be cancelled or modified)."""
        return self in (OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class OrderEvent(enum.Enum):
    """What one order update reports."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    MODIFIED = "modified"
    CANCELED = "canceled"
    EXPIRED = "expired"
    TRIGGERED = "triggered"


@attrs.frozen
class NewOrder:
    """A well-formed order request (syntax checked; business rules are the broker's)."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    time_in_force: TimeInForce
    stop_price: Decimal | None = None


@attrs.frozen
class PaperOrder:
    """An order as the paper broker knows it; times are ns since the Unix epoch."""

    order_id: str
    account: str
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal
    average_fill_price: Decimal | None
    reject_reason: str
    create_ns: int
    update_ns: int
    # Cash held back per unit still to buy: the limit price, or the ask plus a margin for a market
    # buy. Zero for sells. Buying power is cash minus the reserve of the working buys.
    reserve_price: Decimal = Decimal(0)
    # Sum of quantity * price over the fills, exact; the average fill price is derived from it.
    filled_value: Decimal = Decimal(0)
    # Quantity and limit price as placed, once a modification changed them (None: unchanged), so
    # that a retry of the original PlaceOrder is still recognised as the same order.
    placed: tuple[Decimal, Decimal | None] | None = None
    # A stop or stop-limit order's stop price, and whether the last trade has reached it.
    stop_price: Decimal | None = None
    stop_triggered: bool = False

    @property
    def placed_terms(self) -> tuple[Decimal, Decimal | None]:
        """(quantity, limit price) as the order was placed."""
        return self.placed if self.placed is not None else (self.quantity, self.limit_price)

    @property
    def remaining(self) -> Decimal:
        """Quantity still to fill while the order works; zero once it is final."""
        return self.quantity - self.filled_quantity if self.status.is_open else Decimal(0)

    @property
    def reserved_cash(self) -> Decimal:
        """Cash this order holds back from buying power."""
        return self.remaining * self.reserve_price


@attrs.frozen
class OrderUpdateRecord:
    """One change to one order, at its place in the account's update sequence."""

    account: str
    sequence: int
    event: OrderEvent
    order: PaperOrder
    time_ns: int
    fill_quantity: Decimal | None = None
    fill_price: Decimal | None = None


@attrs.frozen
class Holding:
    """Shares of one instrument held, and what they cost in all (average cost accounting)."""

    quantity: Decimal
    cost: Decimal

    def average_price(self, exponent: int) -> Decimal:
        """Cost per share, with four more decimal places than a price of `exponent`."""
        return (self.cost / self.quantity).quantize(Decimal(1).scaleb(exponent - 4), ROUND_HALF_EVEN)


@attrs.frozen
class Account:
    """Cash by currency and holdings by symbol of one account."""

    name: str
    cash: Mapping[str, Decimal]
    holdings: Mapping[str, Holding] = attrs.field(factory=dict)


def differences(order: PaperOrder, request: NewOrder) -> list[str]:
    """How `request` differs from what `order` was placed with ([] if it is the same order).

    Values compare as numbers (10 equals 10.0); a modification since does not count, since the
    order is compared as it was placed.
    """
    quantity, limit_price = order.placed_terms
    placed = (
        order.symbol,
        order.side,
        order.order_type,
        quantity,
        limit_price,
        order.stop_price,
        order.time_in_force,
    )
    asked = (
        request.symbol,
        request.side,
        request.order_type,
        request.quantity,
        request.limit_price,
        request.stop_price,
        request.time_in_force,
    )
    names = ("symbol", "side", "order_type", "quantity", "limit_price", "stop_price", "time_in_force")
    return [
        f"{name} {_term(theirs)}, not {_term(ours)}"
        for name, ours, theirs in zip(names, placed, asked, strict=True)
        if ours != theirs
    ]


def _term(value: object) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)
