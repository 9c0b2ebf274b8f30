"""BK-AUTH: every RPC refuses a missing or wrong token, before anything else; the token is never echoed.

The probes are harmless even on a bridge that let them through: the PlaceOrder is malformed (no
order type, no quantity) and the order ids name no order.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from conformance_tests.bridge._check import Check, KitError
from conformance_tests.bridge._values import (
    UNKNOWN_SYMBOL,
    WELL_FORMED_UNKNOWN_ORDER,
    decimal_message,
    fresh_id,
)
from conformance_tests.bridge._wire import NO_AUTH, Outcome, Stubs, describe
from grpc_plugin.generated.broker.bridge.v1 import calendar_pb2 as cal
from grpc_plugin.generated.broker.bridge.v1 import market_data_pb2 as md
from grpc_plugin.generated.broker.bridge.v1 import trading_pb2 as tr

_STREAM_WAIT = 10.0
_OPTIONAL_RPCS = frozenset({"GetMarketCalendar"})
"""RPCs newer than v1's first release: a bridge older than them answers UNIMPLEMENTED."""


def _probes(symbol: str) -> dict[str, tuple[str, object, bool]]:
    """RPC name -> (service, request, server-streaming)."""
    unknown = WELL_FORMED_UNKNOWN_ORDER
    return {
        "GetCandles": (
            "market",
            md.GetCandlesRequest(symbol=symbol, interval=md.INTERVAL_ONE_DAY, limit=1),
            False,
        ),
        "GetQuote": ("market", md.GetQuoteRequest(symbol=symbol), False),
        "GetInstrument": ("market", md.GetInstrumentRequest(symbol=symbol), False),
        "ListInstruments": ("market", md.ListInstrumentsRequest(), False),
        "GetMarketCalendar": ("market", cal.GetMarketCalendarRequest(exchange="KRX"), False),
        "StreamQuotes": ("market", md.StreamQuotesRequest(symbols=[symbol]), True),
        "PlaceOrder": (
            "trading",
            tr.PlaceOrderRequest(client_order_id=fresh_id("BK-AUTH-1"), symbol=symbol),
            False,
        ),
        "CancelOrder": ("trading", tr.CancelOrderRequest(order_id=unknown), False),
        "ModifyOrder": (
            "trading",
            tr.ModifyOrderRequest(order_id=unknown, quantity=decimal_message(1)),
            False,
        ),
        "GetOrder": ("trading", tr.GetOrderRequest(order_id=unknown), False),
        "ListOrders": ("trading", tr.ListOrdersRequest(), False),
        "StreamOrderUpdates": ("trading", tr.StreamOrderUpdatesRequest(from_latest=True), True),
        "GetPositions": ("trading", tr.GetPositionsRequest(), False),
        "GetBalance": ("trading", tr.GetBalanceRequest(), False),
    }


def _every_rpc() -> set[str]:
    return {m.name for m in md.DESCRIPTOR.services_by_name["MarketDataService"].methods} | {
        m.name for m in tr.DESCRIPTOR.services_by_name["TradingService"].methods
    }


def _send(check: Check, stubs: Stubs, name: str, probe: tuple[str, object, bool], auth: str) -> Outcome:
    service, request, streaming = probe
    method: Callable[..., Any] = getattr(stubs.market if service == "market" else stubs.trading, name)
    if not streaming:
        return check.call(method, request, auth=auth, retry=False)
    with check.stream(method, request, auth=auth) as stream:
        first = stream.next(_STREAM_WAIT)
    if first is None:
        return Outcome(
            code=grpc.StatusCode.OK, details=f"the stream stayed open, silent for {_STREAM_WAIT:g} s"
        )
    if isinstance(first, Outcome):
        return first
    return Outcome(code=grpc.StatusCode.OK, reply=first)


def test_bk_auth1_every_rpc_refuses_a_missing_or_wrong_token(check: Check, instrument: md.Instrument) -> None:
    probes = _probes(instrument.symbol)
    if set(probes) != _every_rpc():
        raise KitError(f"the auth probes do not cover every RPC: {sorted(_every_rpc() ^ set(probes))}")
    wrong = f"Bearer bk-kit-wrong-{secrets.token_hex(8)}"
    for name, probe in probes.items():
        for auth, label in (
            (NO_AUTH, "without authorization metadata"),
            (wrong, "with a wrong bearer token"),
        ):
            outcome = _send(check, check.wire.main, name, probe, auth)
            if name in _OPTIONAL_RPCS and outcome.code is grpc.StatusCode.UNIMPLEMENTED:
                continue  # a bridge older than the RPC: nothing there to protect
            if outcome.code is not grpc.StatusCode.UNAUTHENTICATED:
                # Refused for something else first (a malformed PlaceOrder, an unknown order id)?
                rule = 1 if not outcome.ok else 0
                check.fail(
                    f"{name} {describe(probe[1])} {label}",
                    outcome,
                    rule=rule,
                    note="expected UNAUTHENTICATED",
                )


def _echoes(outcome: Outcome, secret: str) -> str:
    """Where `secret` shows in what came back ("" if nowhere)."""
    if secret in outcome.details:
        return "in the status details"
    for where, pairs in (("trailers", outcome.trailers), ("initial metadata", outcome.initial)):
        for key, raw in pairs:
            text = raw if isinstance(raw, str) else raw.decode("latin-1")
            if secret in text or secret in key:
                return f"in the {where} ({key})"
    return ""


def test_bk_auth2_the_token_is_never_echoed(check: Check, instrument: md.Instrument) -> None:
    wrong_token = f"bk-kit-wrong-{secrets.token_hex(8)}"
    wrong = f"Bearer {wrong_token}"
    token = check.wire.settings.token
    assert token is not None  # the clause needs one
    market, trading, health = check.wire.main.market, check.wire.main.trading, check.wire.main.health
    sends: list[tuple[str, Callable[..., Any], object, str]] = [
        ("GetQuote with a wrong token", market.GetQuote, md.GetQuoteRequest(symbol=instrument.symbol), wrong),
        (
            "GetOrder with a wrong token",
            trading.GetOrder,
            tr.GetOrderRequest(order_id=WELL_FORMED_UNKNOWN_ORDER),
            wrong,
        ),
        ("Health.Check with a wrong token", health.Check, health_pb2.HealthCheckRequest(), wrong),
        (
            "GetQuote of a malformed symbol with the kit's token",
            market.GetQuote,
            md.GetQuoteRequest(symbol="bk kit!"),
            "auth",
        ),
        (
            "GetQuote of an unknown symbol with the kit's token",
            market.GetQuote,
            md.GetQuoteRequest(symbol=UNKNOWN_SYMBOL),
            "auth",
        ),
    ]
    for label, method, request, auth in sends:
        outcome = check.call(method, request, auth=auth)
        for secret, which in ((wrong_token, "the wrong token sent"), (token, "the kit's token")):
            where = _echoes(outcome, secret)
            if where:
                check.fail(f"{label}: {describe(request)}", f"{outcome.code.name}, with {which} {where}")
