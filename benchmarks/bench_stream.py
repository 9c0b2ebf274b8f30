"""Quote streams: client CPU per streamed quote, gateway next to a bare stub, with a fast producer.

    python -m benchmarks.bench_stream [--quotes N] [--batch N] [--rounds R] [--json PATH]

The reference bridge produces quotes at a simulated tick rate, so a stream read from it measures the
bridge. Here a small producer server in its own process (`--serve-producer`) implements
`MarketDataService.StreamQuotes` from the generated stubs and streams pre-built
`StreamQuotesResponse` batches as fast as the client reads them. A drain client that reads the raw
bytes without parsing shows what the producer offers (goal: at least 200,000 quotes/s, so the
producer is not the limit); then each side reads `--quotes` quotes and its process CPU per quote is
taken (gRPC's threads included):

- bare: the generated stub, every field of every quote read into the values a `Quote` holds
  (Decimals through a cache per field, the time as a UTC datetime, `last` None when absent);
- bare, wire values: the stub reading every field as it is on the wire (ints and strings), the floor;
- gateway: `stream_quotes`, every field of every `Quote` read.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from benchmarks._common import Row, alternate, at_least, parser, ratio_at_most, report, serving_process
from broker_plugins import RateLimit
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, market_data_pb2_grpc

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
_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)


# -- the producer ------------------------------------------------------------------------------------


def batches(batch_size: int, count: int = 64, seed: int = 7) -> list[market_data_pb2.StreamQuotesResponse]:
    """Quotes of a random walk on a tick grid, a few per symbol per batch, times 1 ms apart."""
    rng = random.Random(seed)
    mids = {symbol: rng.randint(5_000, 50_000) for symbol in SYMBOLS}
    seconds, nanos = 1_790_000_000, 0
    result = []
    for _ in range(count):
        quotes = []
        for index in range(batch_size):
            symbol = SYMBOLS[index % len(SYMBOLS)]
            mids[symbol] += rng.choice((-1, 0, 0, 1))
            spread = rng.randint(1, 3)
            quote = market_data_pb2.Quote(
                symbol=symbol,
                bid=common_pb2.Decimal(mantissa=mids[symbol], exponent=-2),
                bid_size=common_pb2.Decimal(mantissa=rng.randint(1, 2000)),
                ask=common_pb2.Decimal(mantissa=mids[symbol] + spread, exponent=-2),
                ask_size=common_pb2.Decimal(mantissa=rng.randint(1, 2000)),
            )
            if index % 7:  # now and then a quote with no last trade
                quote.last.CopyFrom(
                    common_pb2.Decimal(mantissa=mids[symbol] + rng.randint(0, spread), exponent=-2)
                )
            nanos += 1_000_000
            seconds, nanos = seconds + nanos // 1_000_000_000, nanos % 1_000_000_000
            quote.time.seconds, quote.time.nanos = seconds, nanos
            quotes.append(quote)
        result.append(market_data_pb2.StreamQuotesResponse(quotes=quotes))
    return result


class _Producer(market_data_pb2_grpc.MarketDataServiceServicer):
    def __init__(self, batch_size: int) -> None:
        self._batches = batches(batch_size)

    async def StreamQuotes(
        self, request: market_data_pb2.StreamQuotesRequest, context: Any
    ) -> AsyncIterator[market_data_pb2.StreamQuotesResponse]:
        while True:  # each write waits for flow control: as fast as the client reads, no faster
            for batch in self._batches:
                yield batch


async def serve_producer(batch_size: int) -> None:
    server = grpc.aio.server()
    # The stock health service (SERVING): the bridge contract's first contact, which connect() makes.
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    market_data_pb2_grpc.add_MarketDataServiceServicer_to_server(
        _Producer(batch_size),  # type: ignore[abstract]  # serves StreamQuotes only
        server,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


# -- the readers -------------------------------------------------------------------------------------


class _Decimals(dict[tuple[int, int], Decimal]):
    def __missing__(self, key: tuple[int, int]) -> Decimal:
        value = self[key] = Decimal(key[0]).scaleb(key[1])
        return value


async def drain(channel: grpc.aio.Channel, quotes: int, batch_size: int) -> float:
    """Quotes per second the producer offers: batches read as bytes, never parsed."""
    call: Any = channel.unary_stream("/broker.bridge.v1.MarketDataService/StreamQuotes")(
        market_data_pb2.StreamQuotesRequest(symbols=SYMBOLS).SerializeToString()  # type: ignore[arg-type]
    )
    started, received = time.perf_counter(), 0
    try:
        while received < quotes:
            await call.read()
            received += batch_size
    finally:
        call.cancel()
    return received / (time.perf_counter() - started)


def bare_reader(stub: Any, quotes: int, wire_only: bool) -> Callable[[], Any]:
    async def read() -> tuple[float, float]:
        bids, sizes, asks, ask_sizes, lasts = (_Decimals() for _ in range(5))
        call = stub.StreamQuotes(market_data_pb2.StreamQuotesRequest(symbols=SYMBOLS))
        received = 0
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            while received < quotes:
                batch = await call.read()
                for quote in batch.quotes:
                    bid, bid_size, ask, ask_size, stamp = (
                        quote.bid, quote.bid_size, quote.ask, quote.ask_size, quote.time
                    )  # fmt: skip
                    if wire_only:
                        _ = (quote.symbol, bid.mantissa, bid.exponent, bid_size.mantissa, bid_size.exponent)
                        _ = (ask.mantissa, ask.exponent, ask_size.mantissa, ask_size.exponent)
                        _ = (quote.last.mantissa, quote.last.exponent) if quote.HasField("last") else None
                        _ = (stamp.seconds, stamp.nanos)
                    else:
                        last = quote.last
                        _ = (
                            quote.symbol,
                            bids[bid.mantissa, bid.exponent],
                            sizes[bid_size.mantissa, bid_size.exponent],
                            asks[ask.mantissa, ask.exponent],
                            ask_sizes[ask_size.mantissa, ask_size.exponent],
                            lasts[last.mantissa, last.exponent] if quote.HasField("last") else None,
                            _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000),
                        )
                received += len(batch.quotes)
        finally:
            call.cancel()
        return (time.process_time() - cpu) / received, received / (time.perf_counter() - wall)

    return read


def gateway_reader(gateway: GrpcBrokerGateway, quotes: int) -> Callable[[], Any]:
    async def read() -> tuple[float, float]:
        stream = gateway.stream_quotes(SYMBOLS)
        received = 0
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            async for quote in stream:
                _ = (
                    quote.symbol,
                    quote.bid,
                    quote.bid_size,
                    quote.ask,
                    quote.ask_size,
                    quote.last,
                    quote.time,
                )
                received += 1
                if received >= quotes:
                    break
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        return (time.process_time() - cpu) / received, received / (time.perf_counter() - wall)

    return read


async def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    producer = [
        sys.executable,
        "-m",
        "benchmarks.bench_stream",
        "--serve-producer",
        "--batch",
        str(args.batch),
    ]
    with serving_process(producer) as address:
        channel = grpc.aio.insecure_channel(address)
        stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        gateway = GrpcBrokerGateway(target=address, rate_limits=RateLimit(10**9, 1.0))
        try:
            await channel.channel_ready()
            await gateway.connect()
            offered = max([await drain(channel, args.quotes, args.batch) for _ in range(3)])
            readers = {
                "bare": bare_reader(stub, args.quotes, wire_only=False),
                "wire": bare_reader(stub, args.quotes, wire_only=True),
                "gateway": gateway_reader(gateway, args.quotes),
            }
            for reader in readers.values():  # warm up: caches, channel windows
                await reader()
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in readers}

            def keep(name: str) -> Callable[[], Any]:
                async def measured() -> float:
                    results[name].append(await readers[name]())
                    return results[name][-1][0]

                return measured

            await alternate({name: keep(name) for name in readers}, args.rounds)
        finally:
            await gateway.disconnect()
            await channel.close()
    cpu = {name: min(sample[0] for sample in samples) * 1e6 for name, samples in results.items()}
    rate = {name: max(sample[1] for sample in samples) for name, samples in results.items()}
    rows = [
        Row("CPU per streamed quote", cpu["bare"], cpu["gateway"], "us", ratio_at_most(1.2)),
        Row("CPU per streamed quote, bare reading wire values", cpu["wire"], cpu["gateway"], "us"),
        Row("quotes/s offered by the producer (drain)", None, offered, "quotes/s", at_least(200_000)),
        Row("quotes/s read, reading as fast as it can", rate["bare"], rate["gateway"], "quotes/s",
            at_least(200_000)),
    ]  # fmt: skip
    details = {"batch": args.batch, "quotes_per_side": args.quotes, "rounds": args.rounds, "samples": results}
    return rows, details


def main() -> None:
    arguments = parser("stream", __doc__)
    arguments.add_argument("--quotes", type=int, default=300_000, help="quotes each side reads a round")
    arguments.add_argument("--batch", type=int, default=200, help="quotes per StreamQuotesResponse")
    arguments.add_argument("--rounds", type=int, default=5, help="alternations of the sides")
    arguments.add_argument("--serve-producer", action="store_true", help=argparse.SUPPRESS)
    args = arguments.parse_args()
    if args.serve_producer:
        asyncio.run(serve_producer(args.batch))
        return
    rows, details = asyncio.run(run(args))
    report(
        "stream",
        "stream_quotes, client CPU per quote (producer in its own process)",
        rows,
        args.json,
        details,
    )


if __name__ == "__main__":
    main()
