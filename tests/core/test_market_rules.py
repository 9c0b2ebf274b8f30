"""Tick-size schedules and daily price limits, at the band edges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from broker_plugins import (
    KRX_ETF_TICKS,
    KRX_STOCK_TICKS,
    Instrument,
    InvalidRequestError,
    TickBand,
    TickRounding,
    TickSchedule,
    daily_price_limits,
)

KRX = KRX_STOCK_TICKS


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        ("1", 1),
        ("1999", 1),
        ("2000", 5),  # exactly on an edge: the band above applies
        ("4995", 5),
        ("5000", 10),
        ("19990", 10),
        ("20000", 50),
        ("49950", 50),
        ("50000", 100),
        ("199900", 100),
        ("200000", 500),
        ("499500", 500),
        ("500000", 1000),
        ("3000000", 1000),
    ],
)
def test_the_krx_stock_tick_at_each_band(price: str, tick: int) -> None:
    assert KRX.tick_at(price) == tick


@pytest.mark.parametrize(
    ("price", "on_tick"),
    [
        ("1999", True),  # just below an edge, on the finer tick
        ("2000", True),  # the edge itself
        ("2001", False),  # just above it: 5 KRW now
        ("2005", True),
        ("49990", False),  # a 10 KRW step is not a 50 KRW one
        ("50000", True),
        ("50050", False),
        ("199999", False),
        ("200000", True),
        ("200100", False),
        ("1999.5", False),
    ],
)
def test_a_price_is_on_tick_only_on_its_bands_grid(price: str, on_tick: bool) -> None:
    assert KRX.is_on_tick(price) is on_tick


@pytest.mark.parametrize(
    ("price", "up", "down", "nearest"),
    [
        ("2000", "2000", "2000", "2000"),  # on tick: unchanged every way
        ("2001", "2005", "2000", "2000"),
        ("2003", "2005", "2000", "2005"),
        ("1999.5", "2000", "1999", "2000"),  # halfway goes up
        ("4998", "5000", "4995", "5000"),  # rounding up crosses the edge and lands on it
        ("4996", "5000", "4995", "4995"),
        ("49990", "50000", "49950", "50000"),
        ("199950", "200000", "199900", "200000"),
        ("200001", "200500", "200000", "200000"),
        ("499999", "500000", "499500", "500000"),
    ],
)
def test_rounding_to_tick_up_down_and_nearest(price: str, up: str, down: str, nearest: str) -> None:
    assert KRX.round_price(price, TickRounding.UP) == Decimal(up)
    assert KRX.round_price(price, TickRounding.DOWN) == Decimal(down)
    assert KRX.round_price(price, "nearest") == Decimal(nearest)


def test_rounding_below_the_first_tick() -> None:
    assert KRX.round_price("0.4", TickRounding.UP) == 1
    assert KRX.round_price("0.4", TickRounding.NEAREST) == 1  # 0 is no price
    with pytest.raises(InvalidRequestError, match=r"no valid price at or below 0\.4"):
        KRX.round_price("0.4", TickRounding.DOWN)
    assert KRX.nearest_valid("0.4") == (None, Decimal(1))
    assert KRX.nearest_valid("2003") == (Decimal(2000), Decimal(2005))


def test_bad_arguments_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequestError, match="rounding must be one of up, down, nearest"):
        KRX.round_price("2001", "sideways")
    with pytest.raises(InvalidRequestError, match="price must be greater than zero"):
        KRX.tick_at(0)
    with pytest.raises(InvalidRequestError, match="price must be a number"):
        KRX.is_on_tick("abc")


def test_a_schedule_is_checked_when_built() -> None:
    with pytest.raises(InvalidRequestError, match="at least one band"):
        TickSchedule(())
    with pytest.raises(InvalidRequestError, match="first band must start at 0"):
        TickSchedule.from_pairs([(100, 1)])
    with pytest.raises(InvalidRequestError, match="ascend"):
        TickSchedule.from_pairs([(0, 1), (100, 5), (100, 10)])
    with pytest.raises(InvalidRequestError, match="not on the tick 5"):
        TickSchedule.from_pairs([(0, 5), (12, 10)])
    with pytest.raises(InvalidRequestError, match="tick must be greater than zero"):
        TickBand(Decimal(0), Decimal(0))
    with pytest.raises(InvalidRequestError, match="price_from must not be negative"):
        TickBand(Decimal(-1), Decimal(1))
    with pytest.raises(InvalidRequestError, match="list of TickBand"):
        TickSchedule(TickBand(Decimal(0), Decimal(1)))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="must be TickBand values"):
        TickSchedule(((0, 1),))  # type: ignore[arg-type]


def test_the_etf_schedule_is_flat() -> None:
    assert KRX_ETF_TICKS.is_flat
    assert not KRX.is_flat
    assert KRX_ETF_TICKS.tick_at(1_000_000) == KRX_ETF_TICKS.tick_at(1_000) == 5
    assert KRX_ETF_TICKS.round_price(10_002, "up") == 10_005
    assert KRX.describe().startswith("1 from 0; 5 from 2000; 10 from 5000")


def _instrument(**extra: object) -> Instrument:
    return Instrument("005930", "Samsung Electronics", "KRX", "KRW", Decimal(100), Decimal(1), **extra)  # type: ignore[arg-type]


def test_an_instrument_without_a_schedule_has_one_band_of_its_tick_size() -> None:
    instrument = _instrument()
    assert instrument.tick_schedule == TickSchedule.flat(100)
    assert instrument.tick_at(1_999) == 100
    assert instrument.is_on_tick(72_000)
    assert not instrument.is_on_tick(72_050)
    assert instrument.round_price(72_050) == 72_100
    assert instrument.round_price("72049", TickRounding.DOWN) == 72_000


def test_an_instrument_rounds_on_its_schedule() -> None:
    instrument = _instrument(tick_schedule=KRX)
    assert instrument.tick_size == 100  # kept: the tick at its reference price
    assert instrument.tick_at(49_950) == 50
    assert instrument.is_on_tick(49_950)
    assert instrument.round_price(49_990, "up") == 50_000


def test_an_instrument_without_a_positive_tick_has_no_schedule() -> None:
    instrument = Instrument("X", "x", "X", "USD", Decimal(0), Decimal(1))
    assert instrument.tick_schedule is None
    with pytest.raises(InvalidRequestError, match="reports no tick size"):
        instrument.round_price(1)


@pytest.mark.parametrize(
    ("close", "lower", "upper"),
    [
        (72_000, "50400", "93600"),  # on tick both ways
        (185_000, "129500", "240500"),  # the upper limit lies in the next band (500 KRW)
        (10_010, "7010", "13010"),  # 7007 and 13013 are off the 10 KRW tick: both move inward
        (1_540, "1078", "2000"),  # 2002 rounds down onto the 2,000 KRW edge
        (1_000, "700", "1300"),
    ],
)
def test_daily_limits_are_rounded_inward_to_tick(close: int, lower: str, upper: str) -> None:
    low, high = daily_price_limits(close, KRX, "0.30")
    assert KRX.is_on_tick(low)
    assert KRX.is_on_tick(high)
    assert (str(low), str(high)) == (lower, upper)


def test_daily_limits_reject_a_fraction_of_one_or_more() -> None:
    with pytest.raises(InvalidRequestError, match="fraction must be below 1"):
        daily_price_limits(1000, KRX, 1)
