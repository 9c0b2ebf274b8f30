"""The rate-limit guarantee, checked from the times permits were granted.

Most tests run on virtual time (`tests/support/virtual_time.py`): the limiter reads the event loop's
clock, sleeps take no real time, and every grant time is exact, so windows are counted with no
tolerance and utilisation is an exact count. A few run on the real clock (the default
`time.monotonic`): there a task records the time a few microseconds after its grant, so windows are
counted one millisecond shorter than the period, which still catches a whole extra call.

Each check is also run against a limiter that is wrong in the way the check exists to catch
(`tests/core/broken_limiters.py`), so none of them can pass a broken implementation unnoticed.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiolimiter import AsyncLimiter

from broker_plugins import (
    CATEGORIES,
    InvalidRequestError,
    Limiter,
    ObservableLimiter,
    RateLimit,
    RateLimiter,
    RateLimitsSpec,
)
from broker_plugins._pacing import Pacer
from tests.core.broken_limiters import (
    BurstyBucket,
    EveryHeadForItself,
    LastComeFirstServed,
    OneQueueForAll,
    TakesBeforeWaiting,
)
from tests.support.virtual_time import virtual_time
from tests.support.windows import gaps, most_in_any_window

REAL_CLOCK_TOLERANCE = 0.001
EXACT = 1e-6  # virtual time: only the loop's nanosecond ticks separate a grant from its due time


def loose(value: object) -> Any:
    """`value`, hidden from the type checker: input a caller with no type checker could pass."""
    return value


def now() -> float:
    return asyncio.get_running_loop().time()


def on_loop_time(limits: RateLimitsSpec = (), **options: float) -> RateLimiter:
    """A RateLimiter reading the running loop's clock (virtual in these tests)."""
    return RateLimiter(limits, clock=now, **options)


async def saturate(
    limiter: Limiter, category: str, tasks: int, duration: float, clock: Callable[[], float] = now
) -> list[float]:
    """`tasks` callers acquiring back to back for `duration` seconds, then cancelled; the grant times."""
    granted: list[float] = []

    async def caller() -> None:
        while True:
            await limiter.acquire(category)
            granted.append(clock())

    callers = [asyncio.create_task(caller()) for _ in range(tasks)]
    await asyncio.sleep(duration)
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    return granted


