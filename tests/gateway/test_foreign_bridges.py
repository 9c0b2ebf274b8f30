"""The gateway against bridges we did not write: plain grpc.aio servers with stock options.

Each test stands for something a vendor's server does that our reference bridge does not: stock
keepalive enforcement, a token check on every RPC (health included), streams that fail the same way
every time, a PlaceOrder slower than its deadline, a duplicate that is not the order asked for, a
budget refusal with a fractional or a long retry-after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from broker_plugins import (
    AuthenticationError,
    BrokerInternalError,
    ConnectionState,
    InvalidRequestError,
    OrderOutcomeUnknownError,
    OrderRequest,
    RateLimitExceededError,
    StateChange,
)
from grpc_plugin._config import GatewayConfig
from grpc_plugin._connection import channel_options
from grpc_plugin._streams import FAULT_ATTEMPTS
from grpc_plugin.generated.broker.bridge.v1 import (
    common_pb2,
    market_data_pb2,
    market_data_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)
from tests.gateway.conftest import MakeGateway
from tests.gateway.plain_bridge import PlainBridge
from tests.support.waiting import until

Context = grpc.aio.ServicerContext[Any, Any]
TOKEN = "vendor-token-1"


def _wire(value: str) -> common_pb2.Decimal:
    sign, digits, exponent = Decimal(value).as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    return common_pb2.Decimal(mantissa=-mantissa if sign else mantissa, exponent=exponent)


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _quote(symbol: str) -> market_data_pb2.Quote:
    return market_data_pb2.Quote(
        symbol=symbol,
        bid=_wire("99"),
        bid_size=_wire("5"),
        ask=_wire("101"),
        ask_size=_wire("5"),
        time=_now(),
    )


class _Quotes(market_data_pb2_grpc.MarketDataServiceServicer):
    """GetQuote answers (after `refusals`, each RESOURCE_EXHAUSTED with `retry_after_ms`); StreamQuotes
    fails with `stream_failure` on every opening, or sends one batch and then nothing."""

    def __init__(
        self, *, refusals: int = 0, retry_after_ms: str = "", stream_failure: grpc.StatusCode | None = None
    ) -> None:
        self.refusals = refusals
        self.retry_after_ms = retry_after_ms
        self.stream_failure = stream_failure
        self.quote_requests = 0
        self.stream_openings = 0

    async def GetQuote(self, request: market_data_pb2.GetQuoteRequest, context: Context) -> Any:
        self.quote_requests += 1
        if self.refusals:
            self.refusals -= 1
            context.set_trailing_metadata((("retry-after-ms", self.retry_after_ms),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over budget")
        return market_data_pb2.GetQuoteResponse(quote=_quote(request.symbol))

    async def StreamQuotes(
        self, request: market_data_pb2.StreamQuotesRequest, context: Context
    ) -> AsyncIterator[Any]:
        self.stream_openings += 1
        if self.stream_failure is not None:
            await context.abort(self.stream_failure, "a handler bug")
        yield market_data_pb2.StreamQuotesResponse(quotes=[_quote(symbol) for symbol in request.symbols])
        await asyncio.Event().wait()  # then quiet: no data, for as long as the client stays


class _Orders(trading_pb2_grpc.TradingServiceServicer):
    """PlaceOrder takes `delay` s and creates the order then; GetOrder finds it once created. A quiet
    StreamOrderUpdates. `answer_with` makes every PlaceOrder return that order as a duplicate."""

    def __init__(self, *, delay: float = 0.0, answer_with: trading_pb2.Order | None = None) -> None:
        self.delay = delay
        self.answer_with = answer_with
        self.placements = 0
        self.concurrent = self.most_concurrent = 0
        self.orders: dict[str, trading_pb2.Order] = {}
        self._work: set[asyncio.Future[trading_pb2.PlaceOrderResponse]] = set()

    async def PlaceOrder(self, request: trading_pb2.PlaceOrderRequest, context: Context) -> Any:
        # Shielded: like many a vendor's server, it goes on with the order when the client gives up.
        work = asyncio.ensure_future(self._place(request))
        self._work.add(work)
        return await asyncio.shield(work)

    async def _place(self, request: trading_pb2.PlaceOrderRequest) -> trading_pb2.PlaceOrderResponse:
        self.placements += 1
        self.concurrent += 1
        self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.concurrent -= 1
        if self.answer_with is not None:
            return trading_pb2.PlaceOrderResponse(order=self.answer_with, duplicate=True)
        existing = self.orders.get(request.client_order_id)
        if existing is not None:
            return trading_pb2.PlaceOrderResponse(order=existing, duplicate=True)
        order = self.orders[request.client_order_id] = _order_for(request)
        return trading_pb2.PlaceOrderResponse(order=order)

    async def GetOrder(self, request: trading_pb2.GetOrderRequest, context: Context) -> Any:
        order = self.orders.get(request.client_order_id)
        if order is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such order")
        return trading_pb2.GetOrderResponse(order=order)

    async def StreamOrderUpdates(
        self, request: trading_pb2.StreamOrderUpdatesRequest, context: Context
    ) -> AsyncIterator[Any]:
        yield trading_pb2.StreamOrderUpdatesResponse(latest_sequence=0)
        await asyncio.Event().wait()


def _order_for(request: trading_pb2.PlaceOrderRequest) -> trading_pb2.Order:
    return trading_pb2.Order(
        order_id=f"V-{request.client_order_id}",
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=request.side,
        order_type=request.order_type,
        quantity=request.quantity,
        time_in_force=request.time_in_force or trading_pb2.TIME_IN_FORCE_DAY,
        status=trading_pb2.ORDER_STATUS_NEW,
        filled_quantity=_wire("0"),
        create_time=_now(),
        update_time=_now(),
    )


@pytest.fixture
async def plain() -> AsyncIterator[Callable[..., Awaitable[PlainBridge]]]:
    started: list[PlainBridge] = []

    async def start(**servicers: Any) -> PlainBridge:
        bridge = await PlainBridge(**servicers).start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        await bridge.stop()


def test_the_channel_never_pings_faster_than_a_stock_server_allows() -> None:
    options = dict(channel_options(GatewayConfig(target="h:1")))
    assert options["grpc.keepalive_time_ms"] >= 300_000
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert "grpc.http2.max_pings_without_data" not in options  # gRPC's default: at most two


async def test_a_stock_server_sends_goaway_to_frequent_pings_but_not_to_the_gateway(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    bridge = await plain(trading=_Orders())
    # What the first version did: ping every second, without limit, on a quiet stream.
    eager = grpc.aio.insecure_channel(
        bridge.address,
        options=[
            ("grpc.keepalive_time_ms", 1000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    quiet_stream = trading_pb2_grpc.TradingServiceStub(eager).StreamOrderUpdates(
        trading_pb2.StreamOrderUpdatesRequest(from_latest=True)
    )
    changes: list[StateChange] = []
    async with gateways(bridge.address, health_check_interval=30.0) as gateway:
        gateway.add_state_listener(changes.append)
        updates = gateway.stream_order_updates()
        reading = asyncio.ensure_future(anext(updates))
        await quiet_stream.read()
        # The stock policy answers the eager client's third ping in a row with GOAWAY.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(quiet_stream.read(), 20)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        # The gateway, idle on a quiet stream for as long, was left alone.
        assert changes == []
        assert gateway.state is ConnectionState.CONNECTED
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await updates.aclose()
    await eager.close()


async def test_health_checks_carry_the_token_and_connect_verifies_it(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    bridge = await PlainBridge(market=_Quotes(), token=TOKEN).start()
    try:
        changes: list[StateChange] = []
        async with gateways(bridge.address, token=TOKEN, health_check_interval=0.05) as gateway:
            gateway.add_state_listener(changes.append)
            assert (await gateway.health_check()).healthy
            await asyncio.sleep(0.3)  # several probes, each one authenticated
            assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
        assert [c.current for c in changes] == [ConnectionState.CLOSED]
        for token in ("wrong-token", None):
            refused = gateways(bridge.address, token=token)
            with pytest.raises(
                AuthenticationError, match=r"refused the credentials.*BROKERCTL_TOKEN"
            ) as caught:
                await refused.connect()
            assert "wrong-token" not in str(caught.value)
            assert refused.state is ConnectionState.DISCONNECTED
    finally:
        await bridge.stop()


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN])
async def test_a_stream_that_fails_with_a_bridge_fault_raises_after_a_few_paced_openings(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway, code: grpc.StatusCode
) -> None:
    quotes = _Quotes(stream_failure=code)
    bridge = await plain(market=quotes)
    async with gateways(bridge.address) as gateway:
        started = time.monotonic()
        with pytest.raises(BrokerInternalError, match="a handler bug"):
            async for _ in gateway.stream_quotes(["AAPL"]):
                pass
        assert quotes.stream_openings == FAULT_ATTEMPTS
        assert time.monotonic() - started >= 0.05  # paced by the backoff (0.05 s first), not a hot loop


async def test_a_stream_that_is_refused_as_transient_keeps_reopening_at_a_paced_rate(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    quotes = _Quotes(stream_failure=grpc.StatusCode.UNAVAILABLE)
    bridge = await plain(market=quotes)
    async with gateways(bridge.address) as gateway:
        stream = gateway.stream_quotes(["AAPL"])
        reading = asyncio.ensure_future(anext(stream))
        started = time.monotonic()
        await until(lambda: quotes.stream_openings >= 6)
        elapsed = time.monotonic() - started
        assert not reading.done()  # transient: the reader waits, it is not failed
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await stream.aclose()
    # Backoff 0.05, 0.1, 0.2, 0.3, 0.3 (less up to 20% jitter) between the first six openings.
    assert elapsed >= 0.7


async def test_an_order_slower_than_its_deadline_is_never_sent_twice(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    orders = _Orders(delay=1.5)
    bridge = await plain(trading=orders)
    async with gateways(bridge.address, timeouts={"trading": 0.4}) as gateway:
        request = OrderRequest.limit("AAPL", "buy", 1, "100")
        with pytest.raises(OrderOutcomeUnknownError) as caught:
            await gateway.place_order(request)
        assert caught.value.client_order_id == request.client_order_id
        await until(lambda: request.client_order_id in orders.orders)
    assert (orders.placements, orders.most_concurrent) == (1, 1)


async def test_placements_of_one_client_order_id_take_turns(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    orders = _Orders(delay=0.2)
    bridge = await plain(trading=orders)
    async with gateways(bridge.address) as gateway:
        request = OrderRequest.market("AAPL", "buy", 3)
        first, second = await asyncio.gather(gateway.place_order(request), gateway.place_order(request))
    assert first == second
    assert (orders.placements, orders.most_concurrent) == (2, 1)


async def test_a_duplicate_that_is_another_order_is_refused(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    earlier = OrderRequest.market("005930", "buy", 1, client_order_id="reused-id")
    orders = _Orders(answer_with=_order_for(_place_request(earlier)))
    bridge = await plain(trading=orders)
    async with gateways(bridge.address) as gateway:
        with pytest.raises(
            InvalidRequestError, match=r"'reused-id' was already used for another order \(buy 1 005930"
        ):
            await gateway.place_order(OrderRequest.market("AAPL", "sell", 7, client_order_id="reused-id"))
        assert (await gateway.place_order(earlier)).symbol == "005930"  # the same contents: that order


def _place_request(request: OrderRequest) -> trading_pb2.PlaceOrderRequest:
    from grpc_plugin._mapping import order_request_to  # noqa: PLC0415 - only this helper needs it

    return order_request_to(request)


async def test_a_fractional_retry_after_is_waited_and_a_long_one_fails_at_once(
    plain: Callable[..., Awaitable[PlainBridge]], gateways: MakeGateway
) -> None:
    brief = _Quotes(refusals=1, retry_after_ms="12.5")
    long = _Quotes(refusals=1, retry_after_ms="60000")
    bridges = [await plain(market=brief), await plain(market=long)]
    async with gateways(bridges[0].address) as gateway:
        assert (await gateway.get_quote("AAPL")).symbol == "AAPL"
    assert brief.quote_requests == 2
    async with gateways(bridges[1].address) as gateway:
        with pytest.raises(RateLimitExceededError) as caught:
            await gateway.get_quote("AAPL")
    assert caught.value.retry_after == 60.0
    assert long.quote_requests == 1
