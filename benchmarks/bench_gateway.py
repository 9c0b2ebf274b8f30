"""GrpcBrokerGateway next to a bare grpc.aio stub doing the same RPCs, in one run.

    python -m benchmarks.bench_gateway [--quotes N] [--stream-seconds S] [--json PATH]

The reference bridge runs in a separate process with no budget; the gateway's own rate limit is
set far above what the run reaches. Ratios are gateway / bare (latency: lower is better; throughput:
higher is better). Rounds alternate between the two so both see the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from benchmarks._bridge import bridge_process, percentile
from broker_plugins import Interval, RateLimit
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc

SYMBOLS = [
    "005930",
    "000660",
    "035420",
    "005380",
    "051910",
    "035720",
    "AAPL",
    "MSFT",
    "NVDA",
    "TSLA",
    "AMZN",
    "GOOGL",
]


async def _latencies(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def bench_quote(stub: Any, gateway: GrpcBrokerGateway, count: int) -> dict[str, float]:
    request = market_data_pb2.GetQuoteRequest(symbol="005930")
    bare: list[float] = []
    ours: list[float] = []
    await _latencies(lambda: stub.GetQuote(request, timeout=5), 200)  # warm up both paths
    await _latencies(lambda: gateway.get_quote("005930"), 200)
    for _ in range(10):
        bare += await _latencies(lambda: stub.GetQuote(request, timeout=5), count // 10)
        ours += await _latencies(lambda: gateway.get_quote("005930"), count // 10)
    return {
        "bare_p50_ms": percentile(bare, 0.5) * 1e3,
        "bare_p99_ms": percentile(bare, 0.99) * 1e3,
        "gateway_p50_ms": percentile(ours, 0.5) * 1e3,
        "gateway_p99_ms": percentile(ours, 0.99) * 1e3,
        "ratio_p50": percentile(ours, 0.5) / percentile(bare, 0.5),
        "ratio_p99": percentile(ours, 0.99) / percentile(bare, 0.99),
    }


async def _bare_candles(stub: Any, count: int) -> int:
    """Page through `count` candles and read every field of every candle, as a caller would."""
    request = market_data_pb2.GetCandlesRequest(
        symbol="AAPL", interval=market_data_pb2.INTERVAL_ONE_MINUTE, limit=count
    )
    total = 0
    while True:
        page = await stub.GetCandles(request, timeout=60)
        columns = (page.open_time_unix_ms, page.open, page.high, page.low, page.close, page.volume)
        for when, o, h, lo, c, v in zip(*columns, strict=True):
            total += (when + o + h + lo + c + v) & 1
        if not page.next_page_token:
            return total
        request.page_token = page.next_page_token


async def _gateway_candles(gateway: GrpcBrokerGateway, count: int, read: bool) -> int:
    candles = await gateway.get_candles("AAPL", Interval.M1, limit=count)
    if not read:
        return len(candles)
    total = 0
    for candle in candles:
        total += (
            candle.start.second + candle.open + candle.high + candle.low + candle.close + candle.volume
        ) > 0
    return total


async def bench_candles(stub: Any, gateway: GrpcBrokerGateway, count: int, rounds: int) -> dict[str, float]:
    await _bare_candles(stub, count)  # the bridge computes once, then serves from its cache
    best = {"bare": float("inf"), "entities": float("inf"), "fields": float("inf")}
    for _ in range(rounds):
        for name, run in (
            ("bare", lambda: _bare_candles(stub, count)),
            ("entities", lambda: _gateway_candles(gateway, count, read=False)),
            ("fields", lambda: _gateway_candles(gateway, count, read=True)),
        ):
            started = time.perf_counter()
            await run()
            best[name] = min(best[name], time.perf_counter() - started)
    return {
        "bare_ms": best["bare"] * 1e3,
        "gateway_ms": best["entities"] * 1e3,
        "gateway_all_fields_read_ms": best["fields"] * 1e3,
        "ratio": best["entities"] / best["bare"],
        "ratio_all_fields_read": best["fields"] / best["bare"],
    }


async def _bare_stream(stub: Any, seconds: float) -> float:
    call = stub.StreamQuotes(market_data_pb2.StreamQuotesRequest(symbols=SYMBOLS))
    count, started = 0, time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            batch = await call.read()
            count += len(batch.quotes)
    finally:
        call.cancel()
    return count / (time.perf_counter() - started)


async def _gateway_stream(gateway: GrpcBrokerGateway, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    stream = gateway.stream_quotes(SYMBOLS)
    try:
        async for _ in stream:
            count += 1
            if count % 256 == 0 and time.perf_counter() - started >= seconds:
                break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return count / (time.perf_counter() - started)


async def bench_stream(stub: Any, gateway: GrpcBrokerGateway, seconds: float) -> dict[str, float]:
    bare = ours = 0.0
    for _ in range(2):
        bare = max(bare, await _bare_stream(stub, seconds))
        ours = max(ours, await _gateway_stream(gateway, seconds))
    return {"bare_quotes_per_s": bare, "gateway_quotes_per_s": ours, "ratio": ours / bare}


async def run(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    with bridge_process("--no-budget", "--tick-rate", str(args.tick_rate)) as address:
        channel = grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        gateway = GrpcBrokerGateway(target=address, rate_limits=RateLimit(10**9, 1.0), timeouts=60.0)
        try:
            await channel.channel_ready()
            await gateway.connect()
            return {
                "get_quote": await bench_quote(stub, gateway, args.quotes),
                f"get_candles_{args.candles}": await bench_candles(stub, gateway, args.candles, args.rounds),
                "stream_quotes": await bench_stream(stub, gateway, args.stream_seconds),
            }
        finally:
            await gateway.disconnect()
            await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5000, help="get_quote calls per side")
    parser.add_argument("--candles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="candle downloads per side (best counts)")
    parser.add_argument("--stream-seconds", type=float, default=3.0)
    parser.add_argument("--tick-rate", type=float, default=5000.0, help="bridge ticks per second per symbol")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/gateway.json"))
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(f"{'benchmark':28} {'figure':28} {'value':>12}")
    for bench, values in figures.items():
        for name, value in values.items():
            print(f"{bench:28} {name:28} {value:12.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
