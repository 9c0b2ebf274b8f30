"""Stop orders through the grpc gateway: mapped both ways, the trigger visible on the order."""

from __future__ import annotations

from decimal import Decimal

from broker_plugins import Capability, OrderRequest, OrderStatus, OrderType
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.bridge import BridgeServer
from tests.bridge.conftest import RICH, StartBridge
from tests.gateway.conftest import MakeGateway

SYMBOL = "AAPL"


def test_the_grpc_gateway_declares_stop_orders() -> None:
    assert Capability.STOP_ORDERS in GrpcBrokerGateway.CAPABILITIES


async def test_the_gateway_places_stops_and_shows_the_trigger(
    start_bridge: StartBridge, gateways: MakeGateway
) -> None:
    bridge: BridgeServer = await start_bridge(budget=(), initial_cash=RICH)
    async with gateways(bridge.address) as gateway:
        waiting = await gateway.place_order(OrderRequest.stop(SYMBOL, "buy", 1, "100000"))
        assert (waiting.order_type, waiting.stop_price, waiting.stop_triggered) == (
            OrderType.STOP,
            Decimal(100_000),
            False,
        )
        assert waiting.status is OrderStatus.NEW
        now = await gateway.place_order(OrderRequest.stop(SYMBOL, "buy", 1, "0.01", limit_price="0.01"))
        assert (now.order_type, now.stop_triggered, now.price) == (
            OrderType.STOP_LIMIT,
            True,
            Decimal("0.01"),
        )
        assert (await gateway.get_order(now.order_id)).stop_triggered
