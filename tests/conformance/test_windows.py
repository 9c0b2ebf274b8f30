"""The window arithmetic the rate-limit clauses rest on."""

from __future__ import annotations

import pytest

from broker_plugins import RateLimit
from conformance_tests import BackendRequest
from conformance_tests._windows import (
    busiest_window,
    jitter_allowance,
    over_limit_message,
    utilization,
)


def arrivals(*times: float, method: str = "get_quote") -> list[BackendRequest]:
    return [BackendRequest(method, "market_data", t) for t in times]


def test_the_busiest_window_is_found_wherever_it_starts() -> None:
    # Bursts at 0 and at 1.0, and four calls bunched at 0.6 to 0.9 straddling no burst.
    requests = arrivals(0.0, 0.0, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0)

    window = busiest_window(requests, 0.5)

    assert window.count == 6
    assert window.start == 0.6
    assert window.length == pytest.approx(0.5 - jitter_allowance(0.5))


def test_calls_a_full_period_apart_are_in_different_windows_despite_jitter() -> None:
    limit = RateLimit(2, 0.25)
    # An exact limiter's second pair, one of them 4 ms early at the backend: within the allowance.
    requests = arrivals(0.0, 0.001, 0.246, 0.251)

    assert busiest_window(requests, limit.period).count == 2


def test_two_bursts_closer_than_the_allowance_share_a_window() -> None:
    requests = arrivals(0.0, 0.0, 0.2, 0.2)

    assert busiest_window(requests, 0.25).count == 4


def test_no_requests_make_an_empty_window() -> None:
    assert busiest_window([], 1.0).count == 0


def test_the_message_names_count_window_allowance_limit_and_methods() -> None:
    limit = RateLimit(2, 0.5)
    window = busiest_window(
        [*arrivals(0.0, 0.1), *arrivals(0.2, method="get_candles")],
        limit.period,
    )

    message = over_limit_message(window, limit, "concurrent ")

    assert message == (
        "3 concurrent calls arrived at the backend within 0.440 s (a 0.5 s window less 60 ms allowed "
        "for arrival jitter), limit 2 [get_quote 2, get_candles 1]"
    )


def test_utilization_counts_the_first_windows_from_the_first_arrival() -> None:
    limit = RateLimit(4, 0.25)
    exact = arrivals(*[0.0] * 4, *[0.25] * 4, *[0.5] * 4)
    halved = arrivals(*[0.0] * 2, *[0.125 * n for n in range(1, 8)])

    assert utilization(exact, limit, windows=2) >= 1.0
    assert utilization(halved, limit, windows=2) == pytest.approx(6 / 8)
    assert utilization([], limit, windows=2) == 0.0


def test_a_backend_request_checks_its_category() -> None:
    with pytest.raises(ValueError, match="category"):
        BackendRequest("get_quote", "quotes", 0.0)
