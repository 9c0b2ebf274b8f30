"""Overhead of one permit when capacity is available: the limiters next to a bare aiolimiter.

    python -m benchmarks.bench_ratelimit [--permits N] [--rounds R] [--no-redis] [--saturate S] [--json PATH]

Limits are set far above what the run can reach, so nothing ever waits: this measures bookkeeping
(and, for RedisRateLimiter, one round trip to a redis-server of the benchmark's own on a unix
socket, which it makes per permit). Variants run `rounds` times in alternation; the best round counts
(least disturbed by the machine). The Redis variant takes 1/50 of the permits: it is that much slower.

Then each of 20 per 0.5 s kept under saturation (ten callers, `--saturate` seconds each, real
clock): the most grants in any 0.5 s window, and the grants over what the limit allows in that
time. A bare bucket of capacity N overshoots; capacity 1 (pacing) and the sliding windows are exact.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter

from broker_plugins import RateLimit, RateLimiter, RedisRateLimiter

HUGE = 10**12
REDIS_SHARE = 50  # the Redis variant runs permits / REDIS_SHARE permits

Acquire = Callable[[], Awaitable[None]]


async def _noop() -> None:
    return None


def variants(
    redis_url: str | None,
) -> dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Acquire]]]:
    @contextlib.asynccontextmanager
    async def plain(acquire: Acquire) -> AsyncIterator[Acquire]:
        yield acquire

    def limiter(limits: RateLimit | dict[str, RateLimit | list[RateLimit]]) -> Acquire:
        built = RateLimiter(limits)
        return lambda: built.acquire("market_data")

    @contextlib.asynccontextmanager
    async def redis() -> AsyncIterator[Acquire]:
        assert redis_url is not None
        async with RedisRateLimiter(
            redis_url, RateLimit(HUGE, 1), budget=f"bench-{time.monotonic_ns()}"
        ) as shared:
            yield lambda: shared.acquire("market_data")

    found: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Acquire]]] = {
        "empty coroutine": lambda: plain(_noop),
        "aiolimiter.AsyncLimiter.acquire": lambda: plain(AsyncLimiter(HUGE, 1).acquire),
        "RateLimiter.acquire, 1 window": lambda: plain(limiter(RateLimit(HUGE, 1))),
        "RateLimiter.acquire, 3 windows": lambda: plain(
            limiter({"market_data": [RateLimit(HUGE, 1), RateLimit(HUGE, 3600)], "*": RateLimit(HUGE, 1)})
        ),
        "RateLimiter.acquire, paced": lambda: plain(limiter(RateLimit(HUGE, 1, paced=True))),
    }
    if redis_url is not None:
        found["RedisRateLimiter.acquire, 1 window"] = redis
    return found


async def _time(acquire: Acquire, permits: int) -> float:
    started = time.perf_counter()
    for _ in range(permits):
        await acquire()
    return (time.perf_counter() - started) / permits


async def run(permits: int, rounds: int, redis_url: str | None) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, build in variants(redis_url).items():
            count = permits // REDIS_SHARE if name.startswith("Redis") else permits
            async with build() as acquire:
                await acquire()  # connected, warmed up
                per_permit = await _time(acquire, count)
            best[name] = min(best.get(name, per_permit), per_permit)
    return best


class _Bucket:
    def __init__(self, bucket: AsyncLimiter) -> None:
        self._bucket = bucket

    async def acquire(self, category: str) -> None:
        await self._bucket.acquire()


async def saturation(seconds: float) -> dict[str, tuple[int, float]]:
    """(the most grants in any window, grants over what the limit allows) for each way to keep 20/0.5 s."""
    limit = RateLimit(20, 0.5)
    kept: dict[str, Callable[[], Any]] = {
        "aiolimiter.AsyncLimiter(20, 0.5)": lambda: _Bucket(AsyncLimiter(20, 0.5)),
        "aiolimiter.AsyncLimiter(1, 0.025)": lambda: _Bucket(AsyncLimiter(1, 0.025)),
        "RateLimiter, RateLimit(20, 0.5)": lambda: RateLimiter(limit),
        "RateLimiter, RateLimit(20, 0.5, paced=True)": lambda: RateLimiter(RateLimit(20, 0.5, paced=True)),
    }
    found = {}
    for name, build in kept.items():
        limiter = build()
        granted: list[float] = []

        async def caller(limiter: Any = limiter, granted: list[float] = granted) -> None:
            while True:
                await limiter.acquire("market_data")
                granted.append(time.monotonic())

        callers = [asyncio.create_task(caller()) for _ in range(10)]
        await asyncio.sleep(seconds)
        for task in callers:
            task.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        found[name] = (
            _most_in_a_window(granted, limit.period),
            len(granted) / (limit.max_calls * seconds / limit.period),
        )
    return found


def _most_in_a_window(times: list[float], period: float) -> int:
    # Windows 1 ms short: a grant is recorded a few microseconds after it is made.
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= period - 0.001:
            first += 1
        most = max(most, last - first + 1)
    return most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permits", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-redis", action="store_true", help="skip RedisRateLimiter (no redis-server)")
    parser.add_argument("--saturate", type=float, default=3.0, help="seconds of saturation per variant")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        redis_url = None
        if not args.no_redis:
            from benchmarks._redis import redis_server  # noqa: PLC0415 - only when asked for

            redis_url = stack.enter_context(redis_server())
        best = asyncio.run(run(args.permits, args.rounds, redis_url))
    kept = asyncio.run(saturation(args.saturate))
    bare = best["aiolimiter.AsyncLimiter.acquire"]
    print(f"{'variant':38} {'ns/permit':>10} {'vs aiolimiter':>14}")
    for name, seconds in best.items():
        print(f"{name:38} {seconds * 1e9:10.0f} {seconds / bare:13.2f}x")
    print(f"\n20 per 0.5 s, saturated {args.saturate:g} s each{'most in a window':>28} {'of the limit':>12}")
    for name, (most, share) in kept.items():
        print(f"{name:48} {most:>16} {share:>12.1%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures: dict[str, Any] = {
            name: {"ns_per_permit": s * 1e9, "ratio_to_aiolimiter": s / bare} for name, s in best.items()
        }
        figures["saturation"] = {
            name: {"most_in_a_window": m, "of_the_limit": u} for name, (m, u) in kept.items()
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
