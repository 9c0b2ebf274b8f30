"""What every call passes first: authentication, budgets, request size, injected faults, the record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2

from grpc_plugin.bridge import RETRY_AFTER_KEY, BridgeServer, Window
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import (
    CALL_TIMEOUT,
    Client,
    StartBridge,
    health_stub,
    market_order,
    rpc_error,
    within,
)

QUOTE = md.GetQuoteRequest(symbol="AAPL")


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _retry_after_ms(error: grpc.aio.AioRpcError) -> int:
    values = [value for key, value in error.trailing_metadata() or () if key == RETRY_AFTER_KEY]
    assert len(values) == 1, error.trailing_metadata()
    return int(values[0])


async def test_tokens_authenticate_accounts_that_cannot_see_each_other(
    start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    server = await start_bridge(budget=(), tokens={"tok-a": "alice", "tok-b": "bob"})
    client = connect(server.address)
    for metadata in (
        (),
        _bearer("wrong"),
        (("authorization", "Basic tok-a"),),
        (("authorization", "Bearer "),),
    ):
        error = await rpc_error(client.market.GetQuote(QUOTE, metadata=metadata, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "tok-a" not in (error.details() or "")
    placed = await client.trading.PlaceOrder(
        market_order("a-1", "AAPL", tr.SIDE_BUY, 1), metadata=_bearer("tok-a"), timeout=CALL_TIMEOUT
    )
    lookup = tr.GetOrderRequest(order_id=placed.order.order_id)
    assert (
        await client.trading.GetOrder(lookup, metadata=(("authorization", "bearer tok-a"),))
    ).order.client_order_id == "a-1"
    error = await rpc_error(client.trading.GetOrder(lookup, metadata=_bearer("tok-b"), timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    orders = await client.trading.ListOrders(
        tr.ListOrdersRequest(), metadata=_bearer("tok-b"), timeout=CALL_TIMEOUT
    )
    assert list(orders.orders) == []
    # The same client_order_id in another account is another order.
    other = await client.trading.PlaceOrder(
        market_order("a-1", "AAPL", tr.SIDE_BUY, 1), metadata=_bearer("tok-b"), timeout=CALL_TIMEOUT
    )
    assert not other.duplicate
    bridge = server
    assert (
        set(bridge.orders_by_client_order_id("alice"))
        == set(bridge.orders_by_client_order_id("bob"))
        == {"a-1"}
    )
    accounts = [(r.account, r.rejected) for r in bridge.requests]
    assert accounts[:4] == [(None, grpc.StatusCode.UNAUTHENTICATED)] * 4
    assert accounts[4:] == [("alice", None), ("alice", None), ("bob", None), ("bob", None), ("bob", None)]


async def test_budgets_enforce_every_window_and_say_when_to_retry(
    start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    server = await start_bridge(budget=(Window(3, 1.0), Window(5, 60.0)), tokens={"a": "alice", "b": "bob"})
    client = connect(server.address)
    alice, bob = _bearer("a"), _bearer("b")
    for _ in range(3):
        await client.market.GetQuote(QUOTE, metadata=alice, timeout=CALL_TIMEOUT)
    error = await rpc_error(client.market.GetQuote(QUOTE, metadata=alice, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "3/1s, 5/60s" in (error.details() or "")
    first_wait = _retry_after_ms(error)
    assert 0 < first_wait <= 1_000
    # Budgets are per account; health checks are never budgeted.
    await client.market.GetQuote(QUOTE, metadata=bob, timeout=CALL_TIMEOUT)
    health = health_stub(client.channel)
    for _ in range(10):
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    await asyncio.sleep(first_wait / 1000)
    for _ in range(2):  # the per-second window has room again; the per-minute one takes two more
        await client.market.GetQuote(QUOTE, metadata=alice, timeout=CALL_TIMEOUT)
    await asyncio.sleep(1.0)
    error = await rpc_error(client.market.GetQuote(QUOTE, metadata=alice, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 1_000 < _retry_after_ms(error) <= 60_000  # only the per-minute window is full now
    bridge = server
    refused = [r for r in bridge.requests if r.rejected is grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert [r.account for r in refused] == ["alice", "alice"]


async def test_oversized_requests_are_refused_without_harm(client: Client, bridge: BridgeServer) -> None:
    error = await rpc_error(
        client.market.ListInstruments(md.ListInstrumentsRequest(exchange="x" * 100_000), timeout=CALL_TIMEOUT)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the limit is 65536" in (error.details() or "")
    # Beyond gRPC's own 16 MiB ceiling the transport refuses the message before the bridge sees it.
    error = await rpc_error(
        client.market.ListInstruments(
            md.ListInstrumentsRequest(exchange="x" * (17 << 20)), timeout=CALL_TIMEOUT
        )
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT)).quote.symbol == "AAPL"


async def test_fail_next_fails_exactly_that_many_calls(client: Client, bridge: BridgeServer) -> None:
    bridge.fail_next(2, grpc.StatusCode.UNAVAILABLE)
    for _ in range(2):
        error = await rpc_error(client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details() == "injected fault: UNAVAILABLE"
    await client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT)
    bridge.fail_next(1, grpc.StatusCode.INTERNAL, "boom")
    error = await rpc_error(client.trading.GetPositions(tr.GetPositionsRequest(), timeout=CALL_TIMEOUT))
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "boom")
    assert [r.rejected for r in bridge.requests] == [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAVAILABLE,
        None,
        grpc.StatusCode.INTERNAL,
    ]


async def test_a_delayed_reply_leaves_the_order_placed(client: Client, bridge: BridgeServer) -> None:
    bridge.delay(1.0)
    error = await rpc_error(
        client.trading.PlaceOrder(market_order("slow-1", "AAPL", tr.SIDE_BUY, 1), timeout=0.3)
    )
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    bridge.clear_faults()
    # The client cannot know the outcome from the failed call; asking by client_order_id resolves it.
    found = await client.trading.GetOrder(tr.GetOrderRequest(client_order_id="slow-1"), timeout=CALL_TIMEOUT)
    assert found.order.client_order_id == "slow-1"
    again = await client.trading.PlaceOrder(
        market_order("slow-1", "AAPL", tr.SIDE_BUY, 1), timeout=CALL_TIMEOUT
    )
    assert again.duplicate


async def test_requests_are_recorded_with_their_monotonic_arrival(
    client: Client, bridge: BridgeServer
) -> None:
    before = time.monotonic()
    await client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT)
    await client.trading.GetBalance(tr.GetBalanceRequest(), timeout=CALL_TIMEOUT)
    after = time.monotonic()
    records = bridge.requests
    assert [(r.method, r.account, r.rejected) for r in records] == [
        ("GetQuote", "paper", None),
        ("GetBalance", "paper", None),
    ]
    assert before <= records[0].arrived <= records[1].arrived <= after
    bridge.clear_requests()
    assert bridge.requests == []


async def test_stalled_streams_stay_open_and_deliver_the_backlog_on_release(
    client: Client, bridge: BridgeServer
) -> None:
    stream = client.market.StreamQuotes(md.StreamQuotesRequest(symbols=["AAPL", "MSFT"]))
    received: list[int] = []

    async def read() -> None:
        async for batch in stream:
            received.append(len(batch.quotes))

    reader = asyncio.get_running_loop().create_task(read())
    try:
        while not received:
            await within(asyncio.sleep(0.01))
        bridge.stall_streams()
        await asyncio.sleep(0.2)  # let anything already on the wire arrive
        stalled_at = len(received)
        await asyncio.sleep(0.5)
        assert len(received) == stalled_at  # open but silent
        assert not reader.done()
        bridge.release_streams()
        while len(received) == stalled_at:
            await within(asyncio.sleep(0.01))
        assert received[stalled_at] > 2  # the quotes of many ticks came in one message
    finally:
        stream.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_cut_drops_connections_and_restore_listens_on_the_same_port(
    bridge: BridgeServer, connect: Callable[..., Client]
) -> None:
    fast_reconnect = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 200))
    client = connect(bridge.address, fast_reconnect)
    placed = await client.trading.PlaceOrder(
        market_order("cut-1", "AAPL", tr.SIDE_BUY, 1), timeout=CALL_TIMEOUT
    )
    stream = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest())
    await within(stream.read())
    port = bridge.port
    await bridge.cut()
    listening_while_cut = bridge.listening  # a local: mypy would keep bridge.listening False below
    assert not listening_while_cut
    error = await rpc_error(stream.read())
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    error = await rpc_error(client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    await bridge.restore()
    await bridge.restore()  # idempotent while listening
    assert bridge.listening
    assert bridge.port == port
    found = await client.trading.GetOrder(
        tr.GetOrderRequest(client_order_id="cut-1"), wait_for_ready=True, timeout=CALL_TIMEOUT
    )
    assert found.order.order_id == placed.order.order_id


async def test_test_switches_retry_after_page_size_and_deduplication(
    client: Client, bridge: BridgeServer
) -> None:
    bridge.fail_next(1, grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=0.0125)
    error = await rpc_error(client.market.GetQuote(QUOTE, timeout=CALL_TIMEOUT))
    assert dict(error.trailing_metadata() or ())[RETRY_AFTER_KEY] == "12.5"
    bridge.serve_pages_of(7)
    request = md.GetCandlesRequest(symbol="AAPL", interval=md.INTERVAL_ONE_MINUTE, limit=20)
    page = await client.market.GetCandles(request, timeout=CALL_TIMEOUT)
    assert len(page.open_time_unix_ms) == 7
    assert page.next_page_token
    bridge.broker.deduplicate = False
    for _ in range(2):
        await client.trading.PlaceOrder(market_order("twice", "AAPL", tr.SIDE_BUY, 1), timeout=CALL_TIMEOUT)
    assert bridge.broker.order_counts("paper")["twice"] == 2
    for bad in (0, 10**9):
        with pytest.raises(ValueError, match="page size must be"):
            bridge.serve_pages_of(bad)
    with pytest.raises(ValueError, match="retry_after must be"):
        bridge.fail_next(1, grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=-1)
