"""Matching one order against one quote, and the change set a broker operation builds.

A market order, or a limit order that is marketable (buy limit >= ask, sell limit <= bid), fills
at the ask (buy) or bid (sell), up to the size displayed at that tick; displayed size is shared,
so what one order takes at a tick the next cannot. A stop or stop-limit order first waits for the
last trade to reach its stop price; the tick that triggers it (TRIGGERED) also matches it. IOC
fills what it can at once and expires the rest; FOK fills completely at once or expires.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

import attrs

from grpc_plugin.bridge._accounting import apply_fill
from grpc_plugin.bridge._market import Market, MarketQuote
from grpc_plugin.bridge._orders import (
    Account,
    OrderEvent,
    OrderStatus,
    OrderUpdateRecord,
    PaperOrder,
    Side,
    TimeInForce,
)

__all__ = ["BrokerState", "Matcher", "OrderChange"]


class BrokerState(Protocol):
    """What an `OrderChange` reads from the broker it belongs to."""

    def order_by_id(self, order_id: str) -> PaperOrder:
        """The committed order."""
        ...

    def account(self, name: str) -> Account:
        """The committed account."""
        ...

    def last_sequence(self, account: str) -> int:
        """The account's last committed update sequence."""
        ...


class OrderChange:
    """The orders, accounts and updates one broker operation produces, not yet committed."""

    def __init__(self, state: BrokerState) -> None:
        self._state = state
        self.orders: dict[str, PaperOrder] = {}
        self.accounts: dict[str, Account] = {}
        self.updates: list[OrderUpdateRecord] = []

    def order(self, order_id: str) -> PaperOrder:
        """The order as this change leaves it."""
        return self.orders.get(order_id) or self._state.order_by_id(order_id)

    def account(self, name: str) -> Account:
        """The account as this change leaves it."""
        return self.accounts.get(name) or self._state.account(name)

    def emit(
        self,
        event: OrderEvent,
        order: PaperOrder,
        now_ns: int,
        fill: tuple[Decimal, Decimal] | None = None,
    ) -> PaperOrder:
        """Record `order` as changed by `event` (with the fill's quantity and price); returns it."""
        self.orders[order.order_id] = order
        pending = sum(1 for update in self.updates if update.account == order.account)
        sequence = self._state.last_sequence(order.account) + pending + 1
        quantity, price = fill if fill is not None else (None, None)
        self.updates.append(OrderUpdateRecord(order.account, sequence, event, order, now_ns, quantity, price))
        return order


class Matcher:
    """Fills orders against quotes, remembering how much displayed size each tick has left."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self._taken: dict[tuple[str, Side], tuple[int, int]] = {}  # (symbol, side) -> (tick, used)

    def execute(
        self, change: OrderChange, order: PaperOrder, quote: MarketQuote, now: int, *, immediate: bool
    ) -> PaperOrder:
        """Fill what `quote` allows; `immediate` applies IOC and FOK (the order is new)."""
        spec = self._market.instrument(order.symbol)
        buying = order.side is Side.BUY
        if order.order_type.is_stop and not order.stop_triggered:
            assert order.stop_price is not None  # a stop order always has one
            last = spec.price(quote.last)
            if not (last >= order.stop_price if buying else last <= order.stop_price):
                return order
            order = attrs.evolve(order, stop_triggered=True, update_ns=now)
            change.emit(OrderEvent.TRIGGERED, order, now)
        price = spec.price(quote.ask if buying else quote.bid)
        limit = order.limit_price
        marketable = limit is None or (limit >= price if buying else limit <= price)
        available = Decimal(self._available(quote, order.side)) if marketable else Decimal(0)
        if immediate and order.time_in_force is TimeInForce.FOK and available < order.remaining:
            return end(change, order, now, OrderStatus.EXPIRED)
        quantity = min(order.remaining, available)
        if quantity > 0:
            self._take(quote, order.side, int(quantity))
            filled = order.filled_quantity + quantity
            value = order.filled_value + quantity * price
            order = attrs.evolve(
                order,
                filled_quantity=filled,
                filled_value=value,
                # Four more digits than the price itself: exact enough, and the mantissa stays small.
                average_fill_price=(value / filled).quantize(Decimal(1).scaleb(spec.price_exponent - 4)),
                status=OrderStatus.FILLED if filled == order.quantity else OrderStatus.PARTIALLY_FILLED,
                update_ns=now,
            )
            account = change.account(order.account)
            change.accounts[order.account] = apply_fill(account, spec, order.side, quantity, price)
            change.emit(OrderEvent.FILL, order, now, (quantity, price))
        if immediate and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK) and order.status.is_open:
            return end(change, order, now, OrderStatus.EXPIRED)
        return order

    def _available(self, quote: MarketQuote, side: Side) -> int:
        size = quote.ask_size if side is Side.BUY else quote.bid_size
        tick, used = self._taken.get((quote.symbol, side), (-1, 0))
        return size - used if tick == quote.tick else size

    def _take(self, quote: MarketQuote, side: Side, quantity: int) -> None:
        size = quote.ask_size if side is Side.BUY else quote.bid_size
        self._taken[(quote.symbol, side)] = (quote.tick, size - self._available(quote, side) + quantity)


_END_EVENTS = {OrderStatus.EXPIRED: OrderEvent.EXPIRED, OrderStatus.CANCELED: OrderEvent.CANCELED}


def end(change: OrderChange, order: PaperOrder, now: int, status: OrderStatus) -> PaperOrder:
    """End a working order as CANCELED or EXPIRED."""
    return change.emit(_END_EVENTS[status], attrs.evolve(order, status=status, update_ns=now), now)
