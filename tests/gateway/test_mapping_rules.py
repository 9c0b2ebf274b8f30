"""Mapping the market rules: tick bands (absent on an older bridge) and malformed schedules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker_plugins import KRX_STOCK_TICKS, BrokerInternalError, TickSchedule
from grpc_plugin._mapping import instrument_from, quote_from
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2


def _dec(value: int) -> common_pb2.Decimal:
    return common_pb2.Decimal(mantissa=value)


def _instrument(*bands: tuple[int, int]) -> market_data_pb2.Instrument:
    return market_data_pb2.Instrument(
        symbol="005930",
        name="Samsung Electronics",
        exchange="KRX",
        currency="KRW",
        tick_size=_dec(100),
        lot_size=_dec(1),
        tick_bands=[market_data_pb2.TickBand(price_from=_dec(a), tick=_dec(b)) for a, b in bands],
    )


def test_an_instrument_of_an_older_bridge_has_one_band_of_its_tick_size() -> None:
    instrument = instrument_from(_instrument())
    assert instrument.tick_schedule == TickSchedule.flat(100)
    assert instrument.round_price(49_990) == 50_000


def test_tick_bands_become_the_instruments_schedule() -> None:
    pairs = [(int(b.price_from), int(b.tick)) for b in KRX_STOCK_TICKS.bands]
    instrument = instrument_from(_instrument(*pairs))
    assert instrument.tick_schedule == KRX_STOCK_TICKS
    assert instrument.tick_size == Decimal(100)
    assert instrument.tick_at(49_990) == 50
    assert instrument.is_on_tick(49_950)


def test_a_malformed_schedule_is_the_bridges_fault() -> None:
    with pytest.raises(BrokerInternalError, match=r"malformed tick schedule for '005930'.*start at 0"):
        instrument_from(_instrument((100, 1)))


def _quote(
    upper_limit: common_pb2.Decimal | None = None, lower_limit: common_pb2.Decimal | None = None
) -> market_data_pb2.Quote:
    return market_data_pb2.Quote(
        symbol="005930",
        bid=_dec(72_000),
        bid_size=_dec(5),
        ask=_dec(72_100),
        ask_size=_dec(7),
        upper_limit=upper_limit,
        lower_limit=lower_limit,
    )


def test_a_quote_carries_todays_limits_when_the_bridge_sends_them() -> None:
    quote = quote_from(_quote(upper_limit=_dec(93_600), lower_limit=_dec(50_400)))
    assert (quote.lower_limit, quote.upper_limit) == (Decimal(50_400), Decimal(93_600))


def test_a_quote_of_an_older_bridge_has_no_limits() -> None:
    quote = quote_from(_quote())
    assert quote.upper_limit is None
    assert quote.lower_limit is None
