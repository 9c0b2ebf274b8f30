"""Backoff: exponential, capped, jittered downwards, and refusing nonsense settings."""

from __future__ import annotations

import random

import pytest

from broker_plugins import Backoff, InvalidRequestError


def test_delays_grow_exponentially_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(10_000) == 1.0  # no overflow for long outages
    assert backoff.delay(-3) == 0.1


def test_jitter_only_shortens_a_delay_by_at_most_its_share() -> None:
    backoff = Backoff(initial=1.0, maximum=1.0, jitter=0.2)
    rng = random.Random(7)
    delays = [backoff.delay(0, rng=rng) for _ in range(1000)]
    assert all(0.8 <= delay <= 1.0 for delay in delays)
    assert len(set(delays)) > 900  # spread out, so many clients do not return in step


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial": -1}, "initial must be a finite number >= 0"),
        ({"maximum": float("inf")}, "maximum must be a finite number >= 0"),
        ({"jitter": "0.2"}, "jitter must be a finite number >= 0"),
        ({"initial": 2.0, "maximum": 1.0}, r"maximum \(1.0\) must not be below initial \(2.0\)"),
        ({"multiplier": 0.5}, "multiplier must be >= 1"),
        ({"jitter": 1.5}, "jitter must be between 0 and 1"),
    ],
)
def test_nonsense_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        Backoff(**options)  # type: ignore[arg-type]
