"""Limiters that are wrong on purpose, each in one way, so that every check of the limiter tests is
seen failing on the mistake it exists to catch. All follow the `Limiter` protocol."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from aiolimiter import AsyncLimiter

from broker_plugins import RateLimit, RateLimiter


class BurstyBucket:
    """A bare `AsyncLimiter(N, P)`: a bucket of capacity N, about 2N in one window; deaf to refusals."""

    def __init__(self, limit: RateLimit) -> None:
        self._bucket = AsyncLimiter(limit.max_calls, limit.period)

    async def acquire(self, category: str) -> None:
        await self._bucket.acquire()

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        return None


class LastComeFirstServed:
    """Exact windows, but when a permit frees up the newest waiter gets it."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._grants: deque[float] = deque(maxlen=limit.max_calls)
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def acquire(self, category: str) -> None:
        if not self._waiters and self._free():
            self._grants.append(self._clock())
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._arm()
        await waiter

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        return None

    def _free(self) -> bool:
        return (
            len(self._grants) < self._limit.max_calls or self._grants[0] + self._limit.period <= self._clock()
        )

    def _arm(self) -> None:
        if self._timer is None:
            wake_at = self._grants[0] + self._limit.period
            self._timer = asyncio.get_running_loop().call_later(wake_at - self._clock(), self._release)

    def _release(self) -> None:
        self._timer = None
        while self._waiters and self._free():
            self._grants.append(self._clock())
            self._waiters.pop().set_result(None)
        if self._waiters:
            self._arm()


class TakesBeforeWaiting:
    """Counts a permit as taken when a caller starts waiting, so a cancelled waiter uses one up."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._slots: deque[float] = deque(maxlen=limit.max_calls)

    async def acquire(self, category: str) -> None:
        now = self._clock()
        at = (
            now if len(self._slots) < self._limit.max_calls else max(now, self._slots[0] + self._limit.period)
        )
        self._slots.append(at)
        await asyncio.sleep(at - now)

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        return None


class OneQueueForAll(RateLimiter):
    """Every category draws on the one budget of the first: categories do not keep their own limits."""

    async def acquire(self, category: str) -> None:
        await super().acquire("market_data")


class EveryHeadForItself(RateLimiter):
    """Heads of several categories race for a shared limit: whoever runs first wins, every time."""

    def _earlier_rival(self, *args: Any) -> None:
        return None
