"""The simulated market's instruments: six KRX listings and six US tickers, with their trading rules.

Prices inside the bridge are integers in units of `10 ** price_exponent` of the currency (won for
KRW, cents for USD), so matching and candles never touch binary floats; quantities are whole shares.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = ["INSTRUMENTS", "InstrumentSpec"]


@attrs.frozen
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
    return InstrumentSpec(symbol, name, "KRX", "KRW", 0, tick, 1, base_price, volume, 2_000)


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
