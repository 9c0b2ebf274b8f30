"""Idle cost: process CPU of 100 connected gateways over a quiet interval, next to 100 bare channels.

    python -m benchmarks.bench_idle [--gateways N] [--quiet S] [--rounds R] [--json PATH]

Both sides connect to the reference bridge (its own process) and then do nothing for `quiet`
seconds while this process's CPU time is taken; the figure is the share of one core. The gateways
use their default settings (health probes, keepalive); the bare side is plain grpc.aio channels,
connected. Rounds alternate the sides; the median round counts. Goal: the gateways cost at most 1%
of a core.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import grpc

from benchmarks._common import Row, alternate, at_most, bridge_process, parser, report
from grpc_plugin import GrpcBrokerGateway


async def _quiet_share(quiet: float) -> float:
    """Share of one core this process used while sleeping `quiet` seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(quiet)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def bare_side(address: str, count: int, quiet: float) -> Callable[[], Awaitable[float]]:
    async def measure() -> float:
        channels = [grpc.aio.insecure_channel(address) for _ in range(count)]
        try:
            await asyncio.gather(*(channel.channel_ready() for channel in channels))
            await asyncio.sleep(1.0)  # let connection set-up finish before the quiet interval
            return await _quiet_share(quiet)
        finally:
            await asyncio.gather(*(channel.close() for channel in channels))

    return measure


def gateway_side(address: str, count: int, quiet: float) -> Callable[[], Awaitable[float]]:
    async def measure() -> float:
        gateways = [GrpcBrokerGateway(target=address) for _ in range(count)]
        try:
            await asyncio.gather(*(gateway.connect() for gateway in gateways))
            await asyncio.sleep(1.0)
            return await _quiet_share(quiet)
        finally:
            await asyncio.gather(*(gateway.disconnect() for gateway in gateways))

    return measure


async def run(count: int, quiet: float, rounds: int) -> dict[str, list[float]]:
    with bridge_process("--no-budget") as address:
        sides = {"bare": bare_side(address, count, quiet), "gateway": gateway_side(address, count, quiet)}
        return await alternate(sides, rounds)


def main() -> None:
    arguments = parser("idle", __doc__)
    arguments.add_argument("--gateways", type=int, default=100)
    arguments.add_argument("--quiet", type=float, default=5.0, help="seconds of measured quiet per round")
    arguments.add_argument("--rounds", type=int, default=4, help="alternations of the two sides")
    args = arguments.parse_args()
    samples = asyncio.run(run(args.gateways, args.quiet, args.rounds))
    share = {name: statistics.median(values) * 100 for name, values in samples.items()}
    rows = [
        Row(
            f"idle CPU, {args.gateways} connected",
            share["bare"],
            share["gateway"],
            "% of a core",
            at_most(1.0),
        )
    ]
    report(
        "idle", "Idle cost (bridge in its own process)", rows, args.json, {"samples": samples, **vars(args)}
    )


if __name__ == "__main__":
    main()
