"""Helpers shared by the trading tests."""

from __future__ import annotations

import asyncio
from decimal import ROUND_DOWN, Decimal

from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, Client, next_message, undec


def cents(value: Decimal) -> str:
    """`value` rounded down to a US tick."""
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_DOWN))


async def current_ask(client: Client, symbol: str) -> Decimal:
    return undec(
        (await client.market.GetQuote(md.GetQuoteRequest(symbol=symbol), timeout=CALL_TIMEOUT)).quote.ask
    )


async def read_updates(client: Client, count: int, after: int = 0) -> list[tr.OrderUpdate]:
    """The first `count` updates after sequence `after`."""
    stream = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest(after_sequence=after))
    got: list[tr.OrderUpdate] = []
    try:
        while len(got) < count:
            batch = await next_message(stream.read(), tr.StreamOrderUpdatesResponse)
            got.extend(batch.updates)
    finally:
        stream.cancel()
    return got


async def wait_for_status(client: Client, order_id: str, status: tr.OrderStatus.ValueType) -> tr.Order:
    for _ in range(500):
        order = (
            await client.trading.GetOrder(tr.GetOrderRequest(order_id=order_id), timeout=CALL_TIMEOUT)
        ).order
        if order.status == status:
            return order
        await asyncio.sleep(0.02)
    raise AssertionError(f"order {order_id} never reached {tr.OrderStatus.Name(status)}")


async def read_all_updates(client: Client) -> list[tr.OrderUpdate]:
    """Every retained update, read until the stream goes quiet for a moment."""
    stream = client.trading.StreamOrderUpdates(tr.StreamOrderUpdatesRequest())
    got: list[tr.OrderUpdate] = []
    try:
        while True:
            try:
                batch = await next_message(stream.read(), tr.StreamOrderUpdatesResponse, 0.5)
            except asyncio.TimeoutError:  # not yet the builtin TimeoutError on 3.10
                return got
            got.extend(batch.updates)
    finally:
        stream.cancel()
