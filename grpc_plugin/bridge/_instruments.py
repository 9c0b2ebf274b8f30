"""The simulated market's instruments: six KRX listings and six US tickers, with their trading rules.

Prices inside the bridge are integers in units of `10 ** price_exponent` of the currency (won for
KRW, cents for USD), so matching and candles never touch binary floats; quantities are whole shares.
KRX stocks tick by the KRX price bands (`KRX_STOCK_TICKS`); their `tick` is the tick at the base
price, the `tick_size` a client that ignores the bands uses. US tickers have one tick of a cent.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property

import attrs

from broker_plugins import KRX_STOCK_TICKS, TickSchedule

__all__ = ["INSTRUMENTS", "InstrumentSpec"]

_KRX_BANDS = tuple((int(band.price_from), int(band.tick)) for band in KRX_STOCK_TICKS.bands)


@attrs.frozen(slots=False)  # a cached_property needs the instance's __dict__
class InstrumentSpec:
    """One instrument: identity, trading rules, and the parameters of its simulated price path."""

    symbol: str
    name: str
    exchange: str
    currency: str
    price_exponent: int
    tick: int  # tick size in price units
    lot: int  # lot size in shares
    base_price: int  # centre of the simulated price path, in price units
    base_volume: int  # typical shares traded per minute
    max_display: int  # largest quantity shown at the best bid or ask, in shares
    bands: tuple[tuple[int, int], ...] = ()  # (price_from, tick) in price units; () is one band of tick
    daily_limit: Decimal | None = None  # +- this fraction of the previous close (KRX: 0.30)

    @cached_property
    def schedule(self) -> TickSchedule:
        """The tick schedule in currency units."""
        bands = self.bands or ((0, self.tick),)
        return TickSchedule.from_pairs((self.price(start), self.price(tick)) for start, tick in bands)

    @cached_property
    def _grid(self) -> tuple[list[int], list[int]]:
        bands = self.bands or ((0, self.tick),)
        return [start for start, _ in bands], [tick for _, tick in bands]

    def tick_units_at(self, units: float) -> int:
        """The tick, in price units, of the band holding `units`."""
        edges, ticks = self._grid
        return ticks[max(0, bisect_right(edges, units) - 1)]

    def floor_units(self, units: float) -> int:
        """The highest valid price at or below `units` (at least the lowest valid price)."""
        return self._snappers[1](units)

    def ceil_units(self, units: float) -> int:
        """The lowest valid price at or above `units`."""
        return self._snappers[2](units)

    def nearest_units(self, units: float) -> int:
        """The valid price closest to `units` (the higher one when halfway)."""
        return self._snappers[0](units)

    @cached_property
    def _snappers(self) -> tuple[Callable[[float], int], Callable[[float], int], Callable[[float], int]]:
        # (nearest, floor, ceil); candles call them for every bar, so one band gets plain arithmetic.
        edges, ticks = self._grid
        least = ticks[0]
        if len(edges) == 1:
            tick = least
            return (
                lambda units: max(tick, math.floor(units / tick + 0.5) * tick),
                lambda units: max(tick, math.floor(units / tick) * tick),
                lambda units: max(tick, math.ceil(units / tick) * tick),
            )
        last = len(edges) - 1

        def floor(units: float) -> int:
            index = max(0, bisect_right(edges, units) - 1)
            start, tick = edges[index], ticks[index]
            return max(least, start + math.floor((units - start) / tick) * tick)

        def ceil(units: float) -> int:
            index = max(0, bisect_right(edges, units) - 1)
            start, tick = edges[index], ticks[index]
            candidate = max(least, start + math.ceil((units - start) / tick) * tick)
            return min(candidate, edges[index + 1]) if index < last else candidate

        def nearest(units: float) -> int:
            index = max(0, bisect_right(edges, units) - 1)
            start, tick = edges[index], ticks[index]
            steps = (units - start) / tick
            down = max(least, start + math.floor(steps) * tick)
            up = max(least, start + math.ceil(steps) * tick)
            if index < last:
                up = min(up, edges[index + 1])
            return down if units - down < up - units else up

        return nearest, floor, ceil

    @property
    def tick_size(self) -> Decimal:
        """The tick size as an exact decimal."""
        return self.price(self.tick)

    @property
    def lot_size(self) -> Decimal:
        """The lot size as an exact decimal."""
        return Decimal(self.lot)

    def price(self, units: int) -> Decimal:
        """Convert integer price units to an exact decimal price."""
        return Decimal(units).scaleb(self.price_exponent)

    def units(self, price: Decimal) -> Decimal:
        """Convert a decimal price to price units (integral when the price is on a valid unit)."""
        return price.scaleb(-self.price_exponent)


def _krx(symbol: str, name: str, base_price: int, tick: int, volume: int) -> InstrumentSpec:
    return InstrumentSpec(
        symbol, name, "KRX", "KRW", 0, tick, 1, base_price, volume, 2_000, _KRX_BANDS, Decimal("0.30")
    )


def _us(symbol: str, name: str, base_cents: int, volume: int) -> InstrumentSpec:
    return InstrumentSpec(symbol, name, "NASDAQ", "USD", -2, 1, 1, base_cents, volume, 500)


INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    _krx("000660", "SK hynix", 185_000, 100, 40_000),
    _krx("005380", "Hyundai Motor", 240_000, 500, 9_000),
    _krx("005930", "Samsung Electronics", 72_000, 100, 150_000),
    _krx("035420", "NAVER", 190_000, 100, 6_000),
    _krx("035720", "Kakao", 45_000, 50, 12_000),
    _krx("051910", "LG Chem", 350_000, 500, 3_000),
    _us("AAPL", "Apple Inc.", 19_000, 60_000),
    _us("AMZN", "Amazon.com, Inc.", 18_000, 40_000),
    _us("GOOGL", "Alphabet Inc. Class A", 17_000, 30_000),
    _us("MSFT", "Microsoft Corporation", 42_000, 25_000),
    _us("NVDA", "NVIDIA Corporation", 12_000, 120_000),
    _us("TSLA", "Tesla, Inc.", 25_000, 90_000),
)
