"""The judgements behind the clauses, on figures given directly: reconnect pacing, lock-step,
confirming a rate-limit violation, and naming the culprit when a category is wrong."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import time
from collections.abc import Mapping, Sequence

import pytest

from broker_plugins import ConnectionState, IBrokerGateway, RateLimit, RateLimitsSpec, StateChange
from conformance_tests import BackendRequest, BreakMode
from conformance_tests._limits_common import (
    SMALL_EXCESS,
    STALL_SHARE,
    Overrun,
    StallWatch,
    arrivals,
    confirmed,
    window_problems,
)
from conformance_tests._pacing import MAX_GAP, busiest_second, lockstep_share, noticed_apart, pacing_problems


def _attempts(*gaps: float, start: float = 0.02) -> list[float]:
    return list(itertools.accumulate(gaps, initial=start))


def test_a_capped_jittered_backoff_is_well_paced() -> None:
    times = _attempts(0.04, 0.08, 0.16, 0.2, 0.18, 0.2, 0.19, 0.2, 0.2)

    assert pacing_problems(times, 0.0, times[-1] + 0.1, times[-1] + 0.25) == []


def test_gaps_that_do_not_grow_are_named() -> None:
    times = _attempts(*[0.1] * 15)

    (problem,) = pacing_problems(times, 0.0, times[-1] + 0.05, times[-1] + 0.1)
    assert "do not grow" in problem


def test_an_uncapped_backoff_is_found_in_the_gap_across_the_restore() -> None:
    times = _attempts(0.06, 0.18, 0.54)  # tripling: the next comes 1.62 s later
    restored = 2.0

    problems = pacing_problems(times, 0.0, restored, times[-1] + 1.62)
    assert any(f"capped at {MAX_GAP:g} s" in problem for problem in problems)
    assert any("stopped trying" in problem for problem in problems)


def test_too_few_attempts_say_so() -> None:
    (problem,) = pacing_problems([0.5, 1.5], 0.0, 2.0, 2.1)

    assert "2 reconnect attempts" in problem


def test_the_busiest_second_counts_attempts_within_one_second() -> None:
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 2.5]) == 4
    assert busiest_second([0.001 * n for n in range(2000)]) == 1001
    assert busiest_second([]) == 0


def test_lockstep_is_the_share_of_attempts_made_together() -> None:
    together = sorted([*_attempts(0.04, 0.08, 0.16), *(t + 0.0005 for t in _attempts(0.04, 0.08, 0.16))])
    apart = sorted([*_attempts(0.04, 0.08, 0.16), *_attempts(0.035, 0.07, 0.15, start=0.011)])

    assert lockstep_share(together) == 1.0
    assert lockstep_share(apart) == 0.0
    assert lockstep_share([]) == 0.0


def test_the_moments_two_gateways_noticed_an_outage_come_from_their_state_changes() -> None:
    cut = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.timezone.utc)
    logs = [_left(cut + datetime.timedelta(milliseconds=ms)) for ms in (20, 5)]

    assert noticed_apart(logs) == pytest.approx(0.015)
    assert noticed_apart([logs[0], []]) is None  # one never reported it


def _left(moment: datetime.datetime) -> list[StateChange]:
    """The state changes of a gateway that left CONNECTED at `moment`, and came back."""
    return [
        StateChange(previous=ConnectionState.CONNECTED, current=ConnectionState.RECONNECTING, time=moment),
        StateChange(
            previous=ConnectionState.RECONNECTING,
            current=ConnectionState.CONNECTED,
            time=moment + datetime.timedelta(seconds=1),
        ),
    ]


async def test_a_violation_seen_once_is_checked_again_on_longer_windows() -> None:
    scales: list[float] = []

    async def jittery(scale: float) -> list[str]:
        scales.append(scale)
        return ["21 calls in a window"] if scale == 1.0 else []

    await confirmed("RL-2", jittery)
    assert scales == [1.0, 2.0]


async def test_a_violation_by_one_call_seen_twice_is_checked_on_windows_four_times_as_long() -> None:
    scales: list[float] = []

    async def loaded(scale: float) -> list[str]:
        scales.append(scale)
        return [Overrun("7 calls in a window, limit 6", excess=1)] if scale < 4.0 else []

    await confirmed("RL-5", loaded)
    assert scales == [1.0, 2.0, 4.0]


async def test_small_violations_in_two_categories_are_checked_on_windows_four_times_as_long() -> None:
    # As seen under CI load: 10 calls in a window at first, then one and two too many in two
    # categories on windows twice as long, none on windows four times as long.
    scales: list[float] = []

    async def loaded(scale: float) -> list[str]:
        scales.append(scale)
        if scale == 1.0:
            return [Overrun("10 market_data calls in a window, limit 6", excess=4)]
        if scale == 2.0:
            return [Overrun("7 market_data calls", excess=1), Overrun("8 trading calls", excess=SMALL_EXCESS)]
        return []

    await confirmed("RL-5", loaded)
    assert scales == [1.0, 2.0, 4.0]


async def _stall_the_loop(seconds: float) -> None:
    """Block the event loop, as a busy backend on the same loop (or a descheduled process) does."""
    await asyncio.sleep(0.02)  # the stall watch is asleep by now
    time.sleep(seconds)  # the stall is the point
    await asyncio.sleep(0.02)  # and has woken late


async def test_a_violation_seen_while_the_loop_stalled_is_checked_on_windows_eight_times_as_long() -> None:
    # As seen under CI load: three too many on windows twice as long, while the loop stalled.
    scales: list[float] = []

    async def stalled(scale: float) -> list[str]:
        scales.append(scale)
        if scale == 8.0:
            return []
        await _stall_the_loop(0.1)
        return [Overrun("9 trading calls in a window, limit 6", excess=3, allowance=0.034)]

    await confirmed("RL-5", stalled)
    assert scales == [1.0, 2.0, 4.0, 8.0]


def _late_first(late: float) -> list[BackendRequest]:
    """Under 6 per 0.48 s: one call granted at 0 that reached the backend `late`, then the next
    window's six, on time."""
    times = [late] + [0.48 + index * 0.001 for index in range(6)]
    return [BackendRequest("modify_order", "trading", t) for t in times]


