"""RL-9 to RL-15 (mandatory where the harness can stage them): permits off the healthy path.

Every request that reaches the backend took a permit, and no window is exceeded, also across a
reconnect, for calls that waited through an outage, for retries of refused requests (and their
retry-after), for each page of a paged read, for stream re-openings, and under a budget shared by
every category (`"*"`). Counted at the backend, confirmed on longer windows before a violation is
reported, like RL-1 to RL-8.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import pytest

from broker_plugins import (
    BrokerError,
    BrokerUnavailableError,
    Capability,
    ConnectionState,
    IBrokerGateway,
    Interval,
    RateLimit,
)
from conformance_tests._backdoor import member, on_harness
from conformance_tests._base import GENEROUS, SuiteBase, clause
from conformance_tests._harness import ConformanceHarness, Failure
from conformance_tests._limits_common import (
    Call,
    arrivals,
    bound_for,
    confirmed,
    run_callers,
    scaled,
    window_problems,
)
from conformance_tests._outage import RECOVERY, broken, run_into_outage
from conformance_tests._streams_common import QuoteReader
from conformance_tests._support import CALL_BOUND, bounded, eventually, expect, open_gateway, violated

__all__ = ["PathClauses"]

_PERSIST = 10.0
"""Seconds a caller that keeps retrying through an outage keeps at it."""


async def _through_outage(call: Callable[[], Awaitable[object]]) -> object:
    """A caller that retries every 20 ms while the broker is unavailable, as an application does."""
    deadline = time.monotonic() + _PERSIST
    while True:
        try:
            return await call()
        except BrokerUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


def _quote(gateway: IBrokerGateway, harness: ConformanceHarness) -> Call:
    return lambda: gateway.get_quote(harness.symbol)


async def _reconnected(gateway: IBrokerGateway, clause_id: str) -> None:
    __tracebackhide__ = True
    expect(
        await eventually(lambda: gateway.state is ConnectionState.CONNECTED, RECOVERY),
        clause_id,
        f"not CONNECTED {RECOVERY:g} s after the link was restored (state {gateway.state})",
    )


class PathClauses(SuiteBase):
    """RL-9 to RL-15."""

    @clause("RL-9")
    async def test_rl9_window_history_survives_a_reconnect(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-9: 4 calls spend a 0.5 s window, a short outage follows, and 8 more calls made as soon
        as the gateway is back still wait for the window: the limiter outlives the reconnect."""
        harness = started_broker_harness

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(4, 0.5), scale)
            async with open_gateway(harness, limit, "RL-9") as gateway:
                harness.reset_backend_records()
                await run_callers("RL-9", [_quote(gateway, harness)] * 4, bound_for(4, limit))
                async with broken(harness):
                    await run_into_outage(gateway, symbol=harness.symbol)
                await _reconnected(gateway, "RL-9")
                await run_callers("RL-9", [_quote(gateway, harness)] * 8, bound_for(8, limit))
            return window_problems(arrivals("RL-9", harness, 12), [limit], "(across a reconnect) ")

        await confirmed("RL-9", scenario)

    @clause("RL-10")
    async def test_rl10_calls_waiting_through_an_outage_do_not_burst(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-10: 8 callers that keep calling through an outage longer than the window (limit 4 per
        0.3 s) reach the backend no faster than the limit once it is restored: no permit is taken
        before the link is there to use it."""
        harness = started_broker_harness

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(4, 0.3), scale)
            async with open_gateway(harness, limit, "RL-10") as gateway:
                harness.reset_backend_records()
                await run_callers("RL-10", [_quote(gateway, harness)] * 4, bound_for(4, limit))
                callers: list[asyncio.Future[object]] = []
                try:
                    async with broken(harness):
                        await run_into_outage(gateway, symbol=harness.symbol)
                        callers = [
                            asyncio.ensure_future(_through_outage(_quote(gateway, harness))) for _ in range(8)
                        ]
                        await asyncio.sleep(1.5 * limit.period)  # the outage spans a window boundary
                    gathered = asyncio.gather(*callers, return_exceptions=True)
                    results = await bounded("RL-10", gathered, _PERSIST + bound_for(8, limit), "callers")
                finally:
                    for caller in callers:
                        caller.cancel()
            failed = [result for result in results if isinstance(result, BaseException)]
            expect(not failed, "RL-10", f"{len(failed)} of 8 callers never got through: {failed[:1]!r}")
            return window_problems(arrivals("RL-10", harness, 12), [limit], "(after an outage) ")

        await confirmed("RL-10", scenario)

    @clause("RL-11")
    async def test_rl11_retries_take_permits(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-11: the backend refuses the next 4 requests (as unavailable, then as over budget, as far
        as the harness can) while 6 callers call at once under 3 per 0.15 s; every request that
        reaches it, refused ones and retries included, keeps the limit."""
        harness = started_broker_harness
        fail_next = member(harness, "fail_next_requests", "to make the backend refuse requests")
        offered = frozenset(getattr(harness, "injectable_failures", frozenset()))
        kinds = [kind for kind in (Failure.UNAVAILABLE, Failure.RATE_LIMITED) if kind in offered]
        if not kinds:
            pytest.skip("the harness's injectable_failures offers neither UNAVAILABLE nor RATE_LIMITED")
        refusals = [kinds[index * len(kinds) // 4] for index in range(4)]

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(3, 0.15), scale)
            async with open_gateway(harness, limit, "RL-11") as gateway:
                harness.reset_backend_records()
                for kind in refusals:
                    await on_harness(fail_next(1, kind))
                calls = [_quote(gateway, harness)] * 6
                gathered = asyncio.gather(*(call() for call in calls), return_exceptions=True)
                results = await bounded("RL-11", gathered, bound_for(12, limit), "6 calls, 4 of them refused")
            strangers = [
                r for r in results if isinstance(r, BaseException) and not isinstance(r, BrokerError)
            ]
            if strangers:
                raise strangers[0]
            refused = ", ".join(map(str, refusals))
            return window_problems(arrivals("RL-11", harness, 6), [limit], f"(after refusals: {refused}) ")

        await confirmed("RL-11", scenario)

    @clause("RL-12")
    async def test_rl12_a_retry_after_is_honoured(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-12: the backend refuses a call as over budget, asking for 0.4 s; nothing in that category
        reaches it again before the 0.4 s are up, whether the gateway retries the call itself or
        raises and is called again."""
        harness = started_broker_harness
        fail_next = member(harness, "fail_next_requests", "to make the backend refuse a request")
        if Failure.RATE_LIMITED_RETRY_AFTER not in frozenset(getattr(harness, "injectable_failures", ())):
            pytest.skip("the harness's injectable_failures does not offer RATE_LIMITED_RETRY_AFTER")
        retry_after = 0.4
        async with open_gateway(harness, GENEROUS, "RL-12") as gateway:
            await bounded("RL-12", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
            harness.reset_backend_records()
            await on_harness(fail_next(1, Failure.RATE_LIMITED_RETRY_AFTER, retry_after))
            for _ in range(2):
                # Raising the refusal (with its retry-after) is the gateway's right; so is retrying.
                with contextlib.suppress(BrokerError):
                    await bounded("RL-12", gateway.get_quote(harness.symbol), CALL_BOUND, "get_quote")
        requests = sorted(arrivals("RL-12", harness, 2), key=lambda request: request.time)
        refused, following = requests[0], requests[1]
        waited = following.time - refused.time
        # The refusal's own round trip is the slack: it can only make the wait look longer.
        expect(
            waited >= retry_after - 0.02,
            "RL-12",
            f"the backend refused get_quote asking for {retry_after:g} s, and the next market_data "
            f"request ({following.method}) arrived {waited:.3f} s later: a refusal's retry-after "
            "holds back every request of its category (Limiter.note_refusal)",
        )

    @clause("RL-13")
    async def test_rl13_every_page_takes_a_permit(self, started_broker_harness: ConformanceHarness) -> None:
        """RL-13: with a small page size forced on the backend, a get_candles that needs 3 requests
        keeps 1 request per 0.12 s, and returns every candle of every page, ascending."""
        harness = started_broker_harness
        force = member(harness, "force_page_size", "to make one get_candles take several requests")
        size = int(await on_harness(force(5)))
        wanted = 2 * size + 1

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(1, 0.12), scale)
            async with open_gateway(harness, {"market_data": limit}, "RL-13") as gateway:
                harness.reset_backend_records()
                read = gateway.get_candles(harness.symbol, Interval.M1, limit=wanted)
                candles = list(await bounded("RL-13", read, bound_for(3, limit), "a paged get_candles"))
            pages = [r for r in harness.backend_requests() if r.method == "get_candles"]
            expect(
                len(pages) >= 3,
                "RL-13",
                f"{wanted} candles at {size} a page took {len(pages)} get_candles requests at the backend, "
                "not 3 (the gateway asked for larger pages, or the harness's force_page_size did not take)",
            )
            starts = [candle.start for candle in candles]
            expect(
                len(candles) == wanted and starts == sorted(set(starts)),
                "RL-13",
                f"a paged get_candles of {wanted} returned {len(candles)} candles"
                + ("" if starts == sorted(set(starts)) else ", not strictly ascending by start")
                + ": the pages must join up, none lost or repeated",
            )
            return window_problems(pages, [limit], "get_candles pages ")

        await confirmed("RL-13", scenario)

    @clause("RL-14")
    async def test_rl14_stream_reopenings_take_permits(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-14: 3 open quote streams under 2 openings per 0.2 s live through an outage; every
        re-opening reaches the backend within the limit (with STREAM_RESUME and QUOTE_STREAM)."""
        harness = started_broker_harness
        needed = {Capability.QUOTE_STREAM, Capability.STREAM_RESUME}

        async def scenario(scale: float) -> list[str]:
            limit = scaled(RateLimit(2, 0.2), scale)
            async with open_gateway(harness, {"market_data": limit}, "RL-14") as gateway:
                if not needed <= gateway.capabilities:
                    pytest.skip(
                        "re-openings come with STREAM_RESUME and QUOTE_STREAM, which the gateway lacks"
                    )
                harness.reset_backend_records()
                readers = [QuoteReader(gateway, harness.symbol) for _ in range(3)]
                try:
                    for reader in readers:
                        await reader.wait_for("RL-14", 1, bound_for(3, limit))
                    async with broken(harness):
                        await run_into_outage(gateway, symbol=harness.symbol)
                    restored = time.monotonic()
                    for reader in readers:
                        await reader.wait_for("RL-14", 1, RECOVERY + bound_for(3, limit), restored)
                finally:
                    for reader in readers:
                        await reader.close()
            openings = [r for r in harness.backend_requests() if r.method == "stream_quotes"]
            if len(openings) < 6:
                violated(
                    "RL-14",
                    f"3 quote streams through an outage reached the backend as {len(openings)} stream_quotes "
                    "requests, not 3 openings and 3 re-openings; every (re)opening is a request the "
                    "harness records",
                )
            return window_problems(openings, [limit], "stream_quotes (re)opening ")

        await confirmed("RL-14", scenario)

    @clause("RL-15")
    async def test_rl15_a_shared_budget_holds_across_categories(
        self, started_broker_harness: ConformanceHarness
    ) -> None:
        """RL-15: under a shared "*" budget of 6 per 0.15 s (and 100 per category), 8 calls in each
        of market data, trading and account at once keep the shared budget."""
        harness = started_broker_harness

        async def scenario(scale: float) -> list[str]:
            shared = scaled(RateLimit(6, 0.15), scale)
            wide = scaled(RateLimit(100, 0.15), scale)
            limits = {"market_data": wide, "trading": wide, "account": wide, "*": shared}
            async with open_gateway(harness, limits, "RL-15") as gateway:
                harness.reset_backend_records()
                calls: list[Call] = [_quote(gateway, harness)] * 8 + [gateway.get_orders] * 8
                calls += [gateway.get_balance] * 8
                await run_callers("RL-15", calls, bound_for(24, shared))
            return window_problems(arrivals("RL-15", harness, 24), [shared], "calls of all categories ")

        await confirmed("RL-15", scenario)
