"""Values the clauses build and read: exact decimals, candle pages, orders that stay out of the market."""

from __future__ import annotations

import secrets
from decimal import ROUND_FLOOR, Decimal

import attrs

from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, trading_pb2

__all__ = [
    "DAY_MS",
    "UNKNOWN_SYMBOL",
    "WELL_FORMED_UNKNOWN_ORDER",
    "Candle",
    "candles_of",
    "decimal_message",
    "far_buy",
    "fresh_id",
    "value",
]

DAY_MS = 86_400_000
UNKNOWN_SYMBOL = "BKKITNOSUCH0"  # well-formed, and no market lists it
WELL_FORMED_UNKNOWN_ORDER = "BK-KIT-NO-SUCH-ORDER-0"
_FAR_BELOW = Decimal("0.85")  # a buy limit this far under the bid neither fills nor breaks price bands


def value(message: common_pb2.Decimal) -> Decimal:
    """The exact value of a Decimal message."""
    return Decimal(message.mantissa).scaleb(message.exponent)


def decimal_message(number: Decimal | int) -> common_pb2.Decimal:
    """A Decimal message of `number`."""
    sign, digits, exponent = Decimal(number).as_tuple()
    if not isinstance(exponent, int):
        raise TypeError(f"not a finite number: {number}")
    mantissa = int("".join(map(str, digits)))
    return common_pb2.Decimal(mantissa=-mantissa if sign else mantissa, exponent=exponent)


def fresh_id(clause_id: str) -> str:
    """A client_order_id no earlier run used: `bk-ord1-<random>`."""
    short = clause_id.removeprefix("BK-").replace("-", "").lower()
    return f"bk-{short}-{secrets.token_hex(8)}"


@attrs.frozen
class Candle:
    """One candle of a page, decoded with that page's exponents."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def candles_of(page: market_data_pb2.GetCandlesResponse) -> list[Candle] | None:
    """The candles of a page, or None if its columns differ in length."""
    columns = (page.open_time_unix_ms, page.open, page.high, page.low, page.close, page.volume)
    if len({len(column) for column in columns}) != 1:
        return None

    def price(mantissa: int) -> Decimal:
        return Decimal(mantissa).scaleb(page.price_exponent)

    return [
        Candle(t, price(o), price(h), price(lo), price(c), Decimal(v).scaleb(page.volume_exponent))
        for t, o, h, lo, c, v in zip(*columns, strict=True)
    ]


def far_buy(
    client_order_id: str, instrument: market_data_pb2.Instrument, quote: market_data_pb2.Quote
) -> trading_pb2.PlaceOrderRequest:
    """A one-lot GTC buy limit well under the market: it works, and neither fills nor is rejected."""
    reference = value(quote.bid) if quote.HasField("bid") else value(quote.last)
    target = reference * _FAR_BELOW
    # The band holding the target decides its tick (tick_bands, KRX); without bands, tick_size.
    start, tick = Decimal(0), value(instrument.tick_size)
    for band in instrument.tick_bands:
        if value(band.price_from) <= target:
            start, tick = value(band.price_from), value(band.tick)
    price = max(tick, start + ((target - start) / tick).to_integral_value(ROUND_FLOOR) * tick)
    return trading_pb2.PlaceOrderRequest(
        client_order_id=client_order_id,
        symbol=instrument.symbol,
        side=trading_pb2.SIDE_BUY,
        order_type=trading_pb2.ORDER_TYPE_LIMIT,
        quantity=instrument.lot_size,
        limit_price=decimal_message(price),
        time_in_force=trading_pb2.TIME_IN_FORCE_GTC,
    )
