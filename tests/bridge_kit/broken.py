"""Deliberately broken bridges: the reference bridge with behaviours broken through subclasses.

Each bridge breaks several clauses whose checks do not touch one another, so that one kit run
judges many breakages; `TARGETS` says which clauses each one must fail (and every other clause of
the run must pass or skip). Every clause of the kit is broken by at least one of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2

from grpc_plugin.bridge import SERVER_OPTIONS, BridgeServer
from grpc_plugin.bridge._budget import CallBudget
from grpc_plugin.bridge._convert import order_message
from grpc_plugin.bridge._gate import RETRY_AFTER_KEY, CallGate, Context
from grpc_plugin.bridge._health import AuthenticatedHealth
from grpc_plugin.bridge._market_service import MarketDataServicer
from grpc_plugin.bridge._paging import HISTORY_START_MS, MAX_LIMIT
from grpc_plugin.bridge._parse import new_order, order_id
from grpc_plugin.bridge._trading_service import TradingServicer
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2_grpc, trading_pb2_grpc
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr

MARKET_DATA = "broker.bridge.v1.MarketDataService"


def _copy(request: Any) -> Any:
    copied = type(request)()
    copied.CopyFrom(request)
    return copied


# -- bridge one ------------------------------------------------------------------------------------


class _MarketServingOneWrong(AuthenticatedHealth):
    """BK-HEALTH-1: MarketDataService reported NOT_SERVING while it serves."""

    async def set(self, service: str, status: int) -> None:
        if service == MARKET_DATA:
            status = health_pb2.HealthCheckResponse.NOT_SERVING
        await super().set(service, status)


class _MarketOne(MarketDataServicer):
    async def GetQuote(self, request: md.GetQuoteRequest, context: Context) -> md.GetQuoteResponse:
        """BK-AUTH-2: a wrong token is quoted back in the refusal."""
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        if header and self._gate.tokens.account(context.invocation_metadata()) is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"unknown credentials {header!r}")
        return await super().GetQuote(request, context)

    async def ListInstruments(
        self, request: md.ListInstrumentsRequest, context: Context
    ) -> md.ListInstrumentsResponse:
        """BK-MD-1: instruments listed in reverse order."""
        reply = await super().ListInstruments(request, context)
        return md.ListInstrumentsResponse(instruments=list(reversed(reply.instruments)))

    async def GetCandles(self, request: md.GetCandlesRequest, context: Context) -> md.GetCandlesResponse:
        """BK-CD-2: without start_time, the first `limit` candles of history instead of the last;
        BK-BAD-4: an unknown interval read as one day."""
        request = _copy(request)
        if not request.HasField("start_time"):
            request.start_time.CopyFrom(Timestamp(seconds=HISTORY_START_MS // 1000))
        if request.interval > md.INTERVAL_ONE_DAY:
            request.interval = md.INTERVAL_ONE_DAY
        return await super().GetCandles(request, context)

    async def StreamQuotes(
        self, request: md.StreamQuotesRequest, context: Context
    ) -> AsyncIterator[md.StreamQuotesResponse]:
        """BK-QS-1: the stream ends after its first batch."""
        async with aclosing(super().StreamQuotes(request, context)) as batches:  # type: ignore[type-var]
            async for batch in batches:
                yield batch
                return


class _TradingOne(TradingServicer):
    async def PlaceOrder(self, request: tr.PlaceOrderRequest, context: Context) -> tr.PlaceOrderResponse:
        """BK-ORD-2: the id alone decides; other contents get the existing order back."""
        async with self._gate.unary("PlaceOrder", request, context) as account:
            new = new_order(request)
            existing = self._broker.placed(account, new.client_order_id)
            if existing is not None:
                return tr.PlaceOrderResponse(order=order_message(existing), duplicate=True)
            order, duplicate = self._broker.place(account, new)
            return tr.PlaceOrderResponse(order=order_message(order), duplicate=duplicate)

    async def StreamOrderUpdates(
        self, request: tr.StreamOrderUpdatesRequest, context: Context
    ) -> AsyncIterator[tr.StreamOrderUpdatesResponse]:
        """BK-OU-3: every update numbered one too high."""
        async with aclosing(super().StreamOrderUpdates(request, context)) as messages:  # type: ignore[type-var]
            async for message in messages:
                for update in message.updates:
                    update.sequence += 1
                yield message


class BridgeOne(BridgeServer):
    market_data_servicer = _MarketOne
    trading_servicer = _TradingOne
    health_servicer = _MarketServingOneWrong

    def add_services(self, server: grpc.aio.Server) -> None:
        """BK-BAD-1: gRPC parses the requests, so bytes that do not parse end as UNKNOWN."""
        assert self._servicers is not None
        market_data, trading = self._servicers
        market_data_pb2_grpc.add_MarketDataServiceServicer_to_server(market_data, server)
        trading_pb2_grpc.add_TradingServiceServicer_to_server(trading, server)


# -- bridge two ------------------------------------------------------------------------------------


class _OpenHealth(AuthenticatedHealth):
    """BK-HEALTH-2: health answers any token."""

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Any
    ) -> health_pb2.HealthCheckResponse:
        return await health.aio.HealthServicer.Check(self, request, context)


class _MarketTwo(MarketDataServicer):
    async def GetQuote(self, request: md.GetQuoteRequest, context: Context) -> md.GetQuoteResponse:
        """BK-MD-2: an unknown symbol fails with an unhandled exception (UNKNOWN)."""
        if not self._market.has(request.symbol):
            raise KeyError(request.symbol)
        return await super().GetQuote(request, context)

    async def GetCandles(self, request: md.GetCandlesRequest, context: Context) -> md.GetCandlesResponse:
        """BK-CD-1: page_size ignored, every page as large as the server allows."""
        request = _copy(request)
        request.page_size = 0
        return await super().GetCandles(request, context)

    async def ListInstruments(
        self, request: md.ListInstrumentsRequest, context: Context
    ) -> md.ListInstrumentsResponse:
        """BK-BAD-5: a huge request fails with an unhandled exception."""
        if len(request.exchange) > 1_000_000:
            raise MemoryError("exchange filter too long")
        return await super().ListInstruments(request, context)

    async def StreamQuotes(
        self, request: md.StreamQuotesRequest, context: Context
    ) -> AsyncIterator[md.StreamQuotesResponse]:
        """BK-QS-2: no symbols is NOT_FOUND instead of INVALID_ARGUMENT."""
        if not request.symbols:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such symbols")
        async with aclosing(super().StreamQuotes(request, context)) as batches:  # type: ignore[type-var]
            async for batch in batches:
                yield batch


class _TradingTwo(TradingServicer):
    async def GetPositions(
        self, request: tr.GetPositionsRequest, context: Context
    ) -> tr.GetPositionsResponse:
        """BK-AUTH-1: positions without a token."""
        return tr.GetPositionsResponse()

    async def PlaceOrder(self, request: tr.PlaceOrderRequest, context: Context) -> tr.PlaceOrderResponse:
        """BK-ORD-5: an unknown symbol is NOT_FOUND instead of a REJECTED order; BK-ORD-1 and
        BK-ORD-3: a retry says duplicate = false."""
        if request.symbol and not self._market.has(request.symbol):
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown symbol")
        reply = await super().PlaceOrder(request, context)
        reply.duplicate = False
        return reply

    async def GetOrder(self, request: tr.GetOrderRequest, context: Context) -> tr.GetOrderResponse:
        """BK-BAD-2: a long order id quoted back whole."""
        if len(request.order_id) > 64:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"no order {request.order_id}")
        return await super().GetOrder(request, context)


class BridgeTwo(BridgeServer):
    market_data_servicer = _MarketTwo
    trading_servicer = _TradingTwo
    health_servicer = _OpenHealth


# -- bridge three ----------------------------------------------------------------------------------


class _MarketThree(MarketDataServicer):
    async def GetQuote(self, request: md.GetQuoteRequest, context: Context) -> md.GetQuoteResponse:
        """BK-MD-3: bid and ask swapped (a crossed quote)."""
        reply = await super().GetQuote(request, context)
        bid, ask = _copy(reply.quote.bid), _copy(reply.quote.ask)
        reply.quote.bid.CopyFrom(ask)
        reply.quote.ask.CopyFrom(bid)
        return reply

    def page_fingerprint(self, request: md.GetCandlesRequest) -> int:
        """BK-CD-3: a page token fits any request."""
        return 0

    async def GetCandles(self, request: md.GetCandlesRequest, context: Context) -> md.GetCandlesResponse:
        """BK-CD-4: a limit over the maximum clamped instead of refused."""
        if request.HasField("limit") and request.limit > MAX_LIMIT:
            request = _copy(request)
            request.limit = MAX_LIMIT
        return await super().GetCandles(request, context)

    async def GetMarketCalendar(
        self, request: cal.GetMarketCalendarRequest, context: Context
    ) -> cal.GetMarketCalendarResponse:
        """BK-MD-4: holidays newest first."""
        reply = await super().GetMarketCalendar(request, context)
        holidays = list(reversed(reply.holidays))
        del reply.holidays[:]
        reply.holidays.extend(holidays)
        return reply


class _TradingThree(TradingServicer):
    async def StreamOrderUpdates(
        self, request: tr.StreamOrderUpdatesRequest, context: Context
    ) -> AsyncIterator[tr.StreamOrderUpdatesResponse]:
        """BK-OU-1: with nothing to replay after a sequence, the first message waits for an update;
        BK-OU-2: a sequence ahead of the latest is read as "from the latest"."""
        latest = self._broker.last_sequence("paper")
        ahead = not request.from_latest and request.after_sequence > latest
        quiet_replay = not request.from_latest and request.after_sequence == latest
        if ahead:
            request = tr.StreamOrderUpdatesRequest(from_latest=True)
        first = True
        async with aclosing(super().StreamOrderUpdates(request, context)) as messages:  # type: ignore[type-var]
            async for message in messages:
                if first and quiet_replay and not message.updates:
                    first = False
                    continue
                first = False
                yield message

    async def CancelOrder(self, request: tr.CancelOrderRequest, context: Context) -> tr.CancelOrderResponse:
        """BK-ORD-4: cancelling an order that no longer works returns it, as if it worked."""
        async with self._gate.unary("CancelOrder", request, context) as account:
            order = self._broker.get_order(account, order_id=order_id(request.order_id))
            if not order.status.is_open:
                return tr.CancelOrderResponse(order=order_message(order))
            return tr.CancelOrderResponse(order=order_message(self._broker.cancel(account, order.order_id)))

    async def ModifyOrder(self, request: tr.ModifyOrderRequest, context: Context) -> tr.ModifyOrderResponse:
        """BK-BAD-3: the order is looked up before its new values are checked."""
        async with self._gate.unary("ModifyOrder", request, context) as account:
            self._broker.get_order(account, order_id=request.order_id)
        return await super().ModifyOrder(request, context)

    async def PlaceOrder(self, request: tr.PlaceOrderRequest, context: Context) -> tr.PlaceOrderResponse:
        """BK-BAD-6: an unknown side read as a buy."""
        if request.side not in (tr.SIDE_BUY, tr.SIDE_SELL):
            request = _copy(request)
            request.side = tr.SIDE_BUY
        return await super().PlaceOrder(request, context)


class BridgeThree(BridgeServer):
    market_data_servicer = _MarketThree
    trading_servicer = _TradingThree


# -- budgets and keepalive -------------------------------------------------------------------------


class _SecondsGate(CallGate):
    """BK-BUD-1: retry-after-ms spelled with a unit."""

    def _check(self, account: str | None, client: str, size: int, malformed: str, context: Context) -> Any:
        outcome = super()._check(account, client, size, malformed, context)
        if isinstance(outcome, tuple) and outcome[0] is grpc.StatusCode.RESOURCE_EXHAUSTED:
            context.set_trailing_metadata(((RETRY_AFTER_KEY, "250ms"),))
        return outcome


class _FirstComeFirstServed(CallBudget):
    """BK-BUD-3: one queue for every client: the fastest takes every freed slot."""

    def admit(self, account: str, client: str = "") -> float | None:
        return super().admit(account, "")


class BudgetBridgeOne(BridgeServer):
    call_gate = _SecondsGate
    call_budget = _FirstComeFirstServed


class _BudgetPerConnection(CallBudget):
    """BK-BUD-2: every connection gets the account's whole budget."""

    def admit(self, account: str, client: str = "") -> float | None:
        return super().admit(f"{account} via {client}", client)


