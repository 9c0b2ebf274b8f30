"""The rate limiters next to bare aiolimiter buckets: the cost of a permit, and what they keep.

    python -m benchmarks.bench_ratelimit [--permits N] [--rounds R] [--saturate S] [--no-redis] [--json PATH]

Cost: limits far above what the run reaches, so nothing waits and this measures bookkeeping. The
sides take turns for `rounds` rounds; the least disturbed round counts. Bare is
`aiolimiter.AsyncLimiter.acquire`; the Redis row's bare side is `RateLimiter` (one round trip per
permit to a redis-server of the benchmark's own, on a unix socket; it runs 1/50 of the permits).

What they keep: 20 per 0.5 s under saturation (ten callers, `--saturate` seconds a side, real clock),
the most grants in any 0.5 s window (counted 1 ms short: a grant is recorded a few microseconds
after it is made) and the grants over what the limit allows in that time. Bare is the aiolimiter
bucket of the same shape: capacity N (`AsyncLimiter(20, 0.5)`, which overshoots to 2N - 1) next to
the sliding windows, capacity 1 (`AsyncLimiter(1, 0.025)`) next to `paced=True`. Pacing counts each
interval from the permit as taken, so on a real clock it reaches about T / (T + the event loop's
wake-up delay) of the rate (100% on virtual time, see tests/core/test_ratelimit.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiolimiter import AsyncLimiter

from benchmarks._common import Row, alternate, at_least, at_most, parser, report
from broker_plugins import RateLimit, RateLimiter, RedisRateLimiter

HUGE = 10**12
REDIS_SHARE = 50  # the Redis side runs permits / REDIS_SHARE permits: it is that much slower
SATURATED = RateLimit(20, 0.5)

Acquire = Callable[[], Awaitable[None]]
Build = Callable[[], contextlib.AbstractAsyncContextManager[Acquire]]


@contextlib.asynccontextmanager
async def _plain(acquire: Acquire) -> AsyncIterator[Acquire]:
    yield acquire


def _ours(limits: RateLimit | dict[str, Any]) -> Build:
    def build() -> contextlib.AbstractAsyncContextManager[Acquire]:
        limiter = RateLimiter(limits)
        return _plain(lambda: limiter.acquire("market_data"))

    return build


def _redis(url: str) -> Build:
    @contextlib.asynccontextmanager
    async def build() -> AsyncIterator[Acquire]:
        budget = f"bench-{time.monotonic_ns()}"
        async with RedisRateLimiter(url, RateLimit(HUGE, 1), budget=budget) as limiter:
            yield lambda: limiter.acquire("market_data")

    return build


def _bucket() -> contextlib.AbstractAsyncContextManager[Acquire]:
    return _plain(AsyncLimiter(HUGE, 1).acquire)


def _timed(build: Build, permits: int) -> Callable[[], Awaitable[float]]:
    async def side() -> float:
        async with build() as acquire:
            await acquire()  # connected, warmed up
            started = time.perf_counter()
            for _ in range(permits):
                await acquire()
            return (time.perf_counter() - started) / permits * 1e9

    return side


async def cost(permits: int, rounds: int, redis_url: str | None) -> list[Row]:
    pairs: list[tuple[str, Build, Build, int]] = [
        ("permit, 1 window", _bucket, _ours(RateLimit(HUGE, 1)), permits),
        (
            "permit, 3 windows",
            _bucket,
            _ours({"market_data": [RateLimit(HUGE, 1), RateLimit(HUGE, 3600)], "*": RateLimit(HUGE, 1)}),
            permits,
        ),
        ("permit, paced", _bucket, _ours(RateLimit(HUGE, 1, paced=True)), permits),
    ]
    if redis_url is not None:
        pairs.append(
            ("permit, Redis (bare: RateLimiter)", _ours(RateLimit(HUGE, 1)), _redis(redis_url), permits)
        )
    rows = []
    for name, bare, ours, count in pairs:
        ours_count = count // REDIS_SHARE if "Redis" in name else count
        samples = await alternate(
            {"bare": _timed(bare, ours_count), "ours": _timed(ours, ours_count)}, rounds
        )
        rows.append(Row(name, min(samples["bare"]), min(samples["ours"]), "ns"))
    return rows


class _Bucket:
    def __init__(self, bucket: AsyncLimiter) -> None:
        self._bucket = bucket

    async def acquire(self, category: str) -> None:
        await self._bucket.acquire()


async def _saturate(limiter: Any, seconds: float) -> list[float]:
    granted: list[float] = []

    async def caller() -> None:
        while True:
            await limiter.acquire("market_data")
            granted.append(time.monotonic())

    callers = [asyncio.create_task(caller()) for _ in range(10)]
    await asyncio.sleep(seconds)
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    return granted


def _most_in_a_window(times: list[float], period: float) -> int:
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= period - 0.001:
            first += 1
        most = max(most, last - first + 1)
    return most


async def kept(seconds: float) -> list[Row]:
    limit = SATURATED
    allowed = limit.max_calls * seconds / limit.period
    interval = limit.period / limit.max_calls
    pairs = [
        ("sliding windows (bare: capacity N)", _Bucket(AsyncLimiter(20, 0.5)), RateLimiter(limit), 95.0),
        (
            "paced (bare: capacity 1)",
            _Bucket(AsyncLimiter(1, interval)),
            RateLimiter(RateLimit(20, 0.5, paced=True)),
            None,
        ),
    ]
    rows = []
    for name, bare, ours, rate_goal in pairs:
        bare_times = await _saturate(bare, seconds)
        our_times = await _saturate(ours, seconds)
        rows.append(
            Row(
                f"most in 0.5 s, 20 allowed: {name}",
                _most_in_a_window(bare_times, limit.period),
                _most_in_a_window(our_times, limit.period),
                "calls",
                at_most(limit.max_calls),
            )
        )
        rows.append(
            Row(
                f"of the limit used: {name}",
                100 * len(bare_times) / allowed,
                100 * len(our_times) / allowed,
                "%",
                at_least(rate_goal) if rate_goal else None,
            )
        )
    return rows


def main() -> None:
    arguments = parser("ratelimit", __doc__)
    arguments.add_argument("--permits", type=int, default=100_000)
    arguments.add_argument("--rounds", type=int, default=6)
    arguments.add_argument("--saturate", type=float, default=3.0, help="seconds of saturation a side")
    arguments.add_argument("--no-redis", action="store_true", help="skip RedisRateLimiter (no redis-server)")
    args = arguments.parse_args()
    with contextlib.ExitStack() as stack:
        redis_url = None
        if not args.no_redis:
            from benchmarks._redis import redis_server  # noqa: PLC0415 - only when asked for

            redis_url = stack.enter_context(redis_server())
        rows = asyncio.run(cost(args.permits, args.rounds, redis_url))
    rows += asyncio.run(kept(args.saturate))
    report("ratelimit", "Rate limiters next to bare aiolimiter buckets (bare / ours)", rows, args.json)


if __name__ == "__main__":
    main()