def test_most_in_any_window_counts_half_open_windows() -> None:
    assert most_in_any_window([0.0, 0.5, 0.9999, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([0.0, 0.5, 0.9995, 1.5], 1.0) == 3
    assert most_in_any_window([0.0, 0.5, 0.9995, 1.5], 1.0, tolerance=0.001) == 2
    assert most_in_any_window([], 1.0) == 0


@virtual_time
async def test_virtual_time_jumps_to_the_next_timer() -> None:
    started = now()
    await asyncio.sleep(3600)
    assert now() - started == pytest.approx(3600, abs=EXACT)


# -- the guarantee: never more than max_calls in any window --------------------------------------


async def sequential(limiter: Limiter, calls: int) -> list[float]:
    granted = []
    for _ in range(calls):
        await limiter.acquire("market_data")
        granted.append(now())
    return granted


def check_sequential(granted: list[float]) -> None:
    assert most_in_any_window(granted, 0.2) <= 5, "more than 5 calls in a 0.2 s window"


@virtual_time
async def test_sequential_calls_keep_the_limit_and_go_as_soon_as_it_allows() -> None:
    granted = await sequential(on_loop_time(RateLimit(5, 0.2)), 16)
    check_sequential(granted)
    # Five at once, then five as soon as the first five are 0.2 s old, and so on.
    offsets = [t - granted[0] for t in granted]
    assert offsets == pytest.approx([0.0] * 5 + [0.2] * 5 + [0.4] * 5 + [0.6], abs=EXACT)


@virtual_time
async def test_the_sequential_check_catches_a_bucket_of_capacity_n() -> None:
    granted = await sequential(BurstyBucket(RateLimit(5, 0.2)), 16)
    with pytest.raises(AssertionError, match="more than 5"):
        check_sequential(granted)


@virtual_time
async def test_fifty_concurrent_callers_keep_the_limit_at_full_utilisation() -> None:
    granted = await saturate(on_loop_time(RateLimit(10, 0.25)), "trading", tasks=50, duration=1.3)
    assert most_in_any_window(granted, 0.25) <= 10
    # Windows start at 0, 0.25, ..., 1.25: six full windows, every permit of each used.
    assert len(granted) == 60


@virtual_time
async def test_the_concurrency_check_catches_a_bucket_of_capacity_n() -> None:
    granted = await saturate(BurstyBucket(RateLimit(10, 0.25)), "trading", tasks=50, duration=1.3)
    assert most_in_any_window(granted, 0.25) > 10


def check_two_windows(granted: list[float]) -> None:
    assert most_in_any_window(granted, 0.1) <= 4, "the 4 per 0.1 s window was exceeded"
    assert most_in_any_window(granted, 0.6) <= 10, "the 10 per 0.6 s window was exceeded"


@virtual_time
async def test_two_windows_hold_at_once() -> None:
    limits = [RateLimit(4, 0.1), RateLimit(10, 0.6)]
    granted = await saturate(on_loop_time(limits), "account", tasks=20, duration=1.35)
    check_two_windows(granted)
    # 4 + 4 + 2 by 0.2 s (the long window is full), the same from 0.6 s and from 1.2 s (4 + 4).
    assert len(granted) == 28


@virtual_time
async def test_the_two_windows_check_catches_a_limiter_that_keeps_only_one() -> None:
    granted = await saturate(on_loop_time(RateLimit(4, 0.1)), "account", tasks=20, duration=1.35)
    with pytest.raises(AssertionError, match=r"10 per 0\.6 s"):
        check_two_windows(granted)


async def arrival_order(limiter: Limiter) -> list[int]:
    order: list[int] = []

    async def caller(index: int) -> None:
        await limiter.acquire("trading")
        order.append(index)

    tasks = []
    for index in range(15):
        tasks.append(asyncio.create_task(caller(index)))
        await asyncio.sleep(0.001)  # arrivals spread over time, so "first" is well defined
    await asyncio.gather(*tasks)
    return order


@virtual_time
async def test_permits_go_first_come_first_served() -> None:
    assert await arrival_order(on_loop_time(RateLimit(3, 0.1))) == list(range(15))


@virtual_time
async def test_the_order_check_catches_last_come_first_served() -> None:
    assert await arrival_order(LastComeFirstServed(RateLimit(3, 0.1), now)) != list(range(15))


async def after_a_cancelled_waiter(limiter: Limiter) -> tuple[float, float]:
    """Two permits taken at 0, a waiter cancelled at 0.05: when the next two callers get theirs."""
    started = now()
    await limiter.acquire("trading")
    await limiter.acquire("trading")
    waiter = asyncio.create_task(limiter.acquire("trading"))
    queued = asyncio.create_task(limiter.acquire("trading"))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await queued
    queued_at = now() - started
    await limiter.acquire("trading")
    return queued_at, now() - started


@virtual_time
async def test_a_cancelled_waiter_takes_nothing() -> None:
    queued_at, third_at = await after_a_cancelled_waiter(on_loop_time(RateLimit(2, 0.3)))
    # Both first grants expire at 0.3: the queued caller and the one after it both fit then. Had the
    # cancelled waiter taken a permit, the third caller would wait for the next window (0.6 s).
    assert queued_at == pytest.approx(0.3, abs=EXACT)
    assert third_at == pytest.approx(0.3, abs=EXACT)


@virtual_time
async def test_the_cancellation_check_catches_a_limiter_that_takes_before_waiting() -> None:
    _, third_at = await after_a_cancelled_waiter(TakesBeforeWaiting(RateLimit(2, 0.3), now))
    assert third_at == pytest.approx(0.6, abs=EXACT)


CATEGORY_LIMITS = {"market_data": RateLimit(5, 0.2), "trading": RateLimit(2, 0.2), "*": RateLimit(6, 0.2)}


async def three_categories_at_once(limiter: Limiter) -> tuple[list[float], list[float], list[float]]:
    market, trading, account = await asyncio.gather(
        saturate(limiter, "market_data", tasks=10, duration=0.9),
        saturate(limiter, "trading", tasks=10, duration=0.9),
        saturate(limiter, "account", tasks=10, duration=0.9),
    )
    return market, trading, account


def check_three_categories(market: list[float], trading: list[float], account: list[float]) -> None:
    assert most_in_any_window(market, 0.2) <= 5, "market_data went over its 5 per 0.2 s"
    assert most_in_any_window(trading, 0.2) <= 2, "trading went over its 2 per 0.2 s"
    assert most_in_any_window(market + trading + account, 0.2) <= 6, "the shared 6 per 0.2 s was exceeded"
    assert market, "market_data got nothing"
    assert trading, "trading got nothing"


@virtual_time
async def test_categories_have_their_own_limits_and_share_the_star_budget() -> None:
    limiter = on_loop_time(CATEGORY_LIMITS)
    check_three_categories(*await three_categories_at_once(limiter))
    assert limiter.limits_for("trading") == (RateLimit(2, 0.2), RateLimit(6, 0.2))
    assert limiter.limits_for("account") == (RateLimit(6, 0.2),)


@virtual_time
async def test_the_category_check_catches_a_limiter_with_one_budget_for_all() -> None:
    limiter = OneQueueForAll(CATEGORY_LIMITS, clock=now)
    with pytest.raises(AssertionError, match="trading went over"):
        check_three_categories(*await three_categories_at_once(limiter))


@virtual_time
async def test_the_category_check_catches_a_limiter_without_the_shared_budget() -> None:
    # The shared budget's figure given to each category on its own, instead of shared.
    own_only = {**CATEGORY_LIMITS, "account": RateLimit(6, 0.2)}
    del own_only["*"]
    with pytest.raises(AssertionError, match=r"shared 6 per 0\.2 s"):
        check_three_categories(*await three_categories_at_once(on_loop_time(own_only)))


@virtual_time
async def test_a_category_without_limits_is_not_throttled() -> None:
    limiter = on_loop_time({"trading": RateLimit(1, 60)})
    started = now()
    for _ in range(1000):
        await limiter.acquire("market_data")
    assert now() == started  # not one timer was set
    assert repr(limiter) == "<RateLimiter trading: 1 per 60s>"
    assert repr(RateLimiter()) == "<RateLimiter unlimited>"


@virtual_time
async def test_margin_widens_every_window() -> None:
    for margin, expected in ((0.1, 0.2), (0.0, 0.1)):
        limiter = on_loop_time(RateLimit(1, 0.1), margin=margin)
        await limiter.acquire("trading")
        started = now()
        await limiter.acquire("trading")
        assert now() - started == pytest.approx(expected, abs=EXACT)


async def hold_after_refusal(limiter: Limiter) -> tuple[float, float]:
    """`trading` refused with a retry-after of 0.2 s: how long a market-data and a trading call wait."""
    limiter.note_refusal("trading", 0.2)
    limiter.note_refusal("trading", None)  # no hint: nothing more to hold
    limiter.note_refusal("trading", 0.1)  # a shorter hint does not shorten the hold
    started = now()
    await limiter.acquire("market_data")
    market_wait = now() - started
    await limiter.acquire("trading")
    return market_wait, now() - started


@virtual_time
async def test_a_refusal_from_the_broker_holds_back_only_its_category() -> None:
    limiter = on_loop_time(RateLimit(100, 1))
    assert isinstance(limiter, Limiter)
    market_wait, trading_wait = await hold_after_refusal(limiter)
    assert market_wait == 0.0
    assert trading_wait == pytest.approx(0.2, abs=EXACT)
    with pytest.raises(InvalidRequestError, match="unknown rate-limit category"):
        limiter.note_refusal("orders", 1.0)


@virtual_time
async def test_the_refusal_check_catches_a_limiter_deaf_to_refusals() -> None:
    _, trading_wait = await hold_after_refusal(BurstyBucket(RateLimit(100, 1)))
    assert trading_wait < 0.2


# -- smooth pacing (aiolimiter) --------------------------------------------------------------------


def check_evenly_spaced(granted: list[float], interval: float) -> None:
    assert min(gaps(granted)) >= interval - EXACT, f"two calls closer than {interval} s"


@virtual_time
async def test_paced_calls_are_evenly_spaced_exact_and_at_full_sustained_rate() -> None:
    limit = RateLimit(5, 1.0, paced=True)
    granted = await saturate(on_loop_time(limit), "market_data", tasks=20, duration=9.9)
    check_evenly_spaced(granted, 0.2)
    assert max(gaps(granted)) == pytest.approx(0.2, abs=EXACT)
    assert most_in_any_window(granted, 1.0) == 5
    assert len(granted) == 50  # 0.0, 0.2, ..., 9.8: every permit of every window, 100%


@virtual_time
async def test_the_spacing_check_catches_an_unpaced_limit() -> None:
    granted = await saturate(on_loop_time(RateLimit(5, 1.0)), "market_data", tasks=20, duration=9.9)
    with pytest.raises(AssertionError, match=r"closer than 0\.2 s"):
        check_evenly_spaced(granted, 0.2)


@virtual_time
async def test_a_paced_burst_waits_one_interval_per_call() -> None:
    limiter = on_loop_time(RateLimit(5, 1.0, paced=True))
    started = now()

    async def call() -> float:
        await limiter.acquire("trading")
        return now() - started

    waits = await asyncio.gather(*(call() for _ in range(5)))
    assert waits == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8], abs=EXACT)


