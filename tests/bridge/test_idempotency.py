"""client_order_id as the contract has it: same contents are the same order, other contents are
refused (ALREADY_EXISTS), and attempts with one id take turns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import grpc.aio
import pytest

from grpc_plugin.bridge import BridgeServer
from grpc_plugin.generated.broker.bridge.v1 import common_pb2
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, Client, dec, limit_order, market_order, rpc_error
from tests.bridge.trading_support import current_ask

BUY, SELL = tr.SIDE_BUY, tr.SIDE_SELL


async def _far_limit(client: Client, coid: str, quantity: int = 1) -> tr.PlaceOrderRequest:
    """A buy limit order on 005930 far below the market (within its -30% limit), so that it keeps working."""
    ask = await current_ask(client, "005930")
    return limit_order(coid, "005930", BUY, quantity, str(ask * 8 / 10 // 1000 * 1000))


async def test_each_kind_of_other_contents_is_refused_and_changes_nothing(
    client: Client, bridge: BridgeServer
) -> None:
    original = await _far_limit(client, "same-1", quantity=2)
    placed = (await client.trading.PlaceOrder(original, timeout=CALL_TIMEOUT)).order

    def changed(**fields: object) -> tr.PlaceOrderRequest:
        request = tr.PlaceOrderRequest()
        request.CopyFrom(original)
        for name, value in fields.items():
            if isinstance(value, common_pb2.Decimal):
                getattr(request, name).CopyFrom(value)
            else:
                setattr(request, name, value)
        return request

    variants = {
        "symbol": changed(symbol="000660"),
        "side": changed(side=SELL),
        "order_type": changed(order_type=tr.ORDER_TYPE_MARKET),
        "quantity": changed(quantity=dec(3)),
        "limit_price": changed(limit_price=dec(int(placed.limit_price.mantissa) - 100)),
        "time_in_force": changed(time_in_force=tr.TIME_IN_FORCE_GTC),
    }
    variants["order_type"].ClearField("limit_price")
    for field, request in variants.items():
        error = await rpc_error(client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, field
        details = error.details() or ""
        assert f"{field} " in details, (field, details)
        assert placed.order_id in details
    assert list(bridge.orders_by_client_order_id()) == ["same-1"]
    after = (await client.trading.GetOrder(tr.GetOrderRequest(order_id=placed.order_id))).order
    assert after == placed  # nothing changed
    assert (await client.trading.PlaceOrder(original, timeout=CALL_TIMEOUT)).duplicate


async def test_a_retry_is_compared_with_the_order_as_it_was_placed(client: Client) -> None:
    original = await _far_limit(client, "mod-1", quantity=2)
    placed = (await client.trading.PlaceOrder(original, timeout=CALL_TIMEOUT)).order
    await client.trading.ModifyOrder(
        tr.ModifyOrderRequest(order_id=placed.order_id, quantity=dec(5)), timeout=CALL_TIMEOUT
    )
    retry = await client.trading.PlaceOrder(original, timeout=CALL_TIMEOUT)
    assert retry.duplicate
    assert retry.order.quantity == dec(5)  # the order as it is now
    modified = tr.PlaceOrderRequest()
    modified.CopyFrom(original)
    modified.quantity.CopyFrom(dec(5))
    error = await rpc_error(client.trading.PlaceOrder(modified, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_concurrent_attempts_with_one_id_wait_for_the_first_and_share_its_order(
    bridge: BridgeServer, connect: Callable[..., Client]
) -> None:
    bridge.delay_placement(0.3)
    request = market_order("race-1", "AAPL", BUY, 1)
    clients = [connect(bridge.address) for _ in range(5)]  # five connections, as five processes
    replies = await asyncio.gather(*(c.trading.PlaceOrder(request, timeout=CALL_TIMEOUT) for c in clients))
    assert len({reply.order.order_id for reply in replies}) == 1
    assert sorted(reply.duplicate for reply in replies) == [False, True, True, True, True]
    assert list(bridge.orders_by_client_order_id()) == ["race-1"]
    # Other ids were never held up by this one, and nothing stays locked.
    other = await clients[0].trading.PlaceOrder(market_order("race-2", "AAPL", BUY, 1), timeout=CALL_TIMEOUT)
    assert not other.duplicate


async def test_placement_delays_are_checked_and_services_need_a_started_bridge() -> None:
    with pytest.raises(ValueError, match="negative"):
        BridgeServer().delay_placement(-1.0)
    with pytest.raises(RuntimeError, match="not been started"):
        BridgeServer().add_services(grpc.aio.server())


async def test_a_placement_cancelled_while_the_broker_is_slow_creates_nothing(
    client: Client, bridge: BridgeServer
) -> None:
    bridge.delay_placement(2.0)
    request = market_order("gone-1", "AAPL", BUY, 1)
    error = await rpc_error(client.trading.PlaceOrder(request, timeout=0.2))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    bridge.delay_placement(0.0)
    # The id is free again (its lock released with the cancelled call), and the order is new.
    reply = await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)
    assert not reply.duplicate
    assert list(bridge.orders_by_client_order_id()) == ["gone-1"]


async def test_a_rejected_order_keeps_its_id_and_an_invalid_request_does_not(client: Client) -> None:
    rejected = await client.trading.PlaceOrder(market_order("rej-9", "NOPE", BUY, 1), timeout=CALL_TIMEOUT)
    assert rejected.order.status == tr.ORDER_STATUS_REJECTED
    assert (
        await client.trading.PlaceOrder(market_order("rej-9", "NOPE", BUY, 1), timeout=CALL_TIMEOUT)
    ).duplicate
    invalid = market_order("inv-9", "AAPL", BUY, 1)
    invalid.side = tr.SIDE_UNSPECIFIED
    error = await rpc_error(client.trading.PlaceOrder(invalid, timeout=CALL_TIMEOUT))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    fresh = await client.trading.PlaceOrder(market_order("inv-9", "AAPL", SELL, 1), timeout=CALL_TIMEOUT)
    assert not fresh.duplicate