class BudgetBridgeTwo(BridgeServer):
    call_budget = _BudgetPerConnection


class ImpatientBridge(BridgeServer):
    """BK-KA-1: connections closed after 1.5 s, however busy."""

    server_options: ClassVar[Sequence[tuple[str, Any]]] = (
        *SERVER_OPTIONS,
        ("grpc.max_connection_age_ms", 1_500),
        ("grpc.max_connection_age_grace_ms", 500),
    )


TARGETS: dict[type[BridgeServer], frozenset[str]] = {
    BridgeOne: frozenset(
        {
            "BK-HEALTH-1",
            "BK-AUTH-2",
            "BK-MD-1",
            "BK-CD-2",
            "BK-QS-1",
            "BK-ORD-2",
            "BK-BAD-1",
            "BK-BAD-4",
            "BK-OU-3",
        }
    ),
    BridgeTwo: frozenset(
        {
            "BK-HEALTH-2",
            "BK-AUTH-1",
            "BK-MD-2",
            "BK-CD-1",
            "BK-QS-2",
            "BK-ORD-1",
            "BK-ORD-3",
            "BK-ORD-5",
            "BK-BAD-2",
            "BK-BAD-5",
        }
    ),
    BridgeThree: frozenset(
        {"BK-MD-3", "BK-MD-4", "BK-CD-3", "BK-CD-4", "BK-OU-1", "BK-OU-2", "BK-ORD-4", "BK-BAD-3", "BK-BAD-6"}
    ),
    BudgetBridgeOne: frozenset({"BK-BUD-1", "BK-BUD-3"}),
    BudgetBridgeTwo: frozenset({"BK-BUD-2"}),
    ImpatientBridge: frozenset({"BK-KA-1"}),
}
