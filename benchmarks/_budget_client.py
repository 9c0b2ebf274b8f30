"""A process spending a shared budget with bare grpc stubs: GetQuote under a RedisRateLimiter.

    BRIDGE_TOKEN=t python -m benchmarks._budget_client --url URL --budget NAME --limit 50/1.0 \\
        --target HOST:PORT [--callers 4] [--margin 0.01] [--local]

`--local` uses the in-process RateLimiter instead (the baseline: one process, no Redis).

Prints `ready` once its channel is up, starts on a `go` line on stdin, and on `stop` prints one JSON
line: {"calls": completed GetQuote calls, "failed": permits refused (Redis unreachable)}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import grpc.aio

from broker_plugins import RateLimit, RateLimiter, RedisRateLimiter, SharedBudgetUnavailableError
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc


async def serve(args: argparse.Namespace) -> None:
    calls, period = args.limit.split("/")
    limit = RateLimit(int(calls), float(period))
    limiter: RateLimiter | RedisRateLimiter
    if args.local:
        limiter = RateLimiter(limit, margin=args.margin)
    else:
        limiter = RedisRateLimiter(args.url, limit, budget=args.budget, margin=args.margin)
    channel = grpc.aio.insecure_channel(args.target)
    await asyncio.wait_for(channel.channel_ready(), 30)
    stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
    metadata = (("authorization", f"Bearer {os.environ['BRIDGE_TOKEN']}"),)
    request = market_data_pb2.GetQuoteRequest(symbol="005930")
    stdin = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print("ready", flush=True)
    await stdin.readline()
    counts = {"calls": 0, "failed": 0}

    async def caller() -> None:
        while True:
            try:
                await limiter.acquire("market_data")
            except SharedBudgetUnavailableError:
                counts["failed"] += 1
                await asyncio.sleep(0.05)
                continue
            await stub.GetQuote(request, metadata=metadata, timeout=10)
            counts["calls"] += 1

    callers = [asyncio.create_task(caller()) for _ in range(args.callers)]
    await stdin.readline()
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    if isinstance(limiter, RedisRateLimiter):
        await limiter.aclose()
    await channel.close()
    print(json.dumps(counts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--budget", required=True)
    parser.add_argument("--limit", required=True, help="CALLS/SECONDS")
    parser.add_argument("--target", required=True)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--local", action="store_true", help="an in-process RateLimiter, not Redis")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
