"""What the rate-limit clauses share: running callers, and checking what the backend saw."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence

from broker_plugins import RateLimit
from conformance_tests._harness import BackendRequest, ConformanceHarness
from conformance_tests._support import bounded, expect
from conformance_tests._windows import busiest_window, over_limit_message

__all__ = ["Call", "all_succeeded", "arrivals", "bound_for", "check_windows", "run_callers"]

Call = Callable[[], Awaitable[object]]


def bound_for(calls: int, limit: RateLimit) -> float:
    """Seconds `calls` may take under `limit` before the suite calls it a hang: three times the
    ideal, plus five."""
    return 5.0 + 3.0 * math.ceil(calls / limit.max_calls) * limit.period


async def run_callers(clause_id: str, calls: Sequence[Call], bound: float) -> None:
    """Run every call at once, each its own caller; every one must succeed within `bound`."""
    __tracebackhide__ = True
    gathered = asyncio.gather(*(call() for call in calls), return_exceptions=True)
    results = await bounded(clause_id, gathered, bound, f"{len(calls)} concurrent calls")
    all_succeeded(clause_id, results)


def all_succeeded(clause_id: str, results: Sequence[object]) -> None:
    __tracebackhide__ = True
    failures = [result for result in results if isinstance(result, BaseException)]
    expect(
        not failures,
        clause_id,
        f"{len(failures)} of {len(results)} calls failed against a healthy backend; first: {failures[:1]!r}",
    )


def check_windows(
    clause_id: str, requests: Sequence[BackendRequest], limits: Sequence[RateLimit], what: str = ""
) -> None:
    """No window of any of `limits` holds more arrivals than it allows."""
    __tracebackhide__ = True
    for limit in limits:
        window = busiest_window(requests, limit.period)
        expect(window.count <= limit.max_calls, clause_id, over_limit_message(window, limit, what))


def arrivals(
    clause_id: str, harness: ConformanceHarness, made: int, category: str | None = None
) -> list[BackendRequest]:
    """The backend's record of the calls just made; every call must have reached it."""
    __tracebackhide__ = True
    requests = [r for r in harness.backend_requests() if category is None or r.category == category]
    expect(
        len(requests) >= made,
        clause_id,
        f"the backend recorded {len(requests)} {category or ''} requests for {made} calls made; every call "
        "must reach the backend (no caching or coalescing) for its limiter to be seen at work",
    )
    return requests
