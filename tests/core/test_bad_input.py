"""Whatever a caller passes to the public constructors, the only error that escapes is InvalidRequestError.

`OrderRequest`, `RateLimit`, `Backoff`, `RateLimiter` and the grpc gateway's options are driven with
arbitrary values; every refusal names what was wrong, and what is accepted is what a broker carries.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker_plugins import (
    Backoff,
    InvalidRequestError,
    OrderRequest,
    RateLimit,
    RateLimiter,
    to_decimal,
)
from grpc_plugin import GatewayConfig, GrpcBrokerGateway
from grpc_plugin._mapping import decimal_to

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**17, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1e3000000000", "1e-3000000000", "9" * 5000, "-0", " 5 ", "0x10", "١٢"]),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.just(object()),
)


def _only_invalid_request(build: Any) -> object | None:
    try:
        made: object = build()
        return made
    except InvalidRequestError:
        return None


@settings(max_examples=300, deadline=None)
@given(symbol=ANYTHING, side=ANYTHING, quantity=ANYTHING, price=ANYTHING, tif=ANYTHING, order_id=ANYTHING)
def test_order_requests_from_arbitrary_values(
    symbol: Any, side: Any, quantity: Any, price: Any, tif: Any, order_id: Any
) -> None:
    made = _only_invalid_request(
        lambda: OrderRequest(symbol, side, quantity, price=price, time_in_force=tif, client_order_id=order_id)
    )
    for build in (
        lambda: OrderRequest.market(symbol, side, quantity, client_order_id=order_id),
        lambda: OrderRequest.limit(symbol, side, quantity, price, time_in_force=tif),
    ):
        _only_invalid_request(build)
    if isinstance(made, OrderRequest):
        # What is accepted reaches the wire exactly: the bounds are what a broker can carry.
        assert made.quantity > 0
        decimal_to(made.quantity, field="quantity")
        if made.price is not None:
            decimal_to(made.price, field="price")


@settings(max_examples=200, deadline=None)
@given(calls=ANYTHING, period=ANYTHING, first=ANYTHING, second=ANYTHING)
def test_limits_and_backoffs_from_arbitrary_values(calls: Any, period: Any, first: Any, second: Any) -> None:
    _only_invalid_request(lambda: RateLimit(calls, period))
    _only_invalid_request(lambda: Backoff(first, second))
    _only_invalid_request(lambda: RateLimiter(calls))
    _only_invalid_request(lambda: RateLimiter({"market_data": calls}))
    _only_invalid_request(lambda: RateLimiter((), margin=period))


_OPTION_NAMES = [
    "target",
    "token",
    "tls",
    "root_certificates",
    "server_name_override",
    "rate_limits",
    "rate_limit_margin",
    "timeouts",
    "unavailable_timeout",
    "connect_timeout",
    "keepalive_time",
    "keepalive_timeout",
    "health_check_interval",
    "health_check_timeout",
    "stream_stale_after",
    "quote_stale_after",
    "reconnect_backoff",
    "max_message_size",
    "colour",
]


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(_OPTION_NAMES), value=ANYTHING)
def test_gateway_options_from_arbitrary_values(name: str, value: Any) -> None:
    options = {"target": "127.0.0.1:50051", name: value}
    made = _only_invalid_request(lambda: GrpcBrokerGateway(**options))
    if isinstance(made, GrpcBrokerGateway):
        assert made.state.value == "disconnected"
    if name != "colour":  # built directly, an unknown keyword is a TypeError, as for any class
        _only_invalid_request(lambda: GatewayConfig(**options))


def test_a_config_built_directly_is_checked_too() -> None:
    with pytest.raises(InvalidRequestError, match="option 'target' must look like 'host:port'"):
        GatewayConfig(target="not an address")
    with pytest.raises(InvalidRequestError, match="option 'max_message_size' must be a whole number"):
        GatewayConfig(target="h:1", max_message_size=1)


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("1e3000000000", "quantity must be below 10\\*\\*18"),
        ("9" * 5000, "at most 64 characters"),
        (10**28, "quantity must be below 10\\*\\*18"),
        (Decimal("1E-19"), "no finer than 1e-18"),
        (Decimal("1.0000000000000000001"), "no finer than 1e-18"),
        (Decimal("123456789.0123456789"), "no finer than 1e-18|at most 18 significant digits"),
    ],
)
def test_numbers_a_broker_cannot_carry_are_refused_at_construction(quantity: object, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        OrderRequest("AAPL", "buy", quantity)


def test_an_empty_client_order_id_is_an_error_not_a_fresh_one() -> None:
    builds: list[Callable[[], OrderRequest]] = [
        lambda: OrderRequest.market("AAPL", "buy", 1, client_order_id=""),
        lambda: OrderRequest.limit("AAPL", "buy", 1, "10", client_order_id=""),
    ]
    for build in builds:
        with pytest.raises(InvalidRequestError, match="client_order_id must be 1-64"):
            build()
    assert copy.copy(to_decimal("0.1", field="x")) == Decimal("0.1")
