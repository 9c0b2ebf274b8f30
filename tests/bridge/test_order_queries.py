"""TradingService end to end: changing, finding and listing orders, and the order update stream."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from grpc_plugin.bridge import BridgeServer
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import (
    CALL_TIMEOUT,
    Client,
    StartBridge,
    dec,
    limit_order,
    market_order,
    next_message,
    rpc_error,
    undec,
)
from tests.bridge.trading_support import (
    cents,
    current_ask,
    read_updates,
    wait_for_status,
)

BUY, SELL = tr.SIDE_BUY, tr.SIDE_SELL


async def test_a_resting_limit_order_can_be_modified_and_cancelled(rich: tuple[BridgeServer, Client]) -> None:
    _, client = rich
    ask = await current_ask(client, "AAPL")
    low = Decimal(cents(ask / 2))
    order = (
        await client.trading.PlaceOrder(
            limit_order("rest-1", "AAPL", BUY, 10, str(low)), timeout=CALL_TIMEOUT
        )
    ).order
    assert order.status == tr.ORDER_STATUS_NEW
    assert undec(order.limit_price) == low
    assert order.time_in_force == tr.TIME_IN_FORCE_DAY

    modified = (
        await client.trading.ModifyOrder(
            tr.ModifyOrderRequest(
                order_id=order.order_id, quantity=dec(20), limit_price=dec(str(low - Decimal("0.01")))
            ),
            timeout=CALL_TIMEOUT,
        )
    ).order
    assert modified.order_id == order.order_id
    assert (undec(modified.quantity), undec(modified.limit_price)) == (Decimal(20), low - Decimal("0.01"))
    assert modified.status == tr.ORDER_STATUS_NEW

    balance = (
        await client.trading.GetBalance(tr.GetBalanceRequest(currency="USD"), timeout=CALL_TIMEOUT)
    ).balances[0]
    assert undec(balance.cash) - undec(balance.buying_power) == 20 * (low - Decimal("0.01"))

    cancelled = (
        await client.trading.CancelOrder(tr.CancelOrderRequest(order_id=order.order_id), timeout=CALL_TIMEOUT)
    ).order
    assert cancelled.status == tr.ORDER_STATUS_CANCELED
    for call in (
        client.trading.CancelOrder(tr.CancelOrderRequest(order_id=order.order_id), timeout=CALL_TIMEOUT),
        client.trading.ModifyOrder(
            tr.ModifyOrderRequest(order_id=order.order_id, quantity=dec(5)), timeout=CALL_TIMEOUT
        ),
    ):
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "canceled" in (error.details() or "")
    events = [u.event for u in await read_updates(client, 3)]
    assert events == [tr.ORDER_EVENT_ACCEPTED, tr.ORDER_EVENT_MODIFIED, tr.ORDER_EVENT_CANCELED]


async def test_a_limit_modified_to_marketable_fills(rich: tuple[BridgeServer, Client]) -> None:
    _, client = rich
    ask = await current_ask(client, "MSFT")
    order = (
        await client.trading.PlaceOrder(
            limit_order("mod-1", "MSFT", BUY, 5, cents(ask / 2), time_in_force=tr.TIME_IN_FORCE_GTC),
            timeout=CALL_TIMEOUT,
        )
    ).order
    assert order.status == tr.ORDER_STATUS_NEW
    high = (ask * Decimal("1.2")).quantize(Decimal("0.01"))
    await client.trading.ModifyOrder(
        tr.ModifyOrderRequest(order_id=order.order_id, limit_price=dec(str(high))), timeout=CALL_TIMEOUT
    )
    filled = await wait_for_status(client, order.order_id, tr.ORDER_STATUS_FILLED)
    assert undec(filled.average_fill_price) <= high


async def test_bad_modifications_are_refused(rich: tuple[BridgeServer, Client]) -> None:
    _, client = rich
    ask = await current_ask(client, "TSLA")
    market = (
        await client.trading.PlaceOrder(market_order("m-1", "TSLA", BUY, 1), timeout=CALL_TIMEOUT)
    ).order
    resting = (
        await client.trading.PlaceOrder(
            limit_order("r-1", "TSLA", BUY, 4, cents(ask / 2)), timeout=CALL_TIMEOUT
        )
    ).order
    cases = [
        (tr.ModifyOrderRequest(order_id=resting.order_id), grpc.StatusCode.INVALID_ARGUMENT),
        (tr.ModifyOrderRequest(order_id=""), grpc.StatusCode.INVALID_ARGUMENT),
        (tr.ModifyOrderRequest(order_id="PO999999999", quantity=dec(1)), grpc.StatusCode.NOT_FOUND),
        (tr.ModifyOrderRequest(order_id=resting.order_id, quantity=dec(0)), grpc.StatusCode.INVALID_ARGUMENT),
        (
            tr.ModifyOrderRequest(order_id=resting.order_id, quantity=dec("1.5")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            tr.ModifyOrderRequest(order_id=resting.order_id, limit_price=dec("1.001")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            tr.ModifyOrderRequest(order_id=resting.order_id, limit_price=dec(-1)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            tr.ModifyOrderRequest(order_id=resting.order_id, quantity=dec(10**9)),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
    ]
    if market.status != tr.ORDER_STATUS_FILLED:  # pragma: no cover - one share always fits the display
        pytest.fail("a one-share market order should fill at once")
    for request, code in cases:
        error = await rpc_error(client.trading.ModifyOrder(request, timeout=CALL_TIMEOUT))
        assert error.code() == code, (request, error.details())
    # Filled orders cannot change; market orders have no price to change.
    error = await rpc_error(
        client.trading.ModifyOrder(
            tr.ModifyOrderRequest(order_id=market.order_id, quantity=dec(3)), timeout=CALL_TIMEOUT
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_orders_are_found_by_either_id_and_listed_with_filters(
    rich: tuple[BridgeServer, Client],
) -> None:
    _, client = rich
    ask = await current_ask(client, "AMZN")
    resting = (
        await client.trading.PlaceOrder(
            limit_order("l-1", "AMZN", BUY, 1, cents(ask / 2)), timeout=CALL_TIMEOUT
        )
    ).order
    filled = (
        await client.trading.PlaceOrder(market_order("l-2", "GOOGL", BUY, 1), timeout=CALL_TIMEOUT)
    ).order
    by_id = (
        await client.trading.GetOrder(tr.GetOrderRequest(order_id=resting.order_id), timeout=CALL_TIMEOUT)
    ).order
    by_client_id = (
        await client.trading.GetOrder(tr.GetOrderRequest(client_order_id="l-1"), timeout=CALL_TIMEOUT)
    ).order
    assert by_id == by_client_id
    assert by_id.client_order_id == "l-1"
    for request in (tr.GetOrderRequest(order_id="nope"), tr.GetOrderRequest(client_order_id="nope")):
        assert (
            await rpc_error(client.trading.GetOrder(request, timeout=CALL_TIMEOUT))
        ).code() == grpc.StatusCode.NOT_FOUND
    error = await rpc_error(client.trading.GetOrder(tr.GetOrderRequest(), timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    def ids(reply: tr.ListOrdersResponse) -> list[str]:
        return [o.client_order_id for o in reply.orders]

    assert ids(await client.trading.ListOrders(tr.ListOrdersRequest(), timeout=CALL_TIMEOUT)) == [
        "l-1",
        "l-2",
    ]
    assert ids(
        await client.trading.ListOrders(tr.ListOrdersRequest(open_only=True), timeout=CALL_TIMEOUT)
    ) == ["l-1"]
    assert ids(
        await client.trading.ListOrders(tr.ListOrdersRequest(symbol="GOOGL"), timeout=CALL_TIMEOUT)
    ) == ["l-2"]
    since = Timestamp(seconds=filled.update_time.seconds, nanos=filled.update_time.nanos)
    assert ids(
        await client.trading.ListOrders(tr.ListOrdersRequest(updated_since=since), timeout=CALL_TIMEOUT)
    ) == ["l-2"]
    future = Timestamp(seconds=filled.update_time.seconds + 3600)
    assert (
        ids(await client.trading.ListOrders(tr.ListOrdersRequest(updated_since=future), timeout=CALL_TIMEOUT))
        == []
    )


async def test_order_updates_replay_after_a_sequence_then_go_live(rich: tuple[BridgeServer, Client]) -> None:
    _, client = rich
    ask = await current_ask(client, "AAPL")
    for i in range(3):
        await client.trading.PlaceOrder(
            limit_order(f"u-{i}", "AAPL", BUY, 1, cents(ask / 2)), timeout=CALL_TIMEOUT
        )
    stream = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest(after_sequence=1))
    try:
        replay = await next_message(stream.read(), tr.StreamOrderUpdatesResponse)
        assert [u.sequence for u in replay.updates] == [2, 3]
        assert [u.order.client_order_id for u in replay.updates] == ["u-1", "u-2"]
        await client.trading.PlaceOrder(
            limit_order("u-3", "AAPL", BUY, 1, cents(ask / 2)), timeout=CALL_TIMEOUT
        )
        live = await next_message(stream.read(), tr.StreamOrderUpdatesResponse)
        assert [(u.sequence, u.order.client_order_id) for u in live.updates] == [(4, "u-3")]
        assert live.updates[0].time.seconds > 0
    finally:
        stream.cancel()
    error = await rpc_error(
        client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest(after_sequence=99)).read()
    )
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "ahead" in (error.details() or "")


async def test_a_subscription_answers_at_once_and_can_start_from_the_latest(
    rich: tuple[BridgeServer, Client],
) -> None:
    _, client = rich
    ask = await current_ask(client, "AAPL")
    for i in range(2):
        await client.trading.PlaceOrder(
            limit_order(f"l-{i}", "AAPL", BUY, 1, cents(ask / 2)), timeout=CALL_TIMEOUT
        )
    # Nothing after sequence 2 to replay: the first message still comes at once, empty.
    caught_up = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest(after_sequence=2))
    latest = client.trading.StreamOrderUpdates(
        tr.StreamOrderUpdatesRequest(after_sequence=0, from_latest=True)
    )
    try:
        first = await next_message(caught_up.read(), tr.StreamOrderUpdatesResponse)
        assert (list(first.updates), first.latest_sequence) == ([], 2)
        first = await next_message(latest.read(), tr.StreamOrderUpdatesResponse)
        assert (list(first.updates), first.latest_sequence) == ([], 2)  # from_latest skipped the replay
        await client.trading.PlaceOrder(
            limit_order("l-2", "AAPL", BUY, 1, cents(ask / 2)), timeout=CALL_TIMEOUT
        )
        for stream in (caught_up, latest):
            live = await next_message(stream.read(), tr.StreamOrderUpdatesResponse)
            assert [u.sequence for u in live.updates] == [3]
            assert live.latest_sequence == 3
    finally:
        caught_up.cancel()
        latest.cancel()


async def test_updates_older_than_the_retention_are_out_of_range(
    start_bridge: StartBridge, connect: Callable[..., Client]
) -> None:
    server = await start_bridge(budget=(), retain_updates=2)
    client = connect(server.address)
    for i in range(4):
        await client.trading.PlaceOrder(market_order(f"r-{i}", "NOPE", BUY, 1), timeout=CALL_TIMEOUT)
    error = await rpc_error(
        client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest(after_sequence=1)).read()
    )
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "no longer retained (oldest is 3)" in (error.details() or "")
    assert [u.sequence for u in await read_updates(client, 2, after=2)] == [3, 4]