@virtual_time
async def test_paced_and_sliding_limits_and_the_shared_budget_hold_together() -> None:
    limiter = on_loop_time(
        {"trading": RateLimit(4, 1.0, paced=True), "market_data": RateLimit(10, 1.0), "*": RateLimit(14, 1.0)}
    )
    trading, market = await asyncio.gather(
        saturate(limiter, "trading", tasks=5, duration=5.0),
        saturate(limiter, "market_data", tasks=20, duration=5.0),
    )
    check_evenly_spaced(trading, 0.25)
    assert most_in_any_window(market, 1.0) <= 10
    assert most_in_any_window(trading + market, 1.0) == 14
    assert len(trading) == 20  # 0, 0.25, ..., 4.75: its full pace, as the shared budget has room for it


async def three_categories_on_one_pace(limiter: Limiter) -> list[list[float]]:
    return list(await asyncio.gather(*(saturate(limiter, category, 3, 2.0) for category in CATEGORIES)))


def check_shared_fairly(granted: list[list[float]]) -> None:
    # 20 permits to 9 callers served in arrival order: no category falls far behind.
    assert min(map(len, granted)) >= 6, f"a category fell behind: {list(map(len, granted))} permits"


@virtual_time
async def test_a_paced_shared_budget_spaces_every_category_and_serves_them_in_arrival_order() -> None:
    granted = await three_categories_on_one_pace(on_loop_time({"*": RateLimit(10, 1.0, paced=True)}))
    every = [t for times in granted for t in times]
    check_evenly_spaced(every, 0.1)
    assert len(every) == 20
    check_shared_fairly(granted)


