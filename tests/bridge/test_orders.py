"""TradingService end to end: placing and matching orders, idempotency, rejections, bad input."""

from __future__ import annotations

from decimal import Decimal

import grpc

from grpc_plugin.bridge import BridgeServer
from grpc_plugin.generated.broker.bridge.v1 import common_pb2
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import (
    CALL_TIMEOUT,
    RICH,
    Client,
    dec,
    limit_order,
    market_order,
    rpc_error,
    undec,
)
from tests.bridge.trading_support import (
    current_ask,
    read_all_updates,
    read_updates,
    wait_for_status,
)

BUY, SELL = tr.SIDE_BUY, tr.SIDE_SELL


async def test_a_large_market_order_fills_partially_then_completely(
    rich: tuple[BridgeServer, Client],
) -> None:
    server, client = rich
    placed = await client.trading.PlaceOrder(
        market_order("big-1", "005930", BUY, 5_000), timeout=CALL_TIMEOUT
    )
    assert not placed.duplicate
    order = placed.order
    # At most 2,000 shares are ever displayed, so the first fill cannot take all 5,000.
    assert order.status == tr.ORDER_STATUS_PARTIALLY_FILLED
    assert 0 < undec(order.filled_quantity) <= 2_000
    final = await wait_for_status(client, order.order_id, tr.ORDER_STATUS_FILLED)
    assert undec(final.filled_quantity) == 5_000

    updates = await read_all_updates(client)
    assert [u.sequence for u in updates] == list(range(1, len(updates) + 1))
    assert updates[0].event == tr.ORDER_EVENT_ACCEPTED
    fills = [u for u in updates if u.event == tr.ORDER_EVENT_FILL]
    assert len(fills) >= 3
    assert sum(undec(u.fill_quantity) for u in fills) == 5_000
    cost = sum((undec(u.fill_quantity) * undec(u.fill_price) for u in fills), Decimal(0))
    assert undec(final.average_fill_price) == (cost / 5_000).quantize(Decimal("0.0001"))

    positions = (await client.trading.GetPositions(tr.GetPositionsRequest(), timeout=CALL_TIMEOUT)).positions
    assert [(p.symbol, undec(p.quantity), p.currency) for p in positions] == [
        ("005930", Decimal(5_000), "KRW")
    ]
    balance = (
        await client.trading.GetBalance(tr.GetBalanceRequest(currency="KRW"), timeout=CALL_TIMEOUT)
    ).balances
    assert [b.currency for b in balance] == ["KRW"]
    assert undec(balance[0].cash) == RICH["KRW"] - cost
    assert undec(balance[0].buying_power) == undec(balance[0].cash)
    assert server.orders_by_client_order_id()["big-1"].filled_quantity == 5_000


async def test_a_repeated_client_order_id_returns_the_existing_order(
    rich: tuple[BridgeServer, Client],
) -> None:
    server, client = rich
    first = await client.trading.PlaceOrder(market_order("dup-1", "035720", BUY, 10), timeout=CALL_TIMEOUT)
    # The same order written differently (10 as 10.0, DAY spelled out) is still the same order.
    same = market_order("dup-1", "035720", BUY, 10, time_in_force=tr.TIME_IN_FORCE_DAY)
    same.quantity.CopyFrom(common_pb2.Decimal(mantissa=100, exponent=-1))
    again = await client.trading.PlaceOrder(same, timeout=CALL_TIMEOUT)
    assert not first.duplicate
    assert again.duplicate
    assert again.order.order_id == first.order.order_id
    assert list(server.orders_by_client_order_id()) == ["dup-1"]
    rejected = await client.trading.PlaceOrder(market_order("dup-2", "NOPE", BUY, 1), timeout=CALL_TIMEOUT)
    rejected_again = await client.trading.PlaceOrder(
        market_order("dup-2", "NOPE", BUY, 1), timeout=CALL_TIMEOUT
    )
    assert rejected.order.status == tr.ORDER_STATUS_REJECTED
    assert rejected_again.duplicate
    assert rejected_again.order.order_id == rejected.order.order_id


async def test_business_rule_violations_are_rejected_orders(client: Client) -> None:
    ask = await current_ask(client, "005930")
    cases = {
        "unknown symbol 'NOPE'": market_order("rej-1", "NOPE", BUY, 1),
        "quantity must be greater than zero": market_order("rej-2", "005930", BUY, 0),
        "not a multiple of the lot size": market_order("rej-3", "005930", BUY, 1).__class__(
            client_order_id="rej-3",
            symbol="005930",
            side=BUY,
            order_type=tr.ORDER_TYPE_MARKET,
            quantity=dec("1.5"),
        ),
        "is off tick: prices from 50000 to below 200000 KRW move in steps of 100": limit_order(
            "rej-4", "005930", BUY, 1, str(ask + 50)
        ),
        "limit price must be greater than zero": limit_order("rej-5", "005930", BUY, 1, "-100"),
        "insufficient cash": market_order("rej-6", "005930", BUY, 10_000_000),
        "insufficient position: selling 1 005930, 0 available": market_order("rej-7", "005930", SELL, 1),
    }
    for reason, request in cases.items():
        reply = await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)
        assert reply.order.status == tr.ORDER_STATUS_REJECTED, reason
        assert reason in reply.order.reject_reason, (reason, reply.order.reject_reason)
        assert undec(reply.order.filled_quantity) == 0
    updates = await read_updates(client, len(cases))
    assert {u.event for u in updates} == {tr.ORDER_EVENT_REJECTED}


