"""The paper broker's price rules: a price is on its band's tick and within today's price limits.

Each check returns the reason a user reads in the REJECTED order ("" when the price is valid):
which band the price falls in, its tick, and the nearest valid prices on either side.
"""

from __future__ import annotations

from decimal import Decimal

from grpc_plugin.bridge._instruments import InstrumentSpec
from grpc_plugin.bridge._market import MarketQuote

__all__ = ["limit_violation", "price_violation"]


def price_violation(field: str, price: Decimal, spec: InstrumentSpec) -> str:
    """Why `price` is no valid price of `spec` ("" if it is one)."""
    if price <= 0:
        return f"{field} must be greater than zero, got {price}"
    schedule = spec.schedule
    if schedule.is_on_tick(price):
        return ""
    band = schedule.band_at(price)
    below, above = schedule.nearest_valid(price)
    if schedule.is_flat:
        where = f"{field} {price} is not a multiple of the tick size {band.tick} {spec.currency}"
    else:
        upper = next((b.price_from for b in schedule.bands if b.price_from > band.price_from), None)
        span = f"from {band.price_from}" if upper is None else f"from {band.price_from} to below {upper}"
        where = f"{field} {price} is off tick: prices {span} {spec.currency} move in steps of {band.tick}"
    nearest = f"{above}" if below is None else f"{below} or {above}"
    return f"{where}; the nearest valid prices are {nearest}"


def limit_violation(field: str, price: Decimal, spec: InstrumentSpec, quote: MarketQuote) -> str:
    """Why `price` lies outside today's price limits in `quote` ("" if within, or no limits)."""
    if not quote.upper_limit or spec.daily_limit is None:
        return ""
    percent = f"{spec.daily_limit * 100:.0f}%"
    upper, lower = spec.price(quote.upper_limit), spec.price(quote.lower_limit)
    if price > upper:
        return (
            f"{field} {price} is above today's upper price limit {upper} {spec.currency} "
            f"(the previous close plus {percent}); the highest price accepted today is {upper}"
        )
    if price < lower:
        return (
            f"{field} {price} is below today's lower price limit {lower} {spec.currency} "
            f"(the previous close less {percent}); the lowest price accepted today is {lower}"
        )
    return ""
