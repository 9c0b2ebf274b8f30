"""`GrpcBrokerGateway`: the whole `IBrokerGateway` contract over grpc.aio to a bridge server.

The lifecycle, the argument checks and the order of a call come from `GatewayBase`; this is the
transport (`Connection`, `Calls`, `StreamSet`, `OrderDesk`) and the mapping to and from protobuf.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from broker_plugins import (
    Balance,
    Candle,
    Capability,
    GatewayBase,
    Instrument,
    Interval,
    InvalidRequestError,
    MarketCalendar,
    NotFoundError,
    Order,
    OrderRequest,
    OrderUpdate,
    Position,
    Quote,
)
from grpc_plugin._calendar import calendar_from, date_to
from grpc_plugin._calls import Calls
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
from grpc_plugin._orders import OrderDesk
from grpc_plugin._staleness import MarketHours, Staleness
from grpc_plugin._status import UnimplementedError
from grpc_plugin._streams import OrderStreamGap, StreamSet
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2, market_data_pb2, trading_pb2

__all__ = ["GrpcBrokerGateway"]

_CALLS_RELEASE = 1.0
"""Seconds `disconnect()` waits for readers to let go of their calls before it closes the channel."""


class GrpcBrokerGateway(GatewayBase):
    """A gateway to a bridge server over gRPC.

    Build it with `BrokerRegistry().create("grpc", target="host:port", ...)` or directly with the same
    keyword options (see `GatewayConfig`); unknown or ill-typed options raise `InvalidRequestError`.
    The channel is created in `connect()`, inside the running event loop.
    """

    CAPABILITIES = frozenset(
        {
            Capability.QUOTE_STREAM,
            Capability.ORDER_UPDATE_STREAM,
            Capability.MODIFY_ORDER,
            Capability.STREAM_RESUME,
            Capability.HALF_OPEN_DETECTION,
            Capability.MARKET_CALENDAR,
        }
    )

    def __init__(self, **options: Any) -> None:
        config = GatewayConfig.from_options(**options)
        super().__init__(
            name="grpc",
            rate_limiter=config.limiter,
        )
        self._config = config
        self._connection = Connection(config, lambda: self.state, self._set_state)
        self._calls = Calls(config, self._connection, self.rate_limiter, self._admit, lambda: self.state)
        self._streams = StreamSet(
            config, self._connection, self._calls, lambda: self._open, self._staleness()
        )
        self._orders = OrderDesk(self._calls, config)

    def _staleness(self) -> Staleness | None:
        """Quote subscriptions judged against the bridge's calendars (see grpc_plugin._staleness)."""
        after = self._config.quote_stale_after
        if after is None:
            return None
        hours = MarketHours(
            lambda: self._list_instruments(None),
            lambda exchange: self._get_market_calendar(exchange, None, None),
        )
        return Staleness(after, hours, self._spawn, self._stale_reports.report)

    @property
    def target(self) -> str:
        """The bridge address this gateway talks to."""
        return self._config.target

    @property
    def half_open_bound(self) -> float:
        """Seconds within which a silent (black-holed) connection is noticed."""
        return self._config.half_open_bound

    def add_gap_listener(self, listener: Callable[[OrderStreamGap], object]) -> Callable[[], None]:
        """Call `listener` each time the order-update stream closes a gap after a reconnect."""
        return self._streams.add_gap_listener(listener)

    # -- the link ------------------------------------------------------------------------------------

    async def _open_link(self) -> None:
        await self._connection.start()
        self._spawn(self._connection.watch(), "watch")
        self._spawn(self._connection.keep_alive(), "keep-alive")

    async def _close_link(self) -> None:
        # Streams first, then the channel: closing a channel while its readers are being cancelled
        # can leak the connection (grpc issue 42125).
        had_streams = self._streams.used()
        self._connection.sever()
        await self._connection.wait_released(_CALLS_RELEASE)
        await self._connection.close()
        if had_streams and sys.version_info < (3, 11):
            # On Python 3.10 a cancelled stream call is kept alive by a reference cycle (its own
            # task's CancelledError holds a traceback whose frame holds the call), and a live call
            # keeps its connection open after the channel is closed (grpc issue 42125). One
            # collection releases it now; 3.11 and later leave no such cycle, and pay nothing.
            gc.collect()

    async def _wait_link(self, timeout: float) -> None:
        await self._connection.wait_ready(timeout)

    async def _probe(self) -> None:
        await self._connection.check_health(self._config.health_check_timeout)

    # -- market data ---------------------------------------------------------------------------------

    async def _get_candles(
        self, symbol: str, interval: Interval, start: datetime | None, end: datetime | None, limit: int | None
    ) -> Sequence[Candle]:
        request = market_data_pb2.GetCandlesRequest(symbol=symbol, interval=interval_to(interval))
        if limit is not None:
            request.limit = limit
        if start is not None:
            request.start_time.CopyFrom(time_to(start))
        if end is not None:
            request.end_time.CopyFrom(time_to(end))
        pages: list[market_data_pb2.GetCandlesResponse] = []
        while True:  # a permit per page
            page: market_data_pb2.GetCandlesResponse = await self._calls.read(
                "market_data", "market", "GetCandles", request
            )
            pages.append(page)
            if not page.next_page_token:
                return CandleSeries.from_pages(symbol, interval, pages)
            request.page_token = page.next_page_token

    async def _get_quote(self, symbol: str) -> Quote:
        request = market_data_pb2.GetQuoteRequest(symbol=symbol)
        reply = await self._calls.read("market_data", "market", "GetQuote", request)
        return quote_from(reply.quote)

    async def _get_instrument(self, symbol: str) -> Instrument:
        request = market_data_pb2.GetInstrumentRequest(symbol=symbol)
        reply = await self._calls.read("market_data", "market", "GetInstrument", request)
        return instrument_from(reply.instrument)

    async def _list_instruments(self, exchange: str | None) -> Sequence[Instrument]:
        # ListInstruments is not paged: one request, one permit.
        request = market_data_pb2.ListInstrumentsRequest(exchange=exchange or "")
        reply = await self._calls.read("market_data", "market", "ListInstruments", request)
        return sorted((instrument_from(item) for item in reply.instruments), key=lambda i: i.symbol)

    async def _get_market_calendar(
        self, exchange: str, start: date | None, end: date | None
    ) -> MarketCalendar:
        request = calendar_pb2.GetMarketCalendarRequest(exchange=exchange)
        if start is not None:
            request.start.CopyFrom(date_to(start))
        if end is not None:
            request.end.CopyFrom(date_to(end))
        try:
            reply = await self._calls.read("market_data", "market", "GetMarketCalendar", request)
        except UnimplementedError:
            raise InvalidRequestError(
                f"the bridge at {self._config.target} reports no market calendars "
                "(GetMarketCalendar is UNIMPLEMENTED: a bridge older than the RPC)"
            ) from None
        return calendar_from(reply, target=self._config.target)

    def _stream_quotes(self, symbols: tuple[str, ...]) -> AsyncGenerator[Quote, None]:
        """Quotes as they tick; the iterator resumes by itself after a reconnect."""
        return self._streams.quotes(symbols)

    # -- trading -------------------------------------------------------------------------------------

    async def _place_order(self, request: OrderRequest) -> Order:
        return await self._orders.place(request)

    async def _cancel_order(self, order_id: str) -> Order:
        request = trading_pb2.CancelOrderRequest(order_id=order_id)
        timeout = self._config.timeouts["trading"]
        reply = await self._calls.once("trading", "trading", "CancelOrder", request, timeout=timeout)
        return order_from(reply.order)

    async def _modify_order(self, order_id: str, quantity: Decimal | None, price: Decimal | None) -> Order:
        request = trading_pb2.ModifyOrderRequest(order_id=order_id)
        if quantity is not None:
            request.quantity.CopyFrom(decimal_to(quantity, field="quantity"))
        if price is not None:
            request.limit_price.CopyFrom(decimal_to(price, field="price"))
        timeout = self._config.timeouts["trading"]
        reply = await self._calls.once("trading", "trading", "ModifyOrder", request, timeout=timeout)
        return order_from(reply.order)

    async def _get_order(self, order_id: str) -> Order:
        request = trading_pb2.GetOrderRequest(order_id=order_id)
        reply = await self._calls.read("trading", "trading", "GetOrder", request)
        return order_from(reply.order)

    async def _get_orders(self, open_only: bool, symbol: str | None) -> Sequence[Order]:
        request = trading_pb2.ListOrdersRequest(open_only=open_only)
        if symbol is not None:
            request.symbol = symbol
        reply = await self._calls.read("trading", "trading", "ListOrders", request)
        return [order_from(order) for order in reply.orders]

    def _stream_order_updates(self) -> AsyncGenerator[OrderUpdate, None]:
        """Order updates as they happen; after a reconnect the missed ones are replayed first."""
        return self._streams.order_updates()

    # -- account -------------------------------------------------------------------------------------

    async def _get_positions(self) -> Sequence[Position]:
        request = trading_pb2.GetPositionsRequest()
        reply = await self._calls.read("account", "trading", "GetPositions", request)
        return [position_from(position) for position in reply.positions]

    async def _get_balance(self) -> Balance:
        reply = await self._calls.read("account", "trading", "GetBalance", trading_pb2.GetBalanceRequest())
        if not reply.balances:
            raise NotFoundError(f"GetBalance on {self._config.target}: the account holds no cash")
        return balance_from(reply.balances[0])

    def __repr__(self) -> str:
        return f"<GrpcBrokerGateway {self._config.target} {self.state}>"
