"""Client-side rate limits that hold exactly, in every window, under any concurrency.

Why not a bare `aiolimiter.AsyncLimiter(N, P)`: a leaky bucket of capacity C draining at r calls a
second admits fewer than C + r*P calls in any window of P seconds (the k-th call of a window finds
the level at least k - 1 - r*t and needs it at most C - 1). `AsyncLimiter(N, P)` has C = N and
r = N/P, so a full burst followed by the drain admits up to 2N - 1 in one window (aiolimiter issues
#90, #200, #298). At full sustained rate (r = N/P) only capacity 1 is exact: `AsyncLimiter(1, P/N)`
admits exactly N per window, but spaces the calls P/N apart, so it cannot send a burst. That is the
opt-in smooth pacing (`RateLimit(N, P, paced=True)`, see `broker_plugins._pacing`).

By default each window keeps the times of its last `max_calls` grants instead: a grant at `now` is
allowed when fewer than `max_calls` were granted, or the oldest of them is at least `period` old.
That is exact, allows bursts of up to `max_calls`, and under saturation grants the full limit.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from collections.abc import Callable

from broker_plugins._aio import Alarm
from broker_plugins._errors import InvalidRequestError
from broker_plugins._limiter import CategoryRecord, LimiterStats
from broker_plugins._limits import (
    CATEGORIES,
    SHARED,
    RateLimit,
    RateLimitsSpec,
    check_margin,
    describe,
    parse_spec,
    unknown_category,
)
from broker_plugins._pacing import Pacer

__all__ = ["CATEGORIES", "RateLimit", "RateLimiter", "RateLimitsSpec"]

# When every limit says "now" but a paced bucket's own arithmetic is a rounding error behind the
# clock, look again this much later instead of spinning.
_SETTLE = 1e-6


class _Window:
    """The grant times of one `RateLimit`: only the last `max_calls` are needed to decide."""

    __slots__ = ("grants", "limit", "span")

    def __init__(self, limit: RateLimit, margin: float) -> None:
        self.limit = limit
        self.span = limit.period + margin
        self.grants: deque[float] = deque(maxlen=limit.max_calls)

    def delay(self, now: float) -> float:
        """Seconds until a grant at `now` would be allowed; zero or less means now."""
        if len(self.grants) < self.limit.max_calls:
            return 0.0
        return self.grants[0] + self.span - now


class _Line:
    """One category: its limits (own, then shared), its waiters in arrival order, its counters."""

    __slots__ = (
        "alarm",
        "held_until",
        "limits",
        "own_pacers",
        "own_windows",
        "pacers",
        "queue",
        "record",
        "shares_limits",
        "windows",
    )

    def __init__(self, own: list[_Window | Pacer], shared: list[_Window | Pacer]) -> None:
        self.limits = tuple(part.limit for part in own + shared)
        self.own_windows = tuple(part for part in own if isinstance(part, _Window))
        self.own_pacers = tuple(part for part in own if isinstance(part, Pacer))
        self.windows = self.own_windows + tuple(part for part in shared if isinstance(part, _Window))
        self.pacers = self.own_pacers + tuple(part for part in shared if isinstance(part, Pacer))
        self.shares_limits = bool(shared)
        # (arrival ticket, turn): the head is the earliest waiter and the only one looking at limits.
        self.queue: deque[tuple[int, asyncio.Future[None]]] = deque()
        self.alarm = Alarm()
        self.held_until = -math.inf
        self.record = CategoryRecord()

    def delay(self, now: float, loop: asyncio.AbstractEventLoop) -> float:
        """Seconds until every limit of the category allows a grant; zero or less means now."""
        delay = self.held_until - now
        for window in self.windows:
            delay = max(delay, window.delay(now))
        if self.pacers:
            loop_now = loop.time()
            for pacer in self.pacers:
                delay = max(delay, pacer.delay(loop_now))
        return delay

    def own_limits_allow(self, now: float, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether the category's own limits (not the shared ones) would let its head go now."""
        if self.held_until > now or any(window.delay(now) > 0.0 for window in self.own_windows):
            return False
        loop_now = loop.time()
        return all(pacer.has_capacity(loop_now) for pacer in self.own_pacers)

    def grant(self, now: float, loop: asyncio.AbstractEventLoop) -> bool:
        """Take a permit from every limit if all allow one now; checked and taken with no await between."""
        for window in self.windows:
            if window.delay(now) > 0.0:
                return False
        if self.pacers:
            loop_now = loop.time()
            if not all(pacer.has_capacity(loop_now) for pacer in self.pacers):
                return False
            for pacer in self.pacers:
                pacer.take(loop_now)
        for window in self.windows:
            window.grants.append(now)
        return True


