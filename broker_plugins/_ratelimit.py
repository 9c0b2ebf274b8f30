"""Client-side rate limits that hold exactly, in every window, under any concurrency.

Why not a bare `aiolimiter.AsyncLimiter(N, P)`: a leaky bucket of capacity C draining at r per second
admits up to C + r*P calls in any window P. `AsyncLimiter(N, P)` has C = N and r = N/P, so a full
burst followed by a steady drain admits 2N in one window (aiolimiter issues #90, #200, #298). Making
a bucket exact needs C + r*P <= N, and keeping 95% utilization needs r*P >= 0.95*N, so C <= 0.05*N:
no bucket does both for the small limits brokers set (5 or 10 calls a second). So each window keeps
the times of its last `max_calls` grants: a grant at `now` is allowed when fewer than `max_calls`
were granted, or the oldest of them is at least `period` old. That is exact, and under saturation it
grants the full limit.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from broker_plugins._errors import InvalidRequestError

__all__ = ["CATEGORIES", "RateLimit", "RateLimiter", "RateLimitsSpec"]

CATEGORIES = ("market_data", "trading", "account")
"""The categories a gateway takes permits in: quotes and candles, orders, positions and balance."""

_SHARED = "*"


def _check_max_calls(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    # Typed as int for checkers; callers passing config values may still hand over anything.
    candidate: object = value
    if isinstance(candidate, bool) or not isinstance(candidate, int) or candidate < 1:
        raise InvalidRequestError(f"RateLimit max_calls must be a whole number >= 1, got {value!r}")


def _to_period(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"RateLimit period must be a number of seconds, got {value!r}")
    period = float(value)
    if not math.isfinite(period) or period <= 0:
        raise InvalidRequestError(f"RateLimit period must be positive and finite (seconds), got {value!r}")
    return period


@attrs.frozen
class RateLimit:
    """At most `max_calls` calls in any window of `period` seconds."""

    max_calls: int = attrs.field(validator=_check_max_calls)
    period: float = attrs.field(converter=_to_period)

    def __str__(self) -> str:
        return f"{self.max_calls} per {self.period:g}s"


RateLimitsSpec = RateLimit | Iterable[RateLimit] | Mapping[str, "RateLimit | Iterable[RateLimit]"]
"""One limit or several (shared by every call), or a mapping from category to its limits; the key
`"*"` in a mapping is a budget every category shares on top of its own."""


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


def _delay(windows: tuple[_Window, ...]) -> float:
    now = time.monotonic()
    return max(window.delay(now) for window in windows)


def _grant(windows: tuple[_Window, ...]) -> bool:
    """Take a permit in every window if all allow one now; checked and taken with no await between."""
    now = time.monotonic()
    for window in windows:
        if window.delay(now) > 0.0:
            return False
    for window in windows:
        window.grants.append(now)
    return True


def _as_limits(value: object, where: str) -> tuple[RateLimit, ...]:
    if isinstance(value, RateLimit):
        return (value,)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRequestError(f"{where} must be a RateLimit or a list of them, got {value!r}")
    limits = tuple(value)
    for limit in limits:
        if not isinstance(limit, RateLimit):
            raise InvalidRequestError(f"{where} must hold RateLimit objects, got {limit!r}")
    return limits


def _parse_spec(spec: object) -> dict[str, tuple[RateLimit, ...]]:
    if not isinstance(spec, Mapping):
        return {_SHARED: _as_limits(spec, "rate limits")}
    parsed: dict[str, tuple[RateLimit, ...]] = {}
    for key, value in spec.items():
        if key != _SHARED and key not in CATEGORIES:
            allowed = ", ".join((*CATEGORIES, _SHARED))
            raise InvalidRequestError(f"unknown rate-limit category {key!r}; use one of {allowed}")
        parsed[key] = _as_limits(value, f"rate limits for {key!r}")
    return parsed


class RateLimiter:
    """Grants permits per category so that no `RateLimit` is ever exceeded in any window.

    Every call a gateway makes first awaits `acquire(category)`. Waiters of one category are served
    first-come first-served; a waiter cancelled while waiting takes nothing. Several limits on one
    category (per second and per hour) all hold at once.

    `margin` widens every window by that many seconds, to absorb network jitter between this limiter
    and the broker's own clock when the broker enforces the same limits.

    The limiter binds to the event loop it is first used in. Gateways depend only on
    `acquire(category)`, so a limiter shared across processes can take its place by overriding it.
    """

    def __init__(self, limits: RateLimitsSpec = (), *, margin: float = 0.0) -> None:
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < math.inf:
            raise InvalidRequestError(f"rate-limit margin must be a finite number >= 0, got {margin!r}")
        parsed = _parse_spec(limits)
        shared = tuple(_Window(limit, margin) for limit in parsed.get(_SHARED, ()))
        self._limits = parsed
        self._windows = {
            category: tuple(_Window(limit, margin) for limit in parsed.get(category, ())) + shared
            for category in CATEGORIES
        }
        self._queues: dict[str, deque[asyncio.Future[None]]] = {category: deque() for category in CATEGORIES}
        self._held_until = dict.fromkeys(CATEGORIES, 0.0)
        self._loop: asyncio.AbstractEventLoop | None = None

    def limits_for(self, category: str) -> tuple[RateLimit, ...]:
        """Every limit a call in `category` is subject to: its own, then the shared ones."""
        return tuple(window.limit for window in self._category_windows(category))

    async def acquire(self, category: str) -> None:
        """Wait until a call in `category` is allowed by every limit on it, and take the permit."""
        windows = self._category_windows(category)
        if not windows:
            return
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._bind(loop)
        queue = self._queues[category]
        held_until = self._held_until[category]
        if not queue and (not held_until or held_until <= time.monotonic()) and _grant(windows):
            return
        await self._wait_in_line(loop, queue, windows, category)

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        """The broker refused a call in `category` as over budget: grant none there for `retry_after` s."""
        self._category_windows(category)
        if retry_after is None or not math.isfinite(retry_after) or retry_after <= 0:
            return
        until = time.monotonic() + retry_after
        self._held_until[category] = max(self._held_until[category], until)

    async def _wait_in_line(
        self,
        loop: asyncio.AbstractEventLoop,
        queue: deque[asyncio.Future[None]],
        windows: tuple[_Window, ...],
        category: str,
    ) -> None:
        # Only the head of the queue looks at the windows; the others wait for their turn.
        turn: asyncio.Future[None] = loop.create_future()
        queue.append(turn)
        try:
            if queue[0] is not turn:
                await turn
            # Waiting on time, not on an event: a window frees up by the clock alone.
            while True:
                held = self._held_until[category] - time.monotonic()
                if held <= 0 and _grant(windows):
                    break
                await asyncio.sleep(max(held, _delay(windows)))
        finally:
            if queue[0] is turn:
                queue.popleft()
                if queue and not queue[0].done():
                    queue[0].set_result(None)
            else:
                queue.remove(turn)

    def _category_windows(self, category: str) -> tuple[_Window, ...]:
        try:
            return self._windows[category]
        except KeyError:
            raise InvalidRequestError(
                f"unknown rate-limit category {category!r}; use one of {', '.join(CATEGORIES)}"
            ) from None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not None and not self._loop.is_closed():
            raise RuntimeError("this RateLimiter is in use by another event loop; create one per loop")
        # The old loop is gone (a host restarted its loop): its waiters went with it.
        self._loop = loop
        for queue in self._queues.values():
            queue.clear()

    def __repr__(self) -> str:
        parts = [
            f"{'shared' if key == _SHARED else key}: {', '.join(map(str, limits))}"
            for key, limits in self._limits.items()
            if limits
        ]
        return f"<RateLimiter {'; '.join(parts) or 'unlimited'}>"
