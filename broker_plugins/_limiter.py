"""`Limiter`: what a gateway needs from a rate limiter, so that any limiter can be injected.

A gateway calls `acquire(category)` right before each request it sends to the broker (every page of
a paged read, every retry, every stream (re)opening), after it has checked that the link is up, and
sends the request as soon as `acquire` returns. When the broker refuses a request as over budget it
calls `note_refusal(category, retry_after)`, so that every gateway sharing the limiter holds back.

The in-process `RateLimiter` is the default; `RedisRateLimiter` shares one budget among processes
and machines. Both are also an `ObservableLimiter`: `stats()` returns a `LimiterStats` snapshot a
host can show (permits granted, time spent waiting, waiters, the last refusal, the shared store).
"""

from __future__ import annotations

import datetime
import math
from collections import deque
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from broker_plugins._ratelimit import RateLimit

__all__ = ["CategoryStats", "Limiter", "LimiterStats", "ObservableLimiter"]

WAIT_SAMPLES = 1000
"""How many of the latest permits the wait percentiles are taken over."""


@runtime_checkable
class Limiter(Protocol):
    """Grants permits per rate-limit category (`market_data`, `trading`, `account`)."""

    async def acquire(self, category: str) -> None:
        """Wait until one request in `category` may go out now, and take its permit.

        A waiter cancelled while waiting takes nothing. Raises `InvalidRequestError` for an unknown
        category, and a `BrokerError` when no permit can be had (a shared limiter whose store is
        unreachable, for example).
        """
        ...

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        """The broker refused a request in `category` as over budget, asking to wait `retry_after` s."""
        ...


@attrs.frozen(kw_only=True)
class CategoryStats:
    """One category's budget as a limiter saw it at one moment. Durations are in seconds."""

    category: str
    limits: tuple[RateLimit, ...]
    permits_granted: int
    """Permits this limiter granted in the category since it was made."""
    wait_p50: float
    """Median time a permit waited, over the latest `WAIT_SAMPLES` permits (0.0 before any)."""
    wait_p99: float
    waiters: int
    """Callers waiting for a permit now (in this process, for a shared limiter)."""
    held_for: float
    """How much longer the category is held back after a refusal from the broker (0.0 if not)."""
    last_refusal_at: datetime.datetime | None
    """When the broker last refused a request in the category as over budget (UTC)."""
    last_retry_after: float | None
    """The wait the broker asked for with that refusal, if it said."""


@attrs.frozen(kw_only=True)
class LimiterStats:
    """A limiter's budget at one moment: every category, and the store a shared limiter uses."""

    categories: tuple[CategoryStats, ...]
    store: str | None = None
    """Where a shared budget lives (`redis budget 'acct' at redis://host:6379/0`), None in-process."""
    store_reachable: bool = True
    """False while a shared limiter cannot reach its store (its calls fail meanwhile)."""
    store_error: str | None = None
    """Why the store could not be reached, while it cannot."""

    def category(self, name: str) -> CategoryStats:
        """The stats of category `name`."""
        for stats in self.categories:
            if stats.category == name:
                return stats
        raise KeyError(name)


@runtime_checkable
class ObservableLimiter(Limiter, Protocol):
    """A limiter a host can watch: `stats()` is cheap, synchronous and never waits on a store."""

    def stats(self) -> LimiterStats:
        """A snapshot of every category's budget."""
        ...


class CategoryRecord:
    """What a limiter counts about one category, for `CategoryStats` (not a public type)."""

    __slots__ = ("last_refusal_at", "last_retry_after", "permits", "waits")

    def __init__(self) -> None:
        self.permits = 0
        # (permit number, seconds) of the latest permits that waited at all: most go at once, and
        # those are only counted, so that the hot path does one addition.
        self.waits: deque[tuple[int, float]] = deque(maxlen=WAIT_SAMPLES)
        self.last_refusal_at: datetime.datetime | None = None
        self.last_retry_after: float | None = None

    def granted(self, waited: float) -> None:
        self.permits += 1
        if waited > 0.0:
            self.waits.append((self.permits, waited))

    def refused(self, retry_after: float | None, at: datetime.datetime | None = None) -> None:
        self.last_refusal_at = at or datetime.datetime.now(datetime.timezone.utc)
        self.last_retry_after = retry_after

    def snapshot(
        self,
        category: str,
        limits: tuple[RateLimit, ...],
        *,
        waits: int = WAIT_SAMPLES,
        waiters: int,
        held_for: float,
    ) -> CategoryStats:
        latest = min(self.permits, waits)
        waited = sorted(seconds for number, seconds in self.waits if number > self.permits - latest)
        ordered = [0.0] * (latest - len(waited)) + waited
        return CategoryStats(
            category=category,
            limits=limits,
            permits_granted=self.permits,
            wait_p50=_nearest_rank(ordered, 0.50),
            wait_p99=_nearest_rank(ordered, 0.99),
            waiters=waiters,
            held_for=max(0.0, held_for),
            last_refusal_at=self.last_refusal_at,
            last_retry_after=self.last_retry_after,
        )


def _nearest_rank(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    # Nearest rank: the smallest sample with at least `fraction` of all samples at or below it.
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
