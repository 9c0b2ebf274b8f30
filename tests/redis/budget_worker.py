"""A process spending a shared budget: callers under one RedisRateLimiter, each doing GetQuote.

    BUDGET_WORKER_TOKEN=T python -m tests.redis.budget_worker --url URL --budget NAME --limit 10/0.5 \
        --target HOST:PORT

The bridge token comes from the environment (never on a command line). Prints `ready` once its
channel is up and starts on a `go` line on stdin; prints `unavailable` when a permit first fails
(Redis unreachable) and `available` when one is granted again; on a `stop` line it stops and prints
one JSON line: {"calls": sent, "unavailable": failed permits, "permits": granted}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import grpc
import grpc.aio

from broker_plugins import RateLimit, RedisRateLimiter, SharedBudgetUnavailableError
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc


def say(line: str) -> None:
    print(line, flush=True)


async def serve(args: argparse.Namespace) -> None:
    calls, period = args.limit.split("/")
    limiter = RedisRateLimiter(
        args.url, RateLimit(int(calls), float(period)), budget=args.budget, margin=args.margin
    )
    channel = grpc.aio.insecure_channel(args.target)
    await asyncio.wait_for(channel.channel_ready(), 30)
    stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
    metadata = (("authorization", f"Bearer {os.environ['BUDGET_WORKER_TOKEN']}"),)
    request = market_data_pb2.GetQuoteRequest(symbol="005930")
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    say("ready")
    await stdin.readline()
    counts = {"calls": 0, "unavailable": 0}
    reachable = True

    async def caller() -> None:
        nonlocal reachable
        while True:
            try:
                await limiter.acquire("market_data")
            except SharedBudgetUnavailableError:
                counts["unavailable"] += 1
                if reachable:
                    reachable = False
                    say("unavailable")
                await asyncio.sleep(0.02)
                continue
            if not reachable:
                reachable = True
                say("available")
            await stub.GetQuote(request, metadata=metadata, timeout=10)
            counts["calls"] += 1

    callers = [asyncio.create_task(caller()) for _ in range(args.callers)]
    await stdin.readline()
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    counts["permits"] = limiter.stats().category("market_data").permits_granted
    await limiter.aclose()
    await channel.close()
    say(json.dumps(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--budget", required=True)
    parser.add_argument("--limit", required=True, help="CALLS/SECONDS")
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--target", required=True)
    parser.add_argument("--callers", type=int, default=4)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
