"""Event-loop stalls: the longest time the loop could not run anything else, gateway next to bare.

    python -m benchmarks.bench_loop_stall [--live-objects N] [--orders N] [--rounds R] [--json PATH]

Against the embedded bridge (`grpc_plugin.embedded.EmbeddedBridge`, the CLI's default backend: it
shares the loop with the client, its order journal in SQLite). A heartbeat task sleeps 1 ms at a
time and records how late it wakes up; the longest delay while an operation runs is that
operation's longest stall. Measured:

- `disconnect()` with a quote stream and an order-update stream being read, while the process holds
  `--live-objects` container objects (a host's working set: a full garbage collection walks them
  all); bare: the same two streams on a bare channel, cancelled, and the channel closed;
- a burst of `--orders` concurrent orders; bare: the same burst of PlaceOrder calls on the stub.

Rounds alternate the sides; the median of the rounds' longest stalls counts. Goal: a few
milliseconds at most (5 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import grpc

from benchmarks._common import Row, alternate, at_most, parser, report
from broker_plugins import BrokerError, OrderRequest, RateLimit, Side
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.embedded import EmbeddedBridge
from grpc_plugin.generated.broker.bridge.v1 import (
    common_pb2,
    market_data_pb2,
    market_data_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)

SYMBOLS = ["005930", "AAPL", "MSFT"]
_TICK = 0.001


@contextlib.asynccontextmanager
async def longest_stall() -> AsyncIterator[list[float]]:
    """Yield a one-item list that holds, on exit, the longest stall (seconds) seen inside the block."""
    longest = [0.0]

    async def heartbeat() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(_TICK)
            longest[0] = max(longest[0], time.perf_counter() - before - _TICK)

    task = asyncio.create_task(heartbeat())
    await asyncio.sleep(_TICK * 3)  # running before the block starts
    try:
        yield longest
    finally:
        await asyncio.sleep(_TICK * 3)  # a stall at the block's end is seen too
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _drain(iterator: Any) -> None:
    with contextlib.suppress(BrokerError, grpc.aio.AioRpcError, asyncio.CancelledError):
        async for _ in iterator:
            pass


def _limits() -> RateLimit:
    return RateLimit(10**9, 1.0)


def disconnect_sides(address: str) -> dict[str, Callable[[], Awaitable[float]]]:
    async def gateway() -> float:
        client = GrpcBrokerGateway(target=address, rate_limits=_limits())
        await client.connect()
        readers = [
            asyncio.create_task(_drain(client.stream_quotes(SYMBOLS))),
            asyncio.create_task(_drain(client.stream_order_updates())),
        ]
        await asyncio.sleep(0.3)  # both streams flowing
        async with longest_stall() as stall:
            await client.disconnect()
        await asyncio.gather(*readers)
        return stall[0]

    async def bare() -> float:
        channel = grpc.aio.insecure_channel(address)
        await channel.channel_ready()
        calls: list[Any] = [
            market_data_pb2_grpc.MarketDataServiceStub(channel).StreamQuotes(
                market_data_pb2.StreamQuotesRequest(symbols=SYMBOLS)
            ),
            trading_pb2_grpc.TradingServiceStub(channel).StreamOrderUpdates(
                trading_pb2.StreamOrderUpdatesRequest(from_latest=True)
            ),
        ]
        readers = [asyncio.create_task(_drain(call)) for call in calls]
        await asyncio.sleep(0.3)
        async with longest_stall() as stall:
            for call in calls:
                call.cancel()
            await channel.close()
        await asyncio.gather(*readers)
        return stall[0]

    return {"bare": bare, "gateway": gateway}


_Step = Callable[[], Awaitable[None]]


def burst_sides(
    address: str, orders: int
) -> tuple[dict[str, Callable[[], Awaitable[float]]], tuple[_Step, _Step]]:
    channel = grpc.aio.insecure_channel(address)
    stub = trading_pb2_grpc.TradingServiceStub(channel)
    client = GrpcBrokerGateway(target=address, rate_limits=_limits())

    async def gateway() -> float:
        async with longest_stall() as stall:
            await asyncio.gather(
                *(client.place_order(OrderRequest("005930", Side.BUY, Decimal(1))) for _ in range(orders))
            )
        return stall[0]

    async def bare() -> float:
        def request() -> trading_pb2.PlaceOrderRequest:
            return trading_pb2.PlaceOrderRequest(
                client_order_id=uuid.uuid4().hex,
                symbol="005930",
                side=trading_pb2.SIDE_BUY,
                order_type=trading_pb2.ORDER_TYPE_MARKET,
                quantity=common_pb2.Decimal(mantissa=1),
                time_in_force=trading_pb2.TIME_IN_FORCE_DAY,
            )

        async with longest_stall() as stall:
            await asyncio.gather(*(stub.PlaceOrder(request(), timeout=30) for _ in range(orders)))
        return stall[0]

    async def open_() -> None:
        await channel.channel_ready()
        await client.connect()

    async def close() -> None:
        await client.disconnect()
        await channel.close()

    return {"bare": bare, "gateway": gateway}, (open_, close)


async def run(live_objects: int, orders: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    # The host's working set: containers the garbage collector tracks (and a full collection walks).
    working_set = [[index] for index in range(live_objects)]
    async with EmbeddedBridge().running() as bridge:
        address = str(bridge.options["target"])
        disconnects = await alternate(disconnect_sides(address), rounds)
        sides, steps = burst_sides(address, orders)
        open_, close = steps
        await open_()
        try:
            for side in sides.values():  # warm up
                await side()
            bursts = await alternate(sides, rounds)
        finally:
            await close()
    del working_set
    return {"disconnect": disconnects, "burst": bursts}


def main() -> None:
    arguments = parser("loop_stall", __doc__)
    arguments.add_argument("--live-objects", type=int, default=1_000_000, help="containers the host holds")
    arguments.add_argument("--orders", type=int, default=100, help="orders in one burst")
    arguments.add_argument("--rounds", type=int, default=5, help="alternations of the two sides")
    args = arguments.parse_args()
    samples = asyncio.run(run(args.live_objects, args.orders, args.rounds))
    stall = {
        case: {side: statistics.median(values) * 1e3 for side, values in sides.items()}
        for case, sides in samples.items()
    }
    rows = [
        Row(f"longest stall in disconnect(), {args.live_objects:,} live objects", stall["disconnect"]["bare"],
            stall["disconnect"]["gateway"], "ms", at_most(5.0)),
        Row(f"longest stall in a burst of {args.orders} orders", stall["burst"]["bare"],
            stall["burst"]["gateway"], "ms", at_most(5.0)),
    ]  # fmt: skip
    report("loop_stall", "Event-loop stalls, embedded bridge on the same loop", rows, args.json, samples)


if __name__ == "__main__":
    main()
