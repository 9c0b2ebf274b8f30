"""RL clauses (mandatory): the backend never sees more calls than the limits allow, in any window.

Every count is taken from the backend's record of arrival times, never from the gateway. Windows are
short (a quarter second or so) so that the whole group runs in a few seconds against a real backend.
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
    check_windows,
    run_callers,
)
from conformance_tests._support import bounded, expect, open_gateway
from conformance_tests._windows import utilization

__all__ = ["RateLimitClauses"]


class RateLimitClauses(SuiteBase):
    """RL-1 to RL-8."""

    async def _quotes(
        self,
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

    @clause("RL-1")
    async def test_rl1_sequential_calls_keep_the_limit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-1: 15 get_quote calls one after another, limit 5 per 0.25 s."""
        limit = RateLimit(5, 0.25)
        requests = await self._quotes(started_broker_harness, "RL-1", [limit], callers=15, concurrent=False)
        check_windows("RL-1", requests, [limit], "sequential ")

    @clause("RL-2")
    async def test_rl2_concurrent_callers_keep_the_limit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-2: 50 concurrent get_quote callers, limit 20 per 0.25 s."""
        limit = RateLimit(20, 0.25)
        requests = await self._quotes(started_broker_harness, "RL-2", [limit], callers=50, concurrent=True)
        check_windows("RL-2", requests, [limit], "concurrent ")

    @clause("RL-3")
    async def test_rl3_two_windows_hold_at_once(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-3: 20 concurrent callers under 3 per 0.1 s and 8 per 0.4 s at once: both hold."""
        limits = [RateLimit(3, 0.1), RateLimit(8, 0.4)]
        requests = await self._quotes(started_broker_harness, "RL-3", limits, callers=20, concurrent=True)
        check_windows("RL-3", requests, limits)

    @clause("RL-4")
    async def test_rl4_each_category_has_its_own_limit(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-4: market data, trading and account calls at once, each under its own limit."""
        harness = started_broker_harness
        limits = {
            "market_data": RateLimit(8, 0.25),
            "trading": RateLimit(3, 0.25),
            "account": RateLimit(5, 0.25),
        }
        async with open_gateway(harness, limits, "RL-4") as gateway:
            harness.reset_backend_records()
            calls: list[Call] = [
                *[lambda: gateway.get_quote(harness.symbol)] * 20,
                *[gateway.get_orders] * 8,
                *[gateway.get_balance] * 12,
            ]
            await run_callers("RL-4", calls, bound_for(8, limits["trading"]))
        for category, made in (("market_data", 20), ("trading", 8), ("account", 12)):
            requests = arrivals("RL-4", harness, made, category)
            check_windows("RL-4", requests, [limits[category]], f"{category} ")

    @clause("RL-5")
    async def test_rl5_every_method_takes_a_permit(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-5: every market-data, trading and account method, stream openings and orders too,
        counts against its category's limit (5 calls of each, limit 6 per 0.2 s per category)."""
        await every_method_limited(started_broker_harness, "RL-5", RateLimit(6, 0.2))

    @clause("RL-6")
    async def test_rl6_no_window_exceeds_the_limit_under_steady_pressure(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-6: callers arriving steadily at 1.5 times the allowed rate (60/s against 10 per
        0.25 s) never push any window over the limit, wherever the window starts."""
        harness = started_broker_harness
        limit = RateLimit(10, 0.25)
        count, rate = 45, 60.0
        async with open_gateway(harness, limit, "RL-6") as gateway:
            harness.reset_backend_records()
            tasks: list[asyncio.Future[object]] = []
            start = time.monotonic()
            try:
                for index in range(count):
                    await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
                    tasks.append(asyncio.ensure_future(gateway.get_quote(harness.symbol)))
                gathered = asyncio.gather(*tasks, return_exceptions=True)
                all_succeeded("RL-6", await bounded("RL-6", gathered, bound_for(count, limit), "paced calls"))
            finally:
                for task in tasks:
                    task.cancel()
        check_windows("RL-6", arrivals("RL-6", harness, count), [limit])

    @clause("RL-7")
    async def test_rl7_saturated_callers_use_at_least_90_percent(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-7: 60 callers against 20 per 0.25 s get at least 90% of two windows' budget."""
        limit = RateLimit(20, 0.25)
        requests = await self._quotes(started_broker_harness, "RL-7", [limit], callers=60, concurrent=True)
        check_windows("RL-7", requests, [limit])
        used = utilization(requests, limit, windows=2)
        expect(
            used >= 0.9,
            "RL-7",
            f"under saturation the backend got {used:.0%} of the budget of the first two windows "
            f"({limit}); at least 90% is required",
        )

    @clause("RL-8")
    async def test_rl8_cancelled_waiters_take_nothing(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-8: callers cancelled while waiting for a permit send nothing and leave their permits
        to the callers still waiting, who all go in the next window."""
        harness = started_broker_harness
        limit = RateLimit(10, 0.25)
        async with open_gateway(harness, limit, "RL-8") as gateway:
            harness.reset_backend_records()
            await run_callers("RL-8", [lambda: gateway.get_quote(harness.symbol)] * 10, bound_for(10, limit))
            waiters = [asyncio.ensure_future(gateway.get_quote(harness.symbol)) for _ in range(20)]
            late: list[asyncio.Future[Quote]] = []
            try:
                await asyncio.sleep(0.1)  # the first window is spent: all 20 wait for the next
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
        check_windows("RL-8", requests, [limit])
        expect(
            len(requests) == 20 + went_anyway,
            "RL-8",
            f"{len(requests) - 20 - went_anyway} calls reached the backend although their callers were "
            "cancelled while waiting for a permit",
        )
        first = min(request.time for request in requests)
        last = max(request.time for request in requests)
        expect(
            last < first + 2 * limit.period,
            "RL-8",
            f"the 10 callers still waiting got through only {last - first:.3f} s after the first call, "
            f"past the second {limit.period:g} s window: the cancelled waiters took permits",
        )
