"""`MemoryBackend`: a paper broker in memory, which remembers every request it was sent.

Beside the broker it keeps the backdoor the conformance harness reads (what arrived, what it
answered, which orders it created) and the faults a test can set (failing the next requests, a small
page size, no de-duplication of orders).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from datetime import time as wall_time
from decimal import Decimal
from typing import Any, NamedTuple

import attrs

from broker_plugins import (
    Balance,
    BrokerError,
    Candle,
    Instrument,
    Interval,
    InvalidRequestError,
    MarketCalendar,
    NotFoundError,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Quote,
    SessionKind,
    Side,
    TradingSession,
)

__all__ = ["CandlePage", "MemoryBackend", "Received", "Served"]

_CENT = Decimal("0.01")
_CALENDAR = MarketCalendar(
    exchange="MEM",
    time_zone="America/New_York",
    sessions=(TradingSession("regular", SessionKind.REGULAR, wall_time(9, 30), wall_time(16, 0)),),
)
"""The one exchange's calendar: weekdays 09:30-16:00 New York time, no holidays."""
_RECORDS = 100_000  # a long-running backend keeps this many records, not all of them


class Received(NamedTuple):
    """One request as the backend received it: the gateway method, its rate-limit category, and
    `time.monotonic()` at arrival."""

    method: str
    category: str
    time: float


class Served(NamedTuple):
    """One answer the backend sent: the request it answered (or the stream it pushed on), the value,
    and `time.monotonic()`."""

    method: str
    value: object
    time: float


class CandlePage(NamedTuple):
    """One page of a candle request, and the token that asks for the next (None after the last)."""

    candles: list[Candle]
    next_page: str | None


