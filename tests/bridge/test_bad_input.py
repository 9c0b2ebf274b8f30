"""Bad input gets the contract's status (INVALID_ARGUMENT), never UNKNOWN, and small details."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import grpc.aio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2

from grpc_plugin.bridge import BridgeServer
from grpc_plugin.bridge._gate import MAX_DETAILS
from grpc_plugin.generated.broker.bridge.v1 import common_pb2
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import (
    CALL_TIMEOUT,
    Client,
    StartBridge,
    health_stub,
    limit_order,
    market_order,
    rpc_error,
)

HUGE = common_pb2.Decimal(mantissa=10**10, exponent=18)  # 1e28: beyond what Decimal arithmetic keeps exact
LONG = "x" * 60_000
INVALID_UTF8 = b"\x0a\x02\xff\xfe"  # field 1 (a string), two bytes that are not UTF-8
CORRUPT = b"\x0a\x10abc"  # field 1 claims 16 bytes, 3 follow


async def _invalid(call: Awaitable[object]) -> str:
    error = await rpc_error(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    details = error.details() or ""
    assert len(details) <= MAX_DETAILS
    return details


async def test_huge_decimals_are_invalid_arguments_and_create_nothing(
    client: Client, bridge: BridgeServer
) -> None:
    quantity = market_order("huge-1", "AAPL", tr.SIDE_BUY, 1)
    quantity.quantity.CopyFrom(HUGE)
    assert "quantity must be below 10^18" in await _invalid(client.trading.PlaceOrder(quantity))
    price = limit_order("huge-2", "AAPL", tr.SIDE_BUY, 1, "1")
    price.limit_price.CopyFrom(common_pb2.Decimal(mantissa=-(10**18), exponent=0))
    assert "limit_price must be below 10^18" in await _invalid(client.trading.PlaceOrder(price))
    # Well-formedness comes before the state: the order does not exist, the request is still malformed.
    modify = tr.ModifyOrderRequest(order_id="PO999999999", quantity=HUGE)
    await _invalid(client.trading.ModifyOrder(modify, timeout=CALL_TIMEOUT))
    assert bridge.orders_by_client_order_id() == {}


async def test_bytes_that_do_not_parse_are_invalid_arguments_after_the_token_check(
    start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    server = await start_bridge(budget=(), tokens={"tok": "alice"})
    channel = connect(server.address).channel
    token = (("authorization", "Bearer tok"),)
    methods = {
        "/broker.bridge.v1.MarketDataService/GetQuote": False,
        "/broker.bridge.v1.TradingService/PlaceOrder": False,
        "/broker.bridge.v1.MarketDataService/StreamQuotes": True,
    }
    for method, streaming in methods.items():
        for raw in (INVALID_UTF8, CORRUPT):
            # Without serializers, the calls send and receive bytes as they are.
            if streaming:
                stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(method)
                details = await _invalid(stream(raw, metadata=token, timeout=CALL_TIMEOUT).read())
            else:
                unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
                details = await _invalid(unary(raw, metadata=token, timeout=CALL_TIMEOUT))
            assert "does not parse" in details
    get_quote: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/broker.bridge.v1.MarketDataService/GetQuote"
    )
    error = await rpc_error(get_quote(CORRUPT, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    refused = [(r.method, r.account, r.rejected) for r in server.requests]
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert refused == [
        *[("GetQuote", "alice", invalid)] * 2,
        *[("PlaceOrder", "alice", invalid)] * 2,
        *[("StreamQuotes", "alice", invalid)] * 2,
        ("GetQuote", None, grpc.StatusCode.UNAUTHENTICATED),
    ]
    reply = await health_stub(channel).Check(health_pb2.HealthCheckRequest(), metadata=token)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_long_strings_are_refused_without_being_echoed(client: Client) -> None:
    for call in (
        client.trading.GetOrder(tr.GetOrderRequest(order_id=LONG)),
        client.trading.CancelOrder(tr.CancelOrderRequest(order_id=LONG)),
        client.trading.GetOrder(tr.GetOrderRequest(client_order_id=LONG)),
        client.trading.PlaceOrder(market_order(LONG, "AAPL", tr.SIDE_BUY, 1)),
        client.market.GetQuote(md.GetQuoteRequest(symbol=LONG)),
        client.market.GetCandles(md.GetCandlesRequest(symbol=LONG, interval=md.INTERVAL_ONE_DAY)),
        client.trading.GetBalance(tr.GetBalanceRequest(currency=LONG)),
        client.trading.ListOrders(tr.ListOrdersRequest(symbol=LONG)),
    ):
        details = await _invalid(call)
        assert "60,000 characters" in details
    unknown = md.StreamQuotesRequest(symbols=[f"Z{n}" for n in range(100)])
    error = await rpc_error(client.market.StreamQuotes(unknown).read())
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "and 95 more" in (error.details() or "")
    details = await _invalid(client.trading.GetBalance(tr.GetBalanceRequest(currency="usd")))
    assert "ISO 4217" in details
    await _invalid(client.trading.GetOrder(tr.GetOrderRequest(order_id="has space")))


async def test_timestamps_outside_the_timestamp_range_are_invalid_arguments(client: Client) -> None:
    far = Timestamp(seconds=10**15)
    request = md.GetCandlesRequest(symbol="AAPL", interval=md.INTERVAL_ONE_DAY, start_time=far)
    assert "between 0001-01-01 and 9999-12-31" in await _invalid(client.market.GetCandles(request))
    before = tr.ListOrdersRequest(updated_since=Timestamp(seconds=-(10**15)))
    await _invalid(client.trading.ListOrders(before))