@virtual_time
async def test_the_shared_fairness_check_catches_heads_that_race_for_the_shared_limit() -> None:
    granted = await three_categories_on_one_pace(
        EveryHeadForItself({"*": RateLimit(10, 1.0, paced=True)}, clock=now)
    )
    with pytest.raises(AssertionError, match="fell behind"):
        check_shared_fairly(granted)


@virtual_time
async def test_a_cancelled_paced_waiter_takes_nothing_and_margin_stretches_the_interval() -> None:
    queued_at, _ = await after_a_cancelled_waiter(on_loop_time(RateLimit(2, 0.2, paced=True)))
    # 0 and 0.1 for the first two, 0.2 for the queued caller: the cancelled one took no slot.
    assert queued_at == pytest.approx(0.2, abs=EXACT)
    limiter = on_loop_time(RateLimit(2, 0.2, paced=True), margin=0.1)
    await limiter.acquire("trading")
    started = now()
    await limiter.acquire("trading")
    assert now() - started == pytest.approx(0.15, abs=EXACT)


@virtual_time
async def test_a_bucket_of_capacity_one_is_exact_and_one_of_capacity_n_is_not() -> None:
    """The corrected README argument, measured on aiolimiter itself."""
    one = AsyncLimiter(1, 0.2)
    n = AsyncLimiter(5, 1.0)
    paced = await saturate(_Bucket(one), "market_data", tasks=10, duration=9.9)
    bursty = await saturate(_Bucket(n), "market_data", tasks=10, duration=9.9)
    assert most_in_any_window(paced, 1.0) == 5
    assert len(paced) == 50  # full sustained rate
    assert most_in_any_window(bursty, 1.0) == 9  # 2N - 1: the burst, then the drain