class RateLimiter:
    """Grants permits per category so that no `RateLimit` is ever exceeded in any window.

    Every call a gateway makes first awaits `acquire(category)`. Waiters of one category are served
    first-come first-served, and so are the categories' first waiters for the shared `"*"` limits;
    a waiter cancelled while waiting takes nothing. Several limits on one category (per second and
    per hour) all hold at once.

    `margin` widens every window by that many seconds, to absorb network jitter between this limiter
    and the broker's own clock when the broker enforces the same limits.

    `clock` is read at every decision; waits are asyncio sleeps, so it must keep the event loop's
    pace: `time.monotonic` (the default, asyncio's own clock) or a virtual-time loop's `loop.time`
    in tests. Paced limits are aiolimiter buckets, which read the loop's clock themselves.

    The limiter binds to the event loop it is first used in (and moves to a new one once that loop
    is closed). `stats()` reports each category's permits, waits, waiters and last refusal.
    """

    def __init__(
        self,
        limits: RateLimitsSpec = (),
        *,
        margin: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        margin = check_margin(margin)
        if not callable(clock):
            raise InvalidRequestError(f"clock must be a function returning seconds, got {clock!r}")
        parsed = parse_spec(limits)

        def build(limit: RateLimit) -> _Window | Pacer:
            return Pacer(limit, margin) if limit.paced else _Window(limit, margin)

        shared = [build(limit) for limit in parsed.get(SHARED, ())]
        self._lines = {
            category: _Line([build(limit) for limit in parsed.get(category, ())], shared)
            for category in CATEGORIES
        }
        self._pacers = tuple({id(p): p for line in self._lines.values() for p in line.pacers}.values())
        self._limits = parsed
        self._clock = clock
        self._arrivals = itertools.count()
        self._waiting = 0  # callers in every queue
        self._loop: asyncio.AbstractEventLoop | None = None

    def limits_for(self, category: str) -> tuple[RateLimit, ...]:
        """Every limit a call in `category` is subject to: its own, then the shared ones."""
        return self._line(category).limits

    async def acquire(self, category: str) -> None:
        """Wait until a call in `category` is allowed by every limit on it, and take the permit."""
        line = self._lines.get(category)
        if line is None:
            raise unknown_category(category)
        if not line.limits:
            line.record.granted(0.0)
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._bind(loop)
        now = self._clock()
        # Nobody waits anywhere (so no head of another category was first): decide at once.
        if not self._waiting and line.held_until <= now and line.grant(now, loop):
            line.record.permits += 1  # CategoryRecord.granted(0.0), inlined: this is the hot path
            return
        await self._wait_in_line(loop, line, now)

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        """The broker refused a call in `category` as over budget: grant none there for `retry_after` s."""
        line = self._line(category)
        valid = retry_after is not None and math.isfinite(retry_after) and retry_after > 0
        line.record.refused(retry_after if valid else None)
        if retry_after is not None and valid:
            line.held_until = max(line.held_until, self._clock() + retry_after)

    def stats(self) -> LimiterStats:
        """Each category's permits granted, waits (p50, p99), waiters now and last refusal."""
        now = self._clock()
        return LimiterStats(
            categories=tuple(
                line.record.snapshot(
                    category, line.limits, waiters=len(line.queue), held_for=line.held_until - now
                )
                for category, line in self._lines.items()
            )
        )

    async def _wait_in_line(self, loop: asyncio.AbstractEventLoop, line: _Line, started: float) -> None:
        # Only the head of the queue looks at the limits; the others wait for their turn.
        place = (next(self._arrivals), loop.create_future())
        ticket, turn = place
        queue = line.queue
        queue.append(place)
        self._waiting += 1
        try:
            if queue[0] is not place:
                await turn
            # Waiting on time, not on an event: a window frees up by the clock alone.
            while True:
                now = self._clock()
                delay = line.delay(now, loop)
                if delay <= 0.0:
                    rival = self._earlier_rival(line, ticket, now, loop)
                    if rival is None and line.grant(now, loop):
                        break
                    if rival is not None:
                        rival.alarm.ring()  # it is due as well: let it take the shared permit first
                    delay = 0.0 if rival is not None else _SETTLE
                await line.alarm.sleep(delay)  # another category's head can cut it short
        finally:
            if queue[0] is place:
                queue.popleft()
                if queue and not queue[0][1].done():
                    queue[0][1].set_result(None)
            else:
                queue.remove(place)
            self._waiting -= 1
        line.record.granted(self._clock() - started)

    def _earlier_rival(
        self, line: _Line, ticket: float, now: float, loop: asyncio.AbstractEventLoop
    ) -> _Line | None:
        """Another category whose head came before `ticket` and only waits for the shared limits.

        Heads of several categories wake together when a shared limit frees up; without this the
        same one would win every time and a category could starve.
        """
        if not line.shares_limits:
            return None
        for other in self._lines.values():
            if (
                other is not line
                and other.queue
                and other.queue[0][0] < ticket
                and other.own_limits_allow(now, loop)
            ):
                return other
        return None

    def _line(self, category: str) -> _Line:
        try:
            return self._lines[category]
        except KeyError:
            raise unknown_category(category) from None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("this RateLimiter is in use by another event loop; create one per loop")
        # The old loop is gone (a host restarted its loop): its waiters went with it.
        self._loop = loop
        for line in self._lines.values():
            line.queue.clear()
            line.alarm = Alarm()
        self._waiting = 0
        for pacer in self._pacers:
            pacer.bind(loop)

    def __repr__(self) -> str:
        return f"<RateLimiter {describe(self._limits)}>"
