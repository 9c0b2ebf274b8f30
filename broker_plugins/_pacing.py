"""Smooth pacing: a limit whose calls are spaced evenly, on `aiolimiter.AsyncLimiter(1, period / max_calls)`.

Some brokers punish bursts even within their limit (Kiwoom users space requests about 200 ms apart).
`RateLimit(5, 1.0, paced=True)` grants one call every 0.2 s instead of five at once.

Why a leaky bucket of capacity 1 is exact: a bucket of capacity C, drained at r calls a second, admits
a call when its level is at most C - 1 and adds 1. The k-th call of a window that starts with the
first one finds the level at least k - 1 - r*t after t seconds, so k < C + r*P in any window of P
seconds. With C = N and r = N/P that is up to 2N - 1 calls (the burst, then the drain); with C = 1 and
r = N/P it is fewer than N + 1: exactly N, at the full sustained rate, with the calls P/N apart. The
price is latency: a burst of k calls waits (k - 1) * P/N for its last permit, where the sliding window
of `RateLimiter` sends all N at once. And the spacing is counted from each permit as it was taken:
on a real clock a waiter wakes a little late (asyncio's timers fire to about a millisecond), so at
saturation pacing reaches about T / (T + that delay) of the rate, T being P/N (exactly 100% on
virtual time, and a few percent less at short intervals on a busy machine).

The bucket is aiolimiter's; `RateLimiter` asks it `has_capacity()` together with its other limits and
takes the permit from all of them at one instant, so a paced limit combines exactly with the others
(a waiter that never got all of them took nothing from any).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from broker_plugins._limits import RateLimit

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

__all__ = ["Pacer"]


class Pacer:
    """One paced `RateLimit`: at most one permit per `interval` seconds of the event loop's clock."""

    __slots__ = ("_bucket", "_next", "interval", "limit")

    def __init__(self, limit: RateLimit, margin: float) -> None:
        self.limit = limit
        self.interval = (limit.period + margin) / limit.max_calls
        self._bucket: AsyncLimiter | None = None
        # The loop time of the next permit. The bucket decides; this only says when to ask it again,
        # and keeps the spacing when a host moves the limiter to a new loop (a new, empty bucket).
        self._next = -math.inf

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use a fresh bucket in `loop` (a bucket binds to the loop that first uses it)."""
        del loop  # the bucket finds the running loop itself
        # Imported here: only a paced limit needs it, and every host imports this module.
        from aiolimiter import AsyncLimiter  # noqa: PLC0415

        self._bucket = AsyncLimiter(1, self.interval)

    def delay(self, loop_now: float) -> float:
        """Seconds of loop time until the next permit should be there; zero or less means now."""
        return self._next - loop_now

    def has_capacity(self, loop_now: float) -> bool:
        """Whether a permit can be taken now (the bucket agrees and the spacing is kept)."""
        assert self._bucket is not None, "bind() first"
        return loop_now >= self._next and self._bucket.has_capacity()

    def take(self, loop_now: float) -> None:
        """Take the permit `has_capacity` just offered, synchronously.

        `AsyncLimiter.acquire()` returns without suspending when the bucket has capacity, so it is
        run to completion here: the permit is taken at this instant, with the limiter's other limits.
        """
        assert self._bucket is not None, "bind() first"
        step = self._bucket.acquire()
        try:
            step.send(None)
        except StopIteration:
            self._next = loop_now + self.interval
            return
        step.close()
        raise RuntimeError("aiolimiter suspended an acquire() although it had capacity")
