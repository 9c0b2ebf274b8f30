"""`CandleSeries`: the candles and the whole columns hold exactly the reply's values (property-based)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker_plugins import Candle, Interval
from grpc_plugin import CandleSeries
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
mantissas = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
exponents = st.integers(min_value=-12, max_value=12)
# Open times anywhere from 1900 to 2200, not on any grid: the series must not assume regular steps.
times = st.integers(min_value=-2_208_988_800_000, max_value=7_258_118_400_000)


@st.composite
def pages(draw: st.DrawFn) -> list[market_data_pb2.GetCandlesResponse]:
    result = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        rows = draw(st.lists(st.tuples(times, mantissas, mantissas, mantissas), max_size=12))
        result.append(
            market_data_pb2.GetCandlesResponse(
                open_time_unix_ms=sorted(t for t, _, _, _ in rows),
                price_exponent=draw(exponents),
                open=[o for _, o, _, _ in rows],
                high=[h for _, _, h, _ in rows],
                low=[lo for _, _, _, lo in rows],
                close=[o for _, o, _, _ in rows],
                volume_exponent=draw(exponents),
                volume=[v for _, _, _, v in rows],
            )
        )
    return result


def expected_candles(symbol: str, pages: list[market_data_pb2.GetCandlesResponse]) -> list[Candle]:
    """What the series must hold, computed the slow, obvious way (exact whatever the context)."""
    price_exponent = min((p.price_exponent for p in pages if p.open_time_unix_ms), default=0)
    volume_exponent = min((p.volume_exponent for p in pages if p.open_time_unix_ms), default=0)

    def exact(mantissa: int, exponent: int, at: int) -> Decimal:
        digits = mantissa * 10 ** (exponent - at)
        return Decimal(f"{digits}E{at}") if at else Decimal(digits)

    candles = []
    for page in pages:
        for i, when in enumerate(page.open_time_unix_ms):
            opened, high, low, close = (
                exact(c[i], page.price_exponent, price_exponent)
                for c in (page.open, page.high, page.low, page.close)
            )
            volume = exact(page.volume[i], page.volume_exponent, volume_exponent)
            start = EPOCH + timedelta(milliseconds=when)
            candles.append(Candle(symbol, Interval.M5, start, opened, high, low, close, volume))
    return candles


def same(values: object, expected: object) -> bool:
    """Equal, and each Decimal with the same digits and exponent (Decimal("1.50") is not "1.5")."""
    return repr(values) == repr(expected)


@given(pages())
def test_every_candle_holds_the_exact_values_of_the_reply(
    replies: list[market_data_pb2.GetCandlesResponse],
) -> None:
    series = CandleSeries.from_pages("AAPL", Interval.M5, replies)
    expected = expected_candles("AAPL", replies)
    assert len(series) == len(expected)
    assert same(list(series), expected)
    assert same([series[i] for i in range(len(series))], expected)
    assert same([series[i - len(series)] for i in range(len(series))], expected)
    assert same(series[1:-1:2], expected[1:-1:2])
    for candle in series:
        assert type(candle) is Candle
        assert candle.start.tzinfo is timezone.utc


@given(pages())
def test_each_column_is_the_field_of_every_candle_in_order(
    replies: list[market_data_pb2.GetCandlesResponse],
) -> None:
    series = CandleSeries.from_pages("AAPL", Interval.M5, replies)
    expected = expected_candles("AAPL", replies)
    assert same(tuple(series.open_times), tuple(c.start for c in expected))
    assert same(tuple(series.opens), tuple(c.open for c in expected))
    assert same(tuple(series.highs), tuple(c.high for c in expected))
    assert same(tuple(series.lows), tuple(c.low for c in expected))
    assert same(tuple(series.closes), tuple(c.close for c in expected))
    assert same(tuple(series.volumes), tuple(c.volume for c in expected))


def test_a_column_is_built_once_and_kept() -> None:
    page = market_data_pb2.GetCandlesResponse(
        open_time_unix_ms=[0, 60_000], price_exponent=-2, open=[1, 2], high=[1, 2], low=[1, 2],
        close=[150, 151], volume=[5, 6],
    )  # fmt: skip
    series = CandleSeries.from_pages("AAPL", Interval.M1, [page])
    assert series.closes is series.closes
    assert series.open_times is series.open_times
    assert series.volumes is series.volumes
    assert series.closes == (Decimal("1.50"), Decimal("1.51"))
    assert series.open_times == (EPOCH, EPOCH + timedelta(minutes=1))


def test_values_stay_exact_under_a_coarse_decimal_context() -> None:
    # 19 significant digits: a context of 5 would round them if the series scaled in it.
    page = market_data_pb2.GetCandlesResponse(
        open_time_unix_ms=[0], price_exponent=-4, open=[9_223_372_036_854_775_807], high=[1], low=[1],
        close=[1], volume_exponent=3, volume=[1_234_567_890_123_456_789],
    )  # fmt: skip
    second = market_data_pb2.GetCandlesResponse(
        open_time_unix_ms=[60_000], price_exponent=2, open=[9_223_372_036_854_775_807], high=[1], low=[1],
        close=[1], volume_exponent=3, volume=[7],
    )  # fmt: skip
    with localcontext(Context(prec=5)):
        series = CandleSeries.from_pages("AAPL", Interval.M1, [page, second])
        candles = list(series)
        opens, volumes = series.opens, series.volumes
    assert candles[0].open == opens[0] == Decimal("922337203685477.5807")
    assert candles[1].open == opens[1] == Decimal("922337203685477580700")
    assert candles[0].volume == volumes[0] == Decimal("1234567890123456789E3")


def test_an_empty_range_is_an_empty_series() -> None:
    empty_page = market_data_pb2.GetCandlesResponse(price_exponent=-2)
    for replies in ([], [empty_page]):
        series = CandleSeries.from_pages("AAPL", Interval.M1, replies)
        assert len(series) == 0
        assert list(series) == []
        assert series.open_times == ()
        assert series.closes == series.volumes == ()
        with pytest.raises(IndexError):
            series[0]


# Runs of (step, count): one interval apart, gaps, repeated and falling times, across run boundaries.
segments = st.lists(
    st.tuples(st.sampled_from([0, 1, -7, 60_000, 86_400_000]) | st.integers(-(10**9), 10**9),
              st.integers(min_value=1, max_value=150)),
    max_size=5,
)  # fmt: skip


@given(times, segments)
def test_open_times_in_runs_and_gaps_are_exact(first: int, runs: list[tuple[int, int]]) -> None:
    stamps = [first]
    for step, count in runs:
        stamps.extend(stamps[-1] + step * (i + 1) for i in range(count))
    page = market_data_pb2.GetCandlesResponse(
        open_time_unix_ms=stamps, open=[0] * len(stamps), high=[0] * len(stamps),
        low=[0] * len(stamps), close=[0] * len(stamps), volume=[0] * len(stamps),
    )  # fmt: skip
    series = CandleSeries.from_pages("AAPL", Interval.M1, [page])
    expected = tuple(EPOCH + timedelta(milliseconds=stamp) for stamp in stamps)
    assert series.open_times == expected
    assert tuple(candle.start for candle in series) == expected
