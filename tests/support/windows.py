"""Counting calls in windows of time, the way a broker counts them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def most_in_any_window(times: Sequence[float], period: float, tolerance: float = 0.0) -> int:
    """The largest number of `times` inside any half-open window of `period` (less `tolerance`) seconds."""
    ordered = sorted(times)
    most = first = 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= period - tolerance:
            first += 1
        most = max(most, last - first + 1)
    return most


def gaps(times: Sequence[float]) -> list[float]:
    """The time between each call and the next, in time order."""
    ordered = sorted(times)
    return [later - earlier for earlier, later in itertools.pairwise(ordered)]
