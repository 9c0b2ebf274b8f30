"""Recovery with default settings: first successful call after a killed bridge returns, and the cost.

    python -m benchmarks.bench_reconnect [--cycles N] [--outage S] [--json PATH]

Each cycle kills the bridge process with SIGKILL and, for `outage` seconds, listens on its port with
a counter that accepts each connection attempt and closes it at once, as a dead host's port would
refuse it; then it starts a new bridge on the same port. Measured: from the moment the new bridge
prints `listening on` (it accepts calls) to the first successful `get_quote` of a caller that
retries every 5 ms (p50 and p90 over the cycles; goals: under 0.25 s and 0.5 s); how many
connection attempts the gateway made during the outage, against the bound that its reconnect
backoff allows (no reconnect storm); how long calls took to fail while the bridge was down; and how
long the gateway took to notice a black-holed connection against its declared bound. The bare side
is a grpc.aio channel with the gateway's reconnect backoff and the same retrying caller; the sides
take turns, one outage each, one client connected at a time (so attempts are counted per side).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from typing import Any

import grpc

from benchmarks._common import Row, at_most, bridge_process, parser, percentile, report
from broker_plugins import BrokerError, ConnectionState
from conformance_tests import FaultProxy
from grpc_plugin import GatewayConfig, GrpcBrokerGateway
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc

# gRPC's own reconnect schedule, on which the gateway's backoff sets only the first and the longest
# delay (gRPC's connection-backoff document: multiplier 1.6, jitter 0.2).
_GRPC_MULTIPLIER = 1.6
_GRPC_JITTER = 0.2


def paced_bound(outage: float) -> int:
    """The most connection attempts the default backoff allows in `outage` seconds (shortest waits)."""
    backoff = GatewayConfig.from_options(target="127.0.0.1:1").reconnect_backoff
    attempts, elapsed, delay = 1, 0.0, backoff.initial
    while True:
        elapsed += min(delay, backoff.maximum) * (1 - _GRPC_JITTER)
        if elapsed > outage:
            return attempts
        attempts += 1
        delay *= _GRPC_MULTIPLIER


class _AttemptCounter:
    """Listens on the dead bridge's port; every connection is counted and closed."""

    def __init__(self, port: int) -> None:
        self.attempts = 0
        self._server: asyncio.Server | None = None
        self._port = port

    async def __aenter__(self) -> _AttemptCounter:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._server = await asyncio.start_server(self._refuse, sock=sock)
        return self

    async def _refuse(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class _BareClient:
    """A bare channel with the gateway's reconnect backoff, its caller retrying every 5 ms too."""

    def __init__(self, address: str) -> None:
        backoff = GatewayConfig.from_options(target=address).reconnect_backoff
        self._channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.initial_reconnect_backoff_ms", int(backoff.initial * 1000)),
                ("grpc.min_reconnect_backoff_ms", int(backoff.initial * 1000)),
                ("grpc.max_reconnect_backoff_ms", int(backoff.maximum * 1000)),
            ],
        )
        self._stub = market_data_pb2_grpc.MarketDataServiceStub(self._channel)

    async def connect(self) -> None:
        await self._channel.channel_ready()

    async def get_quote(self, symbol: str) -> object:
        try:
            return await self._stub.GetQuote(market_data_pb2.GetQuoteRequest(symbol=symbol), timeout=1.0)
        except grpc.aio.AioRpcError as exc:
            raise BrokerError(str(exc.code())) from None

    async def disconnect(self) -> None:
        await self._channel.close()


async def _recover(client: Any) -> float:
    """Seconds until a get_quote succeeds, retrying every 5 ms."""
    started = time.perf_counter()
    while True:
        try:
            await client.get_quote("AAPL")
        except BrokerError:
            await asyncio.sleep(0.005)
            continue
        return time.perf_counter() - started


