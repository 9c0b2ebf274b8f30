"""Bulk candles: `get_candles` client CPU next to a bare stub paging through the same range.

    python -m benchmarks.bench_candles [--candles N] [--rounds R] [--json PATH]

Client CPU is this process's CPU time (gRPC's threads included); the bridge runs in its own process.
Each row gives both sides the same work:

- as returned: the bare side pages through the range; the gateway returns its `CandleSeries`.
- every field read: the bare side pages and builds one (datetime, Decimal, ...) tuple per candle,
  with a Decimal cache per column, then reads every tuple; the gateway's caller reads every field
  of every `Candle`.
- column access: the bare side pages and turns every column into Python ints (the floor for any
  column API); the gateway's caller takes every column (`open_times`, `opens`, ..., `volumes`).
- frame (only with pandas installed): the bare side builds the same pandas frame from the reply's
  columns; the gateway's caller calls `to_pandas()`.

Rounds alternate the order of the sides; the least disturbed round (the minimum) counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import grpc

from benchmarks._common import Row, alternate, bridge_process, parser, ratio_at_most, report
from broker_plugins import Interval, RateLimit
from grpc_plugin import CandleSeries, GrpcBrokerGateway
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc

SYMBOL = "AAPL"
_Work = Callable[[], Awaitable[object]]
_UTC = timezone.utc


async def _pages(stub: Any, count: int) -> list[market_data_pb2.GetCandlesResponse]:
    request = market_data_pb2.GetCandlesRequest(
        symbol=SYMBOL, interval=market_data_pb2.INTERVAL_ONE_MINUTE, limit=count
    )
    pages = []
    while True:
        page = await stub.GetCandles(request, timeout=60)
        pages.append(page)
        if not page.next_page_token:
            return pages
        request.page_token = page.next_page_token


def _cached(scale: Decimal) -> Callable[[int], Decimal]:
    """A per-column Decimal cache, as a careful hand-written client keeps one."""
    cache: dict[int, Decimal] = {}

    def decimal(mantissa: int) -> Decimal:
        value = cache.get(mantissa)
        if value is None:
            value = cache[mantissa] = Decimal(mantissa) * scale
        return value

    return decimal


def bare_rows(pages: list[market_data_pb2.GetCandlesResponse]) -> list[tuple[Any, ...]]:
    """(start, open, high, low, close, volume) per candle: UTC datetimes and exact Decimals."""
    rows = []
    from_timestamp = datetime.fromtimestamp
    for page in pages:
        price = Decimal(1).scaleb(page.price_exponent)
        o, h, lo, c = (_cached(price) for _ in range(4))
        v = _cached(Decimal(1).scaleb(page.volume_exponent))
        for when, op, hi, low, cl, vol in zip(
            page.open_time_unix_ms, page.open, page.high, page.low, page.close, page.volume, strict=True
        ):
            rows.append((from_timestamp(when / 1000, _UTC), o(op), h(hi), lo(low), c(cl), v(vol)))
    return rows


def bare_columns(pages: list[market_data_pb2.GetCandlesResponse]) -> list[list[int]]:
    """Every column as Python ints, pages joined: the floor of any column API."""
    columns: list[list[int]] = [[] for _ in range(6)]
    for page in pages:
        for column, values in zip(
            columns,
            (page.open_time_unix_ms, page.open, page.high, page.low, page.close, page.volume),
            strict=True,
        ):
            column.extend(values)
    return columns


def bare_frame(pages: list[market_data_pb2.GetCandlesResponse]) -> Any:
    """The frame `CandleSeries.to_pandas()` returns, built from the reply's columns by hand."""
    import pandas as pd  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415

    columns = bare_columns(pages)
    exponent = pages[0].price_exponent  # one page exponent: the bridge's
    frame = {"start": pd.to_datetime(columns[0], unit="ms", utc=True)}
    for name, values in zip(("open", "high", "low", "close"), columns[1:5], strict=True):
        frame[name] = pd.Series(values, dtype="int64") * 10.0**exponent
    frame["volume"] = pd.Series(columns[5], dtype="int64") * 10.0 ** pages[0].volume_exponent
    return pd.DataFrame(frame)


