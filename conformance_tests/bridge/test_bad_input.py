"""BK-BAD: bad input gets the documented status, never UNKNOWN or INTERNAL, and the bridge answers a
health check afterwards. Read-only but for BK-BAD-6, whose malformed orders a correct bridge refuses
(it runs with --bridge-paper all the same, in case one does not)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from conformance_tests.bridge._check import Check
from conformance_tests.bridge._values import WELL_FORMED_UNKNOWN_ORDER, fresh_id
from conformance_tests.bridge._wire import Outcome, describe, outcome_of_error
from grpc_plugin.generated.broker.bridge.v1 import common_pb2
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr

INVALID = grpc.StatusCode.INVALID_ARGUMENT
FILLER = "x"
LONG = 60_000
_ECHO_RUN = 200  # an echo of this many characters of what was sent is not "a bounded prefix"
_MAX_DETAILS = 2_048
_OVERSIZED = 5 * 1024 * 1024  # beyond gRPC's default 4 MiB receive limit
_STREAM_WAIT = 10.0

HUGE = common_pb2.Decimal(mantissa=10**10, exponent=18)  # 1e28
WILD_EXPONENT = common_pb2.Decimal(mantissa=1, exponent=99)
# Raw request bytes: field 1 (a string in GetQuoteRequest and StreamQuotesRequest) with two bytes
# that are not UTF-8; field 2 of ListOrdersRequest (its symbol) likewise; a length beyond the end.
_INVALID_UTF8_FIELD_1 = b"\x0a\x02\xff\xfe"
_INVALID_UTF8_FIELD_2 = b"\x12\x02\xff\xfe"
_CORRUPT = b"\x0a\x10bk"


def _raw(check: Check, path: str, data: bytes, streaming: bool) -> Outcome:
    channel = check.wire.main.channel
    metadata = check.wire.metadata("auth")
    if not streaming:
        method: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
        return check.call(method, data)
    check.count()
    stream: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)

    def first_message() -> Outcome:
        call = stream(data, metadata=metadata, timeout=_STREAM_WAIT)
        try:
            for _ in call:
                return Outcome(code=grpc.StatusCode.OK, details="a message")
        except grpc.RpcError as error:
            return outcome_of_error(error)
        finally:
            call.cancel()
        return Outcome(code=grpc.StatusCode.OK, details="the stream ended (EOF)")

    return check.retried(first_message)


def test_bk_bad1_bytes_that_do_not_parse_are_invalid_arguments(check: Check) -> None:
    market, trading = "/broker.bridge.v1.MarketDataService/", "/broker.bridge.v1.TradingService/"
    cases = (
        (market + "GetQuote", _INVALID_UTF8_FIELD_1, False, "invalid UTF-8 in symbol"),
        (market + "GetQuote", _CORRUPT, False, "a field longer than the message"),
        (trading + "ListOrders", _INVALID_UTF8_FIELD_2, False, "invalid UTF-8 in symbol"),
        (trading + "ListOrders", _CORRUPT, False, "a field longer than the message"),
        (market + "StreamQuotes", _INVALID_UTF8_FIELD_1, True, "invalid UTF-8 in symbols"),
        (market + "StreamQuotes", _CORRUPT, True, "a field longer than the message"),
    )
    for path, data, streaming, what in cases:
        outcome = _raw(check, path, data, streaming)
        check.expect(outcome, INVALID, f"{path} with {len(data)} raw bytes {data!r} ({what})")
    check.healthy_afterwards()


def _echo_problem(outcome: Outcome) -> str:
    if FILLER * _ECHO_RUN in outcome.details:
        return f"details echo more than {_ECHO_RUN} characters of what was sent"
    if len(outcome.details) > _MAX_DETAILS:
        return f"details of {len(outcome.details)} characters"
    return ""


def test_bk_bad2_very_long_ids_and_symbols_are_invalid_arguments_and_not_echoed(check: Check) -> None:
    long = "BK" + FILLER * (LONG - 2)
    market, trading = check.wire.main.market, check.wire.main.trading
    cases: tuple[tuple[str, Any, Any], ...] = (
        ("GetQuote", market.GetQuote, md.GetQuoteRequest(symbol=long)),
        ("GetOrder", trading.GetOrder, tr.GetOrderRequest(order_id=long)),
        ("CancelOrder", trading.CancelOrder, tr.CancelOrderRequest(order_id=long)),
        ("GetOrder", trading.GetOrder, tr.GetOrderRequest(client_order_id=long)),
    )
    for name, method, request in cases:
        field = next(f.name for f, v in request.ListFields() if isinstance(v, str))
        sent = f"{name} with a {LONG:,}-character {field}"
        outcome = check.call(method, request)
        note = (
            "gRPC clients refuse trailers over 8 KiB: was it echoed?"
            if outcome.code
            in (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.INTERNAL,
            )
            else ""
        )
        if outcome.code is not INVALID:
            check.fail(sent, outcome, rule=1, note=note or "expected INVALID_ARGUMENT")
        problem = _echo_problem(outcome)
        if problem:
            check.fail(sent, problem)
    check.healthy_afterwards()


def test_bk_bad3_huge_and_malformed_decimals_are_refused_before_the_state_is_looked_at(check: Check) -> None:
    trading = check.wire.main.trading
    for field, number in (
        ("quantity", HUGE),
        ("limit_price", WILD_EXPONENT),
        ("quantity", common_pb2.Decimal(mantissa=-(2**63), exponent=18)),
    ):
        request = tr.ModifyOrderRequest(order_id=WELL_FORMED_UNKNOWN_ORDER)
        getattr(request, field).CopyFrom(number)
        sent = f"ModifyOrder {describe(request)} (an unknown order, a malformed {field})"
        check.expect(check.call(trading.ModifyOrder, request), INVALID, sent, rule=1)
    check.healthy_afterwards()


def test_bk_bad4_unknown_enum_values_and_impossible_timestamps_are_invalid_arguments(
    check: Check, instrument: md.Instrument
) -> None:
    symbol = instrument.symbol
    market, trading = check.wire.main.market, check.wire.main.trading
    cases: tuple[tuple[Any, Any, int], ...] = (
        (
            market.GetCandles,
            md.GetCandlesRequest(symbol=symbol, interval=md.Interval.ValueType(99), limit=1),
            1,
        ),
        (
            market.GetCandles,
            md.GetCandlesRequest(
                symbol=symbol, interval=md.INTERVAL_ONE_DAY, start_time=Timestamp(seconds=10**15)
            ),
            0,
        ),
        (trading.ListOrders, tr.ListOrdersRequest(updated_since=Timestamp(seconds=0, nanos=-1)), 0),
    )
    for method, request, rule in cases:
        name = type(request).__name__.removesuffix("Request")
        check.expect(check.call(method, request), INVALID, f"{name} {describe(request)}", rule=rule)
    check.healthy_afterwards()


def test_bk_bad5_an_oversized_request_is_refused_and_the_connection_lives_on(check: Check) -> None:
    request = md.ListInstrumentsRequest(exchange=FILLER * _OVERSIZED)
    outcome = check.call(check.wire.main.market.ListInstruments, request, retry=False)
    allowed = (grpc.StatusCode.OK, INVALID, grpc.StatusCode.RESOURCE_EXHAUSTED)
    check.expect(outcome, allowed, f"ListInstruments with a {_OVERSIZED:,}-byte exchange")
    check.healthy_afterwards()


def test_bk_bad6_orders_with_bad_decimals_or_enum_values_create_nothing(
    check: Check, instrument: md.Instrument
) -> None:
    def order(**changes: Any) -> tr.PlaceOrderRequest:
        request = tr.PlaceOrderRequest(
            client_order_id=fresh_id(check.clause.id),
            symbol=instrument.symbol,
            side=tr.SIDE_BUY,
            order_type=tr.ORDER_TYPE_LIMIT,
            quantity=instrument.lot_size,
            limit_price=instrument.tick_size,
            time_in_force=tr.TIME_IN_FORCE_GTC,
        )
        for field, new in changes.items():
            if isinstance(new, common_pb2.Decimal):
                getattr(request, field).CopyFrom(new)
            else:
                setattr(request, field, new)
        return request

    cases = (
        order(quantity=HUGE),
        order(limit_price=HUGE),
        order(quantity=WILD_EXPONENT),
        order(side=tr.Side.ValueType(99)),
        order(order_type=tr.OrderType.ValueType(99)),
        order(time_in_force=tr.TimeInForce.ValueType(99)),
    )
    trading = check.wire.main.trading
    for request in cases:
        check.expect(
            check.call(trading.PlaceOrder, request), INVALID, f"PlaceOrder {describe(request)}", rule=1
        )
    for request in cases[:2]:
        lookup = tr.GetOrderRequest(client_order_id=request.client_order_id)
        found = check.call(trading.GetOrder, lookup)
        if found.code is not grpc.StatusCode.NOT_FOUND:
            check.fail(
                f"PlaceOrder {describe(request)}, then GetOrder {describe(lookup)}",
                found,
                note="it created one",
            )
    check.healthy_afterwards()
