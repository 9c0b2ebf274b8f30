"""Overhead of one permit when capacity is available: RateLimiter next to a bare aiolimiter.

    python -m benchmarks.bench_ratelimit [--permits N] [--rounds R] [--json PATH]

Limits are set far above what the run can reach, so nothing ever waits: this measures bookkeeping.
Each variant runs `rounds` times in alternation; the best round counts (least disturbed by the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiolimiter import AsyncLimiter

from broker_plugins import RateLimit, RateLimiter

HUGE = 10**12


async def _noop() -> None:
    return None


def variants() -> dict[str, Callable[[], Callable[[], Awaitable[None]]]]:
    def bare_aiolimiter() -> Callable[[], Awaitable[None]]:
        return AsyncLimiter(HUGE, 1).acquire

    def one_window() -> Callable[[], Awaitable[None]]:
        limiter = RateLimiter(RateLimit(HUGE, 1))
        return lambda: limiter.acquire("market_data")

    def three_windows() -> Callable[[], Awaitable[None]]:
        limiter = RateLimiter(
            {"market_data": [RateLimit(HUGE, 1), RateLimit(HUGE, 3600)], "*": RateLimit(HUGE, 1)}
        )
        return lambda: limiter.acquire("market_data")

    return {
        "empty coroutine": lambda: _noop,
        "aiolimiter.AsyncLimiter.acquire": bare_aiolimiter,
        "RateLimiter.acquire, 1 window": one_window,
        "RateLimiter.acquire, 3 windows": three_windows,
    }


async def _time(acquire: Callable[[], Awaitable[None]], permits: int) -> float:
    started = time.perf_counter()
    for _ in range(permits):
        await acquire()
    return (time.perf_counter() - started) / permits


async def run(permits: int, rounds: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, build in variants().items():
            per_permit = await _time(build(), permits)
            best[name] = min(best.get(name, per_permit), per_permit)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permits", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    best = asyncio.run(run(args.permits, args.rounds))
    bare = best["aiolimiter.AsyncLimiter.acquire"]
    print(f"{'variant':34} {'ns/permit':>10} {'vs aiolimiter':>14}")
    for name, seconds in best.items():
        print(f"{name:34} {seconds * 1e9:10.0f} {seconds / bare:13.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            name: {"ns_per_permit": s * 1e9, "ratio_to_aiolimiter": s / bare} for name, s in best.items()
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