class MemoryBackend:
    """One account at a paper broker.

    It quotes a single instrument, `ACME`, whose price walks with the clock; rests limit orders
    away from the market, fills the others at once and rejects those the cash does not cover; and
    de-duplicates orders on their `client_order_id`, as a broker that offers idempotent order entry
    does (unless `deduplicate` is turned off). Candles come in pages of `page_size` (all at once
    when None).
    """

    def __init__(self) -> None:
        self._instruments = {
            "ACME": Instrument(
                symbol="ACME",
                name="Acme Corporation",
                exchange="MEM",
                currency="USD",
                tick_size=_CENT,
                lot_size=Decimal(1),
            )
        }
        self._orders: dict[str, Order] = {}
        self._by_client_id: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._cash = Decimal(1_000_000)
        self.deduplicate = True
        self.page_size: int | None = None
        self._failures: deque[Callable[[], BrokerError]] = deque()
        self.received: deque[Received] = deque(maxlen=_RECORDS)
        self.served: deque[Served] = deque(maxlen=_RECORDS)
        self.orders_created: Counter[str] = Counter()
        self.updates: list[OrderUpdate] = []
        """Every change to an order, in sequence (1, 2, ...): streams replay from here."""
        self._handlers: dict[str, Callable[..., object]] = {
            "get_quote": self.quote,
            "get_candles": self._candles,
            "get_instrument": self._instrument,
            "list_instruments": self._list_instruments,
            "get_market_calendar": self._calendar,
            "stream_quotes": self._subscribe,
            "stream_order_updates": self._subscribe_updates,
            "place_order": self._place,
            "cancel_order": self._cancel,
            "modify_order": self._modify,
            "get_order": self._order,
            "get_orders": self._list_orders,
            "get_positions": self._positions,
            "get_balance": self._balance,
        }

    def handle(self, method: str, category: str, arguments: Mapping[str, Any]) -> object:
        """Serve one request of the broker API, recording its arrival first and its answer after."""
        self.received.append(Received(method, category, time.monotonic()))
        if self._failures:
            raise self._failures.popleft()()  # refused before it does anything
        answer = self._handlers[method](**arguments)
        self.served.append(Served(method, answer, time.monotonic()))
        return answer

    def fail_next(self, count: int, error: Callable[[], BrokerError]) -> None:
        """Answer the next `count` requests with `error()`, doing nothing else for them."""
        self._failures.extend([error] * count)

    def reset_records(self) -> None:
        """Forget what was received, answered and created; the book stays as it is."""
        self.received.clear()
        self.served.clear()
        self.orders_created.clear()

    def quote(self, symbol: str) -> Quote:
        """The quote of `symbol` now."""
        self._instrument(symbol)
        # A fresh price every 50 ms, so that consecutive ticks differ.
        mid = Decimal(100) + Decimal(int(time.monotonic() * 20) % 200) * _CENT
        return Quote(
            symbol=symbol,
            bid=mid - 5 * _CENT,
            bid_size=Decimal(500),
            ask=mid + 5 * _CENT,
            ask_size=Decimal(500),
            last=mid,
            time=datetime.now(timezone.utc),
        )

    def push_quotes(self, symbols: Sequence[str]) -> list[Quote]:
        """The quotes a subscription pushes at a tick (recorded as served, not as requests)."""
        quotes = [self.quote(symbol) for symbol in symbols]
        now = time.monotonic()
        self.served.extend(Served("stream_quotes", quote, now) for quote in quotes)
        return quotes

    def push_updates(self, sequence: int) -> list[OrderUpdate]:
        """The order updates after `sequence` that a subscription pushes (recorded as served)."""
        updates = self.updates[sequence:]
        now = time.monotonic()
        self.served.extend(Served("stream_order_updates", update, now) for update in updates)
        return updates

    def cancel_at_backend(self, order_id: str) -> Order:
        """Cancel a working order from the broker's side (its desk, an expiry): no request arrives."""
        return self._cancel(order_id)

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise NotFoundError(f"no instrument {symbol!r}") from None

    def _list_instruments(self, exchange: str | None) -> list[Instrument]:
        listed = sorted(self._instruments.values(), key=lambda i: i.symbol)
        return [i for i in listed if exchange is None or i.exchange == exchange]

    def _calendar(self, exchange: str) -> MarketCalendar:
        if exchange != _CALENDAR.exchange:
            raise NotFoundError(f"no calendar for exchange {exchange!r}")
        return _CALENDAR

    def _subscribe(self, symbols: Sequence[str]) -> None:
        for symbol in symbols:
            self._instrument(symbol)

    def _subscribe_updates(self, after: int | None) -> int:
        """A subscription to order updates: the sequence it starts after (the latest when None)."""
        if after is None:
            return len(self.updates)
        if not 0 <= after <= len(self.updates):
            raise InvalidRequestError(f"no order update {after} to resume after (latest {len(self.updates)})")
        return after

    def _changed(self, order: Order, *, fill: Decimal | None = None) -> Order:
        self._orders[order.order_id] = order
        self.updates.append(
            OrderUpdate(
                order=order,
                sequence=len(self.updates) + 1,
                time=order.updated_at,
                fill_quantity=fill or Decimal(0),
                fill_price=order.average_fill_price if fill else None,
            )
        )
        return order

    def _candles(
        self,
        symbol: str,
        interval: Interval,
        start: datetime | None,
        end: datetime | None,
        limit: int | None,
        *,
        page: str | None = None,
    ) -> CandlePage:
        price = self.quote(symbol).last or Decimal(100)
        step = interval.duration
        if page is None:  # the first page settles the range, so that later pages join up
            last_start = (end or datetime.now(timezone.utc)) - step
            count = 20 if limit is None else limit
            first = start or last_start - (count - 1) * step
            starts = list(
                itertools.takewhile(
                    lambda moment: moment <= last_start, (first + i * step for i in range(count))
                )
            )
        else:
            first_text, _, count_text = page.partition("/")
            first = datetime.fromisoformat(first_text)
            starts = [first + i * step for i in range(int(count_text))]
        size = len(starts) if self.page_size is None else self.page_size
        here, rest = starts[:size], starts[size:]
        candles = [
            Candle(symbol, interval, moment, price, price, price, price, Decimal(10)) for moment in here
        ]
        return CandlePage(candles, f"{rest[0].isoformat()}/{len(rest)}" if rest else None)

    def _place(self, request: OrderRequest) -> Order:
        existing = self._by_client_id.get(request.client_order_id)
        if existing is not None and self.deduplicate:
            return self._orders[existing]
        quote = self.quote(request.symbol)
        touch = quote.ask if request.side is Side.BUY else quote.bid
        marketable = request.order_type is OrderType.MARKET or (
            request.price is not None
            and (request.price >= touch if request.side is Side.BUY else request.price <= touch)
        )
        cost = request.quantity * (touch if marketable or request.price is None else request.price)
        reason = ""
        if request.side is Side.BUY and cost > self._cash:
            reason = f"insufficient cash: the order needs {cost} USD, the account holds {self._cash} USD"
        now = datetime.now(timezone.utc)
        filled = marketable and not reason
        order = Order(
            order_id=f"M{next(self._ids)}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            price=request.price,
            time_in_force=request.time_in_force,
            status=OrderStatus.REJECTED if reason else OrderStatus.FILLED if filled else OrderStatus.NEW,
            filled_quantity=request.quantity if filled else Decimal(0),
            average_fill_price=touch if filled else None,
            created_at=now,
            updated_at=now,
            reject_reason=reason,
        )
        if filled:
            sign = 1 if request.side is Side.BUY else -1
            self._cash -= sign * touch * request.quantity
        self._changed(order, fill=order.filled_quantity or None)
        self._by_client_id[order.client_order_id] = order.order_id
        self.orders_created[order.client_order_id] += 1
        return order

    def _order(self, order_id: str) -> Order:
        try:
            return self._orders[order_id]
        except KeyError:
            raise NotFoundError(f"no order {order_id!r}") from None

    def _working(self, order_id: str) -> Order:
        order = self._order(order_id)
        if not order.status.is_open:
            raise InvalidRequestError(f"order {order_id} is {order.status}, no longer working")
        return order

    def _cancel(self, order_id: str) -> Order:
        order = self._working(order_id)
        cancelled = attrs.evolve(order, status=OrderStatus.CANCELLED, updated_at=datetime.now(timezone.utc))
        return self._changed(cancelled)

    def _modify(self, order_id: str, quantity: Decimal | None, price: Decimal | None) -> Order:
        order = self._working(order_id)
        modified = attrs.evolve(
            order,
            quantity=order.quantity if quantity is None else quantity,
            price=order.price if price is None else price,
            updated_at=datetime.now(timezone.utc) + timedelta(microseconds=1),
        )
        return self._changed(modified)

    def _list_orders(self, open_only: bool, symbol: str | None) -> list[Order]:
        return [
            order
            for order in self._orders.values()
            if (not open_only or order.status.is_open) and (symbol is None or order.symbol == symbol)
        ]

    def _positions(self) -> list[Position]:
        held: dict[str, tuple[Decimal, Decimal]] = {}
        for order in self._orders.values():
            if order.filled_quantity and order.average_fill_price is not None:
                sign = 1 if order.side is Side.BUY else -1
                quantity, cost = held.get(order.symbol, (Decimal(0), Decimal(0)))
                held[order.symbol] = (
                    quantity + sign * order.filled_quantity,
                    cost + sign * order.filled_quantity * order.average_fill_price,
                )
        return [
            Position(symbol=symbol, quantity=quantity, average_price=(cost / quantity).quantize(_CENT))
            for symbol, (quantity, cost) in sorted(held.items())
            if quantity
        ]

    def _balance(self) -> Balance:
        return Balance(currency="USD", cash=self._cash, buying_power=self._cash, equity=self._cash)