class _Bucket:
    def __init__(self, bucket: AsyncLimiter) -> None:
        self._bucket = bucket

    async def acquire(self, category: str) -> None:
        await self._bucket.acquire()

    def note_refusal(self, category: str, retry_after: float | None) -> None:
        return None


# -- budget visibility ----------------------------------------------------------------------------


@virtual_time
async def test_stats_report_permits_waits_waiters_and_the_last_refusal() -> None:
    limiter = on_loop_time({"market_data": RateLimit(2, 1.0), "*": RateLimit(100, 1.0)})
    assert isinstance(limiter, ObservableLimiter)
    callers = [asyncio.create_task(limiter.acquire("market_data")) for _ in range(4)]
    await asyncio.sleep(0.5)
    market = limiter.stats().category("market_data")
    assert (market.permits_granted, market.waiters) == (2, 2)
    assert market.limits == (RateLimit(2, 1.0), RateLimit(100, 1.0))
    await asyncio.gather(*callers)
    market = limiter.stats().category("market_data")
    assert (market.permits_granted, market.waiters) == (4, 0)
    assert market.wait_p50 == 0.0  # two of four went at once
    assert market.wait_p99 == pytest.approx(1.0, abs=EXACT)

    before = datetime.datetime.now(datetime.timezone.utc)
    limiter.note_refusal("trading", 0.5)
    await asyncio.sleep(0.2)
    trading = limiter.stats().category("trading")
    assert trading.held_for == pytest.approx(0.3, abs=EXACT)
    assert trading.last_retry_after == 0.5
    assert trading.last_refusal_at is not None
    assert trading.last_refusal_at >= before
    assert trading.last_refusal_at.tzinfo is datetime.timezone.utc
    assert limiter.stats().category("account") == limiter.stats().category("account")
    account = limiter.stats().category("account")
    assert (account.permits_granted, account.held_for, account.last_refusal_at) == (0, 0.0, None)
    stats = limiter.stats()
    assert (stats.store, stats.store_reachable, stats.store_error) == (None, True, None)
    assert [c.category for c in stats.categories] == list(CATEGORIES)
    with pytest.raises(KeyError):
        stats.category("orders")

    limiter.note_refusal("trading", math.nan)  # a refusal without a usable hint is still a refusal
    assert limiter.stats().category("trading").last_retry_after is None


# -- the real clock ---------------------------------------------------------------------------------


async def test_on_the_real_clock_concurrent_callers_keep_the_limit() -> None:
    limiter = RateLimiter(RateLimit(10, 0.25))
    granted = await saturate(limiter, "trading", tasks=50, duration=1.3, clock=time.monotonic)
    assert most_in_any_window(granted, 0.25, REAL_CLOCK_TOLERANCE) <= 10
    assert len(granted) >= 50


