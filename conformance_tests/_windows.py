"""Counting backend arrivals in sliding windows: the arithmetic behind every rate-limit clause."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import attrs

from broker_plugins import RateLimit
from conformance_tests._harness import BackendRequest

__all__ = [
    "Window",
    "busiest_window",
    "describe_methods",
    "jitter_allowance",
    "over_limit_message",
    "utilization",
]


def jitter_allowance(period: float) -> float:
    """How much shorter than `period` the windows the suite counts in are.

    A limiter grants permits `period` apart, but each request then takes its own time to reach the
    backend: one delayed more than a later one makes the two look closer than the limiter let them
    go. The first of a burst of 50 callers is the one delayed most, since it reaches the backend only
    after the event loop has started all 50 (tens of milliseconds on a busy machine, more when a
    backend shares the loop). 10 ms plus 10% of the period absorbs that; the limiters the suite
    exists to catch overshoot by far more (a bare token bucket admits twice the limit).
    """
    return 0.01 + 0.1 * period


@attrs.frozen
class Window:
    """The busiest stretch of arrivals: `requests` all arrived within `length` seconds of `start`."""

    start: float
    length: float
    requests: tuple[BackendRequest, ...]

    @property
    def count(self) -> int:
        return len(self.requests)


def busiest_window(
    requests: Iterable[BackendRequest], period: float, allowance: float | None = None
) -> Window:
    """The window of `period` less `allowance` (by default `jitter_allowance(period)`) that holds
    the most arrivals."""
    ordered = sorted(requests, key=lambda request: request.time)
    length = period - (jitter_allowance(period) if allowance is None else allowance)
    best = (0, 0)
    end = 0
    for first, request in enumerate(ordered):
        end = max(end, first)
        while end < len(ordered) and ordered[end].time < request.time + length:
            end += 1
        if end - first > best[1] - best[0]:
            best = (first, end)
    start = ordered[best[0]].time if ordered else 0.0
    return Window(start=start, length=length, requests=tuple(ordered[best[0] : best[1]]))


def describe_methods(requests: Iterable[BackendRequest]) -> str:
    """`get_quote 12, get_candles 3`: which methods a set of requests came from."""
    counts = Counter(request.method for request in requests)
    return ", ".join(f"{method} {count}" for method, count in counts.most_common())


def over_limit_message(window: Window, limit: RateLimit, what: str) -> str:
    """The failure text for a window that holds more than `limit` allows."""
    allowance = limit.period - window.length
    return (
        f"{window.count} {what}calls arrived at the backend within {window.length:.3f} s "
        f"(a {limit.period:g} s window less {allowance * 1000:.0f} ms allowed for arrival jitter), "
        f"limit {limit.max_calls} [{describe_methods(window.requests)}]"
    )


def utilization(requests: Sequence[BackendRequest], limit: RateLimit, windows: int) -> float:
    """The share of `windows` full windows' budget used, counting from the first arrival.

    Under saturation an exact limiter fills every window; one that keeps far under the limit (to
    paper over bursts) shows here.
    """
    if not requests:
        return 0.0
    first = min(request.time for request in requests)
    horizon = first + windows * limit.period + jitter_allowance(limit.period)
    used = sum(1 for request in requests if request.time < horizon)
    return used / (windows * limit.max_calls)
