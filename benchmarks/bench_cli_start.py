"""Import and start: `brokerctl quote` against a running bridge, next to a bare one-shot script.

    python -m benchmarks.bench_cli_start [--runs N] [--json PATH]

Each run is a new process, from spawn to exit, against the reference bridge (its own process,
already running). The bare side is a script that imports grpc and the generated stubs, makes the
same GetQuote call and prints the quote's fields; `brokerctl --target ADDRESS quote SYMBOL` does the
same through the plugin registry and the gateway. No config file is read (a fresh XDG_CONFIG_HOME).
Runs alternate the sides; the median counts (wall time, and the child's CPU time).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from benchmarks._common import REPO, Row, alternate, bridge_process, parser, ratio_at_most, report

SYMBOL = "005930"

BARE_SCRIPT = """
import sys
from decimal import Decimal

import grpc

from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = market_data_pb2_grpc.MarketDataServiceStub(channel)
    quote = stub.GetQuote(market_data_pb2.GetQuoteRequest(symbol=sys.argv[2]), timeout=5).quote
    price = lambda d: Decimal(d.mantissa).scaleb(d.exponent)
    print(quote.symbol, price(quote.bid), price(quote.bid_size), price(quote.ask), price(quote.ask_size))
"""


def _brokerctl() -> list[str]:
    script = Path(sys.executable).with_name("brokerctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "broker_plugins"]


def _timed(
    argv: Sequence[str], environ: Mapping[str, str], cpu: list[float]
) -> Callable[[], Awaitable[float]]:
    def once() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, env=dict(environ), cwd=REPO, check=True, capture_output=True, timeout=60)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
        return wall

    async def measure() -> float:
        # Run from a thread: a child's wall time, not this loop's, is what is measured.
        return await asyncio.to_thread(once)

    return measure


async def run(runs: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    with tempfile.TemporaryDirectory() as config_home, bridge_process("--no-budget") as address:
        environ = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": config_home}
        environ.pop("BROKERCTL_CONFIG", None)
        cpu: dict[str, list[float]] = {"bare": [], "gateway": []}
        sides = {
            "bare": _timed([sys.executable, "-c", BARE_SCRIPT, address, SYMBOL], environ, cpu["bare"]),
            "gateway": _timed([*_brokerctl(), "--target", address, "quote", SYMBOL], environ, cpu["gateway"]),
        }
        for side in sides.values():  # warm the file cache and the bytecode caches
            await side()
        for values in cpu.values():
            values.clear()
        return await alternate(sides, runs), cpu


def main() -> None:
    arguments = parser("cli_start", __doc__)
    arguments.add_argument("--runs", type=int, default=10, help="runs per side")
    args = arguments.parse_args()
    wall, cpu = asyncio.run(run(args.runs))
    median_wall = {side: statistics.median(values) * 1e3 for side, values in wall.items()}
    median_cpu = {side: statistics.median(values) * 1e3 for side, values in cpu.items()}
    rows = [
        Row("brokerctl quote, import and start, wall", median_wall["bare"], median_wall["gateway"], "ms",
            ratio_at_most(1.15)),
        Row("brokerctl quote, import and start, CPU", median_cpu["bare"], median_cpu["gateway"], "ms"),
    ]  # fmt: skip
    report("cli_start", "Import and start of a one-shot command", rows, args.json, {"wall": wall, "cpu": cpu})


if __name__ == "__main__":
    main()
