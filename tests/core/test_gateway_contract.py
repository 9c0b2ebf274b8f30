"""The IBrokerGateway protocol: what satisfies it, and the in-memory double used across the tests."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import attrs
import pytest
from memory_broker import MemoryBackend, MemoryBrokerGateway, MemoryLink

from broker_plugins import (
    BrokerUnavailableError,
    ConnectionState,
    IBrokerGateway,
    Interval,
    NotFoundError,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    RateLimit,
    Side,
    StateChange,
    TimeInForce,
)
from tests.support.streams import aclose
from tests.support.waiting import until


def test_a_complete_gateway_satisfies_the_protocol_and_a_partial_one_does_not() -> None:
    assert isinstance(MemoryBrokerGateway(), IBrokerGateway)

    class QuotesOnly:
        name = "partial"

        async def get_quote(self, symbol: str) -> object:
            return None

    assert not isinstance(QuotesOnly(), IBrokerGateway)


async def test_the_memory_gateway_walks_the_whole_contract() -> None:
    backend = MemoryBackend()
    gateway = MemoryBrokerGateway(link=MemoryLink(backend), rate_limits=RateLimit(100, 1))
    changes: list[StateChange] = []
    gateway.add_state_listener(changes.append)
    with pytest.raises(BrokerUnavailableError):
        await gateway.get_quote("ACME")
    async with gateway:
        assert (await gateway.health_check()).healthy
        candles = await gateway.get_candles("ACME", Interval.M5, limit=3)
        assert [c.start for c in candles] == sorted(c.start for c in candles)
        updates = gateway.stream_order_updates()
        first = asyncio.ensure_future(anext(updates))
        await until(lambda: any(r.method == "stream_order_updates" for r in backend.received))
        order = await gateway.place_order(OrderRequest("ACME", "buy", 2, client_order_id="once"))
        again = await gateway.place_order(OrderRequest("ACME", "buy", 2, client_order_id="once"))
        assert again == order
        assert await gateway.get_orders() == [order]
        assert (await first).order == order
        await aclose(updates)
        with pytest.raises(NotFoundError):
            await gateway.get_order("missing")
        assert (await gateway.get_balance()).currency == "USD"
        backend.reset_records()
        assert [i.symbol for i in await gateway.list_instruments()] == ["ACME"]
        assert await gateway.list_instruments("MEM") == await gateway.list_instruments()
        assert await gateway.list_instruments("KRX") == []  # an exchange it does not list: nothing
        assert [r.method for r in backend.received] == ["list_instruments"] * 4
        calendar = await gateway.get_market_calendar("MEM")
        assert calendar.exchange == "MEM"
        with pytest.raises(NotFoundError):
            await gateway.get_market_calendar("KRX")
    assert [c.current for c in changes] == [
        ConnectionState.CONNECTING,
        ConnectionState.CONNECTED,
        ConnectionState.CLOSED,
    ]


def test_remaining_quantity_is_zero_once_an_order_is_done() -> None:
    now = datetime.now(timezone.utc)
    working = Order(
        order_id="1",
        client_order_id="c1",
        symbol="005930",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal(10),
        price=Decimal(70000),
        time_in_force=TimeInForce.DAY,
        status=OrderStatus.PARTIALLY_FILLED,
        filled_quantity=Decimal(4),
        average_fill_price=Decimal(70000),
        created_at=now,
        updated_at=now,
    )
    assert working.remaining_quantity == Decimal(6)
    assert attrs.evolve(working, status=OrderStatus.CANCELLED).remaining_quantity == 0
