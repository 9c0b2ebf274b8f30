"""Simulated candles, computed from (seed, symbol, interval, bar index) alone.

Bar i of an interval of length L opens at i * L ms since the Unix epoch. Its open is the snapped
price-path value at the bar's open and its close the value at the next bar's open (so a close
equals the next open); high and low extend past them by hashed wicks; volume is hashed. Nothing
depends on the range or page a bar is served in, so the same request gives the same candles.
"""

from __future__ import annotations

import enum
from array import array
from collections import OrderedDict

import attrs

from grpc_plugin.bridge._instruments import InstrumentSpec
from grpc_plugin.bridge._pricepath import PricePath, mix64

__all__ = ["CandleColumns", "CandleSource", "Interval"]

BLOCK_BARS = 4_096  # bars computed and cached together; pages are assembled from blocks


class Interval(enum.Enum):
    """Candle length; the value is the length in milliseconds."""

    ONE_MINUTE = 60_000
    FIVE_MINUTES = 300_000
    FIFTEEN_MINUTES = 900_000
    ONE_HOUR = 3_600_000
    ONE_DAY = 86_400_000

    @property
    def ms(self) -> int:
        """Length of one bar in milliseconds."""
        return int(self.value)


@attrs.frozen
class CandleColumns:
    """Bars `first` (inclusive) to `stop` (exclusive) in columns; prices are integer price units."""

    first: int
    stop: int
    open: array[int]
    high: array[int]
    low: array[int]
    close: array[int]
    volume: array[int]


def _compute_block(seed: int, spec: InstrumentSpec, interval: Interval, block: int) -> CandleColumns:
    length = interval.ms
    first = block * BLOCK_BARS
    path = PricePath(seed, spec.base_price)
    bar_seed = mix64(seed ^ length)
    # Wicks scale with the square root of the bar length, like the spread of a random walk.
    wick_scale = 0.0015 * (length / 60_000) ** 0.5
    volume_scale = spec.base_volume * (length / 60_000) ** 0.9
    lot = spec.lot
    # Prices snap to the tick of their band (a KRX price crossing 50,000 KRW goes from 50 to 100).
    nearest, floor, ceil = spec.nearest_units, spec.floor_units, spec.ceil_units
    opens, highs, lows, closes, volumes = (array("q") for _ in range(5))
    open_units = nearest(path.at(first * length))
    for index in range(first, first + BLOCK_BARS):
        close_units = nearest(path.at((index + 1) * length))
        noise = mix64((bar_seed + index) & 0xFFFFFFFFFFFFFFFF)
        wick = open_units * wick_scale
        high = floor(max(open_units, close_units) + int(wick * (noise & 0xFFFF) / 65_536.0))
        low = ceil(min(open_units, close_units) - int(wick * ((noise >> 16) & 0xFFFF) / 65_536.0))
        shares = int(volume_scale * (0.3 + 1.4 * ((noise >> 32) / 4_294_967_296.0)))
        opens.append(open_units)
        highs.append(high)
        lows.append(low)
        closes.append(close_units)
        volumes.append(max(lot, shares // lot * lot))
        open_units = close_units
    return CandleColumns(first, first + BLOCK_BARS, opens, highs, lows, closes, volumes)


class CandleSource:
    """Candles of every instrument for one seed, with a small LRU cache of computed blocks."""

    def __init__(self, seed: int, *, cached_blocks: int = 64) -> None:
        self._seed = seed
        self._cached_blocks = cached_blocks
        self._blocks: OrderedDict[tuple[str, Interval, int], CandleColumns] = OrderedDict()

    def _block(self, spec: InstrumentSpec, interval: Interval, block: int) -> CandleColumns:
        key = (spec.symbol, interval, block)
        columns = self._blocks.get(key)
        if columns is None:
            columns = _compute_block(mix64(self._seed ^ hash_symbol(spec.symbol)), spec, interval, block)
            self._blocks[key] = columns
            if len(self._blocks) > self._cached_blocks:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(key)
        return columns

    def close(self, spec: InstrumentSpec, interval: Interval, index: int) -> int:
        """The close of bar `index` alone: the snapped price at the next bar's open, as in its block,
        without computing the block (4,096 bars: tens of milliseconds of the event loop)."""
        path = PricePath(mix64(self._seed ^ hash_symbol(spec.symbol)), spec.base_price)
        return spec.nearest_units(path.at((index + 1) * interval.ms))

    def candles(self, spec: InstrumentSpec, interval: Interval, first: int, stop: int) -> CandleColumns:
        """Bars `first` to `stop` (exclusive) of `spec` at `interval`."""
        opens, highs, lows, closes, volumes = (array("q") for _ in range(5))
        position = first
        while position < stop:
            block = self._block(spec, interval, position // BLOCK_BARS)
            start = position - block.first
            end = min(stop, block.stop) - block.first
            opens.extend(block.open[start:end])
            highs.extend(block.high[start:end])
            lows.extend(block.low[start:end])
            closes.extend(block.close[start:end])
            volumes.extend(block.volume[start:end])
            position = block.first + end
        return CandleColumns(first, max(first, stop), opens, highs, lows, closes, volumes)


def hash_symbol(symbol: str) -> int:
    """A stable 64-bit hash of a symbol (Python's own str hash is salted per process)."""
    value = 0
    for byte in symbol.encode():
        value = mix64(value ^ byte)
    return value