async def test_a_stall_measured_while_confirming_widens_the_windows_jitter_allowance() -> None:
    # As seen under CI load in RL-5: a permit of one window reached the backend 0.1 s late.
    limit = RateLimit(6, 0.48)
    assert window_problems(_late_first(0.1), [limit])  # 58 ms allowed: 7 within 0.422 s

    async with StallWatch() as watch:
        await _stall_the_loop(0.12)
        assert window_problems(_late_first(0.1), [limit]) == []
    assert watch.longest >= 0.1
    assert window_problems(_late_first(0.1), [limit])  # the widening ends with the watch


async def test_a_stall_widens_the_allowance_to_a_quarter_window_at_most() -> None:
    limit = RateLimit(6, 0.48)
    async with StallWatch():
        await _stall_the_loop(0.25)
        problems = window_problems(_late_first(0.13), [limit])
    assert len(problems) == 1
    assert isinstance(problems[0], Overrun)
    assert problems[0].allowance == pytest.approx(STALL_SHARE * 0.48)
    assert "less 120 ms allowed" in problems[0]


async def test_a_violation_that_outlasts_the_stalls_fails_naming_every_scale() -> None:
    async def broken(scale: float) -> list[str]:
        await _stall_the_loop(0.1)
        return [Overrun("11 trading calls in a window, limit 6", excess=5, allowance=0.034)]

    with pytest.raises(pytest.fail.Exception, match=r"windows 2, 4 and 8 times longer"):
        await confirmed("RL-5", broken)


async def _scales_until_it_fails(problems: Sequence[str], match: str) -> list[float]:
    """The scales `confirmed` ran a scenario that always finds `problems` at, before it failed."""
    scales: list[float] = []

    async def broken(scale: float) -> list[str]:
        scales.append(scale)
        return list(problems)

    with pytest.raises(pytest.fail.Exception, match=match):
        await confirmed("RL-5", broken)
    return scales


async def test_a_stall_shorter_than_the_allowance_excuses_nothing() -> None:
    problems = [Overrun("11 trading calls in a window, limit 6", excess=5, allowance=0.034)]
    assert await _scales_until_it_fails(problems, r"windows 2 times longer") == [1.0, 2.0]


async def test_a_violation_by_more_than_the_small_excess_is_not_checked_a_third_time() -> None:
    problems = [Overrun("7 market_data calls", excess=1), Overrun("9 trading calls", excess=SMALL_EXCESS + 1)]
    match = r"market_data calls; 9 trading calls .* 2 times"
    assert await _scales_until_it_fails(problems, match) == [1.0, 2.0]


async def test_a_violation_by_one_call_on_every_window_fails_naming_every_scale() -> None:
    async def skips_a_permit(scale: float) -> list[str]:
        return [Overrun(f"{7 if scale == 1.0 else 8} calls in a window, limit 7", excess=1)]

    with pytest.raises(pytest.fail.Exception, match=r"8 calls .* windows 2 and 4 times longer; .* 7 calls"):
        await confirmed("RL-5", skips_a_permit)


async def test_a_larger_violation_seen_twice_is_not_checked_a_third_time() -> None:
    problems = [Overrun("12 calls in a window, limit 6", excess=6), "a message of another check"]
    assert await _scales_until_it_fails(problems, r"windows 2 times longer") == [1.0, 2.0]


async def test_a_violation_seen_twice_fails_naming_both_measurements() -> None:
    async def broken(scale: float) -> list[str]:
        return [f"{40 if scale == 1.0 else 41} calls in a window"]

    with pytest.raises(pytest.fail.Exception, match=r"\[RL-2\] 41 calls .* at the usual windows: 40 calls"):
        await confirmed("RL-2", broken)


class _Records:
    """Just the backdoor of a harness, holding the records given."""

    version = 1
    gateway_name = "records"
    symbol = "ACME"
    break_modes = frozenset({BreakMode.CUT})
    half_open_bound = None

    def __init__(self, requests: Sequence[BackendRequest]) -> None:
        self._requests = list(requests)

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def create_gateway(self, rate_limits: RateLimitsSpec) -> IBrokerGateway:
        raise NotImplementedError

    async def break_connection(self, mode: BreakMode) -> None: ...
    async def restore_connection(self) -> None: ...
    async def set_latency(self, seconds: float) -> None: ...
    def backend_requests(self) -> Sequence[BackendRequest]:
        return self._requests

    def backend_orders(self) -> Mapping[str, int]:
        return {}

    def reset_backend_records(self) -> None: ...


def test_requests_filed_under_another_category_are_named_not_blamed_on_caching() -> None:
    records = _Records([BackendRequest("get_orders", "market_data", float(n)) for n in range(8)])

    with pytest.raises(pytest.fail.Exception, match=r"get_orders as 'market_data'") as caught:
        arrivals("RL-4", records, 8, "trading")
    assert "caching" not in str(caught.value)


def test_requests_that_never_arrived_are_blamed_on_caching() -> None:
    with pytest.raises(pytest.fail.Exception, match="no caching or coalescing"):
        arrivals("RL-1", _Records([]), 3)
