"""The rate-limit guarantee, checked from the times permits were granted.

Each task records `time.monotonic()` right after `acquire()` returns. The limiter grants at some time
g and the task records g + d, where d is a few microseconds that vary between tasks; counting windows
one millisecond shorter than the period keeps that noise from failing a correct limiter while any
real excess (a whole extra call in a window) is still caught.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence

import pytest

from broker_plugins import CATEGORIES, InvalidRequestError, Limiter, RateLimit, RateLimiter

TOLERANCE = 0.001


def most_in_any_window(times: Sequence[float], period: float) -> int:
    """The largest number of `times` inside any half-open window of `period` seconds."""
    ordered = sorted(times)
    most = first = 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= period - TOLERANCE:
            first += 1
        most = max(most, last - first + 1)
    return most


async def saturate(limiter: RateLimiter, category: str, tasks: int, duration: float) -> list[float]:
    """`tasks` callers acquiring back to back for `duration` seconds, then cancelled; the grant times."""
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


def test_most_in_any_window_counts_half_open_windows() -> None:
    assert most_in_any_window([0.0, 0.5, 0.9999, 1.0, 1.5], 1.0) == 3
    assert most_in_any_window([], 1.0) == 0


async def test_sequential_calls_never_exceed_the_limit() -> None:
    limiter = RateLimiter(RateLimit(5, 0.2))
    granted = []
    for _ in range(16):
        await limiter.acquire("market_data")
        granted.append(time.monotonic())
    assert most_in_any_window(granted, 0.2) <= 5
    # 16 calls at 5 per 0.2 s: three full windows must have passed, and not much more.
    assert 0.6 - TOLERANCE <= granted[-1] - granted[0] < 1.5


async def test_fifty_concurrent_callers_never_exceed_the_limit() -> None:
    limiter = RateLimiter(RateLimit(10, 0.25))
    granted = await saturate(limiter, "trading", tasks=50, duration=1.3)
    assert most_in_any_window(granted, 0.25) <= 10
    assert len(granted) >= 50


async def test_two_windows_hold_at_once() -> None:
    limiter = RateLimiter([RateLimit(4, 0.1), RateLimit(10, 0.6)])
    granted = await saturate(limiter, "account", tasks=20, duration=1.4)
    assert most_in_any_window(granted, 0.1) <= 4
    assert most_in_any_window(granted, 0.6) <= 10
    # The long window binds: about 10 per 0.6 s, so 20 or more in 1.4 s (three windows started).
    assert len(granted) >= 20


async def test_utilization_under_saturation_is_at_least_95_percent() -> None:
    limit = RateLimit(10, 0.1)
    limiter = RateLimiter(limit)
    granted = await saturate(limiter, "market_data", tasks=30, duration=1.05)
    allowed = limit.max_calls * math.ceil(1.05 / limit.period)
    assert most_in_any_window(granted, limit.period) <= limit.max_calls
    assert len(granted) / allowed >= 0.95, f"granted {len(granted)} of {allowed}"


async def test_permits_go_first_come_first_served() -> None:
    limiter = RateLimiter(RateLimit(3, 0.1))
    order: list[int] = []

    async def caller(index: int) -> None:
        await limiter.acquire("trading")
        order.append(index)

    tasks = [asyncio.create_task(caller(i)) for i in range(15)]
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == list(range(15))


async def test_a_cancelled_waiter_takes_nothing() -> None:
    limiter = RateLimiter(RateLimit(2, 0.3))
    await limiter.acquire("trading")
    await limiter.acquire("trading")
    started = time.monotonic()
    waiter = asyncio.create_task(limiter.acquire("trading"))
    queued = asyncio.create_task(limiter.acquire("trading"))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(queued, 2)
    # The queued caller got the permit the cancelled one gave up, when the window allowed it.
    waited = time.monotonic() - started
    assert 0.3 - 0.05 - TOLERANCE <= waited < 1.0
    # Both first grants expired together, so a third caller fits at once; had the cancelled waiter
    # taken a permit, the third would wait for the next window (0.3 s).
    third_started = time.monotonic()
    await asyncio.wait_for(limiter.acquire("trading"), 2)
    assert time.monotonic() - third_started < 0.1


async def test_categories_have_their_own_limits_and_share_the_star_budget() -> None:
    limiter = RateLimiter(
        {"market_data": RateLimit(5, 0.2), "trading": RateLimit(2, 0.2), "*": RateLimit(6, 0.2)}
    )
    market = asyncio.create_task(saturate(limiter, "market_data", tasks=10, duration=0.9))
    trading = asyncio.create_task(saturate(limiter, "trading", tasks=10, duration=0.9))
    account = asyncio.create_task(saturate(limiter, "account", tasks=10, duration=0.9))
    market_times, trading_times, account_times = await asyncio.gather(market, trading, account)
    assert most_in_any_window(market_times, 0.2) <= 5
    assert most_in_any_window(trading_times, 0.2) <= 2
    assert most_in_any_window(market_times + trading_times + account_times, 0.2) <= 6
    assert trading_times
    assert market_times
    assert limiter.limits_for("trading") == (RateLimit(2, 0.2), RateLimit(6, 0.2))
    assert limiter.limits_for("account") == (RateLimit(6, 0.2),)


async def test_a_category_without_limits_is_not_throttled() -> None:
    limiter = RateLimiter({"trading": RateLimit(1, 60)})
    started = time.monotonic()
    for _ in range(1000):
        await limiter.acquire("market_data")
    assert time.monotonic() - started < 5
    assert repr(limiter) == "<RateLimiter trading: 1 per 60s>"
    assert repr(RateLimiter()) == "<RateLimiter unlimited>"


async def test_margin_widens_every_window() -> None:
    limiter = RateLimiter(RateLimit(1, 0.1), margin=0.1)
    await limiter.acquire("trading")
    started = time.monotonic()
    await limiter.acquire("trading")
    assert time.monotonic() - started >= 0.2 - 0.01


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RateLimit(0, 1), "max_calls must be a whole number >= 1"),
        (lambda: RateLimit(2.5, 1), "max_calls must be a whole number >= 1"),
        (lambda: RateLimit(True, 1), "max_calls must be a whole number >= 1"),
        (lambda: RateLimit(1, 0), "period must be positive and finite"),
        (lambda: RateLimit(1, math.inf), "period must be positive and finite"),
        (lambda: RateLimit(1, "1s"), "period must be a number of seconds"),
        (lambda: RateLimiter({"marketdata": RateLimit(1, 1)}), "unknown rate-limit category 'marketdata'"),
        (lambda: RateLimiter("20/s"), "must be a RateLimit or a list of them"),
        (lambda: RateLimiter([RateLimit(1, 1), (20, 1)]), "must hold RateLimit objects"),
        (lambda: RateLimiter(RateLimit(1, 1), margin=-1), "margin must be a finite number >= 0"),
    ],
)
def test_malformed_limits_are_rejected_clearly(build: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        build()  # type: ignore[operator]


async def test_an_unknown_category_is_rejected() -> None:
    limiter = RateLimiter(RateLimit(1, 1))
    with pytest.raises(InvalidRequestError, match="unknown rate-limit category 'orders'"):
        await limiter.acquire("orders")
    assert set(CATEGORIES) == {"market_data", "trading", "account"}


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


async def test_a_refusal_from_the_broker_holds_back_only_its_category() -> None:
    limiter = RateLimiter(RateLimit(100, 1))
    assert isinstance(limiter, Limiter)
    limiter.note_refusal("trading", 0.2)
    limiter.note_refusal("trading", None)  # no hint: nothing more to hold
    started = time.monotonic()
    await limiter.acquire("market_data")
    assert time.monotonic() - started < 0.1
    await limiter.acquire("trading")
    assert time.monotonic() - started >= 0.2
    with pytest.raises(InvalidRequestError, match="unknown rate-limit category"):
        limiter.note_refusal("orders", 1.0)
