"""The mapping between wire messages and entities is exact, both ways (property-based)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker_plugins import (
    Interval,
    InvalidRequestError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from grpc_plugin import CandleSeries
from grpc_plugin._mapping import (
    decimal_from,
    decimal_to,
    order_from,
    order_request_to,
    quote_from,
    time_from,
    time_to,
)
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, trading_pb2

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: len(d.as_tuple().digits) <= 18 and -30 <= d.as_tuple().exponent <= 30  # type: ignore[operator]
)
mantissas = st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
exponents = st.integers(min_value=-12, max_value=12)
aware_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
)


@given(decimals)
def test_a_decimal_survives_the_wire_exactly(value: Decimal) -> None:
    assert decimal_from(decimal_to(value)) == value


@given(mantissas, exponents)
def test_a_wire_decimal_maps_to_its_exact_value(mantissa: int, exponent: int) -> None:
    value = decimal_from(common_pb2.Decimal(mantissa=mantissa, exponent=exponent))
    assert value == Decimal(mantissa) * Decimal(10) ** exponent
    assert decimal_to(value) is not None


def test_a_decimal_too_precise_for_the_wire_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="more digits than the bridge carries"):
        decimal_to(Decimal("1.2345678901234567890123"))
    with pytest.raises(InvalidRequestError, match="must be finite"):
        decimal_to(Decimal("NaN"))
    assert decimal_from(decimal_to(Decimal("1E+25"))) == Decimal(
        "1E+25"
    )  # trailing zeros fold into the exponent


@given(aware_times)
def test_a_timestamp_survives_the_wire_to_the_microsecond(value: datetime) -> None:
    assert time_from(time_to(value)) == value


def test_a_naive_datetime_is_refused_rather_than_guessed() -> None:
    with pytest.raises(InvalidRequestError, match="has no timezone"):
        time_to(datetime(2026, 1, 1))


@given(
    st.sampled_from([Side.BUY, Side.SELL]),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=4),
    st.one_of(st.none(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**7), places=2)),
    st.sampled_from([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
)
def test_an_order_request_reaches_the_wire_exactly(
    side: Side, quantity: Decimal, price: Decimal | None, time_in_force: TimeInForce
) -> None:
    request = OrderRequest("005930", side, quantity, price=price, time_in_force=time_in_force)
    message = order_request_to(request)
    assert message.client_order_id == request.client_order_id
    assert decimal_from(message.quantity) == quantity
    assert (decimal_from(message.limit_price) if message.HasField("limit_price") else None) == price
    assert message.order_type == (trading_pb2.ORDER_TYPE_LIMIT if price else trading_pb2.ORDER_TYPE_MARKET)


@given(st.integers(min_value=8, max_value=1000), st.integers(min_value=3, max_value=1000))
def test_enum_numbers_from_a_newer_bridge_map_to_unknown(status: int, side: int) -> None:
    message = trading_pb2.Order(
        order_id="1",
        client_order_id="c",
        symbol="AAPL",
        side=side,  # type: ignore[arg-type]
        order_type=7,  # type: ignore[arg-type]
        time_in_force=9,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        quantity=common_pb2.Decimal(mantissa=1),
        filled_quantity=common_pb2.Decimal(mantissa=0),
    )
    order = order_from(message)
    assert (order.status, order.side, order.order_type, order.time_in_force) == (
        OrderStatus.UNKNOWN,
        Side.UNKNOWN,
        OrderType.UNKNOWN,
        TimeInForce.UNKNOWN,
    )


def test_a_quote_without_a_last_trade_maps_to_none() -> None:
    quote = quote_from(
        market_data_pb2.Quote(
            symbol="AAPL",
            bid=common_pb2.Decimal(mantissa=19025, exponent=-2),
            bid_size=common_pb2.Decimal(mantissa=3),
            ask=common_pb2.Decimal(mantissa=19026, exponent=-2),
            ask_size=common_pb2.Decimal(mantissa=5),
        )
    )
    assert (quote.bid, quote.ask, quote.last) == (Decimal("190.25"), Decimal("190.26"), None)


@given(
    st.lists(st.tuples(mantissas, st.integers(min_value=0, max_value=10**12)), min_size=1, max_size=20),
    exponents,
    exponents,
)
def test_candle_pages_with_different_exponents_join_exactly(
    rows: list[tuple[int, int]], first_exponent: int, second_exponent: int
) -> None:
    half = len(rows) // 2
    pages = []
    for exponent, chunk in ((first_exponent, rows[:half]), (second_exponent, rows[half:])):
        pages.append(
            market_data_pb2.GetCandlesResponse(
                open_time_unix_ms=[60_000 * i for i in range(len(chunk))],
                price_exponent=exponent,
                open=[m for m, _ in chunk],
                high=[m for m, _ in chunk],
                low=[m for m, _ in chunk],
                close=[m for m, _ in chunk],
                volume_exponent=0,
                volume=[v for _, v in chunk],
            )
        )
    series = CandleSeries.from_pages("AAPL", Interval.M1, pages)
    expected = [Decimal(m).scaleb(first_exponent) for m, _ in rows[:half]] + [
        Decimal(m).scaleb(second_exponent) for m, _ in rows[half:]
    ]
    assert [candle.open for candle in series] == expected
    assert [candle.volume for candle in series] == [Decimal(v) for _, v in rows]
    assert len(series) == len(rows)
    assert series[-1] == series[len(rows) - 1]
    with pytest.raises(IndexError):
        series[len(rows)]
    assert "CandleSeries AAPL 1m" in repr(series)
