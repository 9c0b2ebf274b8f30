"""Price rules of an instrument: tick-size schedules (price bands) and daily price limits.

A `TickSchedule` is a list of bands, each the tick that applies from its `price_from` (inclusive)
up to the next band's `price_from`. A valid price of a band is its `price_from` plus a whole number
of its ticks; every band edge is itself a valid price. An instrument with one fixed tick has a
schedule of one band from zero.

KRX (KOSPI, KOSDAQ, KONEX) stocks use `KRX_STOCK_TICKS`, the schedule in force since 2023-01-25;
KRX ETFs, ETNs and ELWs a flat 5 KRW (`KRX_ETF_TICKS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import pairwise

import attrs

from broker_plugins._checks import check_positive, to_decimal
from broker_plugins._enums import _StrEnum
from broker_plugins._errors import InvalidRequestError

__all__ = [
    "KRX_ETF_TICKS",
    "KRX_STOCK_TICKS",
    "TickBand",
    "TickRounding",
    "TickSchedule",
    "daily_price_limits",
]


class TickRounding(_StrEnum):
    """Which way `TickSchedule.round_price` moves a price that is off tick."""

    UP = "up"
    """To the nearest valid price at or above."""
    DOWN = "down"
    """To the nearest valid price at or below."""
    NEAREST = "nearest"
    """To the closer of the two; a price halfway between goes up."""


def _non_negative(value: object) -> Decimal:
    number = to_decimal(value, field="price_from")
    if number < 0:
        raise InvalidRequestError(f"price_from must not be negative, got {number}")
    return number


def _positive_tick(value: object) -> Decimal:
    return check_positive(value, "tick")


@attrs.frozen
class TickBand:
    """The tick that applies to prices at or above `price_from` (up to the next band)."""

    price_from: Decimal = attrs.field(converter=_non_negative)
    tick: Decimal = attrs.field(converter=_positive_tick)


def _to_bands(bands: Iterable[TickBand]) -> tuple[TickBand, ...]:
    if isinstance(bands, TickBand) or not isinstance(bands, Iterable):
        raise InvalidRequestError(f"bands must be a list of TickBand, got {type(bands).__name__}")
    checked = tuple(bands)
    if not checked:
        raise InvalidRequestError("a tick schedule needs at least one band")
    for band in checked:
        if not isinstance(band, TickBand):
            raise InvalidRequestError(f"bands must be TickBand values, got {type(band).__name__}")
    if checked[0].price_from != 0:
        raise InvalidRequestError(f"the first band must start at 0, got {checked[0].price_from}")
    for lower, upper in pairwise(checked):
        if upper.price_from <= lower.price_from:
            raise InvalidRequestError(
                f"bands must ascend by price_from: {upper.price_from} follows {lower.price_from}"
            )
        if (upper.price_from - lower.price_from) % lower.tick != 0:
            raise InvalidRequestError(
                f"band edge {upper.price_from} is not on the tick {lower.tick} of the band below it"
            )
    return checked


@attrs.frozen
class TickSchedule:
    """Ticks by price band, ascending; the first band starts at 0. See the module docstring."""

    bands: tuple[TickBand, ...] = attrs.field(converter=_to_bands)

    @classmethod
    def flat(cls, tick: Decimal | int | str) -> TickSchedule:
        """One tick for every price."""
        return cls((TickBand(Decimal(0), tick),))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[Decimal | int | str, Decimal | int | str]]) -> TickSchedule:
        """A schedule from (price_from, tick) pairs."""
        return cls(tuple(TickBand(price_from, tick) for price_from, tick in pairs))

    @property
    def is_flat(self) -> bool:
        """True when one tick applies to every price."""
        return len(self.bands) == 1

    def band_at(self, price: Decimal | int | str) -> TickBand:
        """The band that holds `price` (a positive number)."""
        value = check_positive(price, "price")
        found = self.bands[0]
        for band in self.bands[1:]:
            if band.price_from > value:
                break
            found = band
        return found

    def tick_at(self, price: Decimal | int | str) -> Decimal:
        """The tick that applies at `price`."""
        return self.band_at(price).tick

    def is_on_tick(self, price: Decimal | int | str) -> bool:
        """True when `price` is a valid price of its band."""
        value = check_positive(price, "price")
        band = self.band_at(value)
        return (value - band.price_from) % band.tick == 0

    def round_price(self, price: Decimal | int | str, rounding: TickRounding | str) -> Decimal:
        """`price` moved to a valid price, `rounding` UP, DOWN or NEAREST; on-tick prices stay.

        Rounding up may cross into the next band (its edge is a valid price). Rounding down a price
        below the first valid price raises `InvalidRequestError`; NEAREST then goes up.
        """
        value = check_positive(price, "price")
        try:
            direction = TickRounding(rounding)
        except ValueError:
            allowed = ", ".join(member.value for member in TickRounding)
            raise InvalidRequestError(f"rounding must be one of {allowed}; got {rounding!r}") from None
        down = self._down(value)
        if down == value:
            return value
        up = self._up(value)
        if direction is TickRounding.UP:
            return up
        if direction is TickRounding.DOWN:
            if down <= 0:
                raise InvalidRequestError(f"no valid price at or below {value}: the lowest is {up}")
            return down
        return up if down <= 0 or value - down >= up - value else down

    def nearest_valid(self, price: Decimal | int | str) -> tuple[Decimal | None, Decimal]:
        """The valid prices just below and just above an off-tick `price` (below is None if none)."""
        value = check_positive(price, "price")
        down = self._down(value)
        return (down if down > 0 else None), self._up(value)

    def describe(self) -> str:
        """The schedule as text: `1 from 0; 5 from 2000; ...`."""
        return "; ".join(f"{band.tick} from {band.price_from}" for band in self.bands)

    def _index(self, value: Decimal) -> int:
        index = 0
        for position, band in enumerate(self.bands):
            if band.price_from > value:
                break
            index = position
        return index

    def _down(self, value: Decimal) -> Decimal:
        band = self.bands[self._index(value)]
        steps = ((value - band.price_from) / band.tick).to_integral_value(ROUND_FLOOR)
        return band.price_from + steps * band.tick

    def _up(self, value: Decimal) -> Decimal:
        index = self._index(value)
        band = self.bands[index]
        steps = ((value - band.price_from) / band.tick).to_integral_value(ROUND_CEILING)
        candidate = band.price_from + steps * band.tick
        if index + 1 < len(self.bands):
            # A step past the next band's edge lands on the edge, the next band's first valid price.
            candidate = min(candidate, self.bands[index + 1].price_from)
        return candidate


KRX_STOCK_TICKS = TickSchedule.from_pairs(
    [(0, 1), (2_000, 5), (5_000, 10), (20_000, 50), (50_000, 100), (200_000, 500), (500_000, 1_000)]
)
"""KRX stocks (KOSPI, KOSDAQ, KONEX) since 2023-01-25, in KRW."""

KRX_ETF_TICKS = TickSchedule.flat(5)
"""KRX ETFs, ETNs and ELWs: 5 KRW at every price."""


def daily_price_limits(
    previous_close: Decimal | int | str, schedule: TickSchedule, fraction: Decimal | int | str
) -> tuple[Decimal, Decimal]:
    """(lower, upper) daily limits: `previous_close` -/+ `fraction` of it, each rounded inward to tick.

    KRX stocks: `daily_price_limits(close, KRX_STOCK_TICKS, "0.30")`.
    """
    close = check_positive(previous_close, "previous_close")
    share = check_positive(fraction, "fraction")
    if share >= 1:
        raise InvalidRequestError(f"fraction must be below 1, got {share}")
    lower = schedule.round_price(close * (1 - share), TickRounding.UP)
    upper = schedule.round_price(close * (1 + share), TickRounding.DOWN)
    # In the exponent of their tick: 50400, not the 50400.0 the multiplication leaves.
    return lower.quantize(schedule.tick_at(lower)), upper.quantize(schedule.tick_at(upper))
