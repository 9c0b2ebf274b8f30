"""Stop, stop-limit and KRX order requests, and the capabilities a gateway needs to take them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from memory_broker import MemoryBackend, MemoryBrokerGateway, MemoryLink

from broker_plugins import Capability, InvalidRequestError, OrderRequest, OrderType


def test_a_stop_order_has_a_stop_price_and_no_limit() -> None:
    request = OrderRequest.stop("005930", "buy", 1, "73000")
    assert request.order_type is OrderType.STOP
    assert request.order_type.is_stop
    assert (request.stop_price, request.price) == (Decimal(73_000), None)


def test_a_stop_limit_order_has_both_prices() -> None:
    request = OrderRequest.stop("005930", "sell", 1, "71000", limit_price="70900")
    assert request.order_type is OrderType.STOP_LIMIT
    assert (request.stop_price, request.price) == (Decimal(71_000), Decimal(70_900))


def test_the_order_type_follows_the_prices_given() -> None:
    assert OrderRequest("AAPL", "buy", 1, stop_price="190").order_type is OrderType.STOP
    assert OrderRequest("AAPL", "buy", 1, stop_price="190", price="191").order_type is OrderType.STOP_LIMIT
    assert not OrderType.LIMIT.is_stop


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"order_type": "stop"}, "a stop order needs a stop_price"),
        ({"order_type": "stop_limit", "price": "10"}, "a stop-limit order needs a stop_price"),
        ({"order_type": "stop_limit", "stop_price": "10"}, "a stop-limit order needs a price"),
        ({"order_type": "stop", "stop_price": "10", "price": "10"}, "a stop order takes no price"),
        ({"order_type": "limit", "price": "10", "stop_price": "9"}, "a limit order takes no stop_price"),
        ({"order_type": "market", "stop_price": "9"}, "a market order takes no stop_price"),
        ({"stop_price": "0"}, "stop_price must be greater than zero"),
        ({"stop_price": "-5"}, "stop_price must be greater than zero"),
        ({"stop_price": "abc"}, "stop_price must be a number"),
    ],
)
def test_malformed_stop_orders_are_invalid_requests(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        OrderRequest("AAPL", "buy", 1, **fields)  # type: ignore[arg-type]


async def test_a_gateway_without_the_capability_refuses_stop_orders() -> None:
    gateway = MemoryBrokerGateway(link=MemoryLink(MemoryBackend()))
    assert Capability.STOP_ORDERS not in gateway.capabilities
    with pytest.raises(InvalidRequestError, match=r"does not place stop orders \(no stop_orders capability"):
        await gateway.place_order(OrderRequest.stop("ACME", "buy", 1, "10"))


async def test_a_gateway_without_the_capability_refuses_the_kr_order_types() -> None:
    gateway = MemoryBrokerGateway(link=MemoryLink(MemoryBackend()))
    assert Capability.KR_ORDER_TYPES not in gateway.capabilities
    with pytest.raises(InvalidRequestError, match=r"does not place best_limit orders \(no kr_order_types"):
        await gateway.place_order(OrderRequest("ACME", "buy", 1, order_type="best_limit"))