async def _failure_times(client: Any, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with contextlib.suppress(BrokerError):
            await client.get_quote("AAPL")
        times.append(time.perf_counter() - started)
    return times


async def run_outages(cycles: int, outage: float) -> dict[str, dict[str, list[float]]]:
    """`cycles` outages for each side, the sides taking turns; one client connected at a time."""
    figures: dict[str, dict[str, list[float]]] = {
        side: {"recoveries": [], "failures": [], "attempts": []} for side in ("bare", "gateway")
    }
    stack = contextlib.ExitStack()
    address = stack.enter_context(bridge_process("--no-budget"))
    port = address.rsplit(":", 1)[1]
    try:
        for cycle in range(2 * cycles):
            side = ("gateway", "bare")[cycle % 2] if cycle // 2 % 2 else ("bare", "gateway")[cycle % 2]
            client: Any = GrpcBrokerGateway(target=address) if side == "gateway" else _BareClient(address)
            try:
                await client.connect()
                await client.get_quote("AAPL")
                stack.close()  # SIGKILL
                stack = contextlib.ExitStack()
                async with _AttemptCounter(int(port)) as counter:
                    outage_started = time.perf_counter()
                    figures[side]["failures"] += await _failure_times(client, 3)
                    await asyncio.sleep(max(0.0, outage - (time.perf_counter() - outage_started)))
                figures[side]["attempts"].append(counter.attempts)
                # bridge_process returns once the new bridge printed `listening on`: it accepts calls.
                stack.enter_context(bridge_process("--no-budget", "--port", port))
                figures[side]["recoveries"].append(await _recover(client))
            finally:
                await client.disconnect()
    finally:
        stack.close()
    return figures


async def _until(condition: Any, within: float) -> float:
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > within:
            raise TimeoutError(f"not within {within} s")
        await asyncio.sleep(0.002)
    return time.perf_counter() - started


async def run_blackhole(cycles: int) -> tuple[list[float], float]:
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
    return detections, bound


def main() -> None:
    arguments = parser("reconnect", __doc__)
    arguments.add_argument("--cycles", type=int, default=20, help="kill-and-restart cycles")
    arguments.add_argument("--outage", type=float, default=1.0, help="seconds the bridge stays down")
    arguments.add_argument("--blackhole-cycles", type=int, default=5)
    args = arguments.parse_args()
    if args.cycles < 1 or args.blackhole_cycles < 1:
        sys.exit("--cycles and --blackhole-cycles must be at least 1")
    outages = asyncio.run(run_outages(args.cycles, args.outage))
    detections, bound = asyncio.run(run_blackhole(args.blackhole_cycles))
    bare, ours = outages["bare"], outages["gateway"]

    def figure(name: str, pick: Any) -> tuple[float, float]:
        return pick(bare[name]), pick(ours[name])

    cycles = f"{args.cycles} cycles"
    rows = [
        Row(f"first successful call after restart, p50, {cycles}",
            *figure("recoveries", lambda v: percentile(v, 0.5)), "s", at_most(0.25)),
        Row(f"first successful call after restart, p90, {cycles}",
            *figure("recoveries", lambda v: percentile(v, 0.9)), "s", at_most(0.5)),
        Row(f"first successful call after restart, max, {cycles}", *figure("recoveries", max), "s"),
        Row(f"connection attempts in a {args.outage:g} s outage, max", *figure("attempts", max), "",
            at_most(paced_bound(args.outage))),
        Row("call while the bridge is down fails within, max", *figure("failures", max), "s", at_most(2.0)),
        Row(f"black hole noticed, max of {args.blackhole_cycles}", None, max(detections), "s",
            at_most(bound + 0.5)),
    ]  # fmt: skip
    details = {
        **outages,
        "blackhole_detections": detections,
        "half_open_bound": bound,
        "outage_s": args.outage,
    }
    title = "Recovery, default settings (bridge killed with SIGKILL, restarted on its port)"
    report("reconnect", title, rows, args.json, details)


if __name__ == "__main__":
    main()
