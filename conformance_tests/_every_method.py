"""RL-5: every method takes a permit in its category, orders and stream openings included."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

from broker_plugins import CATEGORIES, BrokerError, Capability, Interval, Order, OrderRequest, RateLimit
from conformance_tests._base import GENEROUS
from conformance_tests._harness import ConformanceHarness
from conformance_tests._limits_common import Call, bound_for, window_problems
from conformance_tests._support import (
    CALL_BOUND,
    bounded,
    close_stream,
    eventually,
    expect,
    first_item,
    open_gateway,
    resting_order,
)

__all__ = ["CATEGORY_OF", "every_method_limited"]

CATEGORY_OF = {
    "get_quote": "market_data",
    "get_candles": "market_data",
    "get_instrument": "market_data",
    "list_instruments": "market_data",
    "stream_quotes": "market_data",
    "place_order": "trading",
    "cancel_order": "trading",
    "modify_order": "trading",
    "get_order": "trading",
    "get_orders": "trading",
    "stream_order_updates": "trading",
    "get_positions": "account",
    "get_balance": "account",
}
"""The rate-limit category of the request each `IBrokerGateway` method sends."""

_EACH = 5


async def _prepare(
    harness: ConformanceHarness, clause_id: str
) -> tuple[list[Order], Callable[[], OrderRequest]]:
    """Resting orders to cancel, look up and modify, placed beforehand by a gateway of their own,
    and a maker of more such orders."""
    async with open_gateway(harness, GENEROUS, clause_id) as setup:
        quote = await bounded(clause_id, setup.get_quote(harness.symbol), CALL_BOUND, "get_quote")
        instrument = await bounded(
            clause_id, setup.get_instrument(harness.symbol), CALL_BOUND, "get_instrument"
        )
        tag = f"rl5-{uuid.uuid4().hex[:12]}"
        counter = iter(range(1_000_000))

        def order() -> OrderRequest:
            return resting_order(quote, instrument, client_order_id=f"{tag}-{next(counter)}")

        placing = asyncio.gather(*(setup.place_order(order()) for _ in range(2 * _EACH)))
        placed = await bounded(clause_id, placing, CALL_BOUND, "placing the orders to work on")
        return list(placed), order


async def every_method_limited(harness: ConformanceHarness, clause_id: str, limit: RateLimit) -> list[str]:
    """Call each method `_EACH` times at once under `limit` per category, then count at the backend:
    a method missing there fails at once, windows over the limit are returned."""
    __tracebackhide__ = True
    orders, new_order = await _prepare(harness, clause_id)
    to_cancel, to_modify = orders[:_EACH], orders[_EACH:]
    symbol = harness.symbol
    async with open_gateway(harness, dict.fromkeys(CATEGORIES, limit), clause_id) as gateway:
        new_orders = [new_order() for _ in range(_EACH)]
        calls: dict[str, list[Call]] = {
            "get_quote": [lambda: gateway.get_quote(symbol)] * _EACH,
            "get_candles": [lambda: gateway.get_candles(symbol, Interval.M1, limit=5)] * _EACH,
            "get_instrument": [lambda: gateway.get_instrument(symbol)] * _EACH,
            "list_instruments": [gateway.list_instruments] * _EACH,
            "place_order": [functools.partial(gateway.place_order, request) for request in new_orders],
            "cancel_order": [functools.partial(gateway.cancel_order, order.order_id) for order in to_cancel],
            "get_order": [functools.partial(gateway.get_order, order.order_id) for order in to_modify],
            "get_orders": [gateway.get_orders] * _EACH,
            "get_positions": [gateway.get_positions] * _EACH,
            "get_balance": [gateway.get_balance] * _EACH,
        }
        if Capability.QUOTE_STREAM in gateway.capabilities:
            calls["stream_quotes"] = [lambda: first_item(gateway.stream_quotes([symbol]))] * _EACH
        if Capability.ORDER_UPDATE_STREAM in gateway.capabilities:

            def all_opened() -> bool:
                openings = [r for r in harness.backend_requests() if r.method == "stream_order_updates"]
                return len(openings) >= _EACH

            # Each stream is closed once every opening reached the backend, whether updates came or not.
            calls["stream_order_updates"] = [
                lambda: _open_until(gateway.stream_order_updates(), all_opened, bound_for(7 * _EACH, limit))
            ] * _EACH
        if Capability.MODIFY_ORDER in gateway.capabilities:
            calls["modify_order"] = [
                functools.partial(gateway.modify_order, order.order_id, quantity=order.quantity * 2)
                for order in to_modify
            ]
        harness.reset_backend_records()
        everything = [call() for batch in calls.values() for call in batch]
        gathered = asyncio.gather(*everything, return_exceptions=True)
        results = await bounded(clause_id, gathered, bound_for(7 * _EACH, limit), "calls of every method")
    strangers = [
        result for result in results if isinstance(result, Exception) and not isinstance(result, BrokerError)
    ]
    if strangers:
        raise strangers[0]
    errors = [result for result in results if isinstance(result, BrokerError)]
    requests = list(harness.backend_requests())
    received = Counter(request.method for request in requests)
    for method, batch in calls.items():
        expect(
            received[method] >= len(batch),
            clause_id,
            f"the backend received {received[method]} {method} requests for {len(batch)} calls "
            f"(errors raised: {errors[:2]!r})",
        )
    for request in requests:
        expected = CATEGORY_OF.get(request.method)
        expect(
            expected is None or request.category == expected,
            clause_id,
            f"the backend files {request.method} under {request.category!r}; "
            f"IBrokerGateway puts it in {expected!r}",
        )
    problems = []
    for category in CATEGORIES:
        in_category = [r for r in requests if r.category == category]
        problems += window_problems(in_category, [limit], f"{category} ")
    return problems


async def _open_until(stream: AsyncIterator[object], opened: Callable[[], bool], bound: float) -> None:
    """Read `stream` until `opened()` holds (or an item comes, or `bound` passes), then close it."""
    reading = asyncio.ensure_future(stream.__anext__())
    try:
        await eventually(lambda: reading.done() or opened(), bound)
        if reading.done():
            reading.result()  # an error opening it is the caller's to see
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await close_stream(stream)
