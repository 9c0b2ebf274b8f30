"""The reference bridge's price rules: KRX tick bands, on the wire and in the simulated market."""

from __future__ import annotations

import attrs
import grpc
import pytest

from broker_plugins import KRX_STOCK_TICKS, TickSchedule
from grpc_plugin.bridge._candles import Interval
from grpc_plugin.bridge._instruments import INSTRUMENTS
from grpc_plugin.bridge._market import Market
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, Client, dec, limit_order, undec

KAKAO = "035720"  # about 45,000 KRW: far above the 20,000 KRW edge the orders below test


async def test_krx_instruments_carry_the_krx_schedule_and_us_ones_none(client: Client) -> None:
    listing = await client.market.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT)
    for instrument in listing.instruments:
        bands = [(undec(b.price_from), undec(b.tick)) for b in instrument.tick_bands]
        if instrument.exchange == "KRX":
            assert TickSchedule.from_pairs(bands) == KRX_STOCK_TICKS, instrument.symbol
        else:
            assert bands == [], instrument.symbol  # one tick: tick_size says it all


def test_the_tick_size_of_a_krx_instrument_is_its_band_at_the_base_price() -> None:
    for spec in INSTRUMENTS:
        assert spec.schedule.tick_at(spec.price(spec.base_price)) == spec.tick_size, spec.symbol


def test_quotes_and_candles_keep_to_the_band_of_their_price() -> None:
    # A stock quoted around the 50,000 KRW edge: 50 KRW steps below it, 100 KRW above.
    edge = attrs.evolve(next(s for s in INSTRUMENTS if s.symbol == KAKAO), base_price=50_000)
    market = Market(seed=3, clock=lambda: 1_750_000_000.0, instruments=[edge])
    ticks_seen: set[int] = set()
    for tick in range(17_500_000_000, 17_500_000_000 + 200 * 36_000, 36_000):  # an hour apart
        quote = market.quote_at(KAKAO, tick)
        assert quote.bid < quote.ask
        for price in (quote.bid, quote.ask, quote.last):
            assert edge.schedule.is_on_tick(price), (tick, price)
        ticks_seen.add(edge.tick_units_at(quote.bid))
    assert ticks_seen == {50, 100}
    columns = market.candles(KAKAO, Interval.ONE_HOUR, 480_000, 480_000 + 3_000)
    for column in (columns.open, columns.high, columns.low, columns.close):
        assert all(edge.schedule.is_on_tick(price) for price in column)


@pytest.mark.parametrize(
    ("price", "accepted"),
    [
        ("20000", True),  # exactly on the edge: the band's first price
        ("19990", True),  # just below, on the 10 KRW tick
        ("19995", False),  # just below, off it
        ("20010", False),  # just above the edge, off the 50 KRW tick
        ("20050", True),
    ],
)
async def test_limit_prices_are_checked_against_their_band(
    client: Client, price: str, accepted: bool
) -> None:
    request = limit_order(f"band-{price}", KAKAO, tr.SIDE_BUY, 1, price)
    order = (await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)).order
    if accepted:
        assert order.status == tr.ORDER_STATUS_NEW, order.reject_reason
    else:
        assert order.status == tr.ORDER_STATUS_REJECTED
        assert "is off tick" in order.reject_reason
        assert "KRW move in steps of" in order.reject_reason
        assert "the nearest valid prices are" in order.reject_reason


async def test_the_reason_names_the_band_the_tick_and_the_nearest_prices(client: Client) -> None:
    request = limit_order("band-reason", KAKAO, tr.SIDE_BUY, 1, "20010")
    order = (await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)).order
    assert order.reject_reason == (
        "limit price 20010 is off tick: prices from 20000 to below 50000 KRW move in steps of 50; "
        "the nearest valid prices are 20000 or 20050"
    )


async def test_a_modified_price_is_checked_against_its_band(client: Client) -> None:
    request = limit_order("band-modify", KAKAO, tr.SIDE_BUY, 1, "19990")
    order = (await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)).order
    modify = tr.ModifyOrderRequest(order_id=order.order_id)
    modify.limit_price.CopyFrom(dec("20010"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.trading.ModifyOrder(modify, timeout=CALL_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "steps of 50" in (info.value.details() or "")
