"""RedisRateLimiter on a real redis-server, in one process: several limiters on one budget stand for
several processes (the real-process tests are in test_processes.py).

Grant times are recorded by each caller right after `acquire` returns, on the machine's monotonic
clock; Redis decided them on its own clock a round trip earlier. The limiters get a margin of 20 ms
to absorb the difference (as a gateway's `rate_limit_margin` does), and windows are counted 1 ms short.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from broker_plugins import (
    CATEGORIES,
    BrokerUnavailableError,
    InvalidRequestError,
    Limiter,
    ObservableLimiter,
    RateLimit,
    RateLimitsSpec,
    RedisRateLimiter,
    SharedBudgetUnavailableError,
)
from tests.redis.checks import check_fair_shares
from tests.redis.conftest import RedisServer
from tests.support.waiting import until
from tests.support.windows import gaps, most_in_any_window

MARGIN = 0.02
TOLERANCE = 0.001

MakeLimiter = Callable[..., RedisRateLimiter]


@pytest.fixture
async def limiters(redis_server: RedisServer, budget: str) -> AsyncIterator[MakeLimiter]:
    """Build limiters on the shared server and this test's budget; all closed afterwards."""
    made: list[RedisRateLimiter] = []

    def make(limits: RateLimitsSpec, **options: Any) -> RedisRateLimiter:
        options = {"budget": budget, "margin": MARGIN, **options}
        limiter = RedisRateLimiter(options.pop("url", redis_server.url), limits, **options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


async def saturate(limiter: Limiter, category: str, tasks: int, duration: float) -> list[float]:
    granted: list[float] = []

    async def caller() -> None:
        while True:
            await limiter.acquire(category)
            granted.append(time.monotonic())

    callers = [asyncio.create_task(caller()) for _ in range(tasks)]
    await asyncio.sleep(duration)
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    return granted


async def test_limiters_on_one_budget_keep_it_together(limiters: MakeLimiter) -> None:
    first, second = limiters(RateLimit(5, 0.2)), limiters(RateLimit(5, 0.2))
    assert isinstance(first, ObservableLimiter)
    one, two = await asyncio.gather(
        saturate(first, "market_data", 10, 0.6), saturate(second, "market_data", 10, 0.6)
    )
    assert most_in_any_window(one + two, 0.2, TOLERANCE) <= 5
    assert one
    assert two


async def test_the_budget_check_catches_limiters_that_do_not_share(limiters: MakeLimiter) -> None:
    first, second = limiters(RateLimit(5, 0.2), budget="one"), limiters(RateLimit(5, 0.2), budget="two")
    one, two = await asyncio.gather(
        saturate(first, "market_data", 10, 0.5), saturate(second, "market_data", 10, 0.5)
    )
    assert most_in_any_window(one + two, 0.2, TOLERANCE) > 5


async def test_several_windows_per_category_and_the_shared_budget_hold(limiters: MakeLimiter) -> None:
    limits: dict[str, RateLimit | list[RateLimit]] = {
        "market_data": RateLimit(5, 0.2),
        "trading": RateLimit(2, 0.2),
        "account": [RateLimit(2, 0.1), RateLimit(4, 0.4)],
        "*": RateLimit(6, 0.2),
    }
    first, second = limiters(limits), limiters(limits)
    runs = await asyncio.gather(
        *(saturate(limiter, category, 4, 0.8) for limiter in (first, second) for category in CATEGORIES)
    )
    market, trading, account = (runs[i] + runs[i + 3] for i in range(3))
    assert most_in_any_window(market, 0.2, TOLERANCE) <= 5
    assert most_in_any_window(trading, 0.2, TOLERANCE) <= 2
    assert most_in_any_window(account, 0.1, TOLERANCE) <= 2
    assert most_in_any_window(account, 0.4, TOLERANCE) <= 4
    assert most_in_any_window(market + trading + account, 0.2, TOLERANCE) <= 6
    assert all(runs), "a category got nothing"
    assert first.limits_for("account") == (RateLimit(2, 0.1), RateLimit(4, 0.4), RateLimit(6, 0.2))


async def test_processes_take_turns_and_a_process_serves_its_callers_in_order(limiters: MakeLimiter) -> None:
    four = [limiters(RateLimit(8, 0.25)) for _ in range(4)]
    # Unequal crowds: one limiter with 12 callers, one with 1; turns are per limiter, not per caller.
    runs = await asyncio.gather(
        *(saturate(limiter, "trading", n, 1.5) for limiter, n in zip(four, (12, 4, 2, 1), strict=True))
    )
    check_fair_shares([(f"limiter-{index}", t) for index, run in enumerate(runs) for t in run], 4, 0.25)
    assert most_in_any_window([t for run in runs for t in run], 0.25, TOLERANCE) <= 8

    order: list[int] = []
    one = limiters(RateLimit(3, 0.1), budget="in-order")

    async def caller(index: int) -> None:
        await one.acquire("trading")
        order.append(index)

    tasks = []
    for index in range(10):
        tasks.append(asyncio.create_task(caller(index)))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    assert order == list(range(10))


class KeepsUnclaimedGrants(RedisRateLimiter):
    """Drops a grant that came back for a caller who had given up, instead of giving it back."""

    def _hand_over(self, line: Any, granted_at: int) -> None:
        while line.queue:
            waiter = line.queue.popleft()
            if not waiter.done():
                waiter.set_result(granted_at)
                return


def idle(limiter: RedisRateLimiter) -> bool:
    """The limiter has finished with every decision (no task serving callers, none in the background)."""
    return not limiter._tasks and all(line.driver is None for line in limiter._lines.values())


async def cancelled_on_the_wire(limiter: RedisRateLimiter, server: RedisServer, budget: str) -> list[int]:
    """Grants in the window made since a caller was cancelled while its decision was held up in Redis."""
    store: Any = server.client()
    seconds, micros = store.time()
    paused_at = seconds * 1_000_000 + micros
    store.client_pause(300, all=False)  # Redis holds every script (they write) for 0.3 s
    late = asyncio.create_task(limiter.acquire("market_data"))
    await asyncio.sleep(0.1)
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    await until(lambda: idle(limiter))
    entries = [int(t) for t in store.lrange(f"broker-plugins:{{{budget}}}:shared:w0", 0, -1)]
    store.close()
    return [t for t in entries if t >= paused_at]


async def test_a_cancelled_waiter_takes_nothing(
    limiters: MakeLimiter, redis_server: RedisServer, budget: str
) -> None:
    limiter = limiters(RateLimit(2, 0.3))
    store: Any = redis_server.client()
    await limiter.acquire("trading")
    await limiter.acquire("trading")
    waiter = asyncio.create_task(limiter.acquire("trading"))
    queued = asyncio.create_task(limiter.acquire("trading"))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    seconds, micros = store.time()
    cancelled_at = seconds * 1_000_000 + micros
    await queued
    # The window holds its last two grants: had the cancelled waiter taken one, both would be newer
    # than its cancellation; as it took none, one of the two first grants is still there.
    entries = [int(t) for t in store.lrange(f"broker-plugins:{{{budget}}}:shared:w0", 0, -1)]
    assert len([t for t in entries if t >= cancelled_at]) == 1, entries
    store.close()

    # Cancelled while its decision is on the wire: the grant comes back with nobody to take it.
    # (A long window, so that Redis still holds every grant when the limiter is done with it.)
    on_the_wire = limiters(RateLimit(2, 30.0), budget=f"{budget}-wire")
    assert await cancelled_on_the_wire(on_the_wire, redis_server, f"{budget}-wire") == []


async def test_the_cancellation_check_catches_a_limiter_that_keeps_unclaimed_grants(
    limiters: MakeLimiter, redis_server: RedisServer, budget: str
) -> None:
    limiter = KeepsUnclaimedGrants(redis_server.url, RateLimit(2, 30.0), budget=budget, margin=MARGIN)
    try:
        assert len(await cancelled_on_the_wire(limiter, redis_server, budget)) == 1
    finally:
        await limiter.aclose()


class KeepsRefusalsToItself(RedisRateLimiter):
    """Holds back only the process that was refused."""

    async def _share_refusal(self, *args: Any) -> None:
        return None


async def refused_elsewhere(noting: RedisRateLimiter, other: RedisRateLimiter, server: RedisServer) -> float:
    """`noting` is refused for 0.4 s; once `other` got a trading permit, how long `noting` still holds."""
    await other.acquire("trading")  # connected, so what it waits for below is the hold alone
    noting.note_refusal("trading", 0.4)
    await until(lambda: idle(noting))  # the refusal went to Redis (or, broken, nowhere)
    await other.acquire("trading")
    return noting.stats().category("trading").held_for


async def test_a_refusal_noted_in_one_process_holds_back_the_others(
    limiters: MakeLimiter, redis_server: RedisServer
) -> None:
    noting, other = limiters(RateLimit(100, 1.0)), limiters(RateLimit(100, 1.0))
    # The other was held until the hold was over in Redis, which began after the noting one's own.
    assert await refused_elsewhere(noting, other, redis_server) == 0.0
    stats = other.stats().category("trading")
    assert stats.last_retry_after == pytest.approx(0.4)
    assert stats.last_refusal_at is not None
    assert other.stats().category("market_data").last_refusal_at is None
    noting.note_refusal("trading", None)  # no hint: recorded, nothing held
    assert noting.stats().category("trading").last_retry_after is None
    assert noting.stats().category("trading").held_for == 0.0


async def test_the_refusal_check_catches_a_limiter_that_keeps_refusals_to_itself(
    limiters: MakeLimiter, redis_server: RedisServer, budget: str
) -> None:
    noting = KeepsRefusalsToItself(redis_server.url, RateLimit(100, 1.0), budget=budget, margin=MARGIN)
    try:
        assert await refused_elsewhere(noting, limiters(RateLimit(100, 1.0)), redis_server) > 0.0
    finally:
        await noting.aclose()


async def test_paced_limits_are_kept_in_redis(limiters: MakeLimiter) -> None:
    first, second = limiters(RateLimit(4, 0.4, paced=True)), limiters(RateLimit(4, 0.4, paced=True))
    one, two = await asyncio.gather(saturate(first, "account", 3, 0.6), saturate(second, "account", 3, 0.6))
    assert min(gaps(one + two)) >= 0.1 - TOLERANCE
    assert most_in_any_window(one + two, 0.4, TOLERANCE) <= 4


async def test_stats_show_permits_waits_waiters_and_the_store(limiters: MakeLimiter, budget: str) -> None:
    limiter = limiters(RateLimit(2, 0.5))
    callers = [asyncio.create_task(limiter.acquire("market_data")) for _ in range(4)]
    await until(lambda: limiter.stats().category("market_data").permits_granted == 2)
    assert limiter.stats().category("market_data").waiters == 2
    await asyncio.gather(*callers)
    market = limiter.stats().category("market_data")
    assert (market.permits_granted, market.waiters) == (4, 0)
    assert market.wait_p99 >= 0.5 - TOLERANCE
    stats = limiter.stats()
    assert stats.store is not None
    assert stats.store.startswith(f"redis budget {budget!r} at unix://")
    assert (stats.store_reachable, stats.store_error) == (True, None)


async def test_without_redis_calls_fail_clearly_and_recover_when_it_is_back(
    own_redis_server: RedisServer, budget: str, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis_server.stop()
    limiter = RedisRateLimiter(own_redis_server.url, RateLimit(5, 1.0), budget=budget, timeout=0.5)
    try:
        with pytest.raises(
            SharedBudgetUnavailableError, match=f"budget {budget!r} at unix://.* is unreachable"
        ):
            await limiter.acquire("trading")
        assert issubclass(SharedBudgetUnavailableError, BrokerUnavailableError)
        stats = limiter.stats()
        assert not stats.store_reachable
        assert stats.store_error
        assert "unreachable" in caplog.text
        own_redis_server.start()
        await limiter.acquire("trading")
        assert limiter.stats().store_reachable
        assert limiter.stats().store_error is None
    finally:
        await limiter.aclose()


async def test_the_password_never_shows(
    own_redis_server: RedisServer, budget: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-pw-4-test"
    own_redis_server.stop()
    locked = RedisServer(own_redis_server.directory, password=secret, tcp=True)
    locked.start()
    try:
        good = RedisRateLimiter(locked.tcp_url(secret), RateLimit(5, 1.0), budget=budget)
        apart = RedisRateLimiter(locked.tcp_url(), RateLimit(5, 1.0), budget=budget, password=secret)
        wrong = RedisRateLimiter(locked.tcp_url("wrong-" + secret), RateLimit(5, 1.0), budget=budget)
        try:
            await good.acquire("trading")
            await apart.acquire("trading")
            with pytest.raises(SharedBudgetUnavailableError) as refused:
                await wrong.acquire("trading")
            shown = [
                repr(good),
                repr(apart),
                repr(wrong),
                str(refused.value),
                caplog.text,
                repr(wrong.stats()),
            ]
            assert all(secret not in text for text in shown), shown
            assert f"redis://127.0.0.1:{locked.port}/0" in repr(good)
        finally:
            for limiter in (good, apart, wrong):
                await limiter.aclose()
    finally:
        locked.stop()


async def test_limits_that_differ_between_processes_are_refused(limiters: MakeLimiter, budget: str) -> None:
    await limiters(RateLimit(5, 1.0)).acquire("trading")
    with pytest.raises(InvalidRequestError, match=f"budget {budget!r} is in use with other limits"):
        await limiters(RateLimit(6, 1.0)).acquire("trading")
    with pytest.raises(InvalidRequestError, match="other limits"):
        await limiters(RateLimit(5, 1.0), margin=0.5).acquire("trading")


class ForgetsWithoutHolding(RedisRateLimiter):
    """Starts the windows empty after Redis lost them, as if it were the first start."""

    async def _recover(self) -> None:
        self._epoch = ""
        await super()._recover()


async def flushed_while_saturated(
    limiter: RedisRateLimiter, server: RedisServer
) -> tuple[list[float], float]:
    """Grant times of ten callers while Redis is flushed under them, and when it was flushed."""
    granted: list[float] = []

    async def caller() -> None:
        while True:
            await limiter.acquire("market_data")
            granted.append(time.monotonic())

    callers = [asyncio.create_task(caller()) for _ in range(10)]
    try:
        await until(lambda: len(granted) >= 10)  # saturated: the window is full
        store: Any = server.client()
        store.flushall()
        store.close()
        flushed_at = time.monotonic()
        await until(lambda: sum(t > flushed_at for t in granted) >= 10)
    finally:
        for task in callers:
            task.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
    return granted, flushed_at


async def test_after_redis_loses_its_windows_they_are_held_for_a_period(
    own_redis_server: RedisServer, budget: str
) -> None:
    async with RedisRateLimiter(
        own_redis_server.url, RateLimit(5, 0.5), budget=budget, margin=MARGIN
    ) as limiter:
        granted, flushed_at = await flushed_while_saturated(limiter, own_redis_server)
    assert most_in_any_window(granted, 0.5, TOLERANCE) <= 5
    assert min(t for t in granted if t > flushed_at) - flushed_at >= 0.5 - TOLERANCE


async def test_the_loss_check_catches_a_limiter_that_starts_over_empty(
    own_redis_server: RedisServer, budget: str
) -> None:
    limiter = ForgetsWithoutHolding(own_redis_server.url, RateLimit(5, 0.5), budget=budget, margin=MARGIN)
    async with limiter:
        granted, _ = await flushed_while_saturated(limiter, own_redis_server)
    assert most_in_any_window(granted, 0.5, TOLERANCE) > 5


async def test_closing_fails_the_waiters_and_leaves_nothing_running(limiters: MakeLimiter) -> None:
    limiter = limiters({"account": RateLimit(1, 10.0), "trading": RateLimit(100, 1.0)})
    await limiter.acquire("account")
    before = asyncio.all_tasks()
    waiting = asyncio.create_task(limiter.acquire("account"))
    await until(lambda: limiter.stats().category("account").waiters == 1)
    limiter.note_refusal("market_data", 0.05)  # a task in the background, ended too
    await limiter.aclose()
    with pytest.raises(SharedBudgetUnavailableError, match="was closed"):
        await waiting
    assert asyncio.all_tasks() <= before
    await limiter.acquire("trading")  # usable again: it reconnects


async def test_a_category_without_limits_needs_no_redis(own_redis_server: RedisServer, budget: str) -> None:
    own_redis_server.stop()
    async with RedisRateLimiter(
        own_redis_server.url, {"trading": RateLimit(1, 1.0)}, budget=budget
    ) as limiter:
        await limiter.acquire("market_data")
        with pytest.raises(InvalidRequestError, match="unknown rate-limit category"):
            await limiter.acquire("orders")


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("localhost:6379", {}, "must look like redis://host:port/db"),
        ("redis://:pw@host:port/0", {}, "port that is not a number"),
        ("redis://localhost", {"budget": "a{b}"}, "budget must be a short name without braces"),
        ("redis://localhost", {"budget": ""}, "budget must be a short name"),
        ("redis://localhost", {"timeout": 0}, "timeout must be a positive number"),
        ("redis://localhost", {"password": ""}, "password must be a non-empty string"),
        ("redis://localhost", {"margin": -1}, "margin must be a finite number"),
        (None, {}, "the Redis URL must be a string"),
    ],
)
def test_bad_settings_are_refused_without_echoing_the_url(
    url: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message) as refused:
        RedisRateLimiter(url, RateLimit(1, 1.0), **{"budget": "b", **options})
    assert "pw" not in str(refused.value)


def test_the_core_imports_without_redis_and_says_what_to_install() -> None:
    script = (
        "import sys; sys.modules['redis'] = None\n"
        "import broker_plugins as bp\n"
        "assert 'redis.asyncio' not in sys.modules\n"
        "try:\n"
        "    bp.RedisRateLimiter('redis://localhost', bp.RateLimit(1, 1), budget='b')\n"
        "except bp.SharedBudgetUnavailableError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'broker-plugins[redis]'" in done.stdout


class CancelsTheFirstAsItIsGranted(RedisRateLimiter):
    """Cancels the caller it just handed a grant to, before that caller runs again."""

    victim: asyncio.Task[None] | None = None

    def _hand_over(self, line: Any, granted_at: int) -> None:
        super()._hand_over(line, granted_at)
        if self.victim is not None:
            self.victim.cancel()
            self.victim = None


async def test_a_grant_whose_caller_was_cancelled_on_arrival_goes_to_the_next(
    redis_server: RedisServer, budget: str
) -> None:
    limiter = CancelsTheFirstAsItIsGranted(redis_server.url, RateLimit(5, 10.0), budget=budget)
    store: Any = redis_server.client()
    try:
        first = asyncio.create_task(limiter.acquire("trading"))
        await asyncio.sleep(0)  # first in line
        second = asyncio.create_task(limiter.acquire("trading"))
        limiter.victim = first
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        await until(lambda: idle(limiter))
        # One permit taken in Redis, used by the second caller; a new decision would have made two.
        assert store.llen(f"broker-plugins:{{{budget}}}:shared:w0") == 1
        assert limiter.stats().category("trading").permits_granted == 1
    finally:
        store.close()
        await limiter.aclose()


async def test_a_refusal_noted_outside_a_loop_holds_back_this_process(limiters: MakeLimiter) -> None:
    limiter = limiters(RateLimit(100, 1.0))
    started = time.monotonic()
    await asyncio.to_thread(limiter.note_refusal, "account", 0.3)  # no running loop in that thread
    await limiter.acquire("account")
    assert time.monotonic() - started >= 0.3
    assert limiter.stats().category("account").last_retry_after == 0.3


async def test_a_limiter_serves_one_event_loop_until_it_is_closed(limiters: MakeLimiter) -> None:
    limiter = limiters(RateLimit(100, 1.0))
    await limiter.acquire("trading")
    with pytest.raises(RuntimeError, match="in use by another event loop"):
        await asyncio.to_thread(asyncio.run, limiter.acquire("trading"))


class MisreadsRedis(RedisRateLimiter):
    async def _decide(self, line: Any) -> tuple[int | None, float]:
        raise ValueError("a reply it could not read")


async def test_a_bug_in_deciding_fails_the_callers_instead_of_stranding_them(
    redis_server: RedisServer, budget: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with MisreadsRedis(redis_server.url, RateLimit(5, 1.0), budget=budget) as limiter:
        with pytest.raises(SharedBudgetUnavailableError, match=r"failed \(ValueError\)"):
            await asyncio.wait_for(limiter.acquire("trading"), 10)
    assert "deciding failed" in caplog.text
