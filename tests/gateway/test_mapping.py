"""The mapping between wire messages and entities is exact, both ways (property-based)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal, localcontext

import attrs
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from broker_plugins import (
    Interval,
    InvalidRequestError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from grpc_plugin import CandleSeries
from grpc_plugin._mapping import (
    _QUOTE_FIELDS,
    _build_quote,
    _quote_by_init,
    _slot_setters,
    decimal_from,
    decimal_to,
    order_from,
    order_request_to,
    quote_from,
    time_from,
    time_to,
)
from grpc_plugin.generated.broker.bridge.v1 import common_pb2, market_data_pb2, trading_pb2


def _carried(value: Decimal) -> bool:
    exponent = value.as_tuple().exponent
    return len(value.as_tuple().digits) <= 18 and isinstance(exponent, int) and -30 <= exponent <= 30


decimals: st.SearchStrategy[Decimal] = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    _carried
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


optional_decimals = st.one_of(st.none(), st.tuples(mantissas, exponents))
timestamps = st.tuples(
    st.integers(min_value=-2_208_988_800, max_value=7_258_118_400),
    st.integers(min_value=0, max_value=999_999_999),
)


def _wire(value: tuple[int, int]) -> common_pb2.Decimal:
    return common_pb2.Decimal(mantissa=value[0], exponent=value[1])


def _exact(value: tuple[int, int]) -> Decimal:
    return Decimal(f"{value[0]}E{value[1]}")


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12),
    st.lists(st.tuples(mantissas, exponents), min_size=4, max_size=4),
    optional_decimals,
    timestamps,
)
def test_a_quote_maps_every_field_exactly(
    symbol: str, prices: list[tuple[int, int]], last: tuple[int, int] | None, stamp: tuple[int, int]
) -> None:
    message = market_data_pb2.Quote(
        symbol=symbol,
        bid=_wire(prices[0]),
        bid_size=_wire(prices[1]),
        ask=_wire(prices[2]),
        ask_size=_wire(prices[3]),
    )
    if last is not None:
        message.last.CopyFrom(_wire(last))
    message.time.seconds, message.time.nanos = stamp
    quote = quote_from(message)
    expected = Quote(
        symbol=symbol,
        bid=_exact(prices[0]),
        bid_size=_exact(prices[1]),
        ask=_exact(prices[2]),
        ask_size=_exact(prices[3]),
        last=None if last is None else _exact(last),
        time=datetime(1970, 1, 1, tzinfo=timezone.utc)
        + timedelta(seconds=stamp[0], microseconds=stamp[1] // 1000),
    )
    assert type(quote) is Quote
    assert repr(quote) == repr(expected)  # the same digits and exponents, not only equal values
    assert quote == expected
    assert hash(quote) == hash(expected)
    assert quote.time.tzinfo is timezone.utc


def test_a_last_trade_at_zero_is_a_price_not_an_absent_one() -> None:
    message = market_data_pb2.Quote(symbol="AAPL", last=common_pb2.Decimal(mantissa=0, exponent=0))
    assert quote_from(message).last == Decimal(0)
    assert quote_from(market_data_pb2.Quote(symbol="AAPL")).last is None


def test_wire_decimals_are_exact_under_a_coarse_decimal_context() -> None:
    with localcontext(Context(prec=3)):
        value = decimal_from(common_pb2.Decimal(mantissa=9_223_372_036_854_775_807, exponent=-7))
    assert value == Decimal("922337203685.4775807")


def test_times_stay_exact_past_the_size_of_their_caches() -> None:
    # More distinct seconds and microseconds than the caches keep: they are emptied, never wrong.
    for offset in range(0, 5000 * 7919, 7919):
        stamp = Timestamp(seconds=1_700_000_000 + offset, nanos=(offset * 1000) % 10**9)
        assert time_from(stamp) == stamp.ToDatetime(tzinfo=timezone.utc)


def test_slots_are_filled_directly_only_when_that_is_all_the_class_does() -> None:
    @attrs.frozen
    class Plain:
        a: int
        b: int

    @attrs.frozen
    class Checked:
        a: int = attrs.field(validator=attrs.validators.instance_of(int))
        b: int = 0

    @attrs.frozen
    class Converted:
        a: int = attrs.field(converter=int)
        b: int = 0

    @attrs.frozen
    class Hooked:
        a: int
        b: int

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen(slots=False)
    class Unslotted:
        a: int
        b: int

    class NotAttrs:
        __slots__ = ("a", "b")

    setters = _slot_setters(Plain, ("a", "b"))
    assert setters is not None
    instance = object.__new__(Plain)
    for setter, value in zip(setters, (1, 2), strict=True):
        setter(instance, value)
    assert instance == Plain(1, 2)
    assert _slot_setters(Plain, ("b", "a")) is None
    for cls in (Checked, Converted, Hooked, Unslotted, NotAttrs):
        assert _slot_setters(cls, ("a", "b")) is None, cls
    assert _slot_setters(Quote, _QUOTE_FIELDS) is not None  # the fast path is the one in use


@given(st.tuples(mantissas, exponents), optional_decimals, timestamps)
def test_the_quote_builder_makes_what_the_class_makes(
    price: tuple[int, int], last: tuple[int, int] | None, stamp: tuple[int, int]
) -> None:
    when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=stamp[0])
    values = (
        "AAPL",
        _exact(price),
        Decimal(1),
        _exact(price),
        Decimal(2),
        last and _exact(last),
        when,
        last and _exact(last),
        _exact(price),
    )
    built, called = _build_quote(*values), _quote_by_init(*values)
    assert type(built) is type(called) is Quote
    assert built == called
    assert repr(built) == repr(called)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.symbol = "MSFT"  # type: ignore[misc]