async def test_on_the_real_clock_paced_calls_keep_their_spacing() -> None:
    limiter = RateLimiter({"*": RateLimit(5, 0.25, paced=True)})
    granted = await saturate(limiter, "account", tasks=10, duration=0.8, clock=time.monotonic)
    assert min(gaps(granted)) >= 0.05 - REAL_CLOCK_TOLERANCE
    assert most_in_any_window(granted, 0.25, REAL_CLOCK_TOLERANCE) <= 5
    assert len(granted) >= 5


def test_pacing_keeps_its_spacing_when_the_limiter_moves_to_a_new_loop() -> None:
    limiter = RateLimiter(RateLimit(1, 0.3, paced=True))
    granted = []
    for _ in range(2):
        asyncio.run(limiter.acquire("trading"))
        granted.append(time.monotonic())
    assert granted[1] - granted[0] >= 0.3 - REAL_CLOCK_TOLERANCE


def test_a_limiter_follows_its_host_to_a_new_loop_but_not_into_two_at_once() -> None:
    limiter = RateLimiter(RateLimit(2, 0.05))
    asyncio.run(limiter.acquire("trading"))
    asyncio.run(limiter.acquire("trading"))  # the first loop is closed: rebinding is safe

    inside = threading.Event()
    release = threading.Event()

    async def hold() -> None:
        await limiter.acquire("trading")
        inside.set()
        while not release.is_set():
            await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    try:
        assert inside.wait(5)
        with pytest.raises(RuntimeError, match="in use by another event loop"):
            asyncio.run(limiter.acquire("trading"))
    finally:
        release.set()
        thread.join(5)


# -- input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RateLimit(0, 1), "max_calls must be a whole number >= 1"),
        (lambda: RateLimit(loose(2.5), 1), "max_calls must be a whole number >= 1"),
        (lambda: RateLimit(loose(True), 1), "max_calls must be a whole number >= 1"),
        (lambda: RateLimit(1, 0), "period must be positive and finite"),
        (lambda: RateLimit(1, math.inf), "period must be positive and finite"),
        (lambda: RateLimit(1, loose("1s")), "period must be a number of seconds"),
        (lambda: RateLimit(1, 1, paced=loose("yes")), "paced must be True or False"),
        (lambda: RateLimiter({"marketdata": RateLimit(1, 1)}), "unknown rate-limit category 'marketdata'"),
        (lambda: RateLimiter(loose("20/s")), "must be a RateLimit or a list of them"),
        (lambda: RateLimiter(loose([RateLimit(1, 1), (20, 1)])), "must hold RateLimit objects"),
        (lambda: RateLimiter(RateLimit(1, 1), margin=-1), "margin must be a finite number >= 0"),
        (lambda: RateLimiter(RateLimit(1, 1), clock=loose(1.0)), "clock must be a function"),
    ],
)
def test_malformed_limits_are_rejected_clearly(build: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        build()


async def test_an_unknown_category_is_rejected() -> None:
    limiter = RateLimiter(RateLimit(1, 1))
    with pytest.raises(InvalidRequestError, match="unknown rate-limit category 'orders'"):
        await limiter.acquire("orders")
    assert set(CATEGORIES) == {"market_data", "trading", "account"}


def test_a_paced_limit_says_so() -> None:
    assert str(RateLimit(5, 1, paced=True)) == "5 per 1s, paced"
    assert (
        repr(RateLimiter({"trading": RateLimit(5, 1, paced=True)}))
        == "<RateLimiter trading: 5 per 1s, paced>"
    )
    assert RateLimit(5, 1) != RateLimit(5, 1, paced=True)


@virtual_time
async def test_a_paced_permit_is_taken_at_once_or_not_at_all() -> None:
    # RateLimiter asks the bucket first; were aiolimiter ever to wait inside acquire() anyway, the
    # permit would go out late, past the other limits' check: take() refuses instead.
    pacer = Pacer(RateLimit(1, 100.0, paced=True), margin=0.0)
    pacer.bind(asyncio.get_running_loop())
    assert pacer.has_capacity(now())
    pacer.take(now())
    assert not pacer.has_capacity(now())
    with pytest.raises(RuntimeError, match="suspended an acquire"):
        pacer.take(now())
