"""A deterministic price path: the price at any millisecond is a pure function of (seed, time).

The log-price is a sum of value-noise octaves (random values at grid points, smoothly interpolated
between them), from 5-second wiggles to year-long trends. Unlike a random walk, which must be
summed from its start, the price at 2019-03-04 09:31 costs the same to compute as the price now,
so any candle of any range is computed directly from its bar index, whatever the paging.
"""

from __future__ import annotations

import math

__all__ = ["PricePath", "mix64", "unit_interval"]

_MASK = (1 << 64) - 1

# (grid period in ms, amplitude of the log-price); amplitudes grow with the square root of the
# period, roughly, as for a random walk, and sum to about 0.3 (prices stay within ~0.7x..1.4x base).
_OCTAVES: tuple[tuple[int, float], ...] = (
    (5_000, 0.0003),
    (60_000, 0.0008),
    (900_000, 0.0025),
    (14_400_000, 0.007),
    (86_400_000, 0.015),
    (864_000_000, 0.045),
    (8_640_000_000, 0.09),
    (69_120_000_000, 0.14),
)


def mix64(value: int) -> int:
    """SplitMix64's finalizer: a fast, well-distributed 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def unit_interval(value: int) -> float:
    """A float in [0, 1) from the top 53 bits of a hash."""
    return (value >> 11) * 2.0**-53


class PricePath:
    """The price (in price units, as a float) of one instrument at any time, for one seed.

    Evaluations at nearby times share grid points; the last two of each octave are cached, so a
    sweep over consecutive bars or ticks recomputes only the finest octaves. The cache is a pure
    memo: results never depend on the order of calls.
    """

    __slots__ = ("_base", "_h0", "_h1", "_index", "_seeds")

    def __init__(self, seed: int, base_price: float) -> None:
        self._base = base_price
        self._seeds = [mix64(seed ^ (octave * 0x632BE59BD9B4E019)) for octave in range(len(_OCTAVES))]
        self._index = [-1] * len(_OCTAVES)
        self._h0 = [0.0] * len(_OCTAVES)
        self._h1 = [0.0] * len(_OCTAVES)

    def _node(self, octave: int, index: int) -> float:
        return unit_interval(mix64((self._seeds[octave] + index) & _MASK)) * 2.0 - 1.0

    def at(self, time_ms: int) -> float:
        """The price at `time_ms` (milliseconds since the Unix epoch)."""
        log_price = 0.0
        index_cache, h0, h1 = self._index, self._h0, self._h1
        for octave, (period, amplitude) in enumerate(_OCTAVES):
            index, offset = divmod(time_ms, period)
            cached = index_cache[octave]
            if index != cached:
                if index == cached + 1:
                    h0[octave] = h1[octave]
                else:
                    h0[octave] = self._node(octave, index)
                h1[octave] = self._node(octave, index + 1)
                index_cache[octave] = index
            fraction = offset / period
            smooth = fraction * fraction * (3.0 - 2.0 * fraction)
            low = h0[octave]
            log_price += amplitude * (low + (h1[octave] - low) * smooth)
        return self._base * math.exp(log_price)