async def test_malformed_orders_are_invalid_arguments(client: Client) -> None:
    good = market_order("ok-1", "AAPL", BUY, 1)

    def variant(**changes: object) -> tr.PlaceOrderRequest:
        request = tr.PlaceOrderRequest()
        request.CopyFrom(good)
        for field, value in changes.items():
            if value is None:
                request.ClearField(field)  # type: ignore[arg-type]  # stubs take literal names only
            elif isinstance(value, common_pb2.Decimal):
                getattr(request, field).CopyFrom(value)
            else:
                setattr(request, field, value)
        return request

    cases = {
        "client_order_id is required": variant(client_order_id=""),
        "client_order_id 'has space' is malformed": variant(client_order_id="has space"),
        "client_order_id 'xxxx": variant(client_order_id="x" * 65),
        "symbol is required": variant(symbol=""),
        "side is required": variant(side=0),
        "side has unknown value 7": variant(side=7),
        "order_type is required": variant(order_type=0),
        "order_type has unknown value 9": variant(order_type=9),
        "time_in_force has unknown value 9": variant(time_in_force=9),
        "quantity is required": variant(quantity=None),
        "quantity.exponent must be between": variant(quantity=common_pb2.Decimal(mantissa=1, exponent=99)),
        "limit_price must be absent for a market order": variant(limit_price=dec(1)),
        "limit_price is required for a limit order": variant(order_type=tr.ORDER_TYPE_LIMIT),
    }
    for message, request in cases.items():
        error = await rpc_error(client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in (error.details() or ""), (message, error.details())
    error = await rpc_error(client.trading.CancelOrder(tr.CancelOrderRequest(), timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = await rpc_error(
        client.trading.ListOrders(tr.ListOrdersRequest(symbol="bad symbol"), timeout=CALL_TIMEOUT)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_immediate_or_cancel_and_fill_or_kill(rich: tuple[BridgeServer, Client]) -> None:
    _, client = rich
    ask = await current_ask(client, "000660")
    far = limit_order(
        "ioc-1", "000660", BUY, 10, str(ask * 8 / 10 // 1000 * 1000), time_in_force=tr.TIME_IN_FORCE_IOC
    )
    order = (await client.trading.PlaceOrder(far, timeout=CALL_TIMEOUT)).order
    assert (order.status, undec(order.filled_quantity)) == (tr.ORDER_STATUS_EXPIRED, Decimal(0))
    big_ioc = market_order("ioc-2", "000660", BUY, 3_000, time_in_force=tr.TIME_IN_FORCE_IOC)
    order = (await client.trading.PlaceOrder(big_ioc, timeout=CALL_TIMEOUT)).order
    assert order.status == tr.ORDER_STATUS_EXPIRED
    assert 0 < undec(order.filled_quantity) <= 2_000
    big_fok = market_order("fok-1", "000660", BUY, 3_000, time_in_force=tr.TIME_IN_FORCE_FOK)
    order = (await client.trading.PlaceOrder(big_fok, timeout=CALL_TIMEOUT)).order
    assert (order.status, undec(order.filled_quantity)) == (tr.ORDER_STATUS_EXPIRED, Decimal(0))
    # The IOC above may have taken this tick's whole display of 000660: use a fresh symbol.
    small_fok = market_order("fok-2", "035420", BUY, 1, time_in_force=tr.TIME_IN_FORCE_FOK)
    order = (await client.trading.PlaceOrder(small_fok, timeout=CALL_TIMEOUT)).order
    assert (order.status, undec(order.filled_quantity)) == (tr.ORDER_STATUS_FILLED, Decimal(1))


async def test_selling_a_position_adds_cash(rich: tuple[BridgeServer, Client]) -> None:
    _, client = rich
    # The displayed size may be below 10 at a tick: each order may take several ticks to fill.
    bought = await client.trading.PlaceOrder(market_order("s-1", "AAPL", BUY, 10), timeout=CALL_TIMEOUT)
    await wait_for_status(client, bought.order.order_id, tr.ORDER_STATUS_FILLED)
    before = (
        await client.trading.GetBalance(tr.GetBalanceRequest(currency="USD"), timeout=CALL_TIMEOUT)
    ).balances[0]
    placed = (
        await client.trading.PlaceOrder(market_order("s-2", "AAPL", SELL, 10), timeout=CALL_TIMEOUT)
    ).order
    sold = await wait_for_status(client, placed.order_id, tr.ORDER_STATUS_FILLED)
    after = (
        await client.trading.GetBalance(tr.GetBalanceRequest(currency="USD"), timeout=CALL_TIMEOUT)
    ).balances[0]
    assert undec(after.cash) == undec(before.cash) + 10 * undec(sold.average_fill_price)
    positions = (await client.trading.GetPositions(tr.GetPositionsRequest(), timeout=CALL_TIMEOUT)).positions
    assert list(positions) == []
    balances = (await client.trading.GetBalance(tr.GetBalanceRequest(), timeout=CALL_TIMEOUT)).balances
    assert [b.currency for b in balances] == ["KRW", "USD"]
    error = await rpc_error(
        client.trading.GetBalance(tr.GetBalanceRequest(currency="EUR"), timeout=CALL_TIMEOUT)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
