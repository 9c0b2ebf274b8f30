"""How fast the gateway recovers, with its default settings.

    python -m benchmarks.bench_reconnect [--cycles N] [--outage S] [--json PATH]

Each cycle kills the bridge process with SIGKILL, waits `outage` seconds, restarts it on the same
port, and measures from the moment the new bridge prints `listening on` (it accepts calls) to the
first successful `get_quote` of a caller that retries every 5 ms. Also reports how long calls took
to fail while the bridge was down (the graceful-degradation bound), and how long the gateway took
to notice a black-holed connection (a proxy that keeps the socket open and forwards nothing) against
its declared bound (keepalive time + keepalive timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path

from benchmarks._bridge import bridge_process, percentile
from broker_plugins import BrokerError, ConnectionState
from conformance_tests import FaultProxy
from grpc_plugin import GrpcBrokerGateway


async def _recover(gateway: GrpcBrokerGateway) -> float:
    """Seconds until a get_quote succeeds, retrying every 5 ms."""
    started = time.perf_counter()
    while True:
        try:
            await gateway.get_quote("AAPL")
        except BrokerError:
            await asyncio.sleep(0.005)
            continue
        return time.perf_counter() - started


async def _failure_times(gateway: GrpcBrokerGateway, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with contextlib.suppress(BrokerError):
            await gateway.get_quote("AAPL")
        times.append(time.perf_counter() - started)
    return times


async def run(cycles: int, outage: float) -> dict[str, float]:
    recoveries: list[float] = []
    failures: list[float] = []
    stack = contextlib.ExitStack()
    address = stack.enter_context(bridge_process("--no-budget"))
    port = address.rsplit(":", 1)[1]
    gateway = GrpcBrokerGateway(target=address)  # default settings
    try:
        await gateway.connect()
        for _ in range(cycles):
            stack.close()  # SIGKILL
            stack = contextlib.ExitStack()
            failures += await _failure_times(gateway, 3)
            await asyncio.sleep(outage)
            # bridge_process returns once the new bridge printed `listening on`: it accepts calls.
            stack.enter_context(bridge_process("--no-budget", "--port", port))
            recoveries.append(await _recover(gateway))
    finally:
        await gateway.disconnect()
        stack.close()
    return {
        "cycles": cycles,
        "outage_s": outage,
        "recovery_p50_s": percentile(recoveries, 0.5),
        "recovery_p90_s": percentile(recoveries, 0.9),
        "recovery_max_s": max(recoveries),
        "failing_call_p50_s": percentile(failures, 0.5),
        "failing_call_max_s": max(failures),
    }


async def _until(condition: object, within: float) -> float:
    started = time.perf_counter()
    while not condition():  # type: ignore[operator]
        if time.perf_counter() - started > within:
            raise TimeoutError(f"not within {within} s")
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def run_blackhole(cycles: int) -> dict[str, float]:
    detections: list[float] = []
    with bridge_process("--no-budget") as address:
        async with FaultProxy(int(address.rsplit(":", 1)[1])) as proxy:
            gateway = GrpcBrokerGateway(target=proxy.address)  # default settings
            try:
                await gateway.connect()
                for _ in range(cycles):
                    await gateway.get_quote("AAPL")
                    await proxy.blackhole()
                    detections.append(
                        await _until(lambda: gateway.state is not ConnectionState.CONNECTED, 30)
                    )
                    await proxy.restore()
                    await _until(lambda: gateway.state is ConnectionState.CONNECTED, 30)
                bound = gateway.half_open_bound
            finally:
                await gateway.disconnect()
    return {
        "blackhole_cycles": cycles,
        "declared_bound_s": bound,
        "detection_p50_s": percentile(detections, 0.5),
        "detection_max_s": max(detections),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--outage", type=float, default=1.0, help="seconds the bridge stays down")
    parser.add_argument("--blackhole-cycles", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/reconnect.json"))
    args = parser.parse_args()
    figures = asyncio.run(run(args.cycles, args.outage))
    figures.update(asyncio.run(run_blackhole(args.blackhole_cycles)))
    for name, value in figures.items():
        print(f"{name:24} {value:10.3f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
