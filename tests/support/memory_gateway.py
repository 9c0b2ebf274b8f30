"""A small, real, in-memory `IBrokerGateway`: the test double for code that needs a gateway.

It keeps a book of instruments and fills market orders at the quote, limited by a real
`RateLimiter`. It is a test double, not a simulator: prices never move.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any

from broker_plugins import (
    Balance,
    BrokerUnavailableError,
    Candle,
    Capability,
    ConnectionState,
    ConnectionStateTracker,
    HealthStatus,
    Instrument,
    Interval,
    NotFoundError,
    Order,
    OrderRequest,
    OrderStatus,
    OrderUpdate,
    Position,
    Quote,
    RateLimiter,
    StateListener,
)

EPOCH = datetime(2026, 1, 5, tzinfo=timezone.utc)


class MemoryGateway:
    """An `IBrokerGateway` over an in-memory book."""

    def __init__(self, *, rate_limits: Any = (), name: str = "memory") -> None:
        self._name = name
        self._limiter = RateLimiter(rate_limits)
        self._tracker = ConnectionStateTracker()
        self._instruments = {
            "005930": Instrument(
                symbol="005930",
                name="Samsung Electronics",
                exchange="KRX",
                currency="KRW",
                tick_size=Decimal(100),
                lot_size=Decimal(1),
            )
        }
        self._orders: dict[str, Order] = {}
        self._ids = itertools.count(1)
        self._updates: asyncio.Queue[OrderUpdate] = asyncio.Queue()
        #: Whether the (imaginary) backend answers; tests flip it to stage outages.
        self.backend_up = True
        #: Makes health_check hang, like a call to a peer that went silent.
        self.health_hangs = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.QUOTE_STREAM, Capability.ORDER_UPDATE_STREAM})

    @property
    def state(self) -> ConnectionState:
        return self._tracker.state

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        return self._tracker.add_listener(listener)

    async def connect(self) -> None:
        self._tracker.set(ConnectionState.CONNECTING)
        if not self.backend_up:
            error = BrokerUnavailableError(f"{self._name}: backend is down")
            self._tracker.set(ConnectionState.DISCONNECTED, error)
            raise error
        self._tracker.set(ConnectionState.CONNECTED)

    def drop(self) -> None:
        """Lose the connection without reconnecting, as a gateway without self-healing would."""
        self._tracker.set(
            ConnectionState.DISCONNECTED, BrokerUnavailableError(f"{self._name}: connection lost")
        )

    async def disconnect(self) -> None:
        self._tracker.set(ConnectionState.CLOSED)

    async def __aenter__(self) -> MemoryGateway:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def _permit(self, category: str) -> None:
        if self._tracker.state is not ConnectionState.CONNECTED:
            raise BrokerUnavailableError(f"{self._name}: not connected")
        await self._limiter.acquire(category)

    async def health_check(self) -> HealthStatus:
        if self.health_hangs:
            await asyncio.Event().wait()
        healthy = self.backend_up and self.state is ConnectionState.CONNECTED
        return HealthStatus(
            healthy=healthy,
            state=self.state,
            checked_at=datetime.now(timezone.utc),
            latency=0.0 if healthy else None,
            error=None if healthy else "backend is down",
        )

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments[symbol]
        except KeyError:
            raise NotFoundError(f"no instrument {symbol!r}") from None

    async def get_candles(
        self,
        symbol: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> Sequence[Candle]:
        await self._permit("market_data")
        self._instrument(symbol)
        price = Decimal(70000)
        count = 10 if limit is None else limit
        first = start or EPOCH
        return [
            Candle(symbol, interval, first + i * interval.duration, price, price, price, price, Decimal(1))
            for i in range(count)
            if end is None or first + i * interval.duration < end
        ]

    async def get_quote(self, symbol: str) -> Quote:
        await self._permit("market_data")
        return self._quote(symbol)

    def _quote(self, symbol: str) -> Quote:
        self._instrument(symbol)
        return Quote(
            symbol=symbol,
            bid=Decimal(69900),
            bid_size=Decimal(100),
            ask=Decimal(70000),
            ask_size=Decimal(100),
            last=Decimal(70000),
            time=datetime.now(timezone.utc),
        )

    async def get_instrument(self, symbol: str) -> Instrument:
        await self._permit("market_data")
        return self._instrument(symbol)

    async def stream_quotes(self, symbols: Sequence[str]) -> AsyncIterator[Quote]:
        await self._permit("market_data")
        while True:
            for symbol in symbols:
                yield self._quote(symbol)
            await asyncio.sleep(0.001)

    async def place_order(self, request: OrderRequest) -> Order:
        await self._permit("trading")
        for order in self._orders.values():
            if order.client_order_id == request.client_order_id:
                return order
        quote = self._quote(request.symbol)
        now = datetime.now(timezone.utc)
        order = Order(
            order_id=str(next(self._ids)),
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            price=request.price,
            time_in_force=request.time_in_force,
            status=OrderStatus.FILLED,
            filled_quantity=request.quantity,
            average_fill_price=quote.ask,
            created_at=now,
            updated_at=now + timedelta(microseconds=1),
        )
        self._orders[order.order_id] = order
        self._updates.put_nowait(
            OrderUpdate(order=order, sequence=len(self._orders), time=now, fill_quantity=order.quantity)
        )
        return order

    async def cancel_order(self, order_id: str) -> Order:
        await self._permit("trading")
        return await self._existing(order_id)

    async def modify_order(self, order_id: str, *, quantity: Any = None, price: Any = None) -> Order:
        await self._permit("trading")
        return await self._existing(order_id)

    async def _existing(self, order_id: str) -> Order:
        try:
            return self._orders[order_id]
        except KeyError:
            raise NotFoundError(f"no order {order_id!r}") from None

    async def get_order(self, order_id: str) -> Order:
        await self._permit("trading")
        return await self._existing(order_id)

    async def get_orders(self, *, open_only: bool = False, symbol: str | None = None) -> Sequence[Order]:
        await self._permit("trading")
        return [
            order
            for order in self._orders.values()
            if (not open_only or order.status.is_open) and (symbol is None or order.symbol == symbol)
        ]

    async def stream_order_updates(self) -> AsyncIterator[OrderUpdate]:
        await self._permit("trading")
        while True:
            yield await self._updates.get()

    async def get_positions(self) -> Sequence[Position]:
        await self._permit("account")
        return []

    async def get_balance(self) -> Balance:
        await self._permit("account")
        cash = Decimal(10_000_000)
        return Balance(currency="KRW", cash=cash, buying_power=cash, equity=cash)
