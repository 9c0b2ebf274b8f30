"""The reference bridge's price rules: KRX tick bands, on the wire and in the simulated market."""

from __future__ import annotations

from decimal import Decimal

import attrs
import grpc
import pytest

from broker_plugins import KRX_STOCK_TICKS, TickSchedule, daily_price_limits
from grpc_plugin.bridge._broker import PaperBroker
from grpc_plugin.bridge._candles import Interval
from grpc_plugin.bridge._instruments import INSTRUMENTS
from grpc_plugin.bridge._journal import MemoryJournal
from grpc_plugin.bridge._market import Market
from grpc_plugin.bridge._orders import NewOrder, OrderStatus, OrderType, Side, TimeInForce
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr
from tests.bridge.conftest import CALL_TIMEOUT, RICH, Client, dec, limit_order, undec
from tests.bridge.test_domain import Clock

KAKAO = "035720"


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


def _edge_broker() -> tuple[Market, PaperBroker]:
    # A KRX stock quoted near the 50,000 KRW edge, at a fixed time: its limits hold the edge.
    spec = attrs.evolve(next(s for s in INSTRUMENTS if s.symbol == KAKAO), base_price=50_000)
    clock = Clock(1_750_000_000.0)
    market = Market(seed=1, clock=clock, instruments=[spec])
    return market, PaperBroker(market, MemoryJournal(), initial_cash=RICH, clock_ns=clock.ns)


def _new(coid: str, price: str, order_type: OrderType = OrderType.LIMIT, **extra: object) -> NewOrder:
    fields: dict[str, object] = {
        "client_order_id": coid,
        "symbol": KAKAO,
        "side": Side.BUY,
        "order_type": order_type,
        "quantity": Decimal(1),
        "limit_price": Decimal(price),
        "time_in_force": TimeInForce.DAY,
        **extra,
    }
    return NewOrder(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "accepted"),
    [
        ("50000", True),  # exactly on the edge: the band's first price
        ("49950", True),  # just below, on the 50 KRW tick
        ("49990", False),  # just below, off it
        ("50050", False),  # just above the edge, off the 100 KRW tick
        ("50100", True),
    ],
)
def test_limit_prices_are_checked_against_their_band(price: str, accepted: bool) -> None:
    market, broker = _edge_broker()
    quote = market.quote(KAKAO)
    assert (
        quote.lower_limit < 49_950 < 50_100 < quote.upper_limit
    )  # the limits are not what this test is about
    order, _ = broker.place("paper", _new(f"band-{price}", price))
    if accepted:
        assert order.status is not OrderStatus.REJECTED, order.reject_reason
    else:
        assert order.status is OrderStatus.REJECTED
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
    lower, _upper = await _limits(client, KAKAO)
    request = limit_order("band-modify", KAKAO, tr.SIDE_BUY, 1, str(lower))
    order = (await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)).order
    modify = tr.ModifyOrderRequest(order_id=order.order_id)
    modify.limit_price.CopyFrom(dec("20010"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.trading.ModifyOrder(modify, timeout=CALL_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "steps of 50" in (info.value.details() or "")


# -- daily price limits ----------------------------------------------------------------------------

SAMSUNG = "005930"


async def _limits(client: Client, symbol: str) -> tuple[Decimal, Decimal]:
    quote = (await client.market.GetQuote(md.GetQuoteRequest(symbol=symbol), timeout=CALL_TIMEOUT)).quote
    assert quote.HasField("upper_limit")
    assert quote.HasField("lower_limit")
    return undec(quote.lower_limit), undec(quote.upper_limit)


async def test_krx_quotes_carry_todays_limits_from_the_previous_close(client: Client) -> None:
    request = md.GetCandlesRequest(symbol=SAMSUNG, interval=md.INTERVAL_ONE_DAY, limit=1)
    candles = await client.market.GetCandles(request, timeout=CALL_TIMEOUT)
    close = Decimal(candles.close[0]).scaleb(candles.price_exponent)
    lower, upper = await _limits(client, SAMSUNG)
    assert (lower, upper) == daily_price_limits(close, KRX_STOCK_TICKS, "0.30")
    quote = (await client.market.GetQuote(md.GetQuoteRequest(symbol=SAMSUNG), timeout=CALL_TIMEOUT)).quote
    assert lower < undec(quote.bid) < undec(quote.ask) < upper


async def test_us_quotes_carry_no_limits(client: Client) -> None:
    quote = (await client.market.GetQuote(md.GetQuoteRequest(symbol="AAPL"), timeout=CALL_TIMEOUT)).quote
    assert not quote.HasField("upper_limit")
    assert not quote.HasField("lower_limit")


async def test_an_order_at_a_limit_is_accepted_and_one_tick_beyond_rejected(client: Client) -> None:
    lower, upper = await _limits(client, SAMSUNG)
    at_upper = limit_order("limit-at-upper", SAMSUNG, tr.SIDE_BUY, 1, str(upper))
    at_lower = limit_order("limit-at-lower", SAMSUNG, tr.SIDE_BUY, 1, str(lower))
    for request in (at_upper, at_lower):
        order = (await client.trading.PlaceOrder(request, timeout=CALL_TIMEOUT)).order
        assert order.status != tr.ORDER_STATUS_REJECTED, order.reject_reason
    above = upper + KRX_STOCK_TICKS.tick_at(upper)
    below = lower - KRX_STOCK_TICKS.tick_at(lower - 1)
    over = limit_order("limit-over", SAMSUNG, tr.SIDE_BUY, 1, str(above))
    order = (await client.trading.PlaceOrder(over, timeout=CALL_TIMEOUT)).order
    assert order.status == tr.ORDER_STATUS_REJECTED
    assert order.reject_reason == (
        f"limit price {above} is above today's upper price limit {upper} KRW (the previous close plus "
        f"30%); the highest price accepted today is {upper}"
    )
    under = limit_order("limit-under", SAMSUNG, tr.SIDE_BUY, 1, str(below))
    order = (await client.trading.PlaceOrder(under, timeout=CALL_TIMEOUT)).order
    assert order.status == tr.ORDER_STATUS_REJECTED
    assert f"below today's lower price limit {lower} KRW" in order.reject_reason


async def test_a_price_cannot_be_modified_beyond_a_limit(client: Client) -> None:
    lower, _upper = await _limits(client, SAMSUNG)
    placed = limit_order("limit-modify", SAMSUNG, tr.SIDE_BUY, 1, str(lower))
    order = (await client.trading.PlaceOrder(placed, timeout=CALL_TIMEOUT)).order
    modify = tr.ModifyOrderRequest(order_id=order.order_id)
    modify.limit_price.CopyFrom(dec(str(lower - KRX_STOCK_TICKS.tick_at(lower - 1))))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.trading.ModifyOrder(modify, timeout=CALL_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "below today's lower price limit" in (info.value.details() or "")