def read_rows(rows: list[tuple[Any, ...]]) -> int:
    count = 0
    for _start, _open, _high, _low, _close, _volume in rows:
        count += 1
    return count


def read_candles(series: CandleSeries) -> int:
    count = 0
    for candle in series:
        _ = (candle.symbol, candle.interval, candle.start, candle.open)
        _ = (candle.high, candle.low, candle.close, candle.volume)
        count += 1
    return count


def read_columns(series: CandleSeries) -> int:
    columns = (series.open_times, series.opens, series.highs, series.lows, series.closes, series.volumes)
    return sum(map(len, columns))


def _cpu(work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[float]]:
    async def measured() -> float:
        started = time.process_time()
        await work()
        return time.process_time() - started

    return measured


async def run(count: int, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    with bridge_process("--no-budget") as address:
        channel = grpc.aio.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
        gateway = GrpcBrokerGateway(target=address, rate_limits=RateLimit(10**9, 1.0), timeouts=60.0)
        try:
            await channel.channel_ready()
            await gateway.connect()
            return await _measure(stub, gateway, count, rounds)
        finally:
            await gateway.disconnect()
            await channel.close()


async def _measure(
    stub: Any, gateway: GrpcBrokerGateway, count: int, rounds: int
) -> tuple[list[Row], dict[str, Any]]:
    async def series() -> CandleSeries:
        candles = await gateway.get_candles(SYMBOL, Interval.M1, limit=count)
        assert isinstance(candles, CandleSeries)
        return candles

    # Same values on both sides, or the comparison means nothing.
    pages, candles = await _pages(stub, count), await series()
    assert [tuple(row) for row in bare_rows(pages)] == [
        (c.start, c.open, c.high, c.low, c.close, c.volume) for c in candles
    ]
    assert len(candles) == count
    cases: list[tuple[str, _Work, _Work, float | None]] = [
        ("as returned", lambda: _pages(stub, count), series, 1.5),
        ("every field read", _then(lambda: _pages(stub, count), lambda p: read_rows(bare_rows(p))),
         _then(series, read_candles), 1.10),
        ("column access", _then(lambda: _pages(stub, count), bare_columns),
         _then(series, read_columns), 2.0),
    ]  # fmt: skip
    frames = _pandas_available() and hasattr(CandleSeries, "to_pandas")
    if frames:
        cases.append(
            ("pandas frame", _then(lambda: _pages(stub, count), bare_frame),
             _then(series, lambda s: s.to_pandas()), 1.5)
        )  # fmt: skip
    rows = []
    details: dict[str, Any] = {"candles": count, "rounds": rounds, "pandas_frame": frames}
    for name, bare, ours, goal in cases:
        samples = await alternate({"bare": _cpu(bare), "gateway": _cpu(ours)}, rounds)
        details[name] = samples
        rows.append(
            Row(
                f"{count:,} candles, {name}, client CPU",
                min(samples["bare"]) * 1e3,
                min(samples["gateway"]) * 1e3,
                "ms",
                ratio_at_most(goal) if goal else None,
            )
        )
    return rows, details


def _then(
    fetch: Callable[[], Awaitable[Any]], use: Callable[[Any], object]
) -> Callable[[], Awaitable[object]]:
    async def both() -> object:
        return use(await fetch())

    return both


def _pandas_available() -> bool:
    try:
        import pandas  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def main() -> None:
    arguments = parser("candles", __doc__)
    arguments.add_argument("--candles", type=int, default=100_000)
    arguments.add_argument("--rounds", type=int, default=7, help="alternations of the two sides per row")
    args = arguments.parse_args()
    rows, details = asyncio.run(run(args.candles, args.rounds))
    report("candles", "get_candles, client CPU (bridge in its own process)", rows, args.json, details)


if __name__ == "__main__":
    main()
