"""Real processes sharing one budget through a real redis-server, counted where they cannot lie: at a
reference bridge (in this process, budget off) that records every call's arrival and its account.

Each worker process (`tests/redis/budget_worker.py`) has its own bridge token, so the bridge says
which process sent what. Limiters get a margin of 100 ms, and windows are counted at the bridge
10 ms plus 10% short (as the conformance suite counts them): permits granted a window apart reach
the bridge closer together than that when a process is descheduled on a busy machine (the broken
limiters below overshoot by whole multiples of the limit, so the slack hides nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import grpc.aio
import pytest

from broker_plugins import Limiter, RateLimit, RateLimiter
from grpc_plugin.bridge import BridgeConfig, BridgeServer
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2, market_data_pb2_grpc
from tests.redis.checks import check_budget_at_bridge, check_fair_shares
from tests.redis.conftest import RedisServer
from tests.support.waiting import until

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MARGIN = 0.1
PROCESSES = 8  # bridge accounts available to workers
LINE_TIMEOUT = 60.0  # a worker starts (imports grpc, redis) in well under this, even on a busy machine


@pytest.fixture
async def bridge() -> AsyncIterator[BridgeServer]:
    tokens = {f"token-{index}": f"process-{index}" for index in range(PROCESSES)}
    server = BridgeServer(BridgeConfig(tokens=tokens, budget=()))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def arrivals(bridge: BridgeServer) -> list[tuple[str, float]]:
    """(account, arrival) of every GetQuote the bridge admitted."""
    return [
        (record.account or "", record.arrived)
        for record in bridge.requests
        if record.method == "GetQuote" and record.rejected is None
    ]


class Worker:
    """One budget_worker process; its lines are read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reading = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, index: int, *, url: str, budget: str, limit: str, target: str) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.redis.budget_worker",
            f"--url={url}",
            f"--budget={budget}",
            f"--limit={limit}",
            f"--margin={MARGIN}",
            f"--target={target}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "BUDGET_WORKER_TOKEN": f"token-{index}"},
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().strip())

    def said(self, line: str) -> bool:
        return line in self.lines

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())

    async def finish(self) -> dict[str, int]:
        """Its counts, once it stopped (send `stop` to every worker first, so that none runs alone)."""
        await asyncio.wait_for(self.process.wait(), LINE_TIMEOUT)
        await self._reading
        assert self.process.returncode == 0, f"worker exited with {self.process.returncode}: {self.lines}"
        counts: dict[str, int] = json.loads(self.lines[-1])
        return counts

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def finish(workers: Sequence[Worker]) -> tuple[float, list[dict[str, int]]]:
    """Stop every worker at once: when they were told to, and their counts."""
    for worker in workers:
        worker.send("stop")
    stopped = time.monotonic()
    return stopped, [await worker.finish() for worker in workers]


async def start_workers(count: int, redis: RedisServer, budget: str, limit: str, target: str) -> list[Worker]:
    workers = [
        await Worker.start(index, url=redis.url, budget=budget, limit=limit, target=target)
        for index in range(count)
    ]
    await until(lambda: all(worker.said("ready") for worker in workers), within=LINE_TIMEOUT)
    return workers


@pytest.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    """Workers a test started; killed afterwards if the test did not finish them."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()
        await worker.process.wait()


async def test_four_processes_on_one_redis_budget_keep_it_at_the_bridge_and_share_it_fairly(
    bridge: BridgeServer, redis_server: RedisServer, budget: str, workers: list[Worker]
) -> None:
    limit = RateLimit(20, 0.5)
    workers += await start_workers(4, redis_server, budget, "20/0.5", bridge.address)
    bridge.clear_requests()
    for worker in workers:
        worker.send("go")
    await until(lambda: len(arrivals(bridge)) >= 120, within=30)  # about 3 s at 20 per 0.5 s
    stopped, results = await finish(workers)
    seen = arrivals(bridge)
    check_budget_at_bridge(seen, limit)
    check_fair_shares(seen, 4, limit.period, until=stopped)
    # Every call the workers completed reached the bridge; a few more were in flight when they stopped.
    assert 0 <= len(seen) - sum(result["calls"] for result in results) <= 4 * 4
    assert all(result["unavailable"] == 0 for result in results)


async def spend_in_process(
    bridge: BridgeServer, limiters: Sequence[Limiter], calls: int
) -> list[tuple[str, float]]:
    """Four groups of callers in this process, each under its own limiter and bridge account."""
    channels = [grpc.aio.insecure_channel(bridge.address) for _ in limiters]
    request = market_data_pb2.GetQuoteRequest(symbol="005930")

    async def caller(
        index: int, limiter: Limiter, stub: market_data_pb2_grpc.MarketDataServiceAsyncStub
    ) -> None:
        metadata = (("authorization", f"Bearer token-{index}"),)
        while True:
            await limiter.acquire("market_data")
            await stub.GetQuote(request, metadata=metadata, timeout=10)

    bridge.clear_requests()
    tasks = [
        asyncio.create_task(caller(index, limiter, market_data_pb2_grpc.MarketDataServiceStub(channel)))
        for index, (limiter, channel) in enumerate(zip(limiters, channels, strict=True))
        for _ in range(4)
    ]
    try:
        await until(lambda: len(arrivals(bridge)) >= calls, within=30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()
    return arrivals(bridge)


async def test_the_bridge_budget_check_catches_processes_that_do_not_share(bridge: BridgeServer) -> None:
    seen = await spend_in_process(
        bridge, [RateLimiter(RateLimit(20, 0.5), margin=MARGIN) for _ in range(4)], 80
    )
    with pytest.raises(AssertionError, match="limit 20"):
        check_budget_at_bridge(seen, RateLimit(20, 0.5))


async def test_the_fairness_check_catches_a_budget_split_unevenly(bridge: BridgeServer) -> None:
    split = [RateLimiter(RateLimit(calls, 0.5), margin=MARGIN) for calls in (12, 4, 2, 2)]
    seen = await spend_in_process(bridge, split, 60)
    check_budget_at_bridge(seen, RateLimit(20, 0.5))  # it keeps the total, unfairly
    with pytest.raises(AssertionError, match="shares"):
        check_fair_shares(seen, 4, 0.5)


async def test_redis_restarted_under_three_processes_the_budget_holds_at_the_bridge(
    bridge: BridgeServer, own_redis_server: RedisServer, budget: str, workers: list[Worker]
) -> None:
    limit = RateLimit(10, 0.5)
    workers += await start_workers(3, own_redis_server, budget, "10/0.5", bridge.address)
    bridge.clear_requests()
    for worker in workers:
        worker.send("go")
    await until(lambda: len(arrivals(bridge)) >= 15, within=30)  # saturated: a window is full

    own_redis_server.stop()
    # While it is down, permits fail (SharedBudgetUnavailableError) in every process.
    await until(lambda: all(worker.said("unavailable") for worker in workers), within=30)
    restarted_at = len(arrivals(bridge))
    own_redis_server.start()
    await until(lambda: all(worker.said("available") for worker in workers), within=30)
    await until(lambda: len(arrivals(bridge)) >= restarted_at + 15, within=30)

    _, results = await finish(workers)
    seen = arrivals(bridge)
    # Redis came back empty: the processes that knew the budget held every window for a period.
    check_budget_at_bridge(seen, limit)
    assert all(result["unavailable"] > 0 for result in results)
