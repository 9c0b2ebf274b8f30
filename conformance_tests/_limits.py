"""RL-1 to RL-8 (mandatory): the backend never sees more calls than the limits allow, in any window.

Every count is taken from the backend's record of arrival times, never from the gateway. Windows are
short (0.15 s or so) so that the whole group runs in a few seconds against a real backend;
a window found over its limit is checked again on longer windows before it is reported
(`confirmed`), so that a busy machine is not taken for a defect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from broker_plugins import Quote, RateLimit
from conformance_tests._base import SuiteBase, clause
from conformance_tests._every_method import every_method_limited
from conformance_tests._harness import BackendRequest, ConformanceHarness
from conformance_tests._limits_common import (
    Call,
    all_succeeded,
    arrivals,
    bound_for,
    confirmed,
    run_callers,
    scaled,
    window_problems,
)
from conformance_tests._support import bounded, open_gateway
from conformance_tests._windows import utilization

__all__ = ["RateLimitClauses"]


async def _quotes(
    harness: ConformanceHarness,
    clause_id: str,
    limits: Sequence[RateLimit],
    *,
    callers: int,
    concurrent: bool,
) -> list[BackendRequest]:
    """`callers` get_quote calls under `limits`, at once or one by one; what the backend saw."""
    async with open_gateway(harness, list(limits), clause_id) as gateway:
        harness.reset_backend_records()
        if concurrent:
            calls = [lambda: gateway.get_quote(harness.symbol)] * callers
            await run_callers(clause_id, calls, max(bound_for(callers, limit) for limit in limits))
        else:
            for _ in range(callers):
                await bounded(
                    clause_id, gateway.get_quote(harness.symbol), bound_for(1, limits[0]), "get_quote"
                )
        return arrivals(clause_id, harness, callers)


class RateLimitClauses(SuiteBase):
    """RL-1 to RL-8."""

    @clause("RL-1")
    async def test_rl1_sequential_calls_keep_the_limit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-1: 15 get_quote calls one after another, limit 5 per 0.15 s."""

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(5, 0.15), scale)
            requests = await _quotes(started_broker_harness, "RL-1", [limit], callers=15, concurrent=False)
            return window_problems(requests, [limit], "sequential ")

        await confirmed("RL-1", scenario)

    @clause("RL-2")
    async def test_rl2_concurrent_callers_keep_the_limit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-2: 50 concurrent get_quote callers, limit 20 per 0.15 s."""

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(20, 0.15), scale)
            requests = await _quotes(started_broker_harness, "RL-2", [limit], callers=50, concurrent=True)
            return window_problems(requests, [limit], "concurrent ")

        await confirmed("RL-2", scenario)

    @clause("RL-3")
    async def test_rl3_two_windows_hold_at_once(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-3: 12 concurrent callers under 3 per 0.08 s and 8 per 0.32 s at once: both hold."""

        async def scenario(scale: float) -> list[str]:
            limits = [scaled(RateLimit(3, 0.08), scale), scaled(RateLimit(8, 0.32), scale)]
            requests = await _quotes(started_broker_harness, "RL-3", limits, callers=12, concurrent=True)
            return window_problems(requests, limits)

        await confirmed("RL-3", scenario)

    @clause("RL-4")
    async def test_rl4_each_category_has_its_own_limit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-4: market data, trading and account calls at once, each under its own limit."""
        harness = started_broker_harness

        async def scenario(scale: float) -> list[str]:
            limits = {
                "market_data": scaled(RateLimit(8, 0.15), scale),
                "trading": scaled(RateLimit(3, 0.15), scale),
                "account": scaled(RateLimit(5, 0.15), scale),
            }
            async with open_gateway(harness, limits, "RL-4") as gateway:
                harness.reset_backend_records()
                calls: list[Call] = [
                    *[lambda: gateway.get_quote(harness.symbol)] * 20,
                    *[gateway.get_orders] * 8,
                    *[gateway.get_balance] * 12,
                ]
                await run_callers("RL-4", calls, bound_for(8, limits["trading"]))
            problems = []
            for category, made in (("market_data", 20), ("trading", 8), ("account", 12)):
                requests = arrivals("RL-4", harness, made, category)
                problems += window_problems(requests, [limits[category]], f"{category} ")
            return problems

        await confirmed("RL-4", scenario)

    @clause("RL-5")
    async def test_rl5_every_method_takes_a_permit(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-5: every market-data, trading and account method, stream openings (quotes and order
        updates) and orders too, counts against its category's limit (5 calls of each, limit 6 per
        0.12 s per category)."""

        async def scenario(scale: float) -> list[str]:
            return await every_method_limited(
                started_broker_harness, "RL-5", scaled(RateLimit(6, 0.12), scale)
            )

        await confirmed("RL-5", scenario)

    @clause("RL-6")
    async def test_rl6_no_window_exceeds_the_limit_under_steady_pressure(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-6: callers arriving steadily at 1.5 times the allowed rate (100/s against 10 per
        0.15 s) never push any window over the limit, wherever the window starts."""
        harness = started_broker_harness

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(10, 0.15), scale)
            count, rate = 45, 100.0 / scale
            async with open_gateway(harness, limit, "RL-6") as gateway:
                harness.reset_backend_records()
                tasks: list[asyncio.Future[object]] = []
                start = time.monotonic()
                try:
                    for index in range(count):
                        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
                        tasks.append(asyncio.ensure_future(gateway.get_quote(harness.symbol)))
                    gathered = asyncio.gather(*tasks, return_exceptions=True)
                    results = await bounded("RL-6", gathered, bound_for(count, limit), "paced calls")
                    all_succeeded("RL-6", results)
                finally:
                    for task in tasks:
                        task.cancel()
            return window_problems(arrivals("RL-6", harness, count), [limit])

        await confirmed("RL-6", scenario)

    @clause("RL-7")
    async def test_rl7_saturated_callers_use_at_least_90_percent(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-7: 60 callers against 20 per 0.15 s get at least 90% of two windows' budget."""

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(20, 0.15), scale)
            requests = await _quotes(started_broker_harness, "RL-7", [limit], callers=60, concurrent=True)
            problems = window_problems(requests, [limit])
            used = utilization(requests, limit, windows=2)
            if used < 0.9:
                problems.append(
                    f"under saturation the backend got {used:.0%} of the budget of the first two windows "
                    f"({limit}); at least 90% is required"
                )
            return problems

        await confirmed("RL-7", scenario)

    @clause("RL-8")
    async def test_rl8_cancelled_waiters_take_nothing(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-8: callers cancelled while waiting for a permit send nothing and leave their permits
        to the callers still waiting, who all go in the next window."""

        async def scenario(scale: float) -> list[str]:
            return await _cancelled_waiters(started_broker_harness, scaled(RateLimit(10, 0.15), scale))

        await confirmed("RL-8", scenario)


async def _cancelled_waiters(harness: ConformanceHarness, limit: RateLimit) -> list[str]:
    async with open_gateway(harness, limit, "RL-8") as gateway:
        harness.reset_backend_records()
        await run_callers("RL-8", [lambda: gateway.get_quote(harness.symbol)] * 10, bound_for(10, limit))
        waiters = [asyncio.ensure_future(gateway.get_quote(harness.symbol)) for _ in range(20)]
        late: list[asyncio.Future[Quote]] = []
        try:
            await asyncio.sleep(0.4 * limit.period)  # the first window is spent: all 20 wait for the next
            for waiter in waiters[:15]:
                waiter.cancel()
            late = [asyncio.ensure_future(gateway.get_quote(harness.symbol)) for _ in range(5)]
            survivors = asyncio.gather(*waiters[15:], *late, return_exceptions=True)
            all_succeeded("RL-8", await bounded("RL-8", survivors, bound_for(20, limit), "waiting calls"))
            await asyncio.gather(*waiters[:15], return_exceptions=True)
        finally:
            for task in (*waiters, *late):
                task.cancel()
    went_anyway = sum(1 for waiter in waiters[:15] if not waiter.cancelled())
    requests = arrivals("RL-8", harness, 20 + went_anyway)
    problems = window_problems(requests, [limit])
    if len(requests) != 20 + went_anyway:
        problems.append(
            f"{len(requests) - 20 - went_anyway} calls reached the backend although their callers were "
            "cancelled while waiting for a permit"
        )
    first = min(request.time for request in requests)
    last = max(request.time for request in requests)
    if last >= first + 2 * limit.period:
        problems.append(
            f"the 10 callers still waiting got through only {last - first:.3f} s after the first call, "
            f"past the second {limit.period:g} s window: the cancelled waiters took permits"
        )
    return problems
