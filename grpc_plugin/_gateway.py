"""`GrpcBrokerGateway`: the whole `IBrokerGateway` contract over grpc.aio to a bridge server."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from broker_plugins import (
    Balance,
    Candle,
    Capability,
    ConnectionState,
    ConnectionStateTracker,
    HealthStatus,
    Instrument,
    Interval,
    InvalidRequestError,
    NotFoundError,
    Number,
    Order,
    OrderRequest,
    OrderUpdate,
    Position,
    Quote,
    StateListener,
    check_symbol,
    to_decimal,
)
from grpc_plugin._calls import Caller
from grpc_plugin._candle_series import CandleSeries
from grpc_plugin._config import GatewayConfig
from grpc_plugin._connection import Connection
from grpc_plugin._mapping import (
    balance_from,
    decimal_to,
    instrument_from,
    interval_to,
    order_from,
    position_from,
    quote_from,
    time_to,
)
from grpc_plugin._orders import place_order
from grpc_plugin._streams import OrderStreamGap, StreamSet
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, trading_pb2

__all__ = ["GrpcBrokerGateway"]

MAX_CANDLES = 1_000_000
"""The most candles one `get_candles` call returns (the bridge's limit too)."""

_CAPABILITIES = frozenset(
    {
        Capability.QUOTE_STREAM,
        Capability.ORDER_UPDATE_STREAM,
        Capability.MODIFY_ORDER,
        Capability.STREAM_RESUME,
        Capability.HALF_OPEN_DETECTION,
    }
)


def _order_id(order_id: object) -> str:
    if not isinstance(order_id, str) or not order_id.strip():
        raise InvalidRequestError(f"order_id must be a non-empty string, got {order_id!r}")
    return order_id


class GrpcBrokerGateway:
    """A gateway to a bridge server over gRPC.

    Build it with `BrokerRegistry().create("grpc", target="host:port", ...)` or directly with the same
    keyword options (see `GatewayConfig`); unknown or ill-typed options raise `InvalidRequestError`.
    The channel is created in `connect()`, inside the running event loop.
    """

    CAPABILITIES = _CAPABILITIES

    def __init__(self, **options: Any) -> None:
        self._config = GatewayConfig.from_options(**options)
        self._tracker = ConnectionStateTracker()
        self._connection = Connection(self._config, self._tracker)
        self._caller = Caller(self._config, self._connection, self._config.new_rate_limiter())
        self._streams = StreamSet(self._config, self._connection, self._caller)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "grpc"

    @property
    def target(self) -> str:
        """The bridge address this gateway talks to."""
        return self._config.target

    @property
    def capabilities(self) -> frozenset[Capability]:
        return _CAPABILITIES

    @property
    def half_open_bound(self) -> float:
        """Seconds within which a silent (black-holed) connection is detected: keepalive's bound."""
        return self._config.keepalive_time + self._config.keepalive_timeout

    @property
    def state(self) -> ConnectionState:
        return self._tracker.state

    def add_state_listener(self, listener: StateListener) -> Callable[[], None]:
        return self._tracker.add_listener(listener)

    def add_gap_listener(self, listener: Callable[[OrderStreamGap], object]) -> Callable[[], None]:
        """Call `listener` each time the order-update stream closes a gap after a reconnect."""
        return self._streams.add_gap_listener(listener)

    async def connect(self) -> None:
        self._streams.reopen()
        await self._connection.start()

    async def disconnect(self) -> None:
        if not self._connection.open:
            if self._tracker.state is not ConnectionState.DISCONNECTED:
                self._tracker.set(ConnectionState.CLOSED)
            return
        # Streams first, then the channel: closing a channel while its readers are being cancelled
        # can leak the connection (grpc issue 42125).
        self._connection.begin_close()
        had_streams = self._streams.close_all()
        await self._streams.wait_closed(timeout=1.0)
        await self._connection.close()
        if had_streams:
            # A stream call can end up in a reference cycle (seen with several streams on Python
            # 3.10), and a live call keeps its connection open after the channel is closed (grpc
            # issue 42125). One collection here releases it now instead of whenever the GC runs.
            gc.collect()

    async def __aenter__(self) -> GrpcBrokerGateway:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def health_check(self) -> HealthStatus:
        now = datetime.now(timezone.utc)
        if not self._connection.open:
            return HealthStatus(healthy=False, state=self.state, checked_at=now, error="not connected")
        healthy = await self._connection.check_health(self._config.unavailable_timeout)
        error = self._connection.last_error
        return HealthStatus(
            healthy=healthy,
            state=self.state,
            checked_at=now,
            latency=self._connection.last_latency if healthy else None,
            error=None if healthy or error is None else str(error),
        )

    # -- market data -------------------------------------------------------------------------------

    async def get_candles(
        self,
        symbol: str,
        interval: Interval,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> Sequence[Candle]:
        request = self._candles_request(symbol, interval, start, end, limit)
        pages: list[market_data_pb2.GetCandlesResponse] = []
        while True:
            page: market_data_pb2.GetCandlesResponse = await self._caller.read(
                "market_data", "market", "GetCandles", request
            )
            pages.append(page)
            if not page.next_page_token:
                return CandleSeries.from_pages(symbol, Interval(interval), pages)
            request.page_token = page.next_page_token

    @staticmethod
    def _candles_request(
        symbol: str, interval: Interval, start: datetime | None, end: datetime | None, limit: int | None
    ) -> market_data_pb2.GetCandlesRequest:
        check_symbol(symbol)
        try:
            wire_interval = interval_to(Interval(interval))
        except ValueError:
            allowed = ", ".join(i.value for i in Interval)
            raise InvalidRequestError(f"interval must be one of {allowed}; got {interval!r}") from None
        request = market_data_pb2.GetCandlesRequest(symbol=symbol, interval=wire_interval)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CANDLES:
                raise InvalidRequestError(
                    f"limit must be a whole number from 1 to {MAX_CANDLES:,}, got {limit!r}"
                )
            request.limit = limit
        if start is not None:
            request.start_time.CopyFrom(time_to(start))
        if end is not None:
            request.end_time.CopyFrom(time_to(end))
        if start is not None and end is not None and end <= start:
            raise InvalidRequestError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        return request

    async def get_quote(self, symbol: str) -> Quote:
        request = market_data_pb2.GetQuoteRequest(symbol=check_symbol(symbol))
        reply = await self._caller.read("market_data", "market", "GetQuote", request)
        return quote_from(reply.quote)

    async def get_instrument(self, symbol: str) -> Instrument:
        request = market_data_pb2.GetInstrumentRequest(symbol=check_symbol(symbol))
        reply = await self._caller.read("market_data", "market", "GetInstrument", request)
        return instrument_from(reply.instrument)

    def stream_quotes(self, symbols: Sequence[str]) -> AsyncIterator[Quote]:
        """Quotes as they tick; the iterator resumes by itself after a reconnect.

        Breaking out of the loop (or cancelling the task) ends the call; iterating after
        `disconnect()` raises `BrokerUnavailableError`.
        """
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        if not wanted:
            raise InvalidRequestError("stream_quotes needs at least one symbol")
        return self._streams.quotes([check_symbol(symbol) for symbol in wanted])

    # -- trading -----------------------------------------------------------------------------------

    async def place_order(self, request: OrderRequest) -> Order:
        if not isinstance(request, OrderRequest):
            raise InvalidRequestError(f"place_order takes an OrderRequest, got {type(request).__name__}")
        return await place_order(self._caller, self._config, request)

    async def cancel_order(self, order_id: str) -> Order:
        request = trading_pb2.CancelOrderRequest(order_id=_order_id(order_id))
        timeout = self._config.timeouts["trading"]
        reply = await self._caller.once("trading", "trading", "CancelOrder", request, timeout=timeout)
        return order_from(reply.order)

    async def modify_order(
        self, order_id: str, *, quantity: Number | None = None, price: Number | None = None
    ) -> Order:
        request = trading_pb2.ModifyOrderRequest(order_id=_order_id(order_id))
        if quantity is None and price is None:
            raise InvalidRequestError("modify_order needs a new quantity or a new price")
        for field, value in (("quantity", quantity), ("limit_price", price)):
            if value is not None:
                number = to_decimal(value, field=field)
                if number <= 0:
                    raise InvalidRequestError(f"{field} must be greater than zero, got {number}")
                getattr(request, field).CopyFrom(decimal_to(number, field=field))
        timeout = self._config.timeouts["trading"]
        reply = await self._caller.once("trading", "trading", "ModifyOrder", request, timeout=timeout)
        return order_from(reply.order)

    async def get_order(self, order_id: str) -> Order:
        request = trading_pb2.GetOrderRequest(order_id=_order_id(order_id))
        reply = await self._caller.read("trading", "trading", "GetOrder", request)
        return order_from(reply.order)

    async def get_orders(self, *, open_only: bool = False, symbol: str | None = None) -> Sequence[Order]:
        request = trading_pb2.ListOrdersRequest(open_only=bool(open_only))
        if symbol is not None:
            request.symbol = check_symbol(symbol)
        reply = await self._caller.read("trading", "trading", "ListOrders", request)
        return [order_from(order) for order in reply.orders]

    def stream_order_updates(self) -> AsyncIterator[OrderUpdate]:
        """Order updates as they happen; after a reconnect the missed ones are replayed first."""
        return self._streams.order_updates()

    # -- account -----------------------------------------------------------------------------------

    async def get_positions(self) -> Sequence[Position]:
        reply = await self._caller.read(
            "account", "trading", "GetPositions", trading_pb2.GetPositionsRequest()
        )
        return [position_from(position) for position in reply.positions]

    async def get_balance(self) -> Balance:
        reply = await self._caller.read("account", "trading", "GetBalance", trading_pb2.GetBalanceRequest())
        if not reply.balances:
            raise NotFoundError(f"GetBalance on {self._config.target}: the account holds no cash")
        return balance_from(reply.balances[0])

    def __repr__(self) -> str:
        return f"<GrpcBrokerGateway {self._config.target} {self.state}>"
