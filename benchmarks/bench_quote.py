"""Unary calls: `get_quote` latency and client CPU, `place_order` client CPU, next to a bare stub.

    python -m benchmarks.bench_quote [--quotes N] [--orders N] [--rounds R] [--json PATH]

The reference bridge runs in its own process with no budget; the gateway's rate limits are far above
what the run reaches. Both sides do the same work: the bare side builds the request from the same
inputs and turns the reply into the same values (Decimals, UTC datetimes), only without entities,
permits or error mapping. Rounds alternate the order of the sides.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import grpc

from benchmarks._common import Row, alternate, bridge_process, parser, percentile, ratio_at_most, report
from broker_plugins import OrderRequest, RateLimit, Side
from grpc_plugin import GrpcBrokerGateway
from grpc_plugin.generated.broker.bridge.v1 import (
    common_pb2,
    market_data_pb2,
    market_data_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)

SYMBOL = "005930"


def _decimal(message: common_pb2.Decimal) -> Decimal:
    return Decimal(message.mantissa).scaleb(message.exponent)


def _time(message: Any) -> datetime:
    return datetime.fromtimestamp(message.seconds + message.nanos / 1e9, timezone.utc)


def _bare_quote(reply: market_data_pb2.GetQuoteResponse) -> tuple[object, ...]:
    quote = reply.quote
    last = _decimal(quote.last) if quote.HasField("last") else None
    return (
        quote.symbol,
        _decimal(quote.bid),
        _decimal(quote.bid_size),
        _decimal(quote.ask),
        _decimal(quote.ask_size),
        last,
        _time(quote.time),
    )


def _wire_decimal(value: Decimal) -> common_pb2.Decimal:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)))
    return common_pb2.Decimal(mantissa=-mantissa if sign else mantissa, exponent=exponent)


def _bare_order(order: trading_pb2.Order) -> tuple[object, ...]:
    return (
        order.order_id,
        order.client_order_id,
        order.symbol,
        order.side,
        order.status,
        _decimal(order.quantity),
        _decimal(order.filled_quantity),
        _decimal(order.average_fill_price) if order.HasField("average_fill_price") else None,
        _time(order.create_time),
        _time(order.update_time),
    )


async def _latencies(call: Callable[[], Any], count: int) -> tuple[list[float], float]:
    """Wall time of each of `count` calls, and the process CPU they took in all."""
    samples = []
    cpu = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples, time.process_time() - cpu


async def bench_quote(market: Any, gateway: GrpcBrokerGateway, count: int, rounds: int) -> list[Row]:
    async def bare_call() -> None:
        _bare_quote(await market.GetQuote(market_data_pb2.GetQuoteRequest(symbol=SYMBOL), timeout=5))

    async def gateway_call() -> None:
        quote = await gateway.get_quote(SYMBOL)
        _ = (quote.symbol, quote.bid, quote.bid_size, quote.ask, quote.ask_size, quote.last, quote.time)

    latencies: dict[str, list[float]] = {"bare": [], "gateway": []}
    cpu: dict[str, float] = {"bare": 0.0, "gateway": 0.0}

    def side(name: str, call: Callable[[], Any]) -> Callable[[], Any]:
        async def run() -> float:
            samples, spent = await _latencies(call, count // rounds)
            latencies[name] += samples
            cpu[name] += spent
            return spent

        return run

    await _latencies(bare_call, 200)  # warm both paths (channels, caches) before measuring
    await _latencies(gateway_call, 200)
    await alternate({"bare": side("bare", bare_call), "gateway": side("gateway", gateway_call)}, rounds)
    calls = (count // rounds) * rounds
    p50 = {name: percentile(samples, 0.5) * 1e3 for name, samples in latencies.items()}
    p99 = {name: percentile(samples, 0.99) * 1e3 for name, samples in latencies.items()}
    per_call = {name: spent / calls * 1e6 for name, spent in cpu.items()}
    return [
        Row("get_quote p50", p50["bare"], p50["gateway"], "ms", ratio_at_most(1.10)),
        Row("get_quote p99", p99["bare"], p99["gateway"], "ms", ratio_at_most(1.25)),
        Row("get_quote client CPU per call", per_call["bare"], per_call["gateway"], "us"),
    ]


async def bench_place_order(trading: Any, gateway: GrpcBrokerGateway, count: int, rounds: int) -> list[Row]:
    # Market orders of one share, bought and sold in turn: the paper account's cash lasts for any
    # count (2,000 buys of a KRX stock would spend more than its 100,000,000 KRW). A buy fills only
    # from the size the quote shows, renewed every tick: see the tick rate in `run`, without which
    # buys would rest and the sells after them be rejected (an error on the gateway's side only).
    quantity = Decimal(1)

    async def bare_orders() -> float:
        started = time.process_time()
        for index in range(count // rounds):
            request = trading_pb2.PlaceOrderRequest(
                client_order_id=uuid.uuid4().hex,
                symbol=SYMBOL,
                side=trading_pb2.SIDE_BUY if index % 2 == 0 else trading_pb2.SIDE_SELL,
                order_type=trading_pb2.ORDER_TYPE_MARKET,
                quantity=_wire_decimal(quantity),
                time_in_force=trading_pb2.TIME_IN_FORCE_DAY,
            )
            reply = await trading.PlaceOrder(request, timeout=10)
            _bare_order(reply.order)
        return (time.process_time() - started) / (count // rounds)

    async def gateway_orders() -> float:
        started = time.process_time()
        for index in range(count // rounds):
            side = Side.BUY if index % 2 == 0 else Side.SELL
            order = await gateway.place_order(OrderRequest(SYMBOL, side, quantity))
            _ = (order.order_id, order.client_order_id, order.symbol, order.side, order.status)
            _ = (order.quantity, order.filled_quantity, order.average_fill_price)
            _ = (order.created_at, order.updated_at)
        return (time.process_time() - started) / (count // rounds)

    await bare_orders()  # warm up
    await gateway_orders()
    samples = await alternate({"bare": bare_orders, "gateway": gateway_orders}, rounds)
    return [
        Row(
            "place_order client CPU per call",
            min(samples["bare"]) * 1e6,
            min(samples["gateway"]) * 1e6,
            "us",
            ratio_at_most(1.10),
        )
    ]


async def run(quotes: int, orders: int, rounds: int) -> list[Row]:
    # A quote (and the size it shows) every millisecond: a market order of one share finds size.
    with bridge_process("--no-budget", "--tick-rate", "1000") as address:
        channel = grpc.aio.insecure_channel(address)
        market = market_data_pb2_grpc.MarketDataServiceStub(channel)
        trading = trading_pb2_grpc.TradingServiceStub(channel)
        limits = RateLimit(10**9, 1.0)
        gateway = GrpcBrokerGateway(target=address, rate_limits=limits, timeouts=60.0)
        try:
            await channel.channel_ready()
            await gateway.connect()
            rows = await bench_quote(market, gateway, quotes, rounds)
            rows += await bench_place_order(trading, gateway, orders, rounds)
        finally:
            await gateway.disconnect()
            await channel.close()
    return rows


def main() -> None:
    arguments = parser("quote", __doc__)
    arguments.add_argument("--quotes", type=int, default=5000, help="get_quote calls per side")
    arguments.add_argument("--orders", type=int, default=1000, help="place_order calls per side")
    arguments.add_argument("--rounds", type=int, default=10, help="alternations of the two sides")
    args = arguments.parse_args()
    rows = asyncio.run(run(args.quotes, args.orders, args.rounds))
    report("quote", "Unary calls (bridge in its own process; client CPU is this process's)", rows, args.json)


if __name__ == "__main__":
    main()
